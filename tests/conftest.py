"""Shared fixtures: the real Multi30k files, a 64-pair slice of them, and tiny models trained on it once."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest

from translate.config import run_config_from_dict
from translate.training import train

ROOT = Path(__file__).resolve().parents[1]
MULTI30K = Path(os.environ.get("MULTI30K_DIR", ROOT.parent / "shared" / "data" / "multi30k"))
N_PAIRS = 64

# Tiny settings that overfit 64 pairs within a few hundred steps on 2 CPU cores.
TINY = {
    "lstm": ({"emb_dim": 128, "hidden": 128, "layers": 1, "dropout": 0.0}, 1e-2, 150),
    "lstm-attn": ({"emb_dim": 128, "hidden": 128, "layers": 1, "dropout": 0.0, "heads": 2}, 1e-2, 150),
    "transformer": (
        {"d_model": 64, "ffn": 256, "heads": 4, "enc_layers": 2, "dec_layers": 2, "dropout": 0.0}, 5e-3, 300,
    ),
}


def read_lines(path: Path) -> list[str]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return f.read().splitlines()


@pytest.fixture(scope="session")
def multi30k() -> Path:
    if not (MULTI30K / "train.de.gz").exists():
        raise RuntimeError(f"Multi30k not found at {MULTI30K}; set MULTI30K_DIR to a folder of {{split}}.{{lang}}.gz")
    return MULTI30K


@pytest.fixture(scope="session")
def tiny_corpus(multi30k, tmp_path_factory) -> Path:
    """The first 64 real training pairs as train, val and test splits (so 'val BLEU' measures memorisation)."""
    folder = tmp_path_factory.mktemp("tiny")
    for lang in ("de", "en"):
        lines = read_lines(multi30k / f"train.{lang}.gz")[:N_PAIRS]
        for split in ("train", "val", "test"):
            (folder / f"{split}.{lang}").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def tiny_config(arch: str, data: Path, **train) -> dict:
    model, lr, steps = TINY[arch]
    return {
        "arch": arch, "data": {"path": str(data)}, "tokenizer": {"vocab_size": 500}, "model": model,
        "train": {
            "max_steps": steps, "eval_every": steps, "lr": lr, "warmup_steps": 20, "label_smoothing": 0.0,
            "patience": 0, "seed": 1, **train,
        },
    }


@pytest.fixture(scope="session")
def trained_runs(tiny_corpus, tmp_path_factory) -> dict[str, tuple[Path, dict]]:
    """arch -> (run folder, training summary) of a tiny model trained to memorise the 64 pairs."""
    out = {}
    for arch in TINY:
        run = tmp_path_factory.mktemp("runs") / arch
        out[arch] = (run, train(run_config_from_dict(tiny_config(arch, tiny_corpus)), run))
    return out
