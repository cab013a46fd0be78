"""Translator: load a trained run and translate raw text, with attention weights when asked."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from translate.checkpoint import load_checkpoint
from translate.data import make_src, token_batches
from translate.decoding import SearchConfig, search
from translate.models import Seq2Seq, count_parameters
from translate.records import EvalResult, ValidationRecord
from translate.runfolder import resolve_checkpoint, run_of
from translate.tokenizer import TokenizerPair

log = logging.getLogger(__name__)

EOS_PIECE = "</s>"


@dataclass
class Translation:
    text: str
    src_tokens: list[str]  # source pieces, EOS last: the columns of `attention`
    tgt_tokens: list[str]  # output pieces, no EOS: the rows of `attention`
    attention: list[list[float]] | None = None  # (len(tgt_tokens), len(src_tokens)), heads averaged
    score: float = 0.0  # log-probability of the output


def clean_text(text: str) -> str:
    """Input as the tokenizer can take it: invalid surrogates replaced, outer whitespace stripped."""
    return text.encode("utf-8", "replace").decode("utf-8").strip()


def translate_texts(
    model: Seq2Seq, tokenizers: TokenizerPair, texts: Sequence[str], search_cfg: SearchConfig,
    device: torch.device, need_attention: bool = False, max_tokens: int = 4096, max_src_tokens: int = 1024,
    progress: Callable[[int], None] | None = None,
) -> list[Translation]:
    """Translate in length-sorted batches; the results keep the input order. The model must be in eval mode."""
    texts = [clean_text(t) for t in texts]
    ids = tokenizers.src.encode(texts)
    too_long = sum(len(s) > max_src_tokens for s in ids)
    if too_long:
        log.warning("%d input(s) longer than %d tokens were truncated", too_long, max_src_tokens)
        ids = [s[:max_src_tokens] for s in ids]
    results: list[Translation | None] = [None] * len(texts)
    for i, text in enumerate(texts):
        if not text:  # nothing to translate: no model call, an empty result
            results[i] = Translation("", [], [], None)
    todo = [i for i, text in enumerate(texts) if text]
    # Beam search holds beam_size rows per sentence: keep the batch's work the same whatever the beam.
    budget = max(max_tokens // max(search_cfg.beam_size, 1), 1)
    for batch in token_batches([len(ids[i]) + 1 for i in todo], budget, seed=0, epoch=0, shuffle=False):
        rows = [todo[b] for b in batch]
        src = make_src([ids[i] for i in rows]).to(device)  # (B, S)
        hyps = search(model, src, src != 0, search_cfg, need_attention=need_attention)
        for i, hyp in zip(rows, hyps):
            src_pieces = tokenizers.src.pieces(ids[i]) + [EOS_PIECE]
            attention = hyp.attention.tolist() if hyp.attention is not None else None  # None: model has no attention
            results[i] = Translation(
                tokenizers.tgt.decode(hyp.tokens), src_pieces, tokenizers.tgt.pieces(hyp.tokens), attention, hyp.score
            )
        if progress is not None:
            progress(len(rows))
    return results  # type: ignore[return-value]


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@dataclass
class Translator:
    """A trained model with its tokenizers, ready to translate."""

    model: Seq2Seq
    tokenizers: TokenizerPair
    arch: str
    src_lang: str
    tgt_lang: str
    device: torch.device
    validation: ValidationRecord | None = None  # the validation that selected the checkpoint
    evaluations: dict[str, EvalResult] = field(default_factory=dict)  # the run's `translate evaluate` results

    @classmethod
    def load(cls, run: str | Path, device: str = "auto") -> Translator:
        """Load a run folder (its best checkpoint, else its last) or a checkpoint file."""
        path = resolve_checkpoint(run)
        dev = pick_device(device)
        ckpt = load_checkpoint(path)
        return cls(
            ckpt.build(dev), ckpt.tokenizers, ckpt.arch, ckpt.src_lang, ckpt.tgt_lang, dev,
            ckpt.metrics, run_of(path).evaluations(),
        )

    @property
    def parameters(self) -> int:
        return count_parameters(self.model)

    def translate(
        self, texts: Sequence[str], beam_size: int = 5, return_attention: bool = False,
        length_penalty: float = 1.0, progress: Callable[[int], None] | None = None,
    ) -> list[Translation]:
        cfg = SearchConfig(beam_size=beam_size, length_penalty=length_penalty)
        return translate_texts(
            self.model, self.tokenizers, texts, cfg, self.device, need_attention=return_attention, progress=progress
        )
