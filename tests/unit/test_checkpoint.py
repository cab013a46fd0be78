"""The self-describing checkpoint on a seeded untrained model and a SentencePiece model of generated text."""

import os

import pytest
import torch

from tests.unit.seeded import VARIANT_IDS, VARIANTS, sentences, small_model, tokenizers
from translate.checkpoint import load_checkpoint, model_checkpoint, save_checkpoint
from translate.errors import CheckpointError
from translate.records import ValidationRecord
from translate.runfolder import RunFolder, resolve_checkpoint, write_atomic
from translate.translator import Translator


@pytest.fixture(scope="module")
def tok():
    return tokenizers()


@pytest.mark.parametrize("arch,settings", VARIANTS, ids=VARIANT_IDS)
def test_round_trip_rebuilds_the_same_model(arch, settings, tok, tmp_path):
    model = small_model(arch, settings, src_vocab=tok.src.vocab_size, tgt_vocab=tok.tgt.vocab_size)
    ckpt = model_checkpoint(model, arch, tok, "de", "en")
    ckpt.metrics = ValidationRecord(step=7, epoch=0, train_minutes=0.1, val_loss=2.0, val_bleu=12.5, val_chrf=30.0,
                                    best_val_bleu=12.5, lr=1e-3, train_tokens_per_s=100.0)
    save_checkpoint(tmp_path / "best.pt", ckpt)
    again = load_checkpoint(tmp_path / "best.pt")
    assert (again.arch, again.src_lang, again.tgt_lang, again.metrics) == (arch, "de", "en", ckpt.metrics)
    rebuilt = again.build()
    assert not rebuilt.training
    for k, v in model.state_dict().items():
        assert torch.equal(v, rebuilt.state_dict()[k]), k
    assert again.tokenizers.src.encode(["Ein hund läuft."]) == tok.src.encode(["Ein hund läuft."])


def test_a_run_folder_translates_after_loading(tok, tmp_path):
    model = small_model("transformer", {}, src_vocab=tok.src.vocab_size, tgt_vocab=tok.tgt.vocab_size)
    run = RunFolder(tmp_path / "run")
    save_checkpoint(run.last, model_checkpoint(model, "transformer", tok, "de", "en"))
    assert resolve_checkpoint(run.path) == run.last  # no best.pt: the last one
    translator = Translator.load(run.path, device="cpu")
    texts = [de for de, _ in sentences(5, seed=1)] + [""]
    out = translator.translate(texts, beam_size=2, return_attention=True)
    assert len(out) == 6 and out[-1].text == "" and all(t.src_tokens[-1] == "</s>" for t in out[:-1])
    assert all(len(t.attention) == len(t.tgt_tokens) for t in out[:-1])


def test_corrupt_truncated_and_foreign_files(tok, tmp_path):
    model = small_model("lstm", {}, src_vocab=tok.src.vocab_size, tgt_vocab=tok.tgt.vocab_size)
    save_checkpoint(tmp_path / "good.pt", model_checkpoint(model, "lstm", tok, "de", "en"))
    data = (tmp_path / "good.pt").read_bytes()
    (tmp_path / "truncated.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "truncated.pt")
    torch.save({"model": {"w": torch.zeros(2)}}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not a translate checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
    with pytest.raises(CheckpointError, match="no checkpoint"):
        resolve_checkpoint(tmp_path)
    with pytest.raises(CheckpointError, match="run not found"):
        resolve_checkpoint(tmp_path / "nowhere")


def test_weights_that_do_not_fit_the_config(tok, tmp_path):
    model = small_model("lstm", {}, src_vocab=tok.src.vocab_size, tgt_vocab=tok.tgt.vocab_size)
    ckpt = model_checkpoint(model, "lstm", tok, "de", "en")
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
