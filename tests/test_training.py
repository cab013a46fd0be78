"""Training: each architecture learns (memorises 64 real pairs), resuming is exact, budgets and logs hold."""

import json

import pytest
import torch

from tests.tiny import TINY, tiny_config
from translate.checkpoint import load_checkpoint
from translate.config import run_config_from_dict
from translate.errors import TrainingInterrupted, TranslateError
from translate.evaluation import score
from translate.training import Callback, lr_at, train
from translate.translator import Translator


@pytest.mark.parametrize("arch", list(TINY))
def test_each_architecture_overfits_64_real_pairs(arch, trained_runs, tiny_corpus):
    run, summary = trained_runs[arch]
    assert summary.best_val_bleu > 90, summary
    # Independently of the training loop's own validation: reload and translate the pairs with beam search.
    tr = Translator.load(run, device="cpu")
    src = (tiny_corpus / "train.de").read_text(encoding="utf-8").splitlines()
    ref = (tiny_corpus / "train.en").read_text(encoding="utf-8").splitlines()
    assert score([t.text for t in tr.translate(src, beam_size=5)], ref).bleu > 90
    lines = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert lines[-1]["step"] == TINY[arch][2] and {"val_bleu", "val_chrf", "val_loss", "lr"} <= set(lines[-1])


def _weights(path):
    return load_checkpoint(path).weights


def test_resumed_run_ends_with_the_same_weights(tiny_corpus, tmp_path):
    # Dropout on and small batches: resuming must restore RNG state, data order and position in the epoch.
    raw = tiny_config("transformer", tiny_corpus, max_steps=12, eval_every=5, max_tokens=600)
    raw["model"] = {**raw["model"], "dropout": 0.3}
    train(run_config_from_dict(raw), tmp_path / "straight")
    train(run_config_from_dict({**raw, "train": {**raw["train"], "max_steps": 7}}), tmp_path / "resumed")
    state = load_checkpoint(tmp_path / "resumed" / "last.pt").train_state
    assert state["step"] == 7 and state["epoch"] >= 1  # the interruption falls after an epoch boundary
    # An update taken after last.pt was written (a kill) is dropped from the gradient-norm record on resuming.
    with open(tmp_path / "resumed" / "grad_norms.txt", "a") as f:
        f.write("123\n")
    summary = train(run_config_from_dict(raw), tmp_path / "resumed", resume=True)
    assert summary.step == 12
    a, b = _weights(tmp_path / "straight" / "last.pt"), _weights(tmp_path / "resumed" / "last.pt")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)
    # Every update's gradient norm before clipping, once, equal to the uninterrupted run's.
    straight, resumed = ((tmp_path / name / "grad_norms.txt").read_text().split() for name in ("straight", "resumed"))
    assert len(straight) == 12 and resumed == straight


def test_existing_run_is_never_overwritten(tiny_corpus, tmp_path):
    raw = tiny_config("lstm", tiny_corpus, max_steps=2, eval_every=0)
    train(run_config_from_dict(raw), tmp_path / "run")
    before = (tmp_path / "run" / "last.pt").read_bytes()
    with pytest.raises(TranslateError, match="already holds a run"):
        train(run_config_from_dict(raw), tmp_path / "run")
    assert (tmp_path / "run" / "last.pt").read_bytes() == before
    with pytest.raises(TranslateError, match="nothing to resume"):
        train(run_config_from_dict(raw), tmp_path / "other", resume=True)


def test_an_update_larger_than_an_epoch_is_refused_clearly(tiny_corpus, tmp_path):
    raw = tiny_config("lstm", tiny_corpus, max_steps=2, eval_every=0, accum=1000)
    with pytest.raises(TranslateError, match=r"fewer than the 1000 an update takes \(1 processes x accum 1000\)"):
        train(run_config_from_dict(raw), tmp_path / "run")


class Recorder(Callback):
    def __init__(self):
        self.start, self.steps, self.evals, self.end = None, [], [], None

    def on_start(self, info):
        self.start = info

    def on_step(self, m):
        self.steps.append(m)

    def on_eval(self, m, improved):
        self.evals.append(m)

    def on_end(self, s):
        self.end = s


def test_callbacks_early_stop_and_interrupt_save(tiny_corpus, tmp_path):
    rec = Recorder()
    raw = tiny_config("lstm", tiny_corpus, max_steps=40, eval_every=1, patience=2, lr=0.0)  # lr 0: no progress
    summary = train(run_config_from_dict(raw), tmp_path / "early", callbacks=[rec])
    assert summary.stopped == "early_stop" and summary.step == 3
    assert rec.start.parameters > 0 and len(rec.steps) == 3 and len(rec.evals) == 3 and rec.end == summary

    class Interrupt(Callback):
        def on_step(self, m):
            if m.step == 4:
                raise KeyboardInterrupt

    raw = tiny_config("lstm", tiny_corpus, max_steps=40, eval_every=0)
    with pytest.raises(TrainingInterrupted, match="resume with"):
        train(run_config_from_dict(raw), tmp_path / "killed", callbacks=[Interrupt()])
    assert load_checkpoint(tmp_path / "killed" / "last.pt").train_state["step"] == 4


def test_minutes_budget_and_schedule(tiny_corpus, tmp_path):
    raw = tiny_config("lstm", tiny_corpus, max_steps=0, minutes=0.002, eval_every=0)
    summary = train(run_config_from_dict(raw), tmp_path / "timed")
    assert summary.stopped == "minutes" and summary.train_minutes >= 0.002
    cfg = run_config_from_dict(raw).train
    assert lr_at(10, cfg) == pytest.approx(cfg.lr / 2)  # halfway through the 20 warmup steps
    assert lr_at(20, cfg) == pytest.approx(cfg.lr)
    assert lr_at(80, cfg) == pytest.approx(cfg.lr / 2)  # inverse square root after warmup


def test_single_file_corpus_holds_out_validation(tiny_corpus, tmp_path):
    de = (tiny_corpus / "train.de").read_text(encoding="utf-8").splitlines()
    en = (tiny_corpus / "train.en").read_text(encoding="utf-8").splitlines()
    tsv = tmp_path / "corpus.tsv"
    tsv.write_text("de\ten\n" + "\n".join(f"{d}\t{e}" for d, e in zip(de, en)) + "\n", encoding="utf-8")
    rec = Recorder()
    raw = tiny_config("lstm", tsv, max_steps=2, eval_every=0)
    train(run_config_from_dict(raw), tmp_path / "run", callbacks=[rec])
    assert rec.start.valid_pairs == 6 and rec.start.train_pairs == 58
