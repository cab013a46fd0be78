"""One self-describing checkpoint file: format version, architecture + config, weights, tokenizers, train state.

Written atomically (see `translate.runfolder.write_atomic`), so a kill mid-write leaves the previous checkpoint
intact, never a truncated one.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import torch

from translate.errors import CheckpointError
from translate.models import Seq2Seq, build_model, config_dict, make_config, saved_config
from translate.records import ValidationRecord
from translate.runfolder import write_atomic
from translate.tokenizer import TokenizerPair

FORMAT = "translate-checkpoint"
VERSION = 1


@dataclass
class Checkpoint:
    arch: str
    model_config: dict[str, Any]
    weights: dict[str, torch.Tensor]
    tokenizers: TokenizerPair
    src_lang: str
    tgt_lang: str
    train_state: dict[str, Any] = field(default_factory=dict)  # optimizer, step, RNG...: what resuming needs
    metrics: ValidationRecord | None = None  # the validation that made it (best.pt), or the last one (last.pt)

    def build(self, device: torch.device | str = "cpu") -> Seq2Seq:
        """The model, weights loaded, in eval mode."""
        model = build_model(self.arch, make_config(self.arch, self.model_config))
        try:
            model.load_state_dict(self.weights)
        except RuntimeError as e:
            raise CheckpointError(f"checkpoint weights do not fit its {self.arch} config: {str(e).splitlines()[0]}") from e
        return model.to(device).eval()


def save_checkpoint(path: Path, ckpt: Checkpoint) -> None:
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "arch": ckpt.arch,
        "model_config": ckpt.model_config,
        "weights": ckpt.weights,
        "tokenizers": ckpt.tokenizers.to_bytes(),
        "src_lang": ckpt.src_lang,
        "tgt_lang": ckpt.tgt_lang,
        "train_state": ckpt.train_state,
        "metrics": msgspec.to_builtins(ckpt.metrics) if ckpt.metrics else {},  # plain data: weights_only loading
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    write_atomic(path, buffer.getvalue())


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> Checkpoint:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises pickle, zip and runtime errors for damaged files
        raise CheckpointError(f"{path} is not a readable checkpoint ({type(e).__name__}); it may be corrupt or truncated") from e
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a translate checkpoint")
    if payload.get("version") != VERSION:
        raise CheckpointError(f"{path} has checkpoint format version {payload.get('version')}; this toolkit reads {VERSION}")
    try:
        ckpt = Checkpoint(
            arch=payload["arch"],
            model_config=saved_config(payload["arch"], payload["model_config"]),
            weights=payload["weights"],
            tokenizers=TokenizerPair.from_bytes(payload["tokenizers"]),
            src_lang=payload["src_lang"],
            tgt_lang=payload["tgt_lang"],
            train_state=payload.get("train_state", {}),
            metrics=msgspec.convert(payload["metrics"], ValidationRecord) if payload.get("metrics") else None,
        )
        make_config(ckpt.arch, ckpt.model_config)
    except (KeyError, ValueError, RuntimeError, TypeError, msgspec.ValidationError) as e:
        raise CheckpointError(f"{path} is damaged: {e}") from e
    return ckpt


def model_checkpoint(model: Seq2Seq, arch: str, tokenizers: TokenizerPair, src_lang: str, tgt_lang: str) -> Checkpoint:
    """A checkpoint of a model's current weights (copied to the CPU)."""
    weights = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    return Checkpoint(arch, config_dict(model.cfg), weights, tokenizers, src_lang, tgt_lang)
