"""Translator: load a trained run and translate raw text, with attention weights and alternatives when asked.

The search itself runs on an engine: ours (`translate.engine.TorchEngine`: `translate.decoding` over the model
interface, every architecture, one single-threaded worker per core) or CTranslate2's (`translate.ct2`, the Transformer only). Both take token ids and give hypotheses,
so tokenization, truncation, empty inputs and the shape of the result are handled here once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import torch

from translate import ct2
from translate.checkpoint import load_checkpoint
from translate.decoding import Hypothesis, SearchConfig
from translate.engine import TorchEngine, default_workers
from translate.errors import ConfigError
from translate.inference import QUANTIZE, prepare_for_inference
from translate.models import Seq2Seq, count_parameters
from translate.records import EvalResult, ValidationRecord
from translate.runfolder import resolve_checkpoint, run_of
from translate.segmenting import Piece, rejoin, replace_surrogates, split_sentences
from translate.tokenizer import EOS_PIECE, TokenizerPair

log = logging.getLogger(__name__)

ENGINES = ("torch", "ctranslate2")
MAX_SRC_TOKENS = 1024


@dataclass
class Translation:
    text: str
    src_tokens: list[str]  # source pieces, EOS last: the columns of `attention`
    tgt_tokens: list[str]  # output pieces, no EOS: the rows of `attention`
    attention: list[list[float]] | None = None  # (len(tgt_tokens), len(src_tokens)), heads averaged
    score: float = 0.0  # log-probability of the output
    alternatives: list[Translation] = field(default_factory=list)  # the next-best hypotheses, best first


class Engine(Protocol):
    """What translating needs of an engine (ours, `translate.engine.TorchEngine`, or `translate.ct2`'s)."""

    workers: int

    def search(
        self, src_ids: Sequence[Sequence[int]], cfg: SearchConfig, need_attention: bool, max_tokens: int = 4096,
        progress: Callable[[int], None] | None = None,
    ) -> list[list[Hypothesis]]: ...


def translate_texts(
    engine: Engine, tokenizers: TokenizerPair, texts: Sequence[str], cfg: SearchConfig, need_attention: bool = False,
    max_tokens: int = 4096, progress: Callable[[int], None] | None = None,
) -> list[Translation]:
    """Translate texts with an engine; results keep the input order and empty inputs give empty results."""
    texts = [clean_text(t) for t in texts]
    ids = tokenizers.src.encode(texts)
    too_long = sum(len(s) > MAX_SRC_TOKENS for s in ids)
    if too_long:
        log.warning("%d input(s) longer than %d tokens were truncated", too_long, MAX_SRC_TOKENS)
        ids = [s[:MAX_SRC_TOKENS] for s in ids]
    todo = [i for i, text in enumerate(texts) if text]  # nothing to translate: no model call, an empty result
    hyps = engine.search([ids[i] for i in todo], cfg, need_attention, max_tokens, progress=progress) if todo else []
    results = [Translation("", [], [], None) for _ in texts]
    for i, nbest in zip(todo, hyps):
        src_pieces = tokenizers.src.pieces(ids[i]) + [EOS_PIECE]
        best, *others = [_translation(tokenizers, h, src_pieces) for h in nbest]
        best.alternatives = others
        results[i] = best
    return results


def _translation(tokenizers: TokenizerPair, hyp: Hypothesis, src_pieces: list[str]) -> Translation:
    attention = hyp.attention.tolist() if hyp.attention is not None else None  # None: the model has no attention
    return Translation(
        tokenizers.tgt.decode(hyp.tokens), src_pieces, tokenizers.tgt.pieces(hyp.tokens), attention, hyp.score
    )


def merge(pieces: list[Piece], parts: list[Translation]) -> Translation:
    """One text's translation from its sentences': the text rejoined with the source's spacing, the pieces
    concatenated, attention block-diagonal (a sentence's words attend only within it), scores added. Alternatives
    are kept for a one-sentence text only (for longer ones, which sentence's would they be?)."""
    if len(parts) == 1 and len(pieces) == 1:
        return parts[0]
    if not parts:  # nothing but whitespace
        return Translation("", [], [], None)
    text = rejoin(pieces, [p.text for p in parts]).strip()
    src = [tok for p in parts for tok in p.src_tokens]
    tgt = [tok for p in parts for tok in p.tgt_tokens]
    attention = None
    if parts and all(p.attention is not None for p in parts):
        attention, col = [], 0
        for p in parts:
            for row in p.attention:
                attention.append([0.0] * col + row + [0.0] * (len(src) - col - len(row)))
            col += len(p.src_tokens)
    return Translation(text, src, tgt, attention, sum(p.score for p in parts))


def clean_text(text: str) -> str:
    """Input as the tokenizer can take it: invalid surrogates replaced, outer whitespace stripped."""
    return replace_surrogates(text).strip()


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@dataclass
class Translator:
    """A trained model with its tokenizers, ready to translate."""

    engine: Engine
    tokenizers: TokenizerPair
    arch: str
    src_lang: str
    tgt_lang: str
    parameters: int
    model: Seq2Seq | None = None  # the torch model, for inspection (None on the CTranslate2 engine)
    validation: ValidationRecord | None = None  # the validation that selected the checkpoint
    evaluations: dict[str, EvalResult] = field(default_factory=dict)  # the run's `translate evaluate` results
    engine_name: str = "torch"
    quantize: str = "none"

    @classmethod
    def load(
        cls, run: str | Path, device: str = "auto", engine: str = "torch", quantize: str = "none", workers: int = 0,
    ) -> Translator:
        """Load a run folder (its best checkpoint, else its last), a checkpoint file, or a CTranslate2 export.

        `engine`: torch (ours, every architecture) or ctranslate2 (the Transformer; exported into the run folder on
        first use). `quantize`: none, int8 or bf16 (torch) / int8 or none (CTranslate2). `workers`: decoding
        workers, 0 for one per core.
        """
        if engine not in ENGINES:
            raise ConfigError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
        if quantize not in QUANTIZE:
            raise ConfigError(f"quantize must be one of {', '.join(QUANTIZE)}, not {quantize!r}")
        workers = workers or default_workers()
        if ct2.is_export(Path(run)) or engine == "ctranslate2":
            return cls._load_ctranslate2(Path(run), quantize, workers)
        path = resolve_checkpoint(run)
        dev = pick_device(device)
        ckpt = load_checkpoint(path)
        model = ckpt.build(dev)
        parameters = count_parameters(model)
        model = prepare_for_inference(model, quantize)
        engine = TorchEngine(model, dev, workers if dev.type == "cpu" else 1, inference_only=True)
        return cls(
            engine, ckpt.tokenizers, ckpt.arch, ckpt.src_lang, ckpt.tgt_lang, parameters, model, ckpt.metrics,
            run_of(path).evaluations(), "torch", quantize,
        )

    @classmethod
    def _load_ctranslate2(cls, run: Path, quantize: str, workers: int) -> Translator:
        """A CTranslate2 export, or a run exported on first use (int8 unless quantize is none)."""
        if ct2.is_export(run):
            folder, validation, evaluations = run, None, {}
        else:
            path = resolve_checkpoint(run)
            folder = ct2.ensure_export(path, "float32" if quantize == "none" else "int8")
            validation, evaluations = load_checkpoint(path).metrics, run_of(path).evaluations()
        info, tokenizers = ct2.read_export(folder)
        return cls(
            ct2.CTranslate2Engine(folder, tokenizers, workers), tokenizers, info.arch, info.src_lang, info.tgt_lang,
            info.parameters, None, validation, evaluations, "ctranslate2", info.quantization,
        )

    def translate(
        self, texts: Sequence[str], beam_size: int = 5, return_attention: bool = False,
        length_penalty: float = 1.0, n_best: int = 1, progress: Callable[[int], None] | None = None,
        split: bool = False,
    ) -> list[Translation]:
        """`split`: texts of several sentences are split (`translate.segmenting`), every sentence of every text
        translated in shared batches, and each text put back together (see `merge`)."""
        cfg = SearchConfig(beam_size=beam_size, length_penalty=length_penalty, n_best=n_best)
        if not split:
            return translate_texts(self.engine, self.tokenizers, texts, cfg, return_attention, progress=progress)
        pieces = [split_sentences(text, self.src_lang) for text in texts]
        sentences = [p.text for text_pieces in pieces for p in text_pieces if p.text]
        done = iter(translate_texts(self.engine, self.tokenizers, sentences, cfg, return_attention, progress=progress))
        return [merge(text_pieces, [next(done) for p in text_pieces if p.text]) for text_pieces in pieces]
