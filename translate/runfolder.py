"""The run folder: the one place that knows its layout, finds runs and their checkpoints, and reads and writes
its records.

    RUN/config.json       the run's settings (RunConfig as plain data)
    RUN/best.pt           best validation BLEU (weights only)          } self-describing checkpoints,
    RUN/last.pt           latest state, resumable (optimizer, RNG)     } see translate.checkpoint
    RUN/log.jsonl         one ValidationRecord per line
    RUN/grad_norms.txt    the global gradient norm before clipping, one line per update (line n = step n)
    RUN/summary.json      TrainSummary, once training has ended
    RUN/eval/{split}.beam{k}[.lp{x}].json / .hyp.txt   EvalResult and the hypotheses of `translate evaluate`
    RUN/eval/tuned.json   TunedResult: length penalty chosen on val (comparison)
    RUN/analysis.json     Analysis: gradient flow and attention maps (comparison)
    RUN/averaging.json    Averaging: a converged run's checkpoint averaging and the model kept (comparison)
    RUN/ctranslate2-{int8|float32}/   the CTranslate2 export `--engine ctranslate2` made (translate.ct2)

Every file is written atomically (temporary file in the same folder, fsync, rename): a kill mid-write leaves the
previous file intact, never a truncated one.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from translate.errors import CheckpointError
from translate.records import Analysis, Averaging, EvalResult, TrainSummary, TunedResult, ValidationRecord

logger = logging.getLogger(__name__)

R = TypeVar("R")
CHECKPOINT_SUFFIX = ".pt"
CHECKPOINTS = "best.pt, else last.pt"  # for help texts and messages


def write_atomic(path: Path, data: bytes) -> None:
    """Replace `path` with `data` all at once: readers see the old file or the new one, never a partial one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files; others (a service's user) may need to read it
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, value: Any) -> None:
    """A record or plain data as indented JSON, atomically."""
    write_atomic(path, json.dumps(msgspec.to_builtins(value), indent=2).encode() + b"\n")


def eval_stem(split: str, beam_size: int, length_penalty: float = 1.0) -> str:
    """The file name (without suffix) of one evaluation's hypotheses and scores."""
    return f"{split}.beam{beam_size}" + (f".lp{length_penalty:g}" if length_penalty != 1.0 else "")


def eval_files(eval_dir: Path, split: str, beam: int, length_penalty: float = 1.0) -> tuple[Path, Path]:
    """The scores (.json) and hypotheses (.hyp.txt) files of one evaluation in `eval_dir`."""
    stem = eval_stem(split, beam, length_penalty)
    return Path(eval_dir) / f"{stem}.json", Path(eval_dir) / f"{stem}.hyp.txt"


def write_eval(eval_dir: Path, result: EvalResult, hypotheses: list[str]) -> Path:
    """Store one scored decode and its hypotheses in `eval_dir`; returns the hypotheses file."""
    scores, hyp = eval_files(eval_dir, result.split, result.beam, result.length_penalty)
    write_atomic(hyp, ("\n".join(hypotheses) + "\n").encode())
    write_json(scores, result)
    return hyp


class RunFolder:
    """Paths and records of one run folder (which need not exist yet)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    # --- paths ---------------------------------------------------------------------------------------
    config = property(lambda self: self.path / "config.json")
    best = property(lambda self: self.path / "best.pt")
    last = property(lambda self: self.path / "last.pt")
    log = property(lambda self: self.path / "log.jsonl")
    grad_norms = property(lambda self: self.path / "grad_norms.txt")
    summary = property(lambda self: self.path / "summary.json")
    analysis = property(lambda self: self.path / "analysis.json")
    averaging = property(lambda self: self.path / "averaging.json")
    eval_dir = property(lambda self: self.path / "eval")
    tuned = property(lambda self: self.path / "eval" / "tuned.json")

    def ctranslate2(self, quantization: str) -> Path:
        return self.path / f"ctranslate2-{quantization}"

    def eval_json(self, split: str, beam: int, length_penalty: float = 1.0) -> Path:
        return eval_files(self.eval_dir, split, beam, length_penalty)[0]

    def eval_hyp(self, split: str, beam: int, length_penalty: float = 1.0) -> Path:
        return eval_files(self.eval_dir, split, beam, length_penalty)[1]

    def record_files(self) -> list[Path]:
        """The files a report needs from the run, checkpoints excluded (they are large)."""
        return [p for p in (self.config, self.log, self.grad_norms, self.summary, self.averaging) if p.exists()]

    # --- checkpoints ---------------------------------------------------------------------------------
    def has_checkpoint(self) -> bool:
        return self.best.is_file() or self.last.is_file()

    def checkpoint(self) -> Path:
        """The best checkpoint, else the last one."""
        for path in (self.best, self.last):
            if path.is_file():
                return path
        raise CheckpointError(f"no checkpoint ({CHECKPOINTS}) in {self.path}")

    def snapshot(self, step: int) -> Path:
        """The checkpoint kept from the validation at `step` (training's `keep`)."""
        return self.path / f"step-{step:08d}.pt"

    def snapshots(self) -> list[Path]:
        """The kept validation checkpoints, oldest first."""
        return sorted(self.path.glob("step-*.pt"))

    # --- records -------------------------------------------------------------------------------------
    def append_validation(self, record: ValidationRecord) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as f:  # appended, not rewritten: a kill loses at most this line
            f.write(msgspec.json.encode(record) + b"\n")

    def read_log(self) -> list[ValidationRecord]:
        if not self.log.exists():
            return []
        lines = self.log.read_bytes().splitlines()
        return [msgspec.json.decode(line, type=ValidationRecord) for line in lines if line.strip()]

    def append_grad_norms(self, norms: list[float]) -> None:
        """The next updates' gradient norms (appended, like the log)."""
        with open(self.grad_norms, "a", encoding="utf-8") as f:
            f.writelines(f"{n:.4g}\n" for n in norms)

    def read_grad_norms(self) -> list[float]:
        if not self.grad_norms.exists():
            return []
        return [float(line) for line in self.grad_norms.read_text(encoding="utf-8").split()]

    def truncate_grad_norms(self, steps: int) -> None:
        """Keep the first `steps` norms: a resumed run drops those of updates taken after its last.pt."""
        norms = self.read_grad_norms()
        if len(norms) > steps:
            write_atomic(self.grad_norms, "".join(f"{n:.4g}\n" for n in norms[:steps]).encode())

    def write_summary(self, summary: TrainSummary) -> None:
        write_json(self.summary, summary)

    def read_summary(self) -> TrainSummary | None:
        return _read(self.summary, TrainSummary)

    def write_eval(self, result: EvalResult, hypotheses: list[str]) -> Path:
        """Store a scored decode and its hypotheses in the run's eval folder; returns the hypotheses file."""
        return write_eval(self.eval_dir, result, hypotheses)

    def read_eval(self, split: str, beam: int, length_penalty: float = 1.0) -> EvalResult | None:
        return _read(self.eval_json(split, beam, length_penalty), EvalResult)

    def evaluations(self) -> dict[str, EvalResult]:
        """Every stored evaluation, keyed by file stem (`test_2016_flickr.beam5`); unreadable files are skipped."""
        out = {}
        for path in sorted(self.eval_dir.glob("*.json")):
            if path == self.tuned:
                continue
            try:
                out[path.stem] = _read(path, EvalResult)
            except CheckpointError as e:
                logger.warning("%s", e)
        return out

    def write_tuned(self, tuned: TunedResult) -> None:
        write_json(self.tuned, tuned)

    def read_tuned(self) -> TunedResult | None:
        return _read(self.tuned, TunedResult)

    def write_analysis(self, analysis: Analysis) -> None:
        write_atomic(self.analysis, msgspec.json.encode(analysis))

    def read_analysis(self) -> Analysis | None:
        return _read(self.analysis, Analysis)

    def write_averaging(self, averaging: Averaging) -> None:
        write_json(self.averaging, averaging)

    def read_averaging(self) -> Averaging | None:
        return _read(self.averaging, Averaging)

    def write_config(self, config: dict[str, Any]) -> None:
        write_json(self.config, config)

    def read_config(self) -> dict[str, Any] | None:
        return json.loads(self.config.read_text(encoding="utf-8")) if self.config.exists() else None


def _read(path: Path, kind: type[R]) -> R | None:
    """A record file, or None where it does not exist; a damaged one raises CheckpointError naming it."""
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_bytes())
        if kind is TrainSummary and not data.get("final"):
            data["final"] = None  # runs that never validated wrote {} here
        return msgspec.convert(data, kind)
    except (OSError, ValueError, msgspec.ValidationError) as e:
        raise CheckpointError(f"{path} is not a readable {kind.__name__}: {e}") from e


def resolve_checkpoint(run: str | Path) -> Path:
    """A run folder's best checkpoint (else its last), or the checkpoint file itself."""
    run = Path(run)
    if run.is_file():
        return run
    if not run.exists():
        raise CheckpointError(f"run not found: {run}")
    return RunFolder(run).checkpoint()


def run_of(checkpoint: Path) -> RunFolder:
    """The run folder a checkpoint file belongs to (where its evaluations are stored)."""
    return RunFolder(Path(checkpoint).parent)


def find_runs(models_dir: str | Path) -> dict[str, Path]:
    """name -> path: run folders (holding best.pt or last.pt) and loose .pt files, directly under `models_dir`."""
    models_dir = Path(models_dir)
    if not models_dir.is_dir():
        return {}
    runs = {}
    for path in sorted(models_dir.iterdir()):
        if path.is_dir() and RunFolder(path).has_checkpoint():
            runs[path.name] = path
        elif path.suffix == CHECKPOINT_SUFFIX and path.is_file():
            runs[path.stem] = path
    return runs
