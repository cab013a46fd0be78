"""The `translate` command end to end: real runs, real files, and one-line errors instead of tracebacks."""

import io
import json
import subprocess
import sys

import pytest
import torch

from tests.tiny import ROOT
from translate.cli import main


def run_cli(capsys, monkeypatch, args, stdin=""):
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_train_evaluate_translate(tiny_corpus, tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    code, out, err = run_cli(capsys, monkeypatch, [
        "train", "--arch", "lstm", "--data", str(tiny_corpus), "--src", "de", "--tgt", "en", "--out", str(run),
        "--max-steps", "3", "--seed", "2", "--vocab-size", "500", "--set", "model.hidden=32", "--set", "model.emb_dim=32",
    ])
    assert code == 0, err
    assert json.loads(out)["step"] == 3
    assert "parameters" in err and (run / "last.pt").exists() and (run / "best.pt").exists()

    code, out, err = run_cli(capsys, monkeypatch, ["evaluate", str(run), "--data", str(tiny_corpus), "--split", "val", "--beam", "2"])
    assert code == 0, err
    result = json.loads(out)
    assert {"bleu", "chrf", "signature", "n_sentences"} <= set(result) and result["n_sentences"] == 64
    assert result["signature"].startswith("nrefs:1|case:mixed|eff:no|tok:13a")
    saved = json.loads((run / "eval" / "val.beam2.json").read_text())
    assert saved["bleu"] == result["bleu"]
    assert len((run / "eval" / "val.beam2.hyp.txt").read_text().splitlines()) == 64

    code, out, err = run_cli(capsys, monkeypatch, ["translate", str(run), "--beam", "2"], "Ein Hund rennt.\n\nZwei Männer.\n")
    assert code == 0, err
    lines = out.split("\n")
    assert len(lines) == 4 and lines[1] == "" and lines[3] == ""  # the empty line stays an empty line


def test_config_file_and_flags(tiny_corpus, tmp_path, capsys, monkeypatch):
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'arch = "lstm-attn"\n[data]\npath = "{tiny_corpus}"\n[model]\nheads = 2\nhidden = 32\nemb_dim = 32\n'
                   "[train]\nmax_steps = 50\n[tokenizer]\nvocab_size = 500\n")
    run = tmp_path / "run"
    code, out, err = run_cli(capsys, monkeypatch, ["train", "--config", str(cfg), "--out", str(run), "--max-steps", "2"])
    assert code == 0, err
    saved = json.loads((run / "config.json").read_text())
    assert saved["arch"] == "lstm-attn" and saved["model"]["heads"] == 2 and saved["train"]["max_steps"] == 2
    yaml_cfg = tmp_path / "c.yaml"
    yaml_cfg.write_text("arch: transformer\nmodel:\n  d_modle: 3\n")
    code, _, err = run_cli(capsys, monkeypatch, ["train", "--config", str(yaml_cfg), "--out", str(tmp_path / "x")])
    assert code == 2 and err.startswith("error: unknown transformer model setting(s): d_modle")


@pytest.mark.parametrize("args,message", [
    (["train", "--out", "{tmp}/r", "--data", "{tmp}/nowhere"], "error: corpus not found"),
    (["train", "--out", "{tmp}/r", "--data", "{tiny}", "--tgt", "fr"], "error: language 'fr' not in"),
    (["train", "--out", "{tmp}/r", "--data", "{tiny}", "--set", "train.lr=fast"], "error: [train] setting lr must be float"),
    (["train", "--out", "{tmp}/r", "--data", "{tiny}", "--set", "lr=1"], "error: --set takes SECTION.KEY=VALUE"),
    (["train", "--out", "{tmp}/r", "--resume"], "error: nothing to resume"),
    (["train", "--out", "{tmp}/r", "--data", "{tiny}", "--vocab-size", "100"], "error: vocab_size 100 is too small"),
    (["evaluate", "{tmp}/nothing", "--data", "{tiny}"], "error: run not found"),
    (["evaluate", "{tmp}/junk.pt", "--data", "{tiny}"], "error: {tmp}/junk.pt is not a readable checkpoint"),
    (["translate", "{tmp}/foreign.pt"], "error: {tmp}/foreign.pt is not a translate checkpoint"),
    (["evaluate", "{lstm}", "--data", "{tiny}", "--split", "dev"], "error: split 'dev' not in"),
])
def test_errors_are_one_line(args, message, tiny_corpus, trained_runs, tmp_path, capsys, monkeypatch):
    (tmp_path / "junk.pt").write_bytes(b"\x00garbage")
    torch.save({"state_dict": {}}, tmp_path / "foreign.pt")
    fill = {"tmp": str(tmp_path), "tiny": str(tiny_corpus), "lstm": str(trained_runs["lstm"][0])}
    code, out, err = run_cli(capsys, monkeypatch, [a.format(**fill) for a in args])
    assert code == 2
    assert err.startswith(message.format(**fill)), err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_default_corpus_missing_points_to_fetch(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, monkeypatch, ["train", "--out", "r"])
    assert code == 2 and "translate data fetch" in err


def test_long_and_odd_input_lines(trained_runs, capsys, monkeypatch, caplog):
    run = str(trained_runs["transformer"][0])
    long_line = "Ein Hund rennt über die Wiese . " * 300  # ~2,400 tokens: far past anything seen in training
    odd = "Ein \x00Hund\x07 \ud800 rennt"  # control characters and a lone surrogate
    code, out, err = run_cli(capsys, monkeypatch, ["translate", run, "--beam", "2", "--no-split"], f"{long_line}\n{odd}\n")
    assert code == 0, err
    lines = out.split("\n")
    assert len(lines) == 3 and lines[0] and lines[1]
    assert "longer than 1024 tokens were truncated" in caplog.text
    caplog.clear()
    code, out, err = run_cli(capsys, monkeypatch, ["translate", run, "--beam", "2"], f"{long_line}\n{odd}\n")
    assert code == 0, err  # split into its 300 sentences, each translated: nothing truncated
    lines = out.split("\n")
    assert len(lines) == 3 and len(lines[0]) > 4000 and lines[1]  # 300 translations, not one truncated run-on
    assert "truncated" not in caplog.text


def test_attention_output(trained_runs, capsys, monkeypatch):
    code, out, _ = run_cli(capsys, monkeypatch, ["translate", str(trained_runs["lstm-attn"][0]), "--attention"], "Ein Hund.\n")
    row = json.loads(out)
    assert len(row["attention"]) == len(row["tgt_tokens"]) and len(row["attention"][0]) == len(row["src_tokens"])


def test_module_entry_point_and_help():
    for args in (["--help"], ["train", "--help"], ["evaluate", "--help"], ["translate", "--help"], ["data", "fetch", "--help"]):
        proc = subprocess.run([sys.executable, "-m", "translate", *args], capture_output=True, text=True, cwd=ROOT)
        assert proc.returncode == 0 and "usage: translate" in proc.stdout
    proc = subprocess.run([sys.executable, "-m", "translate", "evaluate", "/nonexistent"], capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and proc.stderr.startswith("error:")
