"""Checkpoint averaging on a real tiny run: training keeps its last N validations, `translate average` means them."""

from __future__ import annotations

import pytest
import torch

from tests.tiny import tiny_config
from translate import Translator
from translate.checkpoint import load_checkpoint
from translate.cli import main
from translate.config import run_config_from_dict
from translate.runfolder import RunFolder
from translate.training import train


@pytest.fixture(scope="module")
def kept_run(tiny_corpus, tmp_path_factory):
    run = tmp_path_factory.mktemp("avg") / "transformer"
    train(run_config_from_dict(tiny_config("transformer", tiny_corpus, max_steps=80, eval_every=20, keep=3)), run)
    return run


def test_training_keeps_the_last_n_validations(kept_run):
    assert [p.name for p in RunFolder(kept_run).snapshots()] == ["step-00000040.pt", "step-00000060.pt", "step-00000080.pt"]


def test_average_last_writes_the_mean_as_a_run_every_command_takes(kept_run, tmp_path, capsys):
    out = tmp_path / "averaged"
    assert main(["average", str(kept_run), "--last", "3", "--out", str(out)]) == 0
    assert "averaged 3 checkpoints" in capsys.readouterr().out
    kept = [load_checkpoint(p).weights for p in RunFolder(kept_run).snapshots()]
    mean = load_checkpoint(RunFolder(out).best).weights
    for name, tensor in mean.items():
        if tensor.is_floating_point():
            assert torch.allclose(tensor, sum(w[name] for w in kept) / 3, atol=1e-6), name
    translator = Translator.load(out, device="cpu", workers=1)
    assert translator.translate(["Ein Hund."])[0].text  # loads and translates like any run
    assert RunFolder(out).config.exists()


def test_average_best_and_errors(kept_run, tmp_path, capsys):
    assert main(["average", str(kept_run), "--best", "2", "--out", str(tmp_path / "best2")]) == 0
    bleus = {p.name: load_checkpoint(p).metrics.val_bleu for p in RunFolder(kept_run).snapshots()}
    chosen = capsys.readouterr().out.split("(")[1].split(")")[0].split(", ")
    assert sorted(bleus[c] for c in chosen) == sorted(bleus.values())[-2:]  # the two best validations
    assert main(["average", str(kept_run), "--last", "5"]) == 2  # only 3 kept: a clear error, no traceback
    assert "fewer than 5" in capsys.readouterr().err
    assert main(["average", str(kept_run)]) == 2
