"""Shared fixtures: the real Multi30k files, a 64-pair slice of them, and tiny models trained on it once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.tiny import MULTI30K, N_PAIRS, TINY, read_lines, tiny_config
from translate.config import run_config_from_dict
from translate.encoded import CACHE_ENV
from translate.training import train


@pytest.fixture(scope="session", autouse=True)
def corpus_cache(tmp_path_factory) -> Path:
    """The encoded-corpus and tokenizer cache of this session (also for the processes tests start): the tests'
    corpora live in temporary folders, so their entries would only pile up in the user's cache."""
    folder = tmp_path_factory.mktemp("translate-cache")
    os.environ[CACHE_ENV] = str(folder)
    return folder


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


@pytest.fixture(scope="session")
def trained_runs(tiny_corpus, tmp_path_factory) -> dict[str, tuple[Path, dict]]:
    """arch -> (run folder, training summary) of a tiny model trained to memorise the 64 pairs."""
    out = {}
    for arch in TINY:
        run = tmp_path_factory.mktemp("runs") / arch
        out[arch] = (run, train(run_config_from_dict(tiny_config(arch, tiny_corpus)), run))
    return out


@pytest.fixture(scope="session")
def reverse_run(tiny_corpus, tmp_path_factory) -> Path:
    """A tiny en->de Transformer (a few steps: a second language pair to route to, not a good model)."""
    run = tmp_path_factory.mktemp("runs") / "transformer-en-de"
    config = tiny_config("transformer", tiny_corpus, max_steps=20, eval_every=20)
    config["data"].update(src="en", tgt="de")
    train(run_config_from_dict(config), run)
    return run
