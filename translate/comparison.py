"""The architecture comparison: every model trained on the same data, SentencePiece model, seed and budget.

A comparison config (TOML/YAML/JSON) holds the shared settings and a list of models:

    [data]      path, src, tgt                      as in a run config
    [tokenizer] vocab_size, joint, model_type       trained once, shared by every model
    [budget]    minutes, max_steps                  the same for every model (both recorded)
    [train]     shared TrainConfig settings (seed, eval_every, ...)
    [report]    test_split, attention_sentences, sample_sentences, gradient_batches
    [[models]]  name, arch, model = {...}, train = {...}   (per-model overrides, e.g. a learning rate)

Runs go to `runs_dir/<name>/`. A second invocation skips finished runs, resumes unfinished ones from their
`last.pt`, and only computes evaluations and analyses that are missing.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from translate.analysis import gradient_norms_by_distance
from translate.checkpoint import write_atomic
from translate.config import dataclass_from_dict, merge, read_config_file, run_config_from_dict
from translate.data import EncodedCorpus, read_parallel
from translate.errors import ConfigError
from translate.evaluation import eval_stem, evaluate_run
from translate.tokenizer import train_tokenizers
from translate.training import Callback, train
from translate.translator import Translator

log = logging.getLogger(__name__)

SPLITS_AND_BEAMS = (("val", 1), ("val", 5), ("test", 1), ("test", 5))  # "test" stands for report.test_split


@dataclass(frozen=True)
class Budget:
    minutes: float = 15.0  # training wall-clock per model (validation excluded)
    max_steps: int = 0  # updates per model; 0 = no limit


@dataclass(frozen=True)
class ReportConfig:
    test_split: str = "test_2016_flickr"
    attention_sentences: list = field(default_factory=lambda: [0, 1, 2])  # line numbers in the test split
    sample_sentences: list = field(default_factory=lambda: [0, 1, 2, 3, 4])
    gradient_batches: int = 4  # validation batches averaged for gradient flow
    gradient_max_tokens: int = 2048
    length_penalties: list = field(default_factory=lambda: [1.0])  # beam-5 values tried on val; the best one on test


@dataclass(frozen=True)
class ModelEntry:
    name: str
    arch: str
    model: dict[str, Any]
    train: dict[str, Any]


@dataclass(frozen=True)
class CompareConfig:
    data: dict[str, Any]
    tokenizer: dict[str, Any]
    budget: Budget
    train: dict[str, Any]
    report: ReportConfig
    models: list[ModelEntry]

    def run_config(self, entry: ModelEntry, tokenizer_dir: Path) -> dict[str, Any]:
        """The plain run config of one model: shared settings, its own, the shared tokenizer and budget."""
        budget = {"minutes": self.budget.minutes, "max_steps": self.budget.max_steps}
        return {
            "arch": entry.arch, "data": dict(self.data), "tokenizer": {**self.tokenizer, "path": str(tokenizer_dir)},
            "model": dict(entry.model), "train": merge(merge(self.train, entry.train), budget),
        }


def read_compare_config(path: Path) -> CompareConfig:
    raw = read_config_file(path)
    unknown = sorted(set(raw) - {"data", "tokenizer", "budget", "train", "report", "models"})
    if unknown:
        raise ConfigError(f"unknown comparison setting(s): {', '.join(unknown)}")
    models = []
    for i, m in enumerate(raw.get("models") or []):
        extra = sorted(set(m) - {"name", "arch", "model", "train"})
        if extra or "name" not in m or "arch" not in m:
            raise ConfigError(f"models[{i}] needs name and arch (and optional model, train tables); got {sorted(m)}")
        models.append(ModelEntry(str(m["name"]), str(m["arch"]), dict(m.get("model", {})), dict(m.get("train", {}))))
    if not models:
        raise ConfigError(f"{path} lists no [[models]]")
    names = [m.name for m in models]
    if len(set(names)) != len(names):
        raise ConfigError(f"model names must be unique: {names}")
    cfg = CompareConfig(
        data=dict(raw.get("data", {})), tokenizer=dict(raw.get("tokenizer", {})),
        budget=dataclass_from_dict(Budget, raw.get("budget", {}), "[budget]"), train=dict(raw.get("train", {})),
        report=dataclass_from_dict(ReportConfig, raw.get("report", {}), "[report]"), models=models,
    )
    for entry in models:  # every run config must be valid before hours of training start
        run_config_from_dict(cfg.run_config(entry, Path("tokenizer")))
    return cfg


def shared_tokenizers(cfg: CompareConfig, runs_dir: Path) -> Path:
    """Train the SentencePiece model(s) once on the training split; later invocations reuse them."""
    folder = runs_dir / "tokenizer"
    if not any(folder.glob("*.model")):
        run = run_config_from_dict({"data": cfg.data, "tokenizer": cfg.tokenizer})
        pairs = read_parallel(run.data.path, run.data.src, run.data.tgt, run.data.train_split)
        t = run.tokenizer
        train_tokenizers([p for p in pairs if p[0] and p[1]], t.vocab_size, t.joint, t.model_type).save(folder)
    return folder


def run_comparison(
    cfg: CompareConfig, runs_dir: Path, only: list[str] | None = None,
    callbacks: Callable[[str], list[Callback]] | None = None, progress: Callable[[str], None] = log.info,
) -> None:
    """Train (or resume), evaluate and analyse every model of the comparison into `runs_dir`."""
    runs_dir.mkdir(parents=True, exist_ok=True)
    tokenizer_dir = shared_tokenizers(cfg, runs_dir)
    for entry in cfg.models:
        if only and entry.name not in only:
            continue
        out = runs_dir / entry.name
        done = out / "summary.json"
        if not done.exists():
            progress(f"{entry.name}: training ({entry.arch})")
            run_cfg = run_config_from_dict(cfg.run_config(entry, tokenizer_dir))
            summary = train(run_cfg, out, resume=(out / "last.pt").exists(), callbacks=callbacks(entry.name) if callbacks else None)
            if summary["stopped"] == "interrupted":
                raise KeyboardInterrupt
            write_atomic(done, json.dumps(summary, indent=2).encode())
        _evaluate(cfg, entry, out, progress)
        _analyse(cfg, out, progress)


def _evaluate(cfg: CompareConfig, entry: ModelEntry, out: Path, progress) -> None:
    translator: Translator | None = None

    def scores(split: str, beam: int, lp: float = 1.0) -> dict:
        """One evaluation's scores, computed only if its file is missing."""
        nonlocal translator
        path = out / "eval" / f"{eval_stem(split, beam, lp)}.json"
        if not path.exists():
            progress(f"{entry.name}: evaluating {split} with beam {beam}" + (f", length penalty {lp:g}" * (lp != 1.0)))
            translator = translator or Translator.load(out)
            pairs = read_parallel(cfg.data.get("path", "data/multi30k"), translator.src_lang, translator.tgt_lang, split)
            evaluate_run(translator, pairs, split, cfg.data.get("path", ""), beam, out / "eval", lp)
        return json.loads(path.read_text(encoding="utf-8"))

    for split, beam in SPLITS_AND_BEAMS:
        scores(cfg.report.test_split if split == "test" else split, beam)
    # Length penalty, a decoding lever: chosen per model on the validation split, then applied once to the test split.
    lps = [float(lp) for lp in cfg.report.length_penalties]
    if lps != [1.0] and not (out / "eval" / "tuned.json").exists():
        val = {lp: scores("val", 5, lp)["bleu"] for lp in lps}
        best = max(lps, key=lambda lp: (val[lp], lp == 1.0))  # a tie keeps the default
        test = {k: v for k, v in scores(cfg.report.test_split, 5, best).items() if k != "by_length"}
        tuned = {
            "beam": 5, "length_penalty": best, "val_bleu_by_length_penalty": {f"{lp:g}": b for lp, b in val.items()},
            "test": test,
        }
        write_atomic(out / "eval" / "tuned.json", (json.dumps(tuned, indent=2) + "\n").encode())


def _analyse(cfg: CompareConfig, out: Path, progress) -> None:
    """Gradient flow over fixed validation batches and attention maps of fixed test sentences."""
    path = out / "analysis.json"
    if path.exists():
        return
    progress(f"{out.name}: gradient flow and attention")
    translator = Translator.load(out)
    data = cfg.data.get("path", "data/multi30k")
    valid = read_parallel(data, translator.src_lang, translator.tgt_lang, "val")
    tok = translator.tokenizers
    examples = list(zip(tok.src.encode([s for s, _ in valid]), tok.tgt.encode([t for _, t in valid])))
    batches = list(EncodedCorpus(examples).batches(cfg.report.gradient_max_tokens, seed=0, epoch=0, shuffle=True))
    gradient = gradient_norms_by_distance(translator.model, batches[: cfg.report.gradient_batches])
    test = read_parallel(data, translator.src_lang, translator.tgt_lang, cfg.report.test_split)
    sentences = [test[i][0] for i in cfg.report.attention_sentences]
    attention = [
        {"src_tokens": t.src_tokens, "tgt_tokens": t.tgt_tokens, "attention": t.attention, "text": t.text}
        for t in translator.translate(sentences, beam_size=5, return_attention=True)
    ]
    result = {"gradient_norm_by_distance": gradient, "attention": attention, "parameters": translator.parameters}
    write_atomic(path, json.dumps(result).encode())

