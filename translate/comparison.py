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

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from translate.analysis import gradient_norms_by_distance
from translate.config import DataConfig, RunConfig, TokenizerConfig, run_config_from_dict
from translate.data import read_parallel
from translate.encoded import EncodedCorpus
from translate.errors import ConfigError
from translate.evaluation import evaluate_run
from translate.records import Analysis, AttentionSample, EvalResult, TunedResult
from translate.runfolder import RunFolder
from translate.settings import decode_settings, merge, read_config_file
from translate.tokenizer import train_tokenizers
from translate.training import Callback, train
from translate.translator import Translator

log = logging.getLogger(__name__)

SPLITS_AND_BEAMS = (("val", 1), ("val", 5), ("test", 1), ("test", 5))  # "test" stands for report.test_split
TOP_LEVEL = ("data", "tokenizer", "budget", "train", "report", "models")


@dataclass(frozen=True)
class Budget:
    minutes: float = 15.0  # training wall-clock per model (validation excluded)
    max_steps: int = 0  # updates per model; 0 = no limit


@dataclass(frozen=True)
class ReportConfig:
    test_split: str = "test_2016_flickr"
    attention_sentences: list[int] = field(default_factory=lambda: [0, 1, 2])  # line numbers in the test split
    sample_sentences: list[int] = field(default_factory=lambda: [0, 1, 2, 3, 4])
    gradient_batches: int = 4  # validation batches averaged for gradient flow
    gradient_max_tokens: int = 2048
    length_penalties: list[float] = field(default_factory=lambda: [1.0])  # beam-5 values tried on val; the best on test


@dataclass(frozen=True)
class ModelEntry:
    name: str
    arch: str
    model: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)  # overrides of the shared [train] settings


@dataclass(frozen=True)
class CompareConfig:
    data: DataConfig
    tokenizer: TokenizerConfig
    budget: Budget
    train: dict[str, Any]  # shared overrides of TrainConfig's defaults (validated with every model's run config)
    report: ReportConfig
    models: list[ModelEntry]

    def run_config(self, entry: ModelEntry, tokenizer_dir: Path) -> RunConfig:
        """One model's run config: shared settings, its own, the shared tokenizer and the budget."""
        budget = {"minutes": self.budget.minutes, "max_steps": self.budget.max_steps}
        return run_config_from_dict({
            "arch": entry.arch, "data": dataclasses.asdict(self.data),
            "tokenizer": {**dataclasses.asdict(self.tokenizer), "path": str(tokenizer_dir)},
            "model": dict(entry.model), "train": merge(merge(self.train, entry.train), budget),
        })

    def shared_train(self, entry: ModelEntry) -> dict[str, Any]:
        """The training settings every model shares, as this model's run config would have them."""
        return dataclasses.asdict(self.run_config(dataclasses.replace(entry, train={}), Path(".")).train)


def read_compare_config(path: Path) -> CompareConfig:
    raw = read_config_file(path)
    unknown = sorted(set(raw) - set(TOP_LEVEL))
    if unknown:
        raise ConfigError(f"unknown comparison setting(s): {', '.join(unknown)}")
    models = [decode_settings(ModelEntry, m, f"models[{i}]") for i, m in enumerate(_tables(raw.get("models")))]
    if not models:
        raise ConfigError(f"{path} lists no [[models]]")
    names = [m.name for m in models]
    if len(set(names)) != len(names):
        raise ConfigError(f"model names must be unique: {names}")
    cfg = CompareConfig(
        data=decode_settings(DataConfig, raw.get("data", {}), "[data]"),
        tokenizer=decode_settings(TokenizerConfig, raw.get("tokenizer", {}), "[tokenizer]"),
        budget=decode_settings(Budget, raw.get("budget", {}), "[budget]"), train=dict(raw.get("train", {})),
        report=decode_settings(ReportConfig, raw.get("report", {}), "[report]"), models=models,
    )
    for entry in models:  # every run config must be valid before hours of training start
        cfg.run_config(entry, Path("tokenizer"))
    return cfg


def _tables(models: Any) -> list[dict[str, Any]]:
    if not isinstance(models, list) or not all(isinstance(m, dict) and "name" in m and "arch" in m for m in models):
        raise ConfigError("[[models]] entries need name and arch (and optional model, train tables)")
    return models


def shared_tokenizers(cfg: CompareConfig, runs_dir: Path) -> Path:
    """Train the SentencePiece model(s) once on the training split; later invocations reuse them."""
    folder = runs_dir / "tokenizer"
    if not any(folder.glob("*.model")):
        d, t = cfg.data, cfg.tokenizer
        pairs = read_parallel(d.path, d.src, d.tgt, d.train_split)
        train_tokenizers(pairs, t.vocab_size, t.joint, t.model_type).save(folder)
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
        run = RunFolder(runs_dir / entry.name)
        if not run.summary.exists():  # training writes its summary when it has finished
            progress(f"{entry.name}: training ({entry.arch})")
            callbacks_now = callbacks(entry.name) if callbacks else None
            train(cfg.run_config(entry, tokenizer_dir), run.path, resume=run.last.exists(), callbacks=callbacks_now)
        _evaluate(cfg, entry, run, progress)
        _analyse(cfg, run, progress)


def _evaluate(cfg: CompareConfig, entry: ModelEntry, run: RunFolder, progress: Callable[[str], None]) -> None:
    scorer = _Scorer(cfg, entry.name, run, progress)
    for split, beam in SPLITS_AND_BEAMS:
        scorer.scores(cfg.report.test_split if split == "test" else split, beam)
    # Length penalty, a decoding lever: chosen per model on the validation split, then applied once to the test split.
    lps = [float(lp) for lp in cfg.report.length_penalties]
    if lps != [1.0] and not run.tuned.exists():
        val = {lp: scorer.scores("val", 5, lp).bleu for lp in lps}
        best = max(lps, key=lambda lp: (val[lp], lp == 1.0))  # a tie keeps the default
        test = msgspec.structs.replace(scorer.scores(cfg.report.test_split, 5, best), by_length=[])
        run.write_tuned(TunedResult(
            beam=5, length_penalty=best, val_bleu_by_length_penalty={f"{lp:g}": b for lp, b in val.items()}, test=test,
        ))


class _Scorer:
    """One model's evaluations: computed only where the run lacks the file; the model loads on first need."""

    def __init__(self, cfg: CompareConfig, name: str, run: RunFolder, progress: Callable[[str], None]):
        self.cfg, self.name, self.run, self.progress = cfg, name, run, progress
        self.translator: Translator | None = None

    def scores(self, split: str, beam: int, lp: float = 1.0) -> EvalResult:
        stored = self.run.read_eval(split, beam, lp)
        if stored is not None:
            return stored
        self.progress(f"{self.name}: evaluating {split} with beam {beam}" + (f", length penalty {lp:g}" * (lp != 1.0)))
        self.translator = self.translator or Translator.load(self.run.path)
        pairs = read_parallel(self.cfg.data.path, self.translator.src_lang, self.translator.tgt_lang, split)
        return evaluate_run(self.translator, pairs, split, self.cfg.data.path, beam, self.run.eval_dir, lp)


def _analyse(cfg: CompareConfig, run: RunFolder, progress: Callable[[str], None]) -> None:
    """Gradient flow over fixed validation batches and attention maps of fixed test sentences."""
    if run.analysis.exists():
        return
    progress(f"{run.path.name}: gradient flow and attention")
    translator = Translator.load(run.path)
    src, tgt, data = translator.src_lang, translator.tgt_lang, cfg.data.path
    valid = EncodedCorpus.from_pairs(read_parallel(data, src, tgt, cfg.data.valid_split), translator.tokenizers)
    batches = list(valid.batches(cfg.report.gradient_max_tokens, seed=0, epoch=0, shuffle=True))
    gradient = gradient_norms_by_distance(translator.model, batches[: cfg.report.gradient_batches])
    test = read_parallel(data, src, tgt, cfg.report.test_split)
    sentences = [test[i][0] for i in cfg.report.attention_sentences]
    attention = [
        AttentionSample(t.text, t.src_tokens, t.tgt_tokens, t.attention)
        for t in translator.translate(sentences, beam_size=5, return_attention=True)
    ]
    run.write_analysis(Analysis(gradient, attention, translator.parameters))

