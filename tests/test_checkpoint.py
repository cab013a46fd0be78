import os

import pytest
import torch

from translate.checkpoint import load_checkpoint, resolve_run_checkpoint, save_checkpoint, write_atomic
from translate.errors import CheckpointError


def test_round_trip_rebuilds_the_same_model(trained_runs):
    run = trained_runs["lstm-attn"][0]
    ckpt = load_checkpoint(run / "best.pt")
    assert ckpt.arch == "lstm-attn" and (ckpt.src_lang, ckpt.tgt_lang) == ("de", "en")
    assert ckpt.train_state["run_config"]["arch"] == "lstm-attn" and ckpt.metrics["val_bleu"] > 90
    model = ckpt.build()
    assert not model.training
    for k, v in model.state_dict().items():
        assert torch.equal(v, ckpt.weights[k])


def test_best_is_small_and_last_is_resumable(trained_runs):
    run = trained_runs["transformer"][0]
    best, last = load_checkpoint(run / "best.pt"), load_checkpoint(run / "last.pt")
    assert best.train_state["optimizer"] == {} and last.train_state["optimizer"]["state"]
    assert (run / "best.pt").stat().st_size < (run / "last.pt").stat().st_size
    assert resolve_run_checkpoint(run) == run / "best.pt"


def test_corrupt_truncated_and_foreign_files(trained_runs, tmp_path):
    data = (trained_runs["lstm"][0] / "best.pt").read_bytes()
    (tmp_path / "truncated.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "truncated.pt")
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "text.pt")
    torch.save({"model": {"w": torch.zeros(2)}}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not a translate checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
    with pytest.raises(CheckpointError, match="no checkpoint"):
        resolve_run_checkpoint(tmp_path)


def test_weights_that_do_not_fit_the_config(trained_runs, tmp_path):
    ckpt = load_checkpoint(trained_runs["lstm"][0] / "best.pt")
    ckpt.model_config = {**ckpt.model_config, "hidden": 64, "emb_dim": 64}
    save_checkpoint(tmp_path / "bad.pt", ckpt)
    with pytest.raises(CheckpointError, match="do not fit"):
        load_checkpoint(tmp_path / "bad.pt").build()


def test_written_files_get_ordinary_permissions(tmp_path):
    umask = os.umask(0)
    os.umask(umask)
    write_atomic(tmp_path / "f", b"x")
    assert (tmp_path / "f").stat().st_mode & 0o777 == 0o666 & ~umask


def test_failed_write_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    write_atomic(path, b"old")

    def crash(*args):
        raise KeyboardInterrupt  # a kill between writing and renaming

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(path, b"new" * 1000)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temporary file left behind
