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
from dataclasses import dataclass, field
from typing import Any

from translate.errors import ConfigError
from translate.models import make_config
from translate.settings import decode_settings

DEFAULT_DATA = "data/multi30k"
SECTIONS = ("data", "tokenizer", "model", "train")


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

    def __post_init__(self):
        if self.model_type not in ("unigram", "bpe"):
            raise ConfigError(f"[tokenizer] model_type must be unigram or bpe, not {self.model_type!r}")


@dataclass(frozen=True)
class TrainConfig:
    max_tokens: int = 4096  # padded tokens per batch (length-bucketed), per process and micro-batch
    # Peak learning rate, reached after warmup. 3e-3: the comparison's finding for every architecture (15 CPU
    # minutes: +3.8 test BLEU for the Transformer over 1e-3; converged on a GPU it is level or ahead).
    lr: float = 3e-3
    warmup_steps: int = 100  # linear warmup, then inverse square-root decay (short: CPU budgets are few steps)
    weight_decay: float = 0.0  # AdamW decoupled weight decay
    label_smoothing: float = 0.1
    clip_norm: float = 1.0  # gradient-norm clipping; 0 disables
    accum: int = 1  # micro-batches accumulated per update: one process can take an N-process run's global batch
    max_steps: int = 0  # stop after this many updates; 0 = no limit
    minutes: float = 0.0  # stop after this much training wall-clock time (summed over resumes); 0 = no limit
    max_epochs: int = 1000
    eval_every: int = 100  # updates between validations (loss + BLEU)
    eval_sentences: int = 0  # validation sentences decoded for BLEU; 0 = all
    eval_beam: int = 1  # beam size of the validation BLEU (1 = greedy, fast)
    patience: int = 8  # stop after this many validations without a BLEU gain; 0 = never stop early
    save_every_minutes: float = 5.0  # also write last.pt this often between validations
    keep: int = 0  # keep the checkpoints of the last N validations (step-*.pt), for `translate average`
    seed: int = 1
    device: str = "auto"  # auto | cpu | cuda
    # bf16 autocast when training on CUDA. None: on for the Transformer, off for the recurrent models, whose cuDNN
    # LSTM leaves its fast path under autocast (lstm-attn on an H100: 77k target tokens/s with it, 515k without).
    amp: bool | None = None
    compile: bool = False  # torch.compile the model's training steps (worth it on a GPU; slow to start)
    read_every: int = 20  # on a GPU, updates between read-backs of loss and gradient norm (each waits for the GPU)
    threads: int = 0  # torch CPU threads; 0 = torch's default

    def __post_init__(self):
        if self.accum < 1 or self.max_tokens < 1:
            raise ConfigError(f"[train] accum and max_tokens must be at least 1 (got {self.accum}, {self.max_tokens})")


@dataclass(frozen=True)
class RunConfig:
    arch: str = "transformer"
    data: DataConfig = field(default_factory=DataConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    model: dict[str, Any] = field(default_factory=dict)  # overrides of the architecture's defaults
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def run_config_from_dict(raw: dict[str, Any]) -> RunConfig:
    """Build and validate a RunConfig from nested plain data (a parsed file, --set strings, a saved config.json)."""
    raw = dict(raw)
    raw.pop("launch", None)  # config.json also records how a run was launched (world size): not a setting
    arch = raw.pop("arch", RunConfig.arch)
    sections = {name: raw.pop(name, {}) or {} for name in SECTIONS}
    if raw:
        raise ConfigError(f"unknown top-level setting(s): {', '.join(sorted(raw))} (known: arch, {', '.join(SECTIONS)})")
    for name, value in sections.items():
        if not isinstance(value, dict):
            raise ConfigError(f"[{name}] must be a table of settings")
    model = make_config(arch, sections["model"])  # rejects bad model settings before any work starts
    return RunConfig(
        arch=arch,
        data=decode_settings(DataConfig, sections["data"], "[data]"),
        tokenizer=decode_settings(TokenizerConfig, sections["tokenizer"], "[tokenizer]"),
        model={key: getattr(model, key) for key in sections["model"]},  # typed: "512" from --set becomes 512
        train=decode_settings(TrainConfig, sections["train"], "[train]"),
    )
