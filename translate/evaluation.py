"""Scores with sacreBLEU: corpus BLEU and chrF on detokenized text against raw references, with signatures."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from sacrebleu.metrics import BLEU, CHRF

from translate.records import EvalResult, LengthBucket
from translate.runfolder import write_eval

# Buckets of source length in words for BLEU by sentence length: (low, high) inclusive.
LENGTH_BUCKETS: tuple[tuple[int, int], ...] = ((1, 8), (9, 12), (13, 16), (17, 20), (21, 10**9))


@dataclass(frozen=True)
class Scores:
    bleu: float
    chrf: float
    bleu_signature: str
    chrf_signature: str
    n_sentences: int


def score(hypotheses: Sequence[str], references: Sequence[str]) -> Scores:
    """Corpus BLEU (13a tokenization, cased) and chrF of hypotheses against one reference each."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references")
    bleu, chrf = BLEU(), CHRF()
    refs = [list(references)]
    b = bleu.corpus_score(list(hypotheses), refs)
    c = chrf.corpus_score(list(hypotheses), refs)
    return Scores(
        bleu=round(b.score, 2), chrf=round(c.score, 2),
        bleu_signature=str(bleu.get_signature()), chrf_signature=str(chrf.get_signature()),
        n_sentences=len(hypotheses),
    )


def bucket_label(low: int, high: int) -> str:
    return f"<={high}" if low <= 1 else (f"{low}+" if high >= 10**9 else f"{low}-{high}")


def bleu_by_length(
    sources: Sequence[str], hypotheses: Sequence[str], references: Sequence[str],
    buckets: Sequence[tuple[int, int]] = LENGTH_BUCKETS,
) -> list[LengthBucket]:
    """Corpus BLEU within each bucket of source length (whitespace words); empty buckets are reported as such."""
    out = []
    for low, high in buckets:
        idx = [i for i, s in enumerate(sources) if low <= len(s.split()) <= high]
        bleu = BLEU().corpus_score([hypotheses[i] for i in idx], [[references[i] for i in idx]]).score if idx else None
        out.append(LengthBucket(bucket_label(low, high), len(idx), None if bleu is None else round(bleu, 2)))
    return out


class Translates(Protocol):
    """What evaluation needs of a translator: texts in, objects with `.text` and `.tgt_tokens` out."""

    def translate(self, texts: Sequence[str], beam_size: int = ..., *, length_penalty: float = ...,
                  progress: Callable[[int], None] | None = ...) -> list: ...


def evaluate_run(
    translator: Translates, pairs: Sequence[tuple[str, str]], split: str, data: str = "", beam_size: int = 5,
    eval_dir: Path | None = None, length_penalty: float = 1.0, progress: Callable[[int], None] | None = None,
) -> EvalResult:
    """Translate (src, ref) pairs, score them, and with `eval_dir` store the hypotheses and scores there."""
    if not pairs:
        raise ValueError(f"split {split!r} of {data} is empty")
    start = time.perf_counter()
    translations = translator.translate(
        [s for s, _ in pairs], beam_size=beam_size, length_penalty=length_penalty, progress=progress
    )
    seconds = time.perf_counter() - start
    hyps = [t.text for t in translations]
    scores = score(hyps, [t for _, t in pairs])
    result = EvalResult(
        bleu=scores.bleu, chrf=scores.chrf, bleu_signature=scores.bleu_signature,
        chrf_signature=scores.chrf_signature, n_sentences=scores.n_sentences, signature=scores.bleu_signature,
        split=split, data=str(data), beam=beam_size, length_penalty=length_penalty,
        decode_seconds=round(seconds, 2),
        decode_tokens_per_s=round(sum(len(t.tgt_tokens) + 1 for t in translations) / max(seconds, 1e-9), 1),
        by_length=bleu_by_length([s for s, _ in pairs], hyps, [t for _, t in pairs]),
    )
    if eval_dir is not None:
        write_eval(eval_dir, result, hyps)
    return result
