"""The training loop: teacher forcing with label smoothing, AdamW with warmup and inverse-sqrt decay, gradient
clipping, validation BLEU with early stopping, atomic best/last checkpoints, exact resume.

The loop knows nothing about which model it trains; progress reporting goes through `Callback`s, so the
library prints nothing itself. What a run folder holds is `translate.runfolder`'s business.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import random
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from translate.checkpoint import Checkpoint, load_checkpoint, model_checkpoint, save_checkpoint
from translate.config import DataConfig, RunConfig, TrainConfig, run_config_from_dict
from translate.data import Batch, Pair, has_split, pairs_of, read_parallel, token_batches
from translate.decoding import SearchConfig
from translate.distributed import Cluster, joined
from translate.encoded import CleanReport, EncodedCorpus, Source, cached_tokenizers, clean, encode_sources, open_sources
from translate.engine import TorchEngine
from translate.errors import TrainingInterrupted, TranslateError
from translate.evaluation import score
from translate.loss import token_cross_entropy
from translate.memory import release_freed_memory
from translate.models import Seq2Seq, build_model, count_parameters, make_config
from translate.records import TrainSummary, ValidationRecord
from translate.runfolder import RunFolder
from translate.tokenizer import TokenizerPair
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
    world_size: int = 1  # processes training together (data parallel)
    accum: int = 1  # micro-batches each process accumulates per update
    setup_seconds: float = 0.0  # reading, tokenizing (or finding both in the cache), building the model


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
    clipped_steps: int = 0  # updates whose gradient norm clipping scaled down
    best_bleu: float = -1.0
    bad_evals: int = 0  # validations since the last BLEU gain
    stopped: str = ""  # why training ended: max_steps | minutes | early_stop | max_epochs
    optimizer: dict[str, Any] = field(default_factory=dict)
    rng: dict[str, Any] = field(default_factory=dict)

    @property
    def tokens_per_s(self) -> float:
        return round(self.tgt_tokens / max(self.train_seconds, 1e-9), 1)

    def advance(self, epoch: int, batch_in_epoch: int, tokens: int) -> None:
        """Account for one update taken at (epoch, batch_in_epoch)."""
        self.step += 1
        self.epoch, self.batch_in_epoch = epoch, batch_in_epoch
        self.tgt_tokens += tokens


@dataclass
class Pending:
    """Updates taken whose loss and gradient norm are not read yet.

    Reading a value from the GPU waits for every kernel queued before it, and the host could not queue the next
    update while it waits: so on a GPU they are read every `read_every` updates (on the CPU after each update).
    Training time is counted between read-backs, when the device has caught up.
    """

    clip_norm: float
    steps: list[tuple[int, int, float, int, torch.Tensor, torch.Tensor]] = field(default_factory=list)
    since_validation: list[float] = field(default_factory=list)  # gradient norms read since the last validation
    clock: float = field(default_factory=time.perf_counter)  # when the training time counted last stopped

    def add(self, step: int, epoch: int, lr: float, tokens: int, loss: torch.Tensor, norm: torch.Tensor) -> None:
        self.steps.append((step, epoch, lr, tokens, loss, norm))

    def read(self, s: Session, callbacks: list[Callback]) -> None:
        """Read the pending values back: callbacks, the run's gradient-norm file, the clipping count, the clock."""
        steps, self.steps = self.steps, []
        values = torch.stack([torch.stack([loss.float(), norm.float()]) for *_, loss, norm in steps]).tolist() if steps else []
        norms = [norm for _, norm in values]
        s.state.clipped_steps += self.clipped(norms)
        self.since_validation += norms
        if s.cluster.is_main and norms:
            s.folder.append_grad_norms(norms)
        now = time.perf_counter()
        s.state.train_seconds += now - self.clock
        self.clock = now
        for (step, epoch, lr, tokens, *_), (loss, _) in zip(steps, values):
            for cb in callbacks:
                cb.on_step(StepMetrics(step, epoch, loss, lr, tokens, s.state.tokens_per_s))

    def clipped(self, norms: list[float]) -> int:
        """How many of these gradient norms clipping scaled down."""
        return sum(n > self.clip_norm for n in norms) if self.clip_norm else 0

    def restart_clock(self) -> None:
        """After a validation: its time is not training time."""
        self.clock = time.perf_counter()


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
    trained: torch.nn.Module  # what the steps run: the model, or its DistributedDataParallel wrapper
    optimizer: torch.optim.Optimizer
    state: TrainState
    info: TrainInfo
    cluster: Cluster
    pending: Pending

    @property
    def global_batch_tokens(self) -> int:
        """Padded tokens per update over every process and accumulated micro-batch."""
        return self.cfg.train.max_tokens * self.cfg.train.accum * self.cluster.world_size


def train(
    cfg: RunConfig, out: Path, resume: bool = False, callbacks: list[Callback] | None = None
) -> TrainSummary:
    """Train one model into run folder `out`; `resume` continues from its last checkpoint.

    Under torchrun every process calls this: each trains on its share of every update's batches (DDP), the main
    process alone validates, writes the run folder and calls `callbacks`.
    Ctrl-C (or SIGTERM turned into KeyboardInterrupt) saves a resumable checkpoint, then raises TrainingInterrupted.
    """
    with joined(use_cuda=pick_device(cfg.train.device).type == "cuda") as cluster:
        return _train(cfg, RunFolder(out), resume, callbacks or [], cluster)


def _train(cfg: RunConfig, folder: RunFolder, resume: bool, callbacks: list[Callback], cluster: Cluster) -> TrainSummary:
    s = set_up(cfg, folder, resume, cluster)
    tc, state = s.cfg.train, s.state
    callbacks = callbacks if cluster.is_main else []  # one process reports
    for cb in callbacks:
        cb.on_start(s.info)
    use_amp = tc.amp if tc.amp is not None else s.cfg.arch == "transformer"
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if s.device.type == "cuda" and use_amp else None
    read_every = tc.read_every if s.device.type == "cuda" else 1
    pending = s.pending
    pending.restart_clock()  # training time starts now, not when the set-up began
    s.model.train()
    last_save, stopped = time.monotonic(), ""
    try:
        for update in _updates_from(s.corpus, tc, state, cluster):
            # 1. Stop before the next update once the budget is spent (the main process's clock decides for all).
            stopped = cluster.broadcast(_spent(tc, state, time.perf_counter() - pending.clock))
            if stopped:
                break
            # 2. One update: this process's micro-batches, gradients averaged over all of them and all processes.
            lr = set_lr(s.optimizer, lr_at(state.step + 1, tc))
            batches = [s.corpus.batch(idx).to(s.device) for idx in update.batches]
            loss, norm = train_step(s.trained, s.optimizer, batches, tc.label_smoothing, tc.clip_norm, amp, update.seeds)
            state.advance(update.epoch, update.position, update.tokens)
            pending.add(state.step, update.epoch, lr, update.tokens, loss, norm)
            validating = bool(tc.eval_every) and state.step % tc.eval_every == 0
            saving = cluster.is_main and time.monotonic() - last_save > tc.save_every_minutes * 60
            if validating or saving or len(pending.steps) >= read_every:
                pending.read(s, callbacks)
            # 3. Validate and checkpoint every eval_every updates; stop early once BLEU stops improving.
            if validating:
                validate_and_save(s, callbacks)
                pending.restart_clock()
                last_save = time.monotonic()
                if tc.patience and state.bad_evals >= tc.patience:
                    stopped = "early_stop"
                    break
            # 4. Between validations, keep a resumable checkpoint no older than save_every_minutes.
            elif saving:
                save_checkpoint(s.folder.last, make_checkpoint(s, None, resumable=True))
                last_save = time.monotonic()
    except KeyboardInterrupt:
        pending.read(s, [])
        if cluster.is_main:
            save_checkpoint(s.folder.last, make_checkpoint(s, None, resumable=True))
        raise TrainingInterrupted(str(s.folder.path), state.step) from None
    pending.read(s, callbacks)
    return finish(s, stopped or "max_epochs", callbacks)  # the batches running out means max_epochs


def _spent(tc: TrainConfig, state: TrainState, unread_seconds: float = 0.0) -> str:
    """Which budget is spent ("" while none is); `unread_seconds`: training time since the last read-back."""
    if tc.max_steps and state.step >= tc.max_steps:
        return "max_steps"
    if tc.minutes and state.train_seconds + unread_seconds >= tc.minutes * 60:
        return "minutes"
    return ""


def set_up(cfg: RunConfig, folder: RunFolder, resume: bool, cluster: Cluster = Cluster()) -> Session:
    """Settings, data, tokenizers, model, optimizer and state: fresh, or restored from `folder`'s last.pt."""
    began = time.perf_counter()
    resumed = _resumable(folder) if resume else None
    if resume and resumed is None:
        raise TranslateError(f"nothing to resume: {folder.last} does not exist")
    if not resume and folder.last.exists():
        raise TranslateError(f"{folder.path} already holds a run: pass --resume to continue it, or choose another --out")
    if resumed:
        cfg = run_config_from_dict(_with_budget(resumed.train_state["run_config"], cfg))
    tc = cfg.train
    device = _prepare_torch(tc, cluster)
    with cluster.main_first():  # the main process fills the caches (tokenizers, encoded corpus); the others read them
        data = load_training_data(cfg, resumed.tokenizers if resumed else None)
    tokenizers = data.tokenizers

    model_cfg = make_config(cfg.arch, resumed.model_config if resumed else {  # resumed: as saved, settings added since
        **cfg.model, "src_vocab": tokenizers.src.vocab_size, "tgt_vocab": tokenizers.tgt.vocab_size,  # at their old values
        "joint_vocab": tokenizers.joint,
    })
    model = build_model(cfg.arch, model_cfg).to(device)
    optimizer = torch.optim.AdamW(  # fused on a GPU: one kernel for every parameter's update
        model.parameters(), lr=tc.lr, betas=(0.9, 0.98), eps=1e-9, weight_decay=tc.weight_decay,
        fused=device.type == "cuda",
    )
    state = TrainState()
    if resumed:
        model.load_state_dict(resumed.weights)
        state = _restore(resumed.train_state, optimizer)
    trained = model
    if cluster.distributed:
        from torch.nn.parallel import DistributedDataParallel

        trained = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    if tc.compile:  # shapes vary from batch to batch: compiled for dynamic shapes from the start
        trained = torch.compile(trained, dynamic=True)
    info = TrainInfo(
        cfg.arch, count_parameters(model), str(device), data.report.kept, str(data.report), data.counts,
        len(data.valid_pairs), (tokenizers.src.vocab_size, tokenizers.tgt.vocab_size),
        state.step if resumed else None, cluster.world_size, tc.accum, round(time.perf_counter() - began, 1),
    )
    s = Session(cfg, folder, device, tokenizers, data.corpus, data.valid_pairs, model, trained, optimizer, state,
                info, cluster, Pending(tc.clip_norm))
    if cluster.is_main:
        if resumed:
            folder.summary.unlink(missing_ok=True)  # the run is no longer finished
            folder.truncate_grad_norms(state.step)  # norms of updates taken after last.pt was written
        folder.write_config({**cfg.to_dict(), "launch": _launch(s)})
    log.info("%s: %s parameters, %s; %s", cfg.arch, f"{s.info.parameters:,}", device, data.report)
    release_freed_memory()  # what reading and tokenizing freed goes back to the system before the steps' buffers
    return s


def _launch(s: Session) -> dict[str, int]:
    """How this run was launched, beside its settings in config.json (not a setting: the launcher decides it)."""
    return {"world_size": s.cluster.world_size, "accum": s.cfg.train.accum, "global_batch_tokens": s.global_batch_tokens}


@dataclass
class TrainingData:
    tokenizers: TokenizerPair
    corpus: EncodedCorpus  # cleaned training examples, memory-mapped
    valid_pairs: list[Pair]
    counts: dict[str, int]  # training pairs of each corpus (weighted)
    report: CleanReport


def load_training_data(cfg: RunConfig, tokenizers: TokenizerPair | None = None) -> TrainingData:
    """The training split encoded (through the cache) and cleaned, the validation pairs, and the tokenizers: given
    (a resumed run's), named by the config, or trained on the training split only.

    A corpus without a validation split gives up its last pairs for one.
    """
    d, t = cfg.data, cfg.tokenizer
    sources = open_sources(d.path, d.src, d.tgt, d.train_split)
    if has_split(d.path, d.valid_split):
        valid = read_parallel(d.path, d.src, d.tgt, d.valid_split)
    else:
        sources, valid = _hold_out(sources, d)
    if tokenizers is None:
        tokenizers = TokenizerPair.load(Path(t.path)) if t.path else cached_tokenizers(sources, t)
    corpus, counts = encode_sources(sources, tokenizers)
    corpus, report = clean(corpus, d.max_len)
    if not len(corpus):
        raise TranslateError(f"no training pairs left after cleaning: {report}")
    valid = [p for p in valid if p[0] and p[1]][: cfg.train.eval_sentences or None]
    return TrainingData(tokenizers, corpus, valid, counts, report)


def _hold_out(sources: list[Source], d: DataConfig) -> tuple[list[Source], list[Pair]]:
    """The last corpus's last pairs, as validation pairs, and the sources without them."""
    last = sources[-1]
    n_rows = len(last.dataset)
    n = min(HELD_OUT, n_rows // 10)
    if n < 1:
        raise TranslateError(f"{d.path} has no {d.valid_split!r} split and too few pairs ({n_rows}) to hold some out")
    log.warning("no %r split in %s: holding out its last %d pairs for validation", d.valid_split, last.spec, n)
    valid = pairs_of(last.dataset.select(range(n_rows - n, n_rows)))
    return [*sources[:-1], replace(last, held_out=n, opened={})], valid


def finish(s: Session, stopped: str, callbacks: list[Callback]) -> TrainSummary:
    """A last validation if the final step has none, the final checkpoint, and the summary (every process gets
    the main process's)."""
    logged = s.folder.read_log() if s.cluster.is_main else []
    validated = s.cluster.broadcast(bool(logged) and logged[-1].step == s.state.step)
    final = (logged[-1] if logged else None) if validated else validate_and_save(s, callbacks)
    if not s.cluster.is_main:
        return s.cluster.broadcast(None)
    s.state.stopped = stopped
    save_checkpoint(s.folder.last, make_checkpoint(s, final, resumable=True))  # records why training stopped
    st = s.state
    summary = TrainSummary(
        stopped=stopped, step=st.step, epoch=st.epoch, train_minutes=round(st.train_seconds / 60, 3),
        train_tokens_per_s=st.tokens_per_s, best_val_bleu=st.best_bleu, final=final,
        parameters=s.info.parameters, out=str(s.folder.path), world_size=s.cluster.world_size,
        global_batch_tokens=s.global_batch_tokens, clipped=round(st.clipped_steps / max(st.step, 1), 4),
    )
    s.folder.write_summary(summary)
    for cb in callbacks:
        cb.on_end(summary)
    return s.cluster.broadcast(summary)


def validate_and_save(s: Session, callbacks: list[Callback]) -> ValidationRecord:
    """Validation loss and BLEU, logged; best.pt when BLEU improved, step-*.pt with `keep`, last.pt always.

    The main process validates and saves; the others wait for its record, so that early stopping agrees.
    """
    tc, st = s.cfg.train, s.state
    if not s.cluster.is_main:
        record, st.best_bleu, st.bad_evals = s.cluster.broadcast(None)
        return record
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
        world_size=s.cluster.world_size, global_batch_tokens=s.global_batch_tokens, **_norm_stats(s),
    )
    s.folder.append_validation(record)
    weights = make_checkpoint(s, record, resumable=False) if improved or tc.keep else None  # built once for both
    if improved:
        save_checkpoint(s.folder.best, weights)
    if tc.keep:  # the last `keep` validations' weights, for checkpoint averaging
        save_checkpoint(s.folder.snapshot(st.step), weights)
        for old in s.folder.snapshots()[:-tc.keep]:
            old.unlink()
    save_checkpoint(s.folder.last, make_checkpoint(s, record, resumable=True))
    for cb in callbacks:
        cb.on_eval(record, improved)
    s.cluster.broadcast((record, st.best_bleu, st.bad_evals))
    return record


def _norm_stats(s: Session) -> dict[str, float]:
    """Gradient norms since the previous validation: mean, max, and the share that clipping scaled down."""
    norms, s.pending.since_validation = s.pending.since_validation, []
    if not norms:
        return {}
    return {
        "grad_norm_mean": round(sum(norms) / len(norms), 4), "grad_norm_max": round(max(norms), 4),
        "clipped": round(s.pending.clipped(norms) / len(norms), 4),
    }


def make_checkpoint(s: Session, metrics: ValidationRecord | None, resumable: bool) -> Checkpoint:
    """Weights + run config; with the optimizer and RNG state too when it is meant for resuming."""
    s.state.optimizer, s.state.rng = (s.optimizer.state_dict(), _rng_state()) if resumable else ({}, {})
    ckpt = model_checkpoint(s.model, s.cfg.arch, s.tokenizers, s.cfg.data.src, s.cfg.data.tgt)
    ckpt.train_state = {**asdict(s.state), "run_config": s.cfg.to_dict()}
    ckpt.metrics = metrics
    return ckpt


def train_step(
    model: torch.nn.Module, optimizer: torch.optim.Optimizer, batches: Batch | list[Batch], label_smoothing: float,
    clip_norm: float, amp=None, seeds: list[int] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One update with teacher forcing: label-smoothed cross-entropy, backward, clipping, optimiser step.

    Several micro-batches accumulate their gradients before the step (`--accum`): the update's gradient is the mean
    of their mean token losses' gradients, which is also what DDP's averaging over processes gives, so one process
    accumulating N micro-batches takes the same step as N processes with one each. `seeds` reseeds dropout before
    each micro-batch, so its masks depend on the batch, not on which process runs it.

    Returns the loss and the global gradient norm before clipping, as tensors on the model's device: reading them
    waits for the device, which the caller does when it chooses (see `Pending`).
    """
    batches = [batches] if isinstance(batches, Batch) else batches
    optimizer.zero_grad(set_to_none=True)
    total = None
    for k, batch in enumerate(batches):
        if seeds is not None:
            torch.manual_seed(seeds[k])
        # DDP averages gradients across processes at each backward; only the last micro-batch's needs it.
        accumulating = k < len(batches) - 1 and hasattr(model, "no_sync")
        with model.no_sync() if accumulating else contextlib.nullcontext(), amp or contextlib.nullcontext():
            logits = model(batch.src, batch.src_mask, batch.tgt_in)  # (B, T, V)
            loss = token_cross_entropy(logits, batch.tgt_out, label_smoothing) / len(batches)
            loss.backward()
        total = loss.detach() if total is None else total + loss.detach()
    # The norm is computed either way (an infinite threshold clips nothing): the exploding-gradient record.
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), clip_norm or math.inf)
    optimizer.step()
    return total, norm


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


@dataclass(frozen=True)
class Update:
    """What one process trains on in one update."""

    epoch: int
    position: int  # batches of the epoch consumed, by every process, once this update is done
    batches: list[np.ndarray]  # this process's micro-batches: example indices into the corpus
    seeds: list[int]  # dropout seed of each micro-batch: a function of its place in the epoch
    tokens: int  # target tokens of the update over every process


def _updates_from(corpus: EncodedCorpus, tc: TrainConfig, state: TrainState, cluster: Cluster) -> Iterator[Update]:
    """Updates from the saved position to max_epochs.

    Each epoch's batches are a pure function of (seed, epoch), the same in every process, so a resumed run sees
    exactly what it would have. An update takes the next world_size x accum batches: process r the r-th accum of
    them (a disjoint share). An epoch's last batches that cannot fill an update are left out, so that every process
    takes the same number of steps.
    """
    per_update = cluster.world_size * tc.accum
    for epoch in range(state.epoch, tc.max_epochs):
        batches = token_batches(corpus.lengths(), tc.max_tokens, tc.seed, epoch)
        if len(batches) < per_update:
            raise TranslateError(
                f"an epoch holds {len(batches)} batches of {tc.max_tokens} tokens, fewer than the {per_update} an update "
                f"takes ({cluster.world_size} processes x accum {tc.accum}): lower --max-tokens, --accum or the processes"
            )
        start = state.batch_in_epoch if epoch == state.epoch else 0
        end = len(batches) - (len(batches) - start) % per_update
        for first in range(start, end, per_update):
            mine = range(first + cluster.rank * tc.accum, first + (cluster.rank + 1) * tc.accum)
            yield Update(
                epoch, first + per_update, [batches[i] for i in mine], [_dropout_seed(tc.seed, epoch, i) for i in mine],
                sum(corpus.target_tokens(batches[i]) for i in range(first, first + per_update)),
            )


def _dropout_seed(seed: int, epoch: int, batch: int) -> int:
    return (seed * 1_000_003 + epoch) * 1_000_033 + batch


def _resumable(folder: RunFolder) -> Checkpoint | None:
    return load_checkpoint(folder.last) if folder.last.exists() else None


def _restore(saved: dict[str, Any], optimizer: torch.optim.Optimizer) -> TrainState:
    state = TrainState(**{f.name: saved[f.name] for f in fields(TrainState) if f.name in saved})
    state.stopped = ""  # a finished run resumed with a larger budget trains on
    optimizer.load_state_dict(state.optimizer)
    _set_rng_state(state.rng)
    return state


def _prepare_torch(tc: TrainConfig, cluster: Cluster) -> torch.device:
    """Threads, seeds and precision settings; returns the device to train on (under DDP: this process's GPU)."""
    if tc.threads:
        torch.set_num_threads(tc.threads)
    device = pick_device(tc.device)
    if device.type == "cuda" and cluster.distributed:
        device = torch.device("cuda", cluster.local_rank)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True  # float32 matmuls on tensor cores: faster, precise enough
        torch.backends.cudnn.allow_tf32 = True
    torch.manual_seed(tc.seed)
    random.seed(tc.seed)
    return device


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
