"""Language identification for `source: auto` and `/detect`: py3langid, restricted to the served source languages.

py3langid (a maintained fork of langid.py) over lingua: its model ships inside a 4.6 MB wheel (lingua's is 96 MB),
loads in a fraction of a second, answers in microseconds, and can rank among a given set of languages, which is
the question here: which of the languages we can translate from is this? (Very short texts such as "Hallo." stay
ambiguous for any detector; the confidence says so.)
"""

from __future__ import annotations

from functools import cache

from py3langid.langid import MODEL_FILE, LanguageIdentifier


@cache
def _languages() -> frozenset[str]:
    """Every language the model knows (an identifier restricted to some forgets the others)."""
    return frozenset(LanguageIdentifier.from_model_file(MODEL_FILE).nb_classes)


@cache
def _identifier(languages: tuple[str, ...]) -> LanguageIdentifier:
    """One identifier per set of languages, restricted once and never changed after: requests share it."""
    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    identifier.set_languages(list(languages))
    return identifier


def detect(text: str, languages: list[str]) -> list[tuple[str, float]]:
    """(language, probability) for each of `languages` it knows, most likely first; [] if it knows none of them."""
    known = tuple(sorted(code for code in set(languages) if code in _languages()))
    if not known:
        return []
    if len(known) == 1:
        return [(known[0], 1.0)]
    return [(code, float(p)) for code, p in _identifier(known).rank(text)]
