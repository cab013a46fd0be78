"""`translate compare` end to end on two tiny runs: every report section and plot, skipping, regeneration."""

import json
import shutil

from tests.tiny import TINY
from translate.cli import main
from translate.comparison import read_compare_config


def write_config(path, data):
    lstm, _, _ = TINY["lstm"]
    attn, _, _ = TINY["lstm-attn"]
    path.write_text(f"""
[data]
path = "{data}"
[tokenizer]
vocab_size = 500
[budget]
minutes = 0
max_steps = 6
[train]
eval_every = 3
lr = 0.01
warmup_steps = 2
[report]
test_split = "test"
attention_sentences = [0, 1, 2]
sample_sentences = [0, 1, 2, 3, 4]
gradient_batches = 2
length_penalties = [1.0, 2.0]
[[models]]
name = "plain"
arch = "lstm"
model = {json.dumps(lstm).replace('":', '" =').replace('{"', '{ "')}
[[models]]
name = "attn"
arch = "lstm-attn"
model = {json.dumps(attn).replace('":', '" =').replace('{"', '{ "')}
train = {{ lr = 0.02 }}
long = {{ train = {{ lr = 0.03 }} }}
[long]
jobs = 2
average = 2
budget = {{ max_steps = 8 }}
train = {{ eval_every = 2, patience = 0 }}
""")
    return path


def test_compare_writes_every_section(tiny_corpus, tmp_path, capsys):
    cfg_path = write_config(tmp_path / "compare.toml", tiny_corpus)
    report, runs = tmp_path / "report", tmp_path / "runs"
    assert main(["compare", "--config", str(cfg_path), "--out", str(report), "--runs", str(runs)]) == 0
    text = (report / "README.md").read_text()
    for section in ["## Results", "## Learning curves", "## BLEU by source length", "## Attention", "## Gradient flow",
                    "## Sample translations", "## Reading", "sacreBLEU signature: `nrefs:1|case:mixed"]:
        assert section in text, section
    for png in ["learning_curves.png", "bleu_by_length.png", "gradient_flow.png", "attention_1.png", "attention_3.png"]:
        assert (report / png).stat().st_size > 5_000, png
    assert "| plain | lstm" in text and "| attn | lstm-attn" in text and "; lr=0.02) |" in text  # its own setting
    assert json.loads((runs / "attn" / "config.json").read_text())["train"]["lr"] == 0.02
    summary = json.loads((runs / "plain" / "summary.json").read_text())
    assert summary["step"] == 6 and (runs / "tokenizer" / "joint.model").exists()
    # both models used the one shared tokenizer
    assert json.loads((runs / "attn" / "config.json").read_text())["tokenizer"]["path"] == str(runs / "tokenizer")

    # The length penalty is chosen on val (a tie keeps 1.0) and applied to the test split; every sweep file is kept.
    tuned = json.loads((runs / "plain" / "eval" / "tuned.json").read_text())
    val = {lp: json.loads((runs / "plain" / "eval" / name).read_text())["bleu"] for lp, name in
           [(1.0, "val.beam5.json"), (2.0, "val.beam5.lp2.json")]}
    assert tuned["length_penalty"] == (2.0 if val[2.0] > val[1.0] else 1.0)
    assert tuned["val_bleu_by_length_penalty"] == {"1": val[1.0], "2": val[2.0]}
    test_file = "test.beam5.lp2.json" if tuned["length_penalty"] == 2.0 else "test.beam5.json"
    assert tuned["test"]["bleu"] == json.loads((runs / "plain" / "eval" / test_file).read_text())["bleu"]
    assert "length penalty tuned on val" in text and f"(LP {tuned['length_penalty']:g}) |" in text

    # A second invocation skips finished work; the report regenerates from the report folder alone.
    # The report's copy of a run is replaced whole, so files a rerun no longer writes do not linger.
    log_before = (runs / "plain" / "log.jsonl").read_text()
    stale = report / "runs" / "plain" / "eval" / "val.beam5.lp0.7.json"
    stale.write_text("{}")
    assert main(["compare", "--config", str(cfg_path), "--out", str(report), "--runs", str(runs)]) == 0
    assert (runs / "plain" / "log.jsonl").read_text() == log_before
    assert not stale.exists() and (report / "runs" / "plain" / "eval" / "val.beam5.json").exists()
    shutil.rmtree(runs)
    (report / "README.md").unlink()
    (report / "reading.md").write_text("Attention helps here.")
    assert main(["compare", "--config", str(cfg_path), "--out", str(report), "--report-only"]) == 0
    text = (report / "README.md").read_text()
    assert "Attention helps here." in text and "## Converged" not in text
    capsys.readouterr()


def test_converged_mode(tiny_corpus, tmp_path, capsys):
    """`--long`: [long]'s settings, models trained in parallel processes, checkpoints averaged, the better of the
    averaged model and best.pt on val evaluated, every test split found, gradient norms logged and plotted."""
    data = tmp_path / "data"
    shutil.copytree(tiny_corpus, data)
    for lang in ("de", "en"):  # a second test split, as Multi30k's later test sets would be
        shutil.copyfile(data / f"test.{lang}", data / f"test_2017_mscoco.{lang}")
    cfg_path = write_config(tmp_path / "compare.toml", data)
    report, runs = tmp_path / "report", tmp_path / "runs"
    assert main(["compare", "--config", str(cfg_path), "--out", str(report), "--runs", str(runs), "--only", "plain",
                 "--no-report"]) == 0  # the equal-budget run the converged table sits beside
    assert main(["compare", "--config", str(cfg_path), "--out", str(report), "--runs", str(runs), "--long"]) == 0
    err = capsys.readouterr().err
    assert "plain: started" in err and "attn: started" in err and "attn: done" in err  # two processes
    for name, lr in (("plain", 0.01), ("attn", 0.03)):  # [long] settings, then the model's own long overrides
        run = runs / "long" / name
        config = json.loads((run / "config.json").read_text())
        assert config["train"]["lr"] == lr and config["train"]["keep"] == 2 and config["train"]["eval_every"] == 2
        assert json.loads((run / "summary.json").read_text())["step"] == 8
        norms = (run / "grad_norms.txt").read_text().split()
        assert len(norms) == 8 and all(float(n) > 0 for n in norms)
        averaging = json.loads((run / "averaging.json").read_text())
        assert averaging["checkpoints"] == 2 and (runs / "long" / f"{name}.avg" / "best.pt").exists()
        better = averaging["val_bleu_averaged"] > averaging["val_bleu_best"]
        assert averaging["chosen"] == ("averaged" if better else "best")
        evaluated = runs / "long" / (f"{name}.avg" if better else name)
        assert (evaluated / "eval" / "test.beam5.json").exists() and (evaluated / "analysis.json").exists()
        assert list((evaluated / "eval").glob("test_2017_mscoco.beam5*.json"))
        copied = report / "converged" / name
        assert (copied / "grad_norms.txt").exists() and (copied / "averaging.json").exists()
    assert (runs / "tokenizer").exists() and not (runs / "long" / "tokenizer").exists()  # one tokenizer for both
    text = (report / "README.md").read_text()
    for section in ["## Results", "## Converged", "### Other test sets", "| test_2017_mscoco |", "### Learning curves",
                    "### BLEU by source length", "### Gradient flow", "### Gradient norms"]:
        assert section in text, section
    assert "| plain | lstm " in text.split("## Converged")[1] and "| attn | lstm-attn " in text.split("## Converged")[1]
    for png in ["converged_learning_curves.png", "converged_gradient_flow.png", "converged_gradient_norms.png"]:
        assert (report / png).stat().st_size > 5_000, png


def test_shipped_config_is_valid():
    from tests.tiny import ROOT

    cfg = read_compare_config(ROOT / "scripts" / "configs" / "compare-multi30k-de-en.toml")
    assert [m.name for m in cfg.models] == ["rnn", "rnn-bi", "gru", "lstm", "lstm-bi", "lstm-attn-1h", "lstm-attn-4h",
                                            "transformer", "transformer-lr3e-3"]
    assert cfg.budget.minutes == 15
    long = cfg.in_long_mode()  # the converged mode: early stopping, averaging, cuDNN LSTMs out of autocast
    for entry in long.models:
        train = long.run_config(entry, ROOT).train
        assert train.patience and train.keep == cfg.long.average and train.max_tokens == 16384
        assert train.amp is (False if entry.arch != "transformer" else None)
