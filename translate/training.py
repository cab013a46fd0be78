"""The training loop: teacher forcing with label smoothing, AdamW with warmup and inverse-sqrt decay, gradient
clipping, validation BLEU with early stopping, atomic best/last checkpoints, exact resume.

The loop knows nothing about which model it trains; progress reporting goes through `Callback`s, so the
library prints nothing itself. What a run folder holds is `translate.runfolder`'s business.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import math
import random
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch

from translate.checkpoint import Checkpoint, load_checkpoint, model_checkpoint, save_checkpoint
from translate.config import RunConfig, TrainConfig, run_config_from_dict
from translate.data import Batch, EncodedCorpus, Pair, clean_pairs, has_split, read_mixed, read_parallel
from translate.decoding import SearchConfig
from translate.engine import TorchEngine
from translate.errors import TrainingInterrupted, TranslateError
from translate.evaluation import score
from translate.loss import token_cross_entropy
from translate.models import Seq2Seq, build_model, count_parameters, make_config
from translate.records import TrainSummary, ValidationRecord
from translate.runfolder import RunFolder
from translate.tokenizer import TokenizerPair, train_tokenizers
from translate.translator import pick_device, translate_texts

log = logging.getLogger(__name__)

HELD_OUT = 500  # validation pairs held out of a single-file corpus that has no validation split


@dataclass(frozen=True)
class TrainInfo:
    """What training is about to do, for `Callback.on_start`."""

    arch: str
    parameters: int
    device: str
    train_pairs: int
    cleaning: str  # what cleaning the training pairs removed
    corpora: dict[str, int]  # training pairs read from each corpus (several when mixed)
    valid_pairs: int
    vocab: tuple[int, int]  # source and target vocabulary sizes
    resumed_at: int | None  # the step a resumed run continues from


@dataclass(frozen=True)
class StepMetrics:
    step: int
    epoch: int
    loss: float
    lr: float
    tokens: int  # target tokens in this update
    tokens_per_s: float  # target tokens per second of training so far


class Callback:
    """Hooks for progress reporting; override what you need."""

    def on_start(self, info: TrainInfo) -> None: ...

    def on_step(self, metrics: StepMetrics) -> None: ...

    def on_eval(self, record: ValidationRecord, improved: bool) -> None: ...

    def on_end(self, summary: TrainSummary) -> None: ...


@dataclass
class TrainState:
    """Everything besides the weights that resuming needs to continue exactly."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0  # batches of `epoch` already consumed
    train_seconds: float = 0.0  # training wall-clock time, summed over resumes (evaluation excluded)
    tgt_tokens: int = 0
    best_bleu: float = -1.0
    bad_evals: int = 0  # validations since the last BLEU gain
    stopped: str = ""  # why training ended: max_steps | minutes | early_stop | max_epochs
    optimizer: dict[str, Any] = field(default_factory=dict)
    rng: dict[str, Any] = field(default_factory=dict)

    @property
    def tokens_per_s(self) -> float:
        return round(self.tgt_tokens / max(self.train_seconds, 1e-9), 1)

    def advance(self, epoch: int, batch_in_epoch: int, tokens: int, seconds: float) -> None:
        """Account for one update taken at (epoch, batch_in_epoch)."""
        self.step += 1
        self.epoch, self.batch_in_epoch = epoch, batch_in_epoch
        self.tgt_tokens += tokens
        self.train_seconds += seconds


@dataclass
class Session:
    """What the set-up gives the loop: everything one training run works with."""

    cfg: RunConfig
    folder: RunFolder
    device: torch.device
    tokenizers: TokenizerPair
    corpus: EncodedCorpus
    valid_pairs: list[Pair]
    model: Seq2Seq
    optimizer: torch.optim.Optimizer
    state: TrainState
    info: TrainInfo


def train(
    cfg: RunConfig, out: Path, resume: bool = False, callbacks: list[Callback] | None = None
) -> TrainSummary:
    """Train one model into run folder `out`; `resume` continues from its last checkpoint.

    Ctrl-C (or SIGTERM turned into KeyboardInterrupt) saves a resumable checkpoint, then raises TrainingInterrupted.
    """
    callbacks = callbacks or []
    s = set_up(cfg, RunFolder(out), resume)
    tc, state = s.cfg.train, s.state
    for cb in callbacks:
        cb.on_start(s.info)
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if s.device.type == "cuda" and tc.amp else None
    s.model.train()
    last_save, stopped = time.monotonic(), "max_epochs"  # the batches running out means max_epochs
    try:
        for epoch, position, batch in _batches_from(s.corpus, tc, state):
            # 1. Stop before the next update once the budget is spent.
            if tc.max_steps and state.step >= tc.max_steps:
                stopped = "max_steps"
                break
            if tc.minutes and state.train_seconds >= tc.minutes * 60:
                stopped = "minutes"
                break
            # 2. One update on this batch.
            start = time.perf_counter()
            lr = set_lr(s.optimizer, lr_at(state.step + 1, tc))
            loss = train_step(s.model, s.optimizer, batch.to(s.device), tc.label_smoothing, tc.clip_norm, amp)
            if s.device.type == "cuda":
                torch.cuda.synchronize()  # so the time below is the step's, not its launch's
            state.advance(epoch, position, batch.n_tgt_tokens, time.perf_counter() - start)
            for cb in callbacks:
                cb.on_step(StepMetrics(state.step, epoch, loss.item(), lr, batch.n_tgt_tokens, state.tokens_per_s))
            # 3. Validate and checkpoint every eval_every updates; stop early once BLEU stops improving.
            if tc.eval_every and state.step % tc.eval_every == 0:
                validate_and_save(s, callbacks)
                last_save = time.monotonic()
                if tc.patience and state.bad_evals >= tc.patience:
                    stopped = "early_stop"
                    break
            # 4. Between validations, keep a resumable checkpoint no older than save_every_minutes.
            elif time.monotonic() - last_save > tc.save_every_minutes * 60:
                save_checkpoint(s.folder.last, make_checkpoint(s, None, resumable=True))
                last_save = time.monotonic()
    except KeyboardInterrupt:
        save_checkpoint(s.folder.last, make_checkpoint(s, None, resumable=True))
        raise TrainingInterrupted(str(s.folder.path), state.step) from None
    return finish(s, stopped, callbacks)


def set_up(cfg: RunConfig, folder: RunFolder, resume: bool) -> Session:
    """Settings, data, tokenizers, model, optimizer and state: fresh, or restored from `folder`'s last.pt."""
    resumed = _resumable(folder) if resume else None
    if resume and resumed is None:
        raise TranslateError(f"nothing to resume: {folder.last} does not exist")
    if not resume and folder.last.exists():
        raise TranslateError(f"{folder.path} already holds a run: pass --resume to continue it, or choose another --out")
    if resumed:
        cfg = run_config_from_dict(_with_budget(resumed.train_state["run_config"], cfg))
    tc = cfg.train
    device = _prepare_torch(tc)

    train_pairs, valid_pairs, counts = load_splits(cfg)
    tokenizers = resumed.tokenizers if resumed else _tokenizers(cfg, train_pairs)
    encoded = EncodedCorpus.from_pairs(train_pairs, tokenizers)
    keep, report = clean_pairs(train_pairs, encoded.examples, cfg.data.max_len)
    if not keep:
        raise TranslateError(f"no training pairs left after cleaning: {report}")
    corpus = EncodedCorpus([encoded.examples[i] for i in keep])
    valid_pairs = [p for p in valid_pairs if p[0] and p[1]][: tc.eval_sentences or None]

    model_cfg = make_config(cfg.arch, {
        **cfg.model, "src_vocab": tokenizers.src.vocab_size, "tgt_vocab": tokenizers.tgt.vocab_size,
        "joint_vocab": tokenizers.joint,
    })
    model = build_model(cfg.arch, model_cfg).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=tc.lr, betas=(0.9, 0.98), eps=1e-9, weight_decay=tc.weight_decay)
    state = TrainState()
    if resumed:
        model.load_state_dict(resumed.weights)
        state = _restore(resumed.train_state, optimizer)
        folder.summary.unlink(missing_ok=True)  # the run is no longer finished
    folder.write_config(cfg.to_dict())
    info = TrainInfo(
        cfg.arch, count_parameters(model), str(device), report.kept, str(report), counts, len(valid_pairs),
        (tokenizers.src.vocab_size, tokenizers.tgt.vocab_size), state.step if resumed else None,
    )
    log.info("%s: %s parameters, %s; %s", cfg.arch, f"{info.parameters:,}", device, report)
    return Session(cfg, folder, device, tokenizers, corpus, valid_pairs, model, optimizer, state, info)


def finish(s: Session, stopped: str, callbacks: list[Callback]) -> TrainSummary:
    """A last validation if the final step has none, the final checkpoint, and the summary."""
    logged = s.folder.read_log()
    final = logged[-1] if logged and logged[-1].step == s.state.step else validate_and_save(s, callbacks)
    s.state.stopped = stopped
    save_checkpoint(s.folder.last, make_checkpoint(s, final, resumable=True))  # records why training stopped
    st = s.state
    summary = TrainSummary(
        stopped=stopped, step=st.step, epoch=st.epoch, train_minutes=round(st.train_seconds / 60, 3),
        train_tokens_per_s=st.tokens_per_s, best_val_bleu=st.best_bleu, final=final,
        parameters=s.info.parameters, out=str(s.folder.path), global_batch_tokens=s.cfg.train.max_tokens,
    )
    s.folder.write_summary(summary)
    for cb in callbacks:
        cb.on_end(summary)
    return summary


def validate_and_save(s: Session, callbacks: list[Callback]) -> ValidationRecord:
    """Validation loss and BLEU, logged; best.pt when BLEU improved, step-*.pt with `keep`, last.pt always."""
    tc, st = s.cfg.train, s.state
    s.model.eval()
    val_loss = validation_loss(s.model, EncodedCorpus.from_pairs(s.valid_pairs, s.tokenizers), tc.max_tokens, s.device)
    engine = TorchEngine(s.model, s.device)
    hyps = translate_texts(engine, s.tokenizers, [src for src, _ in s.valid_pairs], SearchConfig(tc.eval_beam))
    scores = score([h.text for h in hyps], [tgt for _, tgt in s.valid_pairs])
    s.model.train()
    improved = scores.bleu > st.best_bleu
    st.best_bleu, st.bad_evals = (scores.bleu, 0) if improved else (st.best_bleu, st.bad_evals + 1)
    record = ValidationRecord(
        step=st.step, epoch=st.epoch, train_minutes=round(st.train_seconds / 60, 3), val_loss=round(val_loss, 4),
        val_bleu=scores.bleu, val_chrf=scores.chrf, best_val_bleu=st.best_bleu, lr=lr_at(st.step, tc),
        train_tokens_per_s=st.tokens_per_s, split=s.cfg.data.valid_split, beam=tc.eval_beam,
    )
    s.folder.append_validation(record)
    if improved:
        save_checkpoint(s.folder.best, make_checkpoint(s, record, resumable=False))
    if tc.keep:  # the last `keep` validations' weights, for checkpoint averaging
        save_checkpoint(s.folder.snapshot(st.step), make_checkpoint(s, record, resumable=False))
        for old in s.folder.snapshots()[:-tc.keep]:
            old.unlink()
    save_checkpoint(s.folder.last, make_checkpoint(s, record, resumable=True))
    for cb in callbacks:
        cb.on_eval(record, improved)
    return record


def make_checkpoint(s: Session, metrics: ValidationRecord | None, resumable: bool) -> Checkpoint:
    """Weights + run config; with the optimizer and RNG state too when it is meant for resuming."""
    s.state.optimizer, s.state.rng = (s.optimizer.state_dict(), _rng_state()) if resumable else ({}, {})
    ckpt = model_checkpoint(s.model, s.cfg.arch, s.tokenizers, s.cfg.data.src, s.cfg.data.tgt)
    ckpt.train_state = {**asdict(s.state), "run_config": s.cfg.to_dict()}
    ckpt.metrics = metrics
    return ckpt


def train_step(model, optimizer, batch: Batch, label_smoothing: float, clip_norm: float, amp=None) -> torch.Tensor:
    """One update with teacher forcing: label-smoothed cross-entropy, backward, clipping, optimiser step."""
    with amp or contextlib.nullcontext():
        logits = model(batch.src, batch.src_mask, batch.tgt_in)  # (B, T, V)
        loss = token_cross_entropy(logits, batch.tgt_out, label_smoothing)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if clip_norm:
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
    optimizer.step()
    return loss


@torch.no_grad()
def validation_loss(model: Seq2Seq, corpus: EncodedCorpus, max_tokens: int, device: torch.device) -> float:
    """Mean per-token negative log-likelihood (no label smoothing) of the references."""
    total, tokens = 0.0, 0
    for batch in corpus.batches(max_tokens, seed=0, epoch=0, shuffle=False):
        batch = batch.to(device)
        logits = model(batch.src, batch.src_mask, batch.tgt_in)  # (B, T, V)
        total += token_cross_entropy(logits, batch.tgt_out, reduction="sum").item()
        tokens += batch.n_tgt_tokens
    return total / max(tokens, 1)


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warmup to cfg.lr, then inverse square-root decay (Vaswani et al. §5.3, peak-normalised)."""
    step = max(step, 1)
    warmup = max(cfg.warmup_steps, 1)
    return cfg.lr * min(step / warmup, math.sqrt(warmup / step))


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> float:
    for group in optimizer.param_groups:
        group["lr"] = lr
    return lr


def load_splits(cfg: RunConfig) -> tuple[list[Pair], list[Pair], dict[str, int]]:
    """Training and validation pairs, and the training pairs of each corpus. A corpus without a validation split
    gives up its last pairs for one."""
    d = cfg.data
    train, counts = read_mixed(d.path, d.src, d.tgt, d.train_split, weighted=True)
    if has_split(d.path, d.valid_split):
        return train, read_parallel(d.path, d.src, d.tgt, d.valid_split), counts
    n = min(HELD_OUT, len(train) // 10)
    if n < 1:
        raise TranslateError(f"{d.path} has no {d.valid_split!r} split and too few pairs ({len(train)}) to hold some out")
    log.warning("no %r split in %s: holding out its last %d pairs for validation", d.valid_split, d.path, n)
    return train[:-n], train[-n:], counts


def _batches_from(corpus: EncodedCorpus, tc: TrainConfig, state: TrainState) -> Iterator[tuple[int, int, Batch]]:
    """(epoch, batches of the epoch consumed after this one, batch) from the saved position to max_epochs.

    Each epoch's batches are a pure function of (seed, epoch), so a resumed run sees exactly what it would have.
    """
    for epoch in range(state.epoch, tc.max_epochs):
        skip = state.batch_in_epoch if epoch == state.epoch else 0
        batches = corpus.batches(tc.max_tokens, tc.seed, epoch)
        for position, batch in enumerate(itertools.islice(batches, skip, None), start=skip + 1):
            yield epoch, position, batch


def _resumable(folder: RunFolder) -> Checkpoint | None:
    return load_checkpoint(folder.last) if folder.last.exists() else None


def _restore(saved: dict[str, Any], optimizer: torch.optim.Optimizer) -> TrainState:
    state = TrainState(**{f.name: saved[f.name] for f in fields(TrainState) if f.name in saved})
    state.stopped = ""  # a finished run resumed with a larger budget trains on
    optimizer.load_state_dict(state.optimizer)
    _set_rng_state(state.rng)
    return state


def _prepare_torch(tc: TrainConfig) -> torch.device:
    """Threads, seeds and precision settings; returns the device to train on."""
    if tc.threads:
        torch.set_num_threads(tc.threads)
    device = pick_device(tc.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True  # float32 matmuls on tensor cores: faster, precise enough
        torch.backends.cudnn.allow_tf32 = True
    torch.manual_seed(tc.seed)
    random.seed(tc.seed)
    return device


def _tokenizers(cfg: RunConfig, train_pairs: list[Pair]) -> TokenizerPair:
    """The shared tokenizers named by the config, else new ones trained on the training split only."""
    t = cfg.tokenizer
    if t.path:
        return TokenizerPair.load(Path(t.path))
    return train_tokenizers(train_pairs, t.vocab_size, t.joint, t.model_type)


def _with_budget(saved: dict[str, Any], cfg: RunConfig) -> dict[str, Any]:
    """A resumed run keeps its saved settings, except the budget (steps, minutes) given now."""
    saved = json.loads(json.dumps(saved))
    saved["train"]["max_steps"] = cfg.train.max_steps or saved["train"]["max_steps"]
    saved["train"]["minutes"] = cfg.train.minutes or saved["train"]["minutes"]
    return saved


def _rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "python": list(random.getstate()[1])}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate((3, tuple(state["python"]), None))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
