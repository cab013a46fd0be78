"""The training loop: teacher forcing with label smoothing, AdamW with warmup and inverse-sqrt decay, gradient
clipping, validation BLEU with early stopping, atomic best/last checkpoints, exact resume.

The loop knows nothing about which model it trains; progress reporting goes through `Callback`s, so the
library prints nothing itself. A run folder holds: `config.json`, `last.pt`, `best.pt`, `log.jsonl`.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from translate.checkpoint import Checkpoint, load_checkpoint, model_checkpoint, save_checkpoint, write_atomic
from translate.config import RunConfig, run_config_from_dict
from translate.data import EncodedCorpus, Pair, clean_pairs, has_split, read_parallel
from translate.decoding import SearchConfig
from translate.errors import TranslateError
from translate.evaluation import score
from translate.models import build_model, count_parameters, make_config
from translate.tokenizer import PAD_ID, TokenizerPair, train_tokenizers
from translate.translator import pick_device, translate_texts

log = logging.getLogger(__name__)

HELD_OUT = 500  # validation pairs held out of a single-file corpus that has no validation split


class Callback:
    """Hooks for progress reporting; override what you need."""

    def on_start(self, info: dict[str, Any]) -> None: ...

    def on_step(self, metrics: dict[str, Any]) -> None: ...

    def on_eval(self, metrics: dict[str, Any]) -> None: ...

    def on_end(self, summary: dict[str, Any]) -> None: ...


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


def lr_at(step: int, cfg) -> float:
    """Linear warmup to cfg.lr, then inverse square-root decay (Vaswani et al. §5.3, peak-normalised)."""
    step = max(step, 1)
    warmup = max(cfg.warmup_steps, 1)
    return cfg.lr * min(step / warmup, math.sqrt(warmup / step))


def load_splits(cfg: RunConfig) -> tuple[list[Pair], list[Pair]]:
    """Training and validation pairs. A corpus without a validation split gives up its last pairs for one."""
    d = cfg.data
    train = read_parallel(d.path, d.src, d.tgt, d.train_split)
    if has_split(d.path, d.valid_split):
        return train, read_parallel(d.path, d.src, d.tgt, d.valid_split)
    n = min(HELD_OUT, len(train) // 10)
    if n < 1:
        raise TranslateError(f"{d.path} has no {d.valid_split!r} split and too few pairs ({len(train)}) to hold some out")
    log.warning("no %r split in %s: holding out its last %d pairs for validation", d.valid_split, d.path, n)
    return train[:-n], train[-n:]


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


def train(
    cfg: RunConfig, out: Path, resume: bool = False, callbacks: list[Callback] | None = None
) -> dict[str, Any]:
    """Train one model into run folder `out`; returns a summary. `resume` continues from `out/last.pt`."""
    out = Path(out)
    callbacks = callbacks or []
    last_path, best_path, log_path = out / "last.pt", out / "best.pt", out / "log.jsonl"
    resumed: Checkpoint | None = None
    if resume:
        resumed = load_checkpoint(last_path) if last_path.exists() else None
        if resumed is None:
            raise TranslateError(f"nothing to resume: {last_path} does not exist")
        saved = resumed.train_state["run_config"]
        cfg = run_config_from_dict(_with_budget(saved, cfg))
    elif last_path.exists():
        raise TranslateError(f"{out} already holds a run: pass --resume to continue it, or choose another --out")

    tc = cfg.train
    if tc.threads:
        torch.set_num_threads(tc.threads)
    device = pick_device(tc.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True  # float32 matmuls on tensor cores: faster, precise enough
        torch.backends.cudnn.allow_tf32 = True
    torch.manual_seed(tc.seed)
    random.seed(tc.seed)

    # 1. Data and tokenizers (trained on the training split only, or taken from the run being resumed).
    train_pairs, valid_pairs = load_splits(cfg)
    if resumed:
        tokenizers = resumed.tokenizers
    elif cfg.tokenizer.path:
        tokenizers = TokenizerPair.load(Path(cfg.tokenizer.path))
    else:
        tokenizers = train_tokenizers(
            [p for p in train_pairs if p[0] and p[1]], cfg.tokenizer.vocab_size, cfg.tokenizer.joint, cfg.tokenizer.model_type
        )
    encoded = list(zip(tokenizers.src.encode([s for s, _ in train_pairs]), tokenizers.tgt.encode([t for _, t in train_pairs])))
    keep, report = clean_pairs(train_pairs, encoded, cfg.data.max_len)
    if not keep:
        raise TranslateError(f"no training pairs left after cleaning: {report}")
    corpus = EncodedCorpus([encoded[i] for i in keep])
    valid_pairs = [p for p in valid_pairs if p[0] and p[1]]
    if tc.eval_sentences:
        valid_pairs = valid_pairs[: tc.eval_sentences]

    # 2. Model and optimiser.
    model_cfg = make_config(cfg.arch, {
        **cfg.model, "src_vocab": tokenizers.src.vocab_size, "tgt_vocab": tokenizers.tgt.vocab_size,
        "joint_vocab": tokenizers.joint,
    })
    model = build_model(cfg.arch, model_cfg).to(device)
    if resumed:
        model.load_state_dict(resumed.weights)
    optimizer = torch.optim.AdamW(model.parameters(), lr=tc.lr, betas=(0.9, 0.98), eps=1e-9, weight_decay=tc.weight_decay)
    state = TrainState()
    if resumed:
        ts = resumed.train_state
        state = TrainState(**{k: ts[k] for k in TrainState.__dataclass_fields__ if k in ts})
        state.stopped = ""  # a finished run resumed with a larger budget trains on
        optimizer.load_state_dict(state.optimizer)
        _set_rng_state(state.rng)
    amp = (
        torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" and tc.amp else contextlib.nullcontext()
    )
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / "config.json", json.dumps(cfg.to_dict(), indent=2).encode())
    info = {
        "arch": cfg.arch, "parameters": count_parameters(model), "device": str(device), "model": model_cfg,
        "train_pairs": report.kept, "cleaning": str(report), "valid_pairs": len(valid_pairs),
        "vocab": (tokenizers.src.vocab_size, tokenizers.tgt.vocab_size), "resumed_at": state.step if resumed else None,
    }
    log.info("%s: %s parameters, %s; %s", cfg.arch, f"{info['parameters']:,}", device, report)
    for cb in callbacks:
        cb.on_start(info)

    def checkpoint(metrics: dict[str, Any], resumable: bool = True) -> Checkpoint:
        """Weights + run config; with the optimizer and RNG state too when it is meant for resuming."""
        state.optimizer, state.rng = (optimizer.state_dict(), _rng_state()) if resumable else ({}, {})
        ckpt = model_checkpoint(model, cfg.arch, tokenizers, cfg.data.src, cfg.data.tgt)
        ckpt.train_state = {**{k: getattr(state, k) for k in TrainState.__dataclass_fields__}, "run_config": cfg.to_dict()}
        ckpt.metrics = metrics
        return ckpt

    def evaluate() -> dict[str, Any]:
        model.eval()
        val_loss = _validation_loss(model, valid_pairs, tokenizers, tc.max_tokens, device)
        hyps = translate_texts(
            model, tokenizers, [s for s, _ in valid_pairs], SearchConfig(beam_size=tc.eval_beam), device
        )
        scores = score([h.text for h in hyps], [t for _, t in valid_pairs])
        model.train()
        improved = scores.bleu > state.best_bleu
        if improved:
            state.best_bleu, state.bad_evals = scores.bleu, 0
        else:
            state.bad_evals += 1
        metrics = {
            "step": state.step, "epoch": state.epoch, "train_minutes": round(state.train_seconds / 60, 3),
            "val_loss": round(val_loss, 4), "val_bleu": scores.bleu, "val_chrf": scores.chrf,
            "best_val_bleu": state.best_bleu, "lr": lr_at(state.step, tc),
            "train_tokens_per_s": round(state.tgt_tokens / max(state.train_seconds, 1e-9), 1),
            "split": cfg.data.valid_split, "beam": tc.eval_beam,
        }
        with open(log_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(metrics) + "\n")
        if improved:
            save_checkpoint(best_path, checkpoint(metrics, resumable=False))
        save_checkpoint(last_path, checkpoint(metrics))
        for cb in callbacks:
            cb.on_eval({**metrics, "improved": improved})
        return metrics

    # 3. The loop.
    model.train()
    last_eval_step = state.step if resumed else -1
    last_save = time.monotonic()
    try:
        while not state.stopped:
            if state.epoch >= tc.max_epochs:
                state.stopped = "max_epochs"
                break
            batches = corpus.batches(tc.max_tokens, tc.seed, state.epoch)
            for batch in itertools.islice(batches, state.batch_in_epoch, None):
                if _budget_spent(state, tc):
                    break
                t0 = time.perf_counter()
                batch = batch.to(device)
                lr = lr_at(state.step + 1, tc)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                loss = train_step(model, optimizer, batch, tc.label_smoothing, tc.clip_norm, amp)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                state.train_seconds += time.perf_counter() - t0
                state.step += 1
                state.batch_in_epoch += 1
                state.tgt_tokens += batch.n_tgt_tokens
                step_metrics = {
                    "step": state.step, "loss": loss.item(), "lr": lr, "tokens": batch.n_tgt_tokens,
                    "tokens_per_s": state.tgt_tokens / max(state.train_seconds, 1e-9), "epoch": state.epoch,
                }
                for cb in callbacks:
                    cb.on_step(step_metrics)
                if tc.eval_every and state.step % tc.eval_every == 0:
                    evaluate()
                    last_eval_step, last_save = state.step, time.monotonic()
                    if tc.patience and state.bad_evals >= tc.patience:
                        state.stopped = "early_stop"
                        break
                elif time.monotonic() - last_save > tc.save_every_minutes * 60:
                    save_checkpoint(last_path, checkpoint({}))
                    last_save = time.monotonic()
            else:
                state.epoch += 1
                state.batch_in_epoch = 0
                continue
            if not state.stopped:
                state.stopped = "max_steps" if tc.max_steps and state.step >= tc.max_steps else "minutes"
    except KeyboardInterrupt:
        save_checkpoint(last_path, checkpoint({}))
        summary = {"stopped": "interrupted", "step": state.step, "last": str(last_path)}
        for cb in callbacks:
            cb.on_end(summary)
        return summary
    final = evaluate() if last_eval_step != state.step else _last_logged(log_path)
    summary = {
        "stopped": state.stopped, "step": state.step, "epoch": state.epoch,
        "train_minutes": round(state.train_seconds / 60, 3),
        "train_tokens_per_s": round(state.tgt_tokens / max(state.train_seconds, 1e-9), 1),
        "best_val_bleu": state.best_bleu, "final": final, "parameters": info["parameters"], "out": str(out),
    }
    save_checkpoint(last_path, checkpoint(final))  # records why training stopped
    for cb in callbacks:
        cb.on_end(summary)
    return summary


def train_step(model, optimizer, batch, label_smoothing: float, clip_norm: float, amp=None) -> torch.Tensor:
    """One update with teacher forcing: label-smoothed cross-entropy, backward, clipping, optimiser step."""
    with amp or contextlib.nullcontext():
        logits = model(batch.src, batch.src_mask, batch.tgt_in)  # (B, T, V)
        loss = F.cross_entropy(
            logits.float().view(-1, logits.size(-1)), batch.tgt_out.view(-1),
            ignore_index=PAD_ID, label_smoothing=label_smoothing,
        )
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if clip_norm:
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
    optimizer.step()
    return loss


def _budget_spent(state: TrainState, tc) -> bool:
    return bool(
        (tc.max_steps and state.step >= tc.max_steps) or (tc.minutes and state.train_seconds >= tc.minutes * 60)
    )


def _with_budget(saved: dict[str, Any], cfg: RunConfig) -> dict[str, Any]:
    """A resumed run keeps its saved settings, except the budget (steps, minutes) given now."""
    saved = json.loads(json.dumps(saved))
    saved["train"]["max_steps"] = cfg.train.max_steps or saved["train"]["max_steps"]
    saved["train"]["minutes"] = cfg.train.minutes or saved["train"]["minutes"]
    return saved


def _last_logged(log_path: Path) -> dict[str, Any]:
    lines = log_path.read_text(encoding="utf-8").splitlines() if log_path.exists() else []
    return json.loads(lines[-1]) if lines else {}


@torch.no_grad()
def _validation_loss(model, pairs: list[Pair], tokenizers: TokenizerPair, max_tokens: int, device) -> float:
    """Mean per-token negative log-likelihood (no label smoothing) of the validation references."""
    examples = list(zip(tokenizers.src.encode([s for s, _ in pairs]), tokenizers.tgt.encode([t for _, t in pairs])))
    corpus = EncodedCorpus(examples)
    total, tokens = 0.0, 0
    for batch in corpus.batches(max_tokens, seed=0, epoch=0, shuffle=False):
        batch = batch.to(device)
        logits = model(batch.src, batch.src_mask, batch.tgt_in)  # (B, T, V)
        total += F.cross_entropy(
            logits.float().view(-1, logits.size(-1)), batch.tgt_out.view(-1), ignore_index=PAD_ID, reduction="sum"
        ).item()
        tokens += batch.n_tgt_tokens
    return total / max(tokens, 1)

