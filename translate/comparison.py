"""The architecture comparison: every model trained on the same data, SentencePiece model, seed and budget.

A comparison config (TOML/YAML/JSON) holds the shared settings and a list of models:

    [data]      path, src, tgt                      as in a run config
    [tokenizer] vocab_size, joint, model_type       trained once, shared by every model
    [budget]    minutes, max_steps                  the same for every model (both recorded)
    [train]     shared TrainConfig settings (seed, eval_every, ...)
    [report]    test_split, attention_sentences, sample_sentences, gradient_batches
    [long]      jobs, average, budget = {...}, train = {...}   the converged mode (`--long`), below
    [[models]]  name, arch, model = {...}, train = {...}   (per-model overrides, e.g. a learning rate)
                long = { model = {...}, train = {...} }   (per-model overrides in the converged mode)

Runs go to `runs_dir/<name>/`. A second invocation skips finished runs, resumes unfinished ones from their
`last.pt`, and only computes evaluations and analyses that are missing.

The converged mode (`translate compare --long`, a GPU's work) trains every model until validation BLEU stops
improving (early stopping, [long.train] patience), `jobs` of them at once, into `runs_dir/long/<name>/`. It keeps
the last `average` validations' checkpoints and averages them into `runs_dir/long/<name>.avg/`; whichever of the
averaged model and best.pt scores higher on the validation split (greedy) is the one evaluated and reported.
"""

from __future__ import annotations

import dataclasses
import logging
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from translate.analysis import gradient_norms_by_distance
from translate.config import DataConfig, RunConfig, TokenizerConfig, run_config_from_dict
from translate.averaging import write_average
from translate.data import available_test_splits, read_parallel
from translate.encoded import EncodedCorpus
from translate.errors import ConfigError, TranslateError
from translate.evaluation import evaluate_run
from translate.records import Analysis, AttentionSample, Averaging, EvalResult, TunedResult
from translate.runfolder import RunFolder
from translate.settings import decode_settings, merge, read_config_file
from translate.tokenizer import train_tokenizers
from translate.training import Callback, train
from translate.translator import Translator

log = logging.getLogger(__name__)

SPLITS_AND_BEAMS = (("val", 1), ("val", 5), ("test", 1), ("test", 5))  # "test" stands for report.test_split
TOP_LEVEL = ("data", "tokenizer", "budget", "train", "report", "long", "models")
AVERAGED = ".avg"  # suffix of the folder a converged run's averaged checkpoint goes to


@dataclass(frozen=True)
class Budget:
    minutes: float = 15.0  # training wall-clock per model (validation excluded)
    max_steps: int = 0  # updates per model; 0 = no limit


@dataclass(frozen=True)
class ReportConfig:
    title: str = ""  # the report's heading; default "Architecture comparison: <data> <src>→<tgt>"
    test_split: str = "test_2016_flickr"
    attention_sentences: list[int] = field(default_factory=lambda: [0, 1, 2])  # line numbers in the test split
    sample_sentences: list[int] = field(default_factory=lambda: [0, 1, 2, 3, 4])
    gradient_batches: int = 4  # validation batches averaged for gradient flow
    gradient_max_tokens: int = 2048
    length_penalties: list[float] = field(default_factory=lambda: [1.0])  # beam-5 values tried on val; the best on test


@dataclass(frozen=True)
class LongMode:
    """The converged mode: `translate compare --long`."""

    jobs: int = 1  # models trained at the same time (one GPU holds several small ones)
    average: int = 5  # checkpoints of the last N validations kept and averaged; 0: no averaging
    budget: Budget = Budget(minutes=0.0)  # a cap; early stopping on validation BLEU is what ends a run
    train: dict[str, Any] = field(default_factory=dict)  # overrides of [train] (patience, eval_every, batch, lr...)


@dataclass(frozen=True)
class ModelEntry:
    name: str
    arch: str
    model: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)  # overrides of the shared [train] settings
    long: dict[str, Any] = field(default_factory=dict)  # {model, train}: overrides in the converged mode


@dataclass(frozen=True)
class CompareConfig:
    data: DataConfig
    tokenizer: TokenizerConfig
    budget: Budget
    train: dict[str, Any]  # shared overrides of TrainConfig's defaults (validated with every model's run config)
    report: ReportConfig
    models: list[ModelEntry]
    long: LongMode = LongMode()
    converged: bool = False  # this is the converged mode's config (see `in_long_mode`)

    def in_long_mode(self) -> CompareConfig:
        """The config of the converged mode: [long]'s budget and training settings, each model's `long` overrides,
        and the last `average` validations' checkpoints kept."""
        keep = {"keep": self.long.average} if self.long.average else {}
        models = [
            dataclasses.replace(
                m, model=merge(m.model, m.long.get("model", {})), train=merge(m.train, m.long.get("train", {})), long={},
            )
            for m in self.models
        ]
        return dataclasses.replace(
            self, budget=self.long.budget, train=merge(merge(self.train, self.long.train), keep), models=models,
            converged=True,
        )

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
    for m in models:
        if set(m.long) - {"model", "train"}:
            raise ConfigError(f"models[{m.name}].long takes model and train tables, not {sorted(set(m.long))}")
    cfg = CompareConfig(
        data=decode_settings(DataConfig, raw.get("data", {}), "[data]"),
        tokenizer=decode_settings(TokenizerConfig, raw.get("tokenizer", {}), "[tokenizer]"),
        budget=decode_settings(Budget, raw.get("budget", {}), "[budget]"), train=dict(raw.get("train", {})),
        report=decode_settings(ReportConfig, raw.get("report", {}), "[report]"), models=models,
        long=decode_settings(LongMode, raw.get("long", {}), "[long]"),
    )
    for mode in (cfg, cfg.in_long_mode()):  # every run config must be valid before hours of training start
        for entry in mode.models:
            mode.run_config(entry, Path("tokenizer"))
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
    tokenizer_dir: Path | None = None, jobs: int = 1, relaunch: Callable[[str], list[str]] | None = None,
) -> None:
    """Train (or resume), evaluate and analyse every model of the comparison into `runs_dir`.

    `tokenizer_dir`: SentencePiece models to share (default: trained into runs_dir/tokenizer). With `jobs` > 1 and
    `relaunch` (the command line that runs one named model), the models run in that many processes at once.
    """
    runs_dir.mkdir(parents=True, exist_ok=True)
    tokenizer_dir = tokenizer_dir or shared_tokenizers(cfg, runs_dir)
    entries = [entry for entry in cfg.models if not only or entry.name in only]
    if jobs > 1 and len(entries) > 1 and relaunch is not None:
        run_in_processes([e.name for e in entries], jobs, relaunch, runs_dir, progress)
        return
    for entry in entries:
        run = RunFolder(runs_dir / entry.name)
        if not run.summary.exists():  # training writes its summary when it has finished
            progress(f"{entry.name}: training ({entry.arch})")
            callbacks_now = callbacks(entry.name) if callbacks else None
            train(cfg.run_config(entry, tokenizer_dir), run.path, resume=run.last.exists(), callbacks=callbacks_now)
        evaluated = _averaged_or_best(cfg, entry, run, progress) if cfg.converged else run
        _evaluate(cfg, entry, evaluated, progress)
        _analyse(cfg, evaluated, progress)


def run_in_processes(
    names: list[str], jobs: int, relaunch: Callable[[str], list[str]], runs_dir: Path, progress: Callable[[str], None],
) -> None:
    """Run each named model's `relaunch` command line, `jobs` at a time, each logging to runs_dir/<name>.log."""
    waiting, running, failed = list(names), {}, []
    while waiting or running:
        while waiting and len(running) < jobs:
            name = waiting.pop(0)
            with open(runs_dir / f"{name}.log", "ab") as out:
                running[name] = subprocess.Popen(relaunch(name), stdout=out, stderr=subprocess.STDOUT)
            progress(f"{name}: started (log: {runs_dir / f'{name}.log'})")
        time.sleep(1)
        for name, proc in list(running.items()):
            if proc.poll() is not None:
                del running[name]
                progress(f"{name}: {'done' if proc.returncode == 0 else f'failed (exit {proc.returncode})'}")
                if proc.returncode:
                    failed.append(name)
    if failed:
        raise TranslateError(f"{len(failed)} model(s) failed: {', '.join(failed)}; see their logs in {runs_dir}")


def averaged_folder(run: RunFolder) -> RunFolder:
    """Where a converged run's averaged checkpoint goes: a run folder beside it."""
    return RunFolder(run.path.with_name(run.path.name + AVERAGED))


def evaluated_folder(run: RunFolder) -> RunFolder:
    """The folder whose model a comparison evaluated for `run`: the averaged one where averaging was chosen."""
    averaging = run.read_averaging()
    return averaged_folder(run) if averaging and averaging.chosen == "averaged" else run


def _averaged_or_best(cfg: CompareConfig, entry: ModelEntry, run: RunFolder, progress: Callable[[str], None]) -> RunFolder:
    """Average the last kept checkpoints; the averaged model or best.pt, whichever scores higher on val (greedy)."""
    if not run.averaging.exists():
        best = _Scorer(cfg, entry.name, run, progress).scores(cfg.data.valid_split, 1).bleu
        n = min(cfg.long.average, len(run.snapshots()))
        averaged = None
        if n >= 2:
            avg = averaged_folder(run)
            if not avg.best.exists():
                progress(f"{entry.name}: averaging the last {n} checkpoints")
                write_average(run.path, avg.path, last=n)
            averaged = _Scorer(cfg, entry.name, avg, progress).scores(cfg.data.valid_split, 1).bleu
        chosen = "averaged" if averaged is not None and averaged > best else "best"
        run.write_averaging(Averaging(checkpoints=n if n >= 2 else 0, val_bleu_best=best,
                                      val_bleu_averaged=averaged, chosen=chosen))
    return evaluated_folder(run)


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
    # Every other test split the corpus folder holds (Multi30k's later test sets), beam 5 at the chosen penalty.
    tuned = run.read_tuned()
    for split in other_test_splits(cfg):
        scorer.scores(split, 5, tuned.length_penalty if tuned else 1.0)


def other_test_splits(cfg: CompareConfig) -> list[str]:
    return [split for split in available_test_splits(cfg.data.path) if split != cfg.report.test_split]


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

