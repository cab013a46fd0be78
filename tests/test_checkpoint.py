"""Checkpoints of models trained in this test session (the data-free checks are in tests/unit)."""

import torch

from translate.checkpoint import load_checkpoint
from translate.runfolder import resolve_checkpoint


def test_round_trip_rebuilds_the_same_model(trained_runs):
    run = trained_runs["lstm-attn"][0]
    ckpt = load_checkpoint(run / "best.pt")
    assert ckpt.arch == "lstm-attn" and (ckpt.src_lang, ckpt.tgt_lang) == ("de", "en")
    assert ckpt.train_state["run_config"]["arch"] == "lstm-attn" and ckpt.metrics.val_bleu > 90
    model = ckpt.build()
    assert not model.training
    for k, v in model.state_dict().items():
        assert torch.equal(v, ckpt.weights[k])


def test_best_is_small_and_last_is_resumable(trained_runs):
    run = trained_runs["transformer"][0]
    best, last = load_checkpoint(run / "best.pt"), load_checkpoint(run / "last.pt")
    assert best.train_state["optimizer"] == {} and last.train_state["optimizer"]["state"]
    assert (run / "best.pt").stat().st_size < (run / "last.pt").stat().st_size
    assert resolve_checkpoint(run) == run / "best.pt"
