"""Scores with sacreBLEU: corpus BLEU and chrF on detokenized text against raw references, with signatures."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from sacrebleu.metrics import BLEU, CHRF

# Buckets of source length in words for BLEU by sentence length: (low, high) inclusive.
LENGTH_BUCKETS: tuple[tuple[int, int], ...] = ((1, 8), (9, 12), (13, 16), (17, 20), (21, 10**9))


@dataclass(frozen=True)
class Scores:
    bleu: float
    chrf: float
    bleu_signature: str
    chrf_signature: str
    n_sentences: int

    def as_dict(self) -> dict:
        return asdict(self)


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
) -> list[dict]:
    """Corpus BLEU within each bucket of source length (whitespace words); empty buckets are reported as such."""
    out = []
    for low, high in buckets:
        idx = [i for i, s in enumerate(sources) if low <= len(s.split()) <= high]
        bleu = BLEU().corpus_score([hypotheses[i] for i in idx], [[references[i] for i in idx]]).score if idx else None
        out.append({"bucket": bucket_label(low, high), "n": len(idx), "bleu": None if bleu is None else round(bleu, 2)})
    return out


def eval_stem(split: str, beam_size: int, length_penalty: float = 1.0) -> str:
    """The file name (without suffix) of one evaluation's hypotheses and scores."""
    return f"{split}.beam{beam_size}" + (f".lp{length_penalty:g}" if length_penalty != 1.0 else "")


def evaluate_run(
    translator, pairs: Sequence[tuple[str, str]], split: str, data: str = "", beam_size: int = 5,
    out_dir: Path | None = None, length_penalty: float = 1.0, progress=None,
) -> dict:
    """Translate (src, ref) pairs with a loaded `Translator`, score them, and write hypotheses + scores.

    With `out_dir`, files `{split}.beam{k}.hyp.txt` and `{split}.beam{k}.json` are written there (`.lp{x}`
    added to the name when the length penalty is not 1, so a sweep keeps every result).
    """
    import time

    from translate.checkpoint import write_atomic

    if not pairs:
        raise ValueError(f"split {split!r} of {data} is empty")
    start = time.perf_counter()
    translations = translator.translate([s for s, _ in pairs], beam_size=beam_size, length_penalty=length_penalty, progress=progress)
    seconds = time.perf_counter() - start
    hyps = [t.text for t in translations]
    scores = score(hyps, [t for _, t in pairs])
    result = {
        **scores.as_dict(),
        "signature": scores.bleu_signature,
        "split": split, "data": str(data), "beam": beam_size, "length_penalty": length_penalty,
        "decode_seconds": round(seconds, 2),
        "decode_tokens_per_s": round(sum(len(t.tgt_tokens) + 1 for t in translations) / max(seconds, 1e-9), 1),
        "by_length": bleu_by_length([s for s, _ in pairs], hyps, [t for _, t in pairs]),
    }
    if out_dir is not None:
        stem = eval_stem(split, beam_size, length_penalty)
        write_atomic(out_dir / f"{stem}.hyp.txt", ("\n".join(hyps) + "\n").encode())
        write_atomic(out_dir / f"{stem}.json", (json.dumps(result, indent=2) + "\n").encode())
        result["hypotheses_file"] = str(out_dir / f"{stem}.hyp.txt")
    return result
