"""Where the real Multi30k files are, and the tiny settings the tests train with."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MULTI30K = Path(os.environ.get("MULTI30K_DIR", ROOT.parent / "shared" / "data" / "multi30k"))
N_PAIRS = 64

# Tiny settings that overfit 64 pairs within a few hundred steps on 2 CPU cores.
TINY = {
    "lstm": ({"emb_dim": 128, "hidden": 128, "layers": 1, "dropout": 0.0}, 1e-2, 250),
    "lstm-attn": ({"emb_dim": 128, "hidden": 128, "layers": 1, "dropout": 0.0, "heads": 2}, 1e-2, 250),
    "transformer": (
        {"d_model": 64, "ffn": 256, "heads": 4, "enc_layers": 2, "dec_layers": 2, "dropout": 0.0}, 5e-3, 300,
    ),
}


def read_lines(path: Path) -> list[str]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return f.read().splitlines()


def tiny_config(arch: str, data: Path, **train) -> dict:
    model, lr, steps = TINY[arch]
    return {
        "arch": arch, "data": {"path": str(data)}, "tokenizer": {"vocab_size": 500}, "model": model,
        "train": {
            "max_steps": steps, "eval_every": steps, "lr": lr, "warmup_steps": 20, "label_smoothing": 0.0,
            "patience": 0, "seed": 1, **train,
        },
    }
