"""Long text: split into sentences, translate the sentences together, put the text back together.

Models are trained on single sentences; a paragraph fed whole comes back truncated or run-on. The splitter is
sentencex (Wikimedia's, language-aware through fallback chains, maintained), chosen over pysbd after
`scripts/long_text.py` compared them on real paragraphs (see its docstring): its segments keep every character
of the input, so the spaces and paragraph breaks between sentences are given back exactly as they came.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sentencex import segment


SURROGATES = re.compile("[\ud800-\udfff]")  # lone halves of UTF-16 pairs: no UTF-8 encoder takes them


def replace_surrogates(text: str) -> str:
    return SURROGATES.sub("\ufffd", text)


@dataclass(frozen=True)
class Piece:
    """One sentence of a text and the whitespace around it (`text` empty: whitespace only)."""

    before: str
    text: str
    after: str


def split_sentences(text: str, lang: str) -> list[Piece]:
    """The sentences of `text` with the whitespace around each; joining them gives `text` back (lone surrogates,
    which no UTF-8 text can hold, come back as U+FFFD, as translating them would)."""
    text = replace_surrogates(text)
    pieces = []
    for part in segment(lang, text):
        core = part.strip()
        if not core:
            pieces.append(Piece(part, "", ""))
            continue
        start = part.index(core)
        pieces.append(Piece(part[:start], core, part[start + len(core):]))
    return pieces


def rejoin(pieces: list[Piece], translations: list[str]) -> str:
    """The text again, each sentence replaced by its translation (one per piece with text, in order)."""
    it = iter(translations)
    return "".join(p.before + (next(it) if p.text else "") + p.after for p in pieces)
