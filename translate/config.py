"""Run configuration: which data, which tokenizer, which model, how to train. Read from TOML/YAML, then flags.

A config file looks like (every key optional; flags given on the command line win):

    arch = "transformer"            # lstm | lstm-attn | transformer
    [data]
    path = "data/multi30k"
    src = "de"
    tgt = "en"
    [tokenizer]
    vocab_size = 8000
    joint = true
    [model]                         # the architecture's config fields, e.g. d_model, heads, cell, bidirectional
    d_model = 256
    [train]                         # TrainConfig fields, e.g. lr, max_tokens, minutes
    max_steps = 2000
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from translate.errors import ConfigError

DEFAULT_DATA = "data/multi30k"


@dataclass(frozen=True)
class DataConfig:
    path: str = DEFAULT_DATA  # corpus spec: folder, .tsv, .jsonl or hub:NAME
    src: str = "de"
    tgt: str = "en"
    train_split: str = "train"
    valid_split: str = "val"
    max_len: int = 128  # training pairs with more tokens on either side are dropped (and counted)


@dataclass(frozen=True)
class TokenizerConfig:
    vocab_size: int = 8000  # SentencePiece pieces (a soft limit on small corpora)
    joint: bool = True  # one vocabulary for both languages (lets the model share embeddings)
    model_type: str = "unigram"  # unigram | bpe
    path: str = ""  # a folder of trained .model files to use instead of training (shared by compared runs)


@dataclass(frozen=True)
class TrainConfig:
    max_tokens: int = 4096  # padded tokens per batch (length-bucketed)
    lr: float = 1e-3  # peak learning rate, reached after warmup
    warmup_steps: int = 100  # linear warmup, then inverse square-root decay (short: CPU budgets are few steps)
    weight_decay: float = 0.0  # AdamW decoupled weight decay
    label_smoothing: float = 0.1
    clip_norm: float = 1.0  # gradient-norm clipping; 0 disables
    max_steps: int = 0  # stop after this many updates; 0 = no limit
    minutes: float = 0.0  # stop after this much training wall-clock time (summed over resumes); 0 = no limit
    max_epochs: int = 1000
    eval_every: int = 100  # updates between validations (loss + BLEU)
    eval_sentences: int = 0  # validation sentences decoded for BLEU; 0 = all
    eval_beam: int = 1  # beam size of the validation BLEU (1 = greedy, fast)
    patience: int = 8  # stop after this many validations without a BLEU gain; 0 = never stop early
    save_every_minutes: float = 5.0  # also write last.pt this often between validations
    seed: int = 1
    device: str = "auto"  # auto | cpu | cuda
    amp: bool = True  # bf16 autocast when training on CUDA
    threads: int = 0  # torch CPU threads; 0 = torch's default


@dataclass(frozen=True)
class RunConfig:
    arch: str = "transformer"
    data: DataConfig = field(default_factory=DataConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    model: dict[str, Any] = field(default_factory=dict)  # overrides of the architecture's defaults
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def dataclass_from_dict(cls, values: dict[str, Any], where: str):
    """`cls` with `values` applied over its defaults; unknown keys and wrong types raise ConfigError."""
    known = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"unknown {where} setting(s): {', '.join(unknown)} (known: {', '.join(known)})")
    defaults = cls()
    out = {}
    for key, value in values.items():
        expected = type(getattr(defaults, key))
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)  # 1 in a TOML file means 1.0 for a float setting
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise ConfigError(f"{where} setting {key} must be {expected.__name__}, not {value!r}")
        out[key] = value
    return dataclasses.replace(defaults, **out)


def run_config_from_dict(raw: dict[str, Any]) -> RunConfig:
    """Build and validate a RunConfig from nested plain data (a parsed file, a saved config.json)."""
    raw = dict(raw)
    arch = raw.pop("arch", RunConfig.arch)
    sections = {name: raw.pop(name, {}) or {} for name in ("data", "tokenizer", "model", "train")}
    if raw:
        raise ConfigError(f"unknown top-level setting(s): {', '.join(sorted(raw))} (known: arch, data, tokenizer, model, train)")
    for name, value in sections.items():
        if not isinstance(value, dict):
            raise ConfigError(f"[{name}] must be a table of settings")
    cfg = RunConfig(
        arch=arch,
        data=dataclass_from_dict(DataConfig, sections["data"], "[data]"),
        tokenizer=dataclass_from_dict(TokenizerConfig, sections["tokenizer"], "[tokenizer]"),
        model=dict(sections["model"]),
        train=dataclass_from_dict(TrainConfig, sections["train"], "[train]"),
    )
    from translate.models import make_config  # here: the registry itself imports this module

    make_config(cfg.arch, cfg.model)  # reject bad model settings before any work starts
    if cfg.tokenizer.model_type not in ("unigram", "bpe"):
        raise ConfigError(f"[tokenizer] model_type must be unigram or bpe, not {cfg.tokenizer.model_type!r}")
    return cfg


def read_config_file(path: Path) -> dict[str, Any]:
    """Parse a TOML, YAML or JSON config file into plain data."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".toml":
            return tomllib.loads(text)
        if path.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text) or {}
        elif path.suffix == ".json":
            data = json.loads(text)
        else:
            raise ConfigError(f"config file {path} must end in .toml, .yaml, .yml or .json")
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, ValueError) as e:
        raise ConfigError(f"cannot parse {path}: {str(e).splitlines()[0]}") from e
    except Exception as e:  # yaml.YAMLError
        if isinstance(e, ConfigError):
            raise
        raise ConfigError(f"cannot parse {path}: {str(e).splitlines()[0]}") from e
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a table of settings at the top level")
    return data


def merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Nested dict merge: `overrides` wins, tables are merged key by key."""
    out = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out
