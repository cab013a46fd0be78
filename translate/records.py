"""The records that cross module boundaries, typed: written by one module, read by others (and by the service).

They are msgspec Structs so that one call encodes them to JSON and one call decodes and checks them; fields added
later have defaults, so files written by earlier versions still load. `translate.runfolder` reads and writes them.
"""

from __future__ import annotations

import msgspec


class ValidationRecord(msgspec.Struct, kw_only=True):
    """One validation during training: a line of `log.jsonl`, and the metrics a checkpoint carries."""

    step: int
    epoch: int
    train_minutes: float
    val_loss: float
    val_bleu: float
    val_chrf: float
    best_val_bleu: float
    lr: float
    train_tokens_per_s: float
    split: str = "val"
    beam: int = 1  # beam size of the validation BLEU
    world_size: int = 1  # processes training together (data parallel)
    global_batch_tokens: int = 0  # padded tokens per update over all processes and accumulated micro-batches
    # The global gradient norm before clipping over the updates since the previous validation (0: not recorded).
    grad_norm_mean: float = 0.0
    grad_norm_max: float = 0.0
    clipped: float = 0.0  # share of those updates whose norm clipping scaled down


class TrainSummary(msgspec.Struct, kw_only=True):
    """How a training run ended: `summary.json`, and what `translate train` prints."""

    stopped: str  # max_steps | minutes | early_stop | max_epochs
    step: int
    epoch: int
    train_minutes: float
    train_tokens_per_s: float
    best_val_bleu: float
    final: ValidationRecord | None  # the last validation (None if the run never validated)
    parameters: int
    out: str
    world_size: int = 1  # processes that trained together (data parallel)
    global_batch_tokens: int = 0  # padded tokens per update over all processes and accumulation steps; 0: not recorded
    clipped: float = 0.0  # share of all updates whose gradient norm clipping scaled down


class LengthBucket(msgspec.Struct):
    bucket: str  # "<=8", "9-12", ..., "21+": source words
    n: int
    bleu: float | None  # None for an empty bucket


class EvalResult(msgspec.Struct, kw_only=True):
    """One scored decode of a corpus split: `eval/{split}.beam{k}[.lp{x}].json`."""

    bleu: float
    chrf: float
    bleu_signature: str
    chrf_signature: str
    n_sentences: int
    signature: str  # the BLEU signature again, under the name sacreBLEU users look for
    split: str
    data: str
    beam: int
    length_penalty: float = 1.0
    decode_seconds: float = 0.0
    decode_tokens_per_s: float = 0.0
    by_length: list[LengthBucket] = []  # empty in a tuned result's copy


class TunedResult(msgspec.Struct, kw_only=True):
    """A length penalty chosen on validation and applied once to the test split: `eval/tuned.json`."""

    beam: int
    length_penalty: float
    val_bleu_by_length_penalty: dict[str, float]
    test: EvalResult


class Averaging(msgspec.Struct, kw_only=True):
    """A converged run's checkpoint averaging and which model was kept: `averaging.json` (comparison)."""

    checkpoints: int  # validations' checkpoints averaged (0: too few were kept to average)
    val_bleu_best: float  # best.pt's validation BLEU, greedy
    val_bleu_averaged: float | None  # the averaged model's
    chosen: str  # "best" | "averaged": the higher on validation, the one evaluated and reported


class AttentionSample(msgspec.Struct):
    text: str
    src_tokens: list[str]
    tgt_tokens: list[str]
    attention: list[list[float]] | None  # (len(tgt_tokens), len(src_tokens)); None for a model without attention


class Analysis(msgspec.Struct):
    """Gradient flow and attention maps of a trained model: `analysis.json`."""

    gradient_norm_by_distance: list[float | None]
    attention: list[AttentionSample]
    parameters: int
