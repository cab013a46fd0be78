"""Model registry: the architecture name used by the CLI, the checkpoint and the API, and one factory."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from translate.errors import ConfigError
from translate.models.base import DecoderOutput, Seq2Seq, State, count_parameters
from translate.models.lstm import RecurrentConfig, RecurrentSeq2Seq
from translate.models.transformer import Transformer, TransformerConfig
from translate.settings import decode_settings


@dataclass(frozen=True)
class Arch:
    config: type
    model: type[Seq2Seq]
    defaults: dict[str, Any]  # what distinguishes this architecture from its config class's defaults
    check: Callable[[Any], str | None] = lambda cfg: None  # an extra rule: returns a message when broken
    legacy: dict[str, Any] = dataclasses.field(default_factory=dict)  # settings added later: their value before


LEGACY_RECURRENT = {"cell_bridge": "shared-tanh"}  # a config saved before cell_bridge existed used this


ARCHS: dict[str, Arch] = {
    "lstm": Arch(
        RecurrentConfig, RecurrentSeq2Seq, {"heads": 0},
        lambda cfg: "lstm has no attention: heads must be 0 (use lstm-attn)" if cfg.heads else None, LEGACY_RECURRENT,
    ),
    "lstm-attn": Arch(
        RecurrentConfig, RecurrentSeq2Seq, {"heads": 4, "bidirectional": True},
        lambda cfg: None if cfg.heads >= 1 else "lstm-attn needs heads >= 1 (use lstm for no attention)",
        LEGACY_RECURRENT,
    ),
    "transformer": Arch(TransformerConfig, Transformer, {}),
}


def make_config(arch: str, settings: dict[str, Any] | None = None):
    """The architecture's config with `settings` applied; unknown keys and invalid values raise ConfigError."""
    if arch not in ARCHS:
        raise ConfigError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHS)}")
    spec = ARCHS[arch]
    cfg = decode_settings(spec.config, {**spec.defaults, **(settings or {})}, f"{arch} model")
    errors = cfg.validate() + [msg for msg in [spec.check(cfg)] if msg]
    if errors:
        raise ConfigError(f"invalid {arch} model: " + "; ".join(errors))
    return cfg


def saved_config(arch: str, saved: dict[str, Any]) -> dict[str, Any]:
    """A model config as a checkpoint saved it, with the values that settings added since then had before."""
    return {**ARCHS[arch].legacy, **saved} if arch in ARCHS else saved


def build_model(arch: str, config) -> Seq2Seq:
    """Build the model for a registered architecture from its (validated) config."""
    if arch not in ARCHS:
        raise ConfigError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHS)}")
    if not isinstance(config, ARCHS[arch].config):
        config = make_config(arch, config)
    return ARCHS[arch].model(config)


def config_dict(config) -> dict[str, Any]:
    return dataclasses.asdict(config)


__all__ = [
    "ARCHS", "DecoderOutput", "Seq2Seq", "State", "build_model", "config_dict", "count_parameters", "make_config",
    "saved_config",
]
