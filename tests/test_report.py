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
    long = report / "long" / "x-de-en"
    shutil.copytree(report / "runs" / "attn", long)
    assert main(["compare", "--config", str(cfg_path), "--out", str(report), "--report-only"]) == 0
    text = (report / "README.md").read_text()
    assert "Attention helps here." in text and "## Long runs" in text and "| x-de-en | lstm-attn |" in text
    capsys.readouterr()


def test_shipped_config_is_valid():
    from tests.tiny import ROOT

    cfg = read_compare_config(ROOT / "scripts" / "configs" / "compare-multi30k-de-en.toml")
    assert [m.name for m in cfg.models] == ["rnn-bi", "gru", "lstm", "lstm-bi", "lstm-attn-1h", "lstm-attn-4h",
                                            "transformer", "transformer-lr3e-3"]
    assert cfg.budget.minutes == 15
