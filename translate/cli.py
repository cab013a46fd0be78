"""The `translate` command: argument parsing and progress bars around library calls, nothing else."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import msgspec

from translate.config import DEFAULT_DATA, SECTIONS, run_config_from_dict
from translate.errors import ConfigError, TrainingInterrupted, TranslateError
from translate.memory import keep_freed_memory
from translate.runfolder import CHECKPOINTS
from translate.settings import merge, read_config_file

log = logging.getLogger("translate")
ARCH_CHOICES = ("lstm", "lstm-attn", "transformer")
TRAIN_FLAGS = [  # (flag, section, key): shortcuts for settings that --set also reaches
    ("data", "data", "path"), ("src", "data", "src"), ("tgt", "data", "tgt"),
    ("max_steps", "train", "max_steps"), ("minutes", "train", "minutes"), ("seed", "train", "seed"),
    ("device", "train", "device"), ("eval_every", "train", "eval_every"), ("max_tokens", "train", "max_tokens"),
    ("accum", "train", "accum"),
    ("lr", "train", "lr"), ("keep", "train", "keep"), ("vocab_size", "tokenizer", "vocab_size"),
    ("cell", "model", "cell"), ("heads", "model", "heads"), ("layers", "model", "layers"),
]


def _train_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given as flags, as a nested config dict that wins over --config.

    `--set` values stay strings: the typed decoding (translate.settings) converts them as the setting's type asks.
    """
    o: dict[str, Any] = {section: {} for section in SECTIONS}
    if args.arch:
        o["arch"] = args.arch
    for flag, section, key in TRAIN_FLAGS:
        if getattr(args, flag) is not None:
            o[section][key] = getattr(args, flag)
    if args.bidirectional:
        o["model"]["bidirectional"] = True
    for item in args.set or []:
        key, sep, value = item.partition("=")
        section, dot, name = key.partition(".")
        if not sep or not dot or section not in SECTIONS:
            raise ConfigError(f"--set takes SECTION.KEY=VALUE with SECTION one of {', '.join(SECTIONS)}; got {item!r}")
        o[section][name] = value
    return o


class TrainProgress:
    """A tqdm bar with loss, learning rate and tokens/s; evaluation lines printed above it."""

    def __init__(self, total_steps: int | None):
        self.total_steps = total_steps or None
        self.bar = None

    def __enter__(self) -> TrainProgress:
        return self

    def __exit__(self, *exc) -> None:
        self.on_end(None)  # also on an interruption

    def on_start(self, info):
        from tqdm import tqdm

        self.bar = tqdm(total=self.total_steps, unit="step", dynamic_ncols=True, file=sys.stderr)  # opened once data is ready
        self.bar.write(
            f"{info.arch}: {info.parameters:,} parameters on {info.device}; vocab {info.vocab[0]}/{info.vocab[1]}; "
            + (f"corpora {', '.join(f'{name} {n:,}' for name, n in info.corpora.items())}; " if len(info.corpora) > 1 else "")
            + f"{info.cleaning}; {info.valid_pairs} validation pairs"
            + (f"; {info.world_size} processes x {info.accum} micro-batches per update" if info.world_size * info.accum > 1 else "")
            + (f"; resuming at step {info.resumed_at}" if info.resumed_at is not None else "")
            + f"; set up in {info.setup_seconds:.1f} s",
            file=sys.stderr,
        )
        if info.resumed_at:
            self.bar.update(info.resumed_at)

    def on_step(self, m):
        self.bar.set_postfix(loss=f"{m.loss:.3f}", lr=f"{m.lr:.2e}", tok_s=f"{m.tokens_per_s:.0f}", refresh=False)
        self.bar.update(1)

    def on_eval(self, record, improved):
        self.bar.write(
            f"step {record.step}: val loss {record.val_loss:.3f}, BLEU {record.val_bleu:.2f}, chrF {record.val_chrf:.2f}"
            f"{' (best)' if improved else ''} after {record.train_minutes:.1f} min",
            file=sys.stderr,
        )

    def on_end(self, summary):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _print_json(value: Any) -> None:
    print(json.dumps(msgspec.to_builtins(value), indent=2, ensure_ascii=False))


def cmd_train(args: argparse.Namespace) -> int:
    from translate.training import train

    raw = read_config_file(args.config) if args.config else {}
    cfg = run_config_from_dict(merge(raw, _train_overrides(args)))
    if not args.resume:
        _check_data(cfg.data.path)
    if args.nproc and args.nproc > 1:
        return _torchrun(args, args.nproc)
    main_process = os.environ.get("RANK", "0") == "0"  # under torchrun, one process reports
    with TrainProgress(cfg.train.max_steps) if main_process else contextlib.nullcontext() as progress:
        summary = train(cfg, Path(args.out), resume=args.resume, callbacks=[progress] if progress else [])
    if main_process:
        _print_json(summary)
    return 0


def _torchrun(args: argparse.Namespace, nproc: int) -> int:
    """This same command line without --nproc, under torchrun with `nproc` processes."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
               "-m", "translate", *_without(args.argv, "--nproc")]
    log.info("running %s", " ".join(command))
    return subprocess.call(command)


def _check_data(spec: str) -> None:
    if spec == DEFAULT_DATA and not Path(spec).exists():
        raise TranslateError(
            f"no corpus at {spec}: run `translate data fetch` (or pass --data with a folder, .tsv, .jsonl or hub:NAME)"
        )


def _progress_bar(total: int, what: str):
    from tqdm import tqdm

    return tqdm(total=total, unit=what, file=sys.stderr, disable=None, dynamic_ncols=True)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from translate.data import read_parallel
    from translate.evaluation import evaluate_run
    from translate.runfolder import eval_files, resolve_checkpoint, run_of

    _check_data(args.data)
    translator = _load_translator(args)
    pairs = read_parallel(args.data, translator.src_lang, translator.tgt_lang, args.split)
    eval_dir = Path(args.out) if args.out else run_of(resolve_checkpoint(args.run)).eval_dir
    with _progress_bar(len(pairs), "sent") as bar:
        result = evaluate_run(translator, pairs, args.split, args.data, args.beam, eval_dir, args.length_penalty, bar.update)
    hypotheses = eval_files(eval_dir, args.split, args.beam, args.length_penalty)[1]
    _print_json({**msgspec.to_builtins(result), "hypotheses_file": str(hypotheses)})
    return 0


def _load_translator(args: argparse.Namespace):
    from translate.translator import Translator

    return Translator.load(args.run, device=args.device, engine=args.engine, quantize=args.quantize, workers=args.workers)


def cmd_translate(args: argparse.Namespace) -> int:
    translator = _load_translator(args)
    lines = sys.stdin.read().splitlines()
    if args.n_best > args.beam:
        raise ConfigError(f"--n-best {args.n_best} needs a beam of at least that size (--beam {args.beam})")
    with _progress_bar(len(lines), "sent") as bar:
        results = translator.translate(
            lines, beam_size=args.beam, return_attention=args.attention, n_best=args.n_best, progress=bar.update,
            split=not args.no_split,
        )
    for i, r in enumerate(results):
        if args.attention:
            row = {"text": r.text, "src_tokens": r.src_tokens, "tgt_tokens": r.tgt_tokens, "attention": r.attention,
                   "score": r.score, "alternatives": [{"text": a.text, "score": a.score} for a in r.alternatives]}
            print(json.dumps(row, ensure_ascii=False))
        elif args.n_best > 1:  # the Moses/Marian n-best format: one line per hypothesis, best first
            for hyp in [r, *r.alternatives] if r.text or r.alternatives else [r]:
                print(f"{i} ||| {hyp.text} ||| {hyp.score:.4f}")
        else:
            print(r.text)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from translate.checkpoint import load_checkpoint
    from translate.ct2 import export_ctranslate2
    from translate.runfolder import resolve_checkpoint

    folder = export_ctranslate2(load_checkpoint(resolve_checkpoint(args.run)), Path(args.out), args.quantization)
    print(f"CTranslate2 model ({args.quantization}) in {folder}; translate with it: translate translate {folder}")
    return 0


def cmd_average(args: argparse.Namespace) -> int:
    from translate.averaging import write_average

    if bool(args.last) == bool(args.best):
        raise ConfigError("give one of --last N or --best N")
    n = args.last or args.best
    out = Path(args.out) if args.out else Path(args.run).with_name(f"{Path(args.run).name}-avg{'last' if args.last else 'best'}{n}")
    checkpoint, used = write_average(Path(args.run), out, last=args.last or 0, best=args.best or 0)
    print(f"averaged {len(used)} checkpoints ({', '.join(p.name for p in used)}) into {checkpoint}; "
          f"evaluate it: translate evaluate {out}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from translate.comparison import read_compare_config, run_comparison, shared_tokenizers
    from translate.report import collect_inputs, write_report

    cfg = read_compare_config(Path(args.config))
    report_dir = Path(args.out)
    runs_dir = Path(args.runs) if args.runs else Path("runs") / f"compare-{report_dir.name}"
    long_cfg, long_dir = cfg.in_long_mode(), runs_dir / "long"
    if not args.report_only:
        _check_data(cfg.data.path)
        chosen, where = (long_cfg, long_dir) if args.long else (cfg, runs_dir)
        jobs = args.jobs or (cfg.long.jobs if args.long else 1)
        run_comparison(
            chosen, where, only=args.only, callbacks=lambda name: [TrainProgress(None)],
            progress=lambda msg: print(msg, file=sys.stderr, flush=True),
            tokenizer_dir=shared_tokenizers(cfg, runs_dir), jobs=jobs,
            relaunch=lambda name: [*_this_command(), *_without(args.argv, "--only", "--jobs"), "--only", name,
                                   "--jobs", "1", "--no-report"],
        )
    if args.no_report:
        return 0
    for chosen, where, into in ((cfg, runs_dir, "runs"), (long_cfg, long_dir, "converged")):
        if where.exists():  # copy what finished runs have (also with --report-only, e.g. mid-comparison)
            collect_inputs(chosen, where, report_dir / into)
    readme = write_report(cfg, report_dir)
    print(f"report: {readme}")
    return 0


def _this_command() -> list[str]:
    return [sys.executable, "-m", "translate"]


def _without(argv: list[str], *options: str) -> list[str]:
    """argv without the given options and their values (an option's values run to the next --flag)."""
    out, skipping = [], False
    for arg in argv:
        if arg.startswith("--"):
            skipping = arg.split("=")[0] in options
        if not skipping:
            out.append(arg)
    return out


def cmd_data_fetch(args: argparse.Namespace) -> int:
    from translate.data import fetch_multi30k

    files, missing = fetch_multi30k(Path(args.out), Path(args.source) if args.source else None)
    print(f"{len(files)} Multi30k files in {args.out}")
    if missing:
        print(f"{args.source} lacks the later test sets' {len(missing)} files ({', '.join(missing)}): "
              "`translate data fetch` without --from downloads them", file=sys.stderr)
    return 0


def _add_train(sub: argparse._SubParsersAction) -> None:
    t = sub.add_parser("train", help="train a model into a run folder", description="Train a model. Flags override --config.")
    t.add_argument("--arch", choices=ARCH_CHOICES, help="model family (default: transformer)")
    t.add_argument("--data", help=f"corpus: folder of {{split}}.{{lang}}[.gz], .tsv, .jsonl or hub:NAME; several, comma-separated, are mixed (default: {DEFAULT_DATA})")
    t.add_argument("--src", help="source language code (default: de)")
    t.add_argument("--tgt", help="target language code (default: en)")
    t.add_argument("--out", required=True, help="run folder for checkpoints and logs")
    t.add_argument("--max-steps", type=int, help="stop after N updates")
    t.add_argument("--minutes", type=float, help="stop after M minutes of training (summed over resumes)")
    t.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    t.add_argument("--seed", type=int, help="random seed (default: 1)")
    t.add_argument("--config", help="TOML/YAML/JSON file of settings (see translate/config.py)")
    t.add_argument("--bidirectional", action="store_true", help="recurrent models: bidirectional encoder")
    t.add_argument("--cell", choices=("lstm", "gru", "rnn"), help="recurrent models: cell type (rnn = Elman tanh)")
    t.add_argument("--heads", type=int, help="attention heads")
    t.add_argument("--layers", type=int, help="recurrent models: layers")
    t.add_argument("--vocab-size", type=int, help="SentencePiece vocabulary size (default: 8000)")
    t.add_argument("--max-tokens", type=int, help="padded tokens per batch, per process (default: 4096)")
    t.add_argument("--accum", type=int, help="micro-batches accumulated per update (default: 1); --accum N in one "
                   "process takes the same global batch as N processes")
    t.add_argument("--nproc", type=int, help="train with N data-parallel processes on this machine: a shortcut for "
                   "`torchrun --standalone --nproc-per-node N -m translate train ...`")
    t.add_argument("--lr", type=float, help="peak learning rate")
    t.add_argument("--eval-every", type=int, help="updates between validations")
    t.add_argument("--keep", type=int, help="keep the checkpoints of the last N validations, for `translate average`")
    t.add_argument("--device", help="auto | cpu | cuda")
    t.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE", help="any setting, e.g. model.hidden=512")
    t.set_defaults(func=cmd_train)


def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    e = sub.add_parser("evaluate", help="score a run on a corpus split with sacreBLEU (BLEU, chrF)")
    e.add_argument("run", help=f"run folder ({CHECKPOINTS}) or checkpoint file")
    e.add_argument("--data", default=DEFAULT_DATA, help=f"corpus (default: {DEFAULT_DATA})")
    e.add_argument("--split", default="test_2016_flickr", help="split to score (default: test_2016_flickr)")
    e.add_argument("--beam", type=int, default=5, help="beam size; 1 = greedy (default: 5)")
    e.add_argument("--length-penalty", type=float, default=1.0, help="rank beams by score / length**LP (default: 1.0)")
    e.add_argument("--out", help="folder for hypotheses and scores (default: RUN/eval)")
    _add_engine_flags(e)
    e.set_defaults(func=cmd_evaluate)


def _add_engine_flags(p: argparse.ArgumentParser) -> None:
    """How to run a model: the decoder, its precision, its layout on the cores."""
    p.add_argument("--engine", choices=("torch", "ctranslate2"), default="torch",
                   help="torch: ours, every architecture (default); ctranslate2: the Transformer, exported on first use")
    p.add_argument("--quantize", choices=("none", "int8", "bf16"), default="none",
                   help="reduced precision for inference: int8 weights (CPU) or bfloat16 (GPUs, and CPUs with AVX-512 "
                        "BF16 or AMX; elsewhere it is emulated, slower than none) (default: none)")
    p.add_argument("--workers", type=int, default=0,
                   help="decoding workers, each on one thread (default 0: one per core)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")


def _add_translate(sub: argparse._SubParsersAction) -> None:
    r = sub.add_parser("translate", help="translate lines from stdin, one per line")
    r.add_argument("run", help="run folder or checkpoint file")
    r.add_argument("--beam", type=int, default=5, help="beam size; 1 = greedy (default: 5)")
    r.add_argument("--attention", action="store_true", help="print JSON lines with tokens and attention weights")
    r.add_argument("--no-split", action="store_true",
                   help="translate each line as one sequence (default: lines of several sentences are split, each "
                        "sentence translated, the line rejoined; --n-best lists only one-sentence lines)")
    r.add_argument("--n-best", type=int, default=1,
                   help="print the K best translations of each line as `LINE ||| TEXT ||| SCORE` (default: 1)")
    _add_engine_flags(r)
    r.set_defaults(func=cmd_translate)


def _add_export(sub: argparse._SubParsersAction) -> None:
    x = sub.add_parser("export", help="export a Transformer run for another engine (CTranslate2)")
    x.add_argument("run", help=f"run folder ({CHECKPOINTS}) or checkpoint file")
    x.add_argument("--format", choices=("ctranslate2",), default="ctranslate2", help="target engine (default: ctranslate2)")
    x.add_argument("--quantization", choices=("int8", "float32"), default="int8", help="weights (default: int8)")
    x.add_argument("--out", required=True, help="folder to write (replaced if it exists)")
    x.set_defaults(func=cmd_export)

    a = sub.add_parser("average", help="average a run's kept checkpoints (train --keep N) into a new run folder")
    a.add_argument("run", help="run folder trained with --keep")
    a.add_argument("--last", type=int, help="the last N kept checkpoints")
    a.add_argument("--best", type=int, help="the N kept checkpoints with the best validation BLEU")
    a.add_argument("--out", help="run folder to write (default: RUN-avglastN / RUN-avgbestN beside the run)")
    a.set_defaults(func=cmd_average)


def _add_compare(sub: argparse._SubParsersAction) -> None:
    c = sub.add_parser(
        "compare", help="train every model of a comparison config on an equal budget, evaluate, write the report",
        description="Train (or resume) every model in --config on the same data, tokenizer, seed and budget; "
        "evaluate; measure gradient flow and attention; write REPORT/README.md with plots. Finished runs are skipped.",
    )
    c.add_argument("--config", required=True, help="comparison config (see translate/comparison.py)")
    c.add_argument("--out", required=True, help="report folder, e.g. reports/multi30k-de-en")
    c.add_argument("--runs", help="folder for the runs' checkpoints (default: runs/compare-<report folder name>)")
    c.add_argument("--only", nargs="+", metavar="NAME", help="train/evaluate only these models")
    c.add_argument("--report-only", action="store_true", help="write the report from finished runs without training more")
    c.add_argument("--long", action="store_true",
                   help="the converged mode: every model trained until validation BLEU stops improving, with the "
                   "config's [long] settings, into RUNS/long/ (a GPU's work)")
    c.add_argument("--jobs", type=int, help="models trained at once, each in its own process (default: [long] jobs "
                   "with --long, else 1)")
    c.add_argument("--no-report", action="store_true", help="train and evaluate only; write no report")
    c.set_defaults(func=cmd_compare)


def _add_data(sub: argparse._SubParsersAction) -> None:
    d = sub.add_parser("data", help="corpus helpers")
    dsub = d.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    f = dsub.add_parser("fetch", help="fill a folder with Multi30k (task 1: en, de, fr, cs)")
    f.add_argument("--out", default=DEFAULT_DATA, help=f"destination folder (default: {DEFAULT_DATA})")
    f.add_argument("--from", dest="source", help="copy from this local Multi30k folder instead of downloading")
    f.set_defaults(func=cmd_data_fetch)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="translate", description="Train, evaluate, compare and serve translation models.")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_train, _add_evaluate, _add_translate, _add_export, _add_compare, _add_data):
        add(sub)
    # Commands from other packages (the HTTP service's `serve`) plug in here, so this module never imports them.
    for ep in entry_points(group="translate.commands"):
        try:
            ep.load()(sub)
        except ImportError as e:
            log.debug("command plugin %s unavailable: %s", ep.name, e)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # what a command that relaunches itself repeats
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    keep_freed_memory()  # faster CPU training steps: see translate/memory.py
    _quiet_datasets()
    signal.signal(signal.SIGTERM, _raise_interrupt)  # a `kill` saves the run like Ctrl-C does
    try:
        return args.func(args)
    except TrainingInterrupted as e:
        print(str(e), file=sys.stderr)
        return 130
    except (TranslateError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def _quiet_datasets() -> None:
    import datasets
    import tqdm

    # tqdm's monitor thread would make this process multi-threaded, and the decoding engine forks its workers only
    # from a process without other threads (translate/engine.py).
    tqdm.tqdm.monitor_interval = 0

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()


if __name__ == "__main__":
    sys.exit(main())
