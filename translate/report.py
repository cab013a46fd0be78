"""The comparison report: README.md and small PNGs, generated from the runs' logs alone (no hand-typed numbers).

`collect_inputs` copies what the report needs (configs, logs, summaries, scores, analyses, test hypotheses) from
the run folders into `report_dir/runs/`, so the report can be regenerated from a checkout without checkpoints.
`write_report` reads only `report_dir`: `runs/<name>/...` (the equal budget), `converged/<name>/...` (the
converged mode, `--long`, with notes on its hardware in `converged/README.md`), and a hand-written `reading.md`
(the interpretation, which must not restate figures) if present.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from translate.comparison import SPLITS_AND_BEAMS, CompareConfig, ModelEntry, evaluated_folder
from translate.data import Pair, read_parallel
from translate.errors import TranslateError
from translate.records import Analysis, EvalResult, TrainSummary, TunedResult, ValidationRecord
from translate.runfolder import RunFolder, write_atomic


@dataclass
class ReportedRun:
    """One model's inputs to the report, read from its copy under `report_dir/runs/`."""

    entry: ModelEntry
    own_train: dict[str, Any]  # training settings that differ from the shared ones, read from the run itself
    summary: TrainSummary
    scores: dict[tuple[str, int], EvalResult | None]
    log: list[ValidationRecord]
    analysis: Analysis | None
    hyp: Path
    tuned: TunedResult | None
    folder: RunFolder

    @property
    def name(self) -> str:
        return self.entry.name

    def score(self, split: str, beam: int) -> EvalResult | None:
        return self.scores.get((split, beam))


def collect_inputs(cfg: CompareConfig, runs_dir: Path, into: Path) -> None:
    """Copy each finished run's records, and the evaluations and analysis of the model evaluated for it (in the
    converged mode, the averaged one where averaging won), into `into/<name>/`."""
    for entry in cfg.models:
        src, dst = RunFolder(runs_dir / entry.name), RunFolder(into / entry.name)
        if not src.summary.exists():
            continue
        evaluated = evaluated_folder(src)
        if dst.path.exists():
            shutil.rmtree(dst.path)  # a rerun replaces the copy whole: no stale evaluations from the run before
        dst.eval_dir.mkdir(parents=True, exist_ok=True)
        for path in src.record_files():
            shutil.copyfile(path, dst.path / path.relative_to(src.path))
        for path in sorted(evaluated.eval_dir.glob("*.json")) + [evaluated.analysis]:
            if path.exists():
                shutil.copyfile(path, dst.path / path.relative_to(evaluated.path))
        hyp = evaluated.eval_hyp(cfg.report.test_split, 5)
        if hyp.exists():
            shutil.copyfile(hyp, dst.eval_hyp(cfg.report.test_split, 5))


def load_runs(cfg: CompareConfig, runs_copy: Path) -> list[ReportedRun]:
    """The runs copied into `runs_copy` (report_dir/runs or report_dir/converged), in the config's order."""
    runs = []
    for entry in cfg.models:
        folder = RunFolder(runs_copy / entry.name)
        summary = folder.read_summary()
        if summary is None:
            continue
        scores = {}
        for split, beam in SPLITS_AND_BEAMS:
            split = cfg.report.test_split if split == "test" else split
            scores[(split, beam)] = folder.read_eval(split, beam)
        runs.append(ReportedRun(
            entry, _own_settings(cfg, entry, folder.read_config()), summary, scores, folder.read_log(),
            folder.read_analysis(), folder.eval_hyp(cfg.report.test_split, 5), folder.read_tuned(), folder,
        ))
    return runs


# Settings of how a step runs rather than what it computes on the CPU (autocast acts on a GPU only; the converged
# section's notes say how the GPU runs used it): not listed as a model's own.
HOW_IT_RUNS = {"amp", "compile", "read_every", "threads", "device", "save_every_minutes"}


def _own_settings(cfg: CompareConfig, entry: ModelEntry, run_config: dict | None) -> dict[str, Any]:
    """The training settings the run used that differ from the shared ones: read from the run, not the config."""
    if run_config is None:
        return {k: v for k, v in entry.train.items() if k not in HOW_IT_RUNS}
    shared = cfg.shared_train(entry)
    return {k: v for k, v in run_config.get("train", {}).items() if shared.get(k, v) != v and k not in HOW_IT_RUNS}


def write_report(cfg: CompareConfig, report_dir: Path) -> Path:
    """Write report_dir/README.md and its PNGs from report_dir's inputs; returns the README path."""
    import matplotlib

    matplotlib.use("Agg")
    runs = load_runs(cfg, report_dir / "runs")
    if not runs:
        raise ValueError(f"no finished runs under {report_dir / 'runs'}")
    test = cfg.report.test_split
    lines = _introduction(cfg)
    lines += _results_table(runs, test)
    by_steps = bool(cfg.budget.max_steps) and not cfg.budget.minutes  # an equal number of updates, not minutes
    lines += _learning_curves(runs, report_dir, by="step" if by_steps else "minutes")
    lines += _bleu_by_length(runs, test, report_dir)
    lines += _attention(cfg, runs, report_dir)
    lines += _gradient_flow(cfg, runs, report_dir)
    lines += _gradient_norms(runs, report_dir)
    lines += _samples(cfg, runs)
    converged = load_runs(cfg.in_long_mode(), report_dir / "converged")
    if converged:
        lines += _converged(cfg, converged, runs, report_dir)
    reading = report_dir / "reading.md"
    lines += ["## Reading", "", reading.read_text(encoding="utf-8").strip() if reading.exists() else "No reading written yet.", ""]
    readme = report_dir / "README.md"
    write_atomic(readme, "\n".join(lines).encode())
    return readme


def _introduction(cfg: CompareConfig) -> list[str]:
    return [
        f"# {cfg.report.title or f'Architecture comparison: {Path(cfg.data.path).name} {cfg.data.src}→{cfg.data.tgt}'}", "",
        "Generated by `translate compare` from the runs' logs; every figure below comes from those files.",
        f"Every model: the same data, the same SentencePiece model ({cfg.tokenizer.vocab_size} pieces), "
        f"the same seed, and the same budget: {_budget(cfg)}.",
        "Training settings are shared (see the config) except those the arch column lists after a `;`.", "",
    ]


def _budget(cfg: CompareConfig) -> str:
    """The equal budget, in words: "15 minutes of training", "2,000 updates", or both joined by "or"."""
    return " or ".join([f"{_fmt(cfg.budget.minutes)} minutes of training"] * bool(cfg.budget.minutes)
                       + [f"{cfg.budget.max_steps:,} updates"] * bool(cfg.budget.max_steps))


def _results_table(runs: list[ReportedRun], test: str) -> list[str]:
    tuned = any(r.tuned for r in runs)  # the length penalty lever, chosen per model on val
    lines = [
        "## Results", "",
        "| model | arch | parameters | trained (min) | steps | train tok/s | val BLEU greedy / beam 5 | "
        f"{test} BLEU greedy / beam 5 | {test} chrF greedy / beam 5 | decode tok/s (beam 5) |"
        + (f" {test} BLEU beam 5, length penalty tuned on val |" if tuned else ""),
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|" + ("---:|" if tuned else ""),
    ]
    for r in runs:
        s = r.summary

        def get(split: str, beam: int, key: str, r=r):
            result = r.score(split, beam)
            return None if result is None else getattr(result, key)

        row = (
            f"| {r.name} | {r.entry.arch} {_describe(r.entry.model, r.own_train)} | {_fmt(s.parameters)} | "
            f"{_fmt(s.train_minutes)} | {_fmt(s.step)} | {_fmt(s.train_tokens_per_s, 0)} | "
            f"{_fmt(get('val', 1, 'bleu'))} / {_fmt(get('val', 5, 'bleu'))} | "
            f"{_fmt(get(test, 1, 'bleu'))} / {_fmt(get(test, 5, 'bleu'))} | "
            f"{_fmt(get(test, 1, 'chrf'))} / {_fmt(get(test, 5, 'chrf'))} | {_fmt(get(test, 5, 'decode_tokens_per_s'), 0)} |"
        )
        if tuned:
            row += f" {_fmt(r.tuned.test.bleu)} (LP {r.tuned.length_penalty:g}) |" if r.tuned else " – |"
        lines.append(row)
    signature = next((r.score(test, 5).bleu_signature for r in runs if r.score(test, 5)), None)
    return lines + ["", f"sacreBLEU signature: `{signature}`", ""]


def _learning_curves(runs: list[ReportedRun], report_dir: Path, h: str = "##", stem: str = "", by: str = "minutes") -> list[str]:
    """Validation BLEU against minutes of training (`by="step"`: against updates)."""
    fig, ax = _figure()
    for r in runs:
        xs = [e.train_minutes if by == "minutes" else e.step for e in r.log]
        ax.plot(xs, [e.val_bleu for e in r.log], marker="." if by == "minutes" else None, label=r.name)
    what = "minutes of training" if by == "minutes" else "updates"
    ax.set(xlabel=what, ylabel="validation BLEU (greedy)", title="Learning curves")
    _save(fig, ax, report_dir / f"{stem}learning_curves.png")
    return [f"{h} Learning curves", "", f"![validation BLEU against {what}]({stem}learning_curves.png)", ""]


def _bleu_by_length(runs: list[ReportedRun], test: str, report_dir: Path, h: str = "##", stem: str = "") -> list[str]:
    first = runs[0].score(test, 5)
    sizes = [(b.bucket, b.n) for b in first.by_length] if first else []
    lines = [f"{h} BLEU by source length", "", f"{test}, beam 5, buckets of source words.", "",
             "| model | " + " | ".join(f"{b} (n={n})" for b, n in sizes) + " |", "|---|" + "---:|" * len(sizes)]
    fig, ax = _figure()
    for r in runs:
        rows = r.score(test, 5).by_length if r.score(test, 5) else []
        ax.plot([b.bucket for b in rows], [b.bleu for b in rows], marker="o", label=r.name)
        lines.append(f"| {r.name} | " + " | ".join(_fmt(b.bleu) for b in rows) + " |")
    ax.set(xlabel="source length (words)", ylabel="BLEU", title="BLEU by source length")
    _save(fig, ax, report_dir / f"{stem}bleu_by_length.png")
    return lines + ["", f"![BLEU by source length]({stem}bleu_by_length.png)", ""]


def _attention(cfg: CompareConfig, runs: list[ReportedRun], report_dir: Path, h: str = "##", stem: str = "") -> list[str]:
    import matplotlib.pyplot as plt

    attentive = [r for r in runs if r.analysis and r.analysis.attention and r.analysis.attention[0].attention]
    lines = [f"{h} Attention", ""]
    if not attentive:
        return lines + ["No model with attention finished.", ""]
    for k, index in enumerate(cfg.report.attention_sentences):
        fig, axes = plt.subplots(1, len(attentive), figsize=(max(4.5 * len(attentive), 7.5), 4.5), squeeze=False)
        for ax, r in zip(axes[0], attentive):
            a = r.analysis.attention[k]
            ax.imshow(a.attention, cmap="Blues", vmin=0, vmax=1, aspect="auto")
            ax.set_xticks(range(len(a.src_tokens)), a.src_tokens, rotation=90, fontsize=7)
            ax.set_yticks(range(len(a.tgt_tokens)), a.tgt_tokens, fontsize=7)
            ax.set_title(r.name, fontsize=9)
        fig.suptitle(f"{cfg.report.test_split} #{index}: attention over the source (heads averaged; "
                     "Transformer: last layer)", fontsize=9)
        name = f"{stem}attention_{k + 1}.png"
        _save(fig, None, report_dir / name)
        lines += [f"![attention maps, sentence {index}]({name})", ""]
    return lines


def _gradient_flow(cfg: CompareConfig, runs: list[ReportedRun], report_dir: Path, h: str = "##", stem: str = "") -> list[str]:
    fig, ax = _figure()
    for r in runs:
        if r.analysis:
            g = r.analysis.gradient_norm_by_distance
            xs = [d for d, v in enumerate(g) if v]
            ax.plot(xs, [g[d] for d in xs], label=r.name)
    ax.set(xlabel="distance from the end of the source (tokens)", ylabel="||dL/dh_t||", yscale="log",
           title="Gradient flow to encoder states")
    _save(fig, ax, report_dir / f"{stem}gradient_flow.png")
    return [f"{h} Gradient flow", "",
            "Mean norm of dL/dh_t for each encoder output h_t against its distance from the end of the source, over "
            f"{cfg.report.gradient_batches} fixed validation batches (log scale).", "",
            f"![gradient flow]({stem}gradient_flow.png)", ""]


def _gradient_norms(runs: list[ReportedRun], report_dir: Path, h: str = "##", stem: str = "") -> list[str]:
    """The global gradient norm before clipping at every update, per model (the exploding-gradient record)."""
    import matplotlib.pyplot as plt

    logged = [(r, r.folder.read_grad_norms()) for r in runs]
    logged = [(r, norms) for r, norms in logged if norms]
    if not logged:
        return []
    cols = 3
    rows = (len(logged) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 2.6 * rows), squeeze=False, sharey=True)
    lines = [f"{h} Gradient norms", "",
             "The global gradient norm before clipping at every update (log scale); the dashed line is the clipping "
             "threshold: above it, clipping scaled the update down.", "",
             "| model | updates | median norm | max norm | updates clipped |", "|---|---:|---:|---:|---:|"]
    for ax, (r, norms) in zip(axes.flat, logged):
        clip = ((r.folder.read_config() or {}).get("train") or {}).get("clip_norm", 0.0)
        ax.plot(range(1, len(norms) + 1), norms, linewidth=0.4)
        if clip:
            ax.axhline(clip, color="black", linestyle="--", linewidth=0.8)
        ax.set_yscale("log")
        ax.set_title(r.name, fontsize=9)
        ax.grid(alpha=0.3)
        lines.append(f"| {r.name} | {len(norms):,} | {_fmt(sorted(norms)[len(norms) // 2], 2)} | "
                     f"{_fmt(max(norms), 1)} | {r.summary.clipped:.1%} |")  # the share training counted
    for ax in list(axes.flat)[len(logged):]:
        ax.set_visible(False)
    fig.supxlabel("update", fontsize=9)
    _save(fig, None, report_dir / f"{stem}gradient_norms.png")
    return lines + ["", f"![gradient norms]({stem}gradient_norms.png)", ""]


def _samples(cfg: CompareConfig, runs: list[ReportedRun]) -> list[str]:
    lines = ["## Sample translations", "", f"{cfg.report.test_split}, beam 5.", ""]
    pairs = _test_pairs(cfg)
    outputs = {r.name: r.hyp.read_text(encoding="utf-8").splitlines() if r.hyp.exists() else [] for r in runs}
    for i in cfg.report.sample_sentences:
        if pairs is not None and i < len(pairs):
            lines += [f"**{i}.** {pairs[i][0]}  ", f"*reference:* {pairs[i][1]}", ""]
        lines += ["| model | translation |", "|---|---|"]
        lines += [f"| {name} | {out[i] if i < len(out) else '–'} |" for name, out in outputs.items()]
        lines.append("")
    return lines


def _converged(cfg: CompareConfig, runs: list[ReportedRun], equal: list[ReportedRun], report_dir: Path) -> list[str]:
    """The converged mode's section: its table beside the equal-budget results, other test sets, and its plots."""
    long, test = cfg.in_long_mode(), cfg.report.test_split
    shared = long.shared_train(long.models[0])
    lines = [
        "## Converged", "",
        f"`translate compare --long`: every model trained until validation BLEU (greedy, every {shared['eval_every']} "
        f"updates) had not improved for {shared['patience']} validations, at {shared['max_tokens']:,} tokens per batch; "
        f"the checkpoints of the last {cfg.long.average} validations averaged, and the averaged model or the best checkpoint, "
        "whichever scored higher on val, evaluated. Settings beyond the shared ones are listed after a `;`.", "",
    ]
    notes = report_dir / "converged" / "README.md"
    if notes.exists():
        lines += [line for line in notes.read_text(encoding="utf-8").splitlines() if not line.startswith("# ")] + [""]
    before = {r.name: r.score(test, 5) for r in equal}
    lines += [
        f"| model | arch | parameters | updates | epochs | stopped | model evaluated | val BLEU greedy / beam 5 | "
        f"{test} BLEU greedy / beam 5 | chrF beam 5 | beam 5, length penalty tuned on val | equal budget: {_budget(cfg)} (beam 5) |",
        "|---|---|---:|---:|---:|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        s, avg = r.summary, r.folder.read_averaging()
        used = "–" if avg is None else (f"average of last {avg.checkpoints}" if avg.chosen == "averaged" else "best checkpoint")
        b1, b5, v1, v5 = r.score(test, 1), r.score(test, 5), r.score("val", 1), r.score("val", 5)
        lines.append(
            f"| {r.name} | {r.entry.arch} {_describe(r.entry.model, r.own_train)} | {_fmt(s.parameters)} | "
            f"{_fmt(s.step)} | {_fmt(s.epoch + 1)} | {s.stopped} | {used} | {_fmt(v1 and v1.bleu)} / {_fmt(v5 and v5.bleu)} | "
            f"{_fmt(b1 and b1.bleu)} / {_fmt(b5 and b5.bleu)} | {_fmt(b5 and b5.chrf)} | "
            + (f"{_fmt(r.tuned.test.bleu)} (LP {r.tuned.length_penalty:g})" if r.tuned else "–")
            + f" | {_fmt(before[r.name].bleu) if before.get(r.name) else '–'} |"
        )
    lines += [""]
    lines += _other_test_sets(long, runs)
    lines += _learning_curves(runs, report_dir, "###", "converged_", by="step")
    lines += _bleu_by_length(runs, test, report_dir, "###", "converged_")
    lines += _attention(long, runs, report_dir, "###", "converged_")
    lines += _gradient_flow(long, runs, report_dir, "###", "converged_")
    lines += _gradient_norms(runs, report_dir, "###", "converged_")
    return lines


def _other_test_sets(cfg: CompareConfig, runs: list[ReportedRun]) -> list[str]:
    """BLEU on every other test split the corpus folder held (beam 5, each model's tuned length penalty)."""
    found: dict[str, dict[str, EvalResult]] = {}
    for r in runs:
        for result in r.folder.evaluations().values():
            if result.split.startswith("test") and result.split != cfg.report.test_split and result.beam == 5:
                found.setdefault(result.split, {})[r.name] = result
    if not found:
        return ["No other test split was in the data folder (`translate data fetch` downloads Multi30k's 2017 and "
                "2018 test sets; the report includes every `test*` split it finds).", ""]
    splits = sorted(found)
    lines = ["### Other test sets", "", "BLEU, beam 5 at each model's tuned length penalty.", "",
             "| model | " + " | ".join(splits) + " |", "|---|" + "---:|" * len(splits)]
    for r in runs:
        lines.append(f"| {r.name} | " + " | ".join(_fmt(found[sp][r.name].bleu) if r.name in found[sp] else "–"
                                                   for sp in splits) + " |")
    return lines + [""]


def _describe(model: dict, train: dict) -> str:
    """A model's settings, then its own training settings (those that differ from the shared ones)."""
    parts = [", ".join(f"{k}={v}" for k, v in d.items()) for d in (model, train) if d]
    return "(" + "; ".join(parts) + ")" if parts else ""


def _test_pairs(cfg: CompareConfig) -> list[Pair] | None:
    try:
        return read_parallel(cfg.data.path, cfg.data.src, cfg.data.tgt, cfg.report.test_split)
    except TranslateError:  # the corpus is not needed to regenerate the numbers; only the sample sources come from it
        return None


def _fmt(x, digits: int = 1) -> str:
    if x is None:
        return "–"
    return f"{x:,.{digits}f}" if isinstance(x, float) else f"{x:,}"


def _figure():
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(7, 4))


def _save(fig, ax, path: Path) -> None:
    """Grid and legend on a line plot (`ax`), then the PNG."""
    import matplotlib.pyplot as plt

    if ax is not None:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
