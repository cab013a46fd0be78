"""Checkpoint averaging: the mean of the weights of a run's last (or best) kept checkpoints.

Averaging the checkpoints near the end of training smooths the noise of the last updates and usually gains some
BLEU at no decoding cost (Vaswani et al. 2017 averaged their last 5 or 20). Training keeps the checkpoints with
`keep` (`translate train --keep N`); `translate average` writes the mean as a run folder of its own (best.pt and the
run's config), which every command and the service take like any run.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from translate.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from translate.errors import CheckpointError
from translate.runfolder import RunFolder


def pick(run: Path, last: int = 0, best: int = 0) -> list[Path]:
    """The kept checkpoints of `run`: its last N, or its N with the best validation BLEU."""
    kept = RunFolder(run).snapshots()
    n = last or best
    if n < 1:
        raise CheckpointError("say how many checkpoints to average: --last N or --best N")
    if len(kept) < n:
        raise CheckpointError(f"{run} keeps {len(kept)} checkpoint(s) (step-*.pt), fewer than {n}: "
                              "train with --keep N to keep them")
    if last:
        return kept[-n:]
    bleu = {path: load_checkpoint(path).metrics.val_bleu for path in kept}
    return sorted(sorted(kept, key=lambda p: -bleu[p])[:n])


def average(paths: list[Path]) -> Checkpoint:
    """The element-wise mean of the checkpoints' floating-point weights (they must share model and tokenizers)."""
    first = load_checkpoint(paths[0])
    sums = {k: v.double() if v.is_floating_point() else v for k, v in first.weights.items()}
    for path in paths[1:]:
        ckpt = load_checkpoint(path)
        if (ckpt.arch, ckpt.model_config) != (first.arch, first.model_config) or ckpt.weights.keys() != sums.keys():
            raise CheckpointError(f"{path} is not the same model as {paths[0]}: it cannot be averaged with it")
        for k, v in ckpt.weights.items():
            if v.is_floating_point():
                sums[k] += v.double()
    weights = {k: (v / len(paths)).to(first.weights[k].dtype) if v.is_floating_point() else v for k, v in sums.items()}
    return Checkpoint(first.arch, first.model_config, weights, first.tokenizers, first.src_lang, first.tgt_lang)


def write_average(run: Path, out: Path, last: int = 0, best: int = 0) -> tuple[Path, list[Path]]:
    """Average the picked checkpoints of `run` into the run folder `out` (its best.pt; the config copied)."""
    paths = pick(run, last, best)
    folder = RunFolder(out)
    folder.path.mkdir(parents=True, exist_ok=True)
    save_checkpoint(folder.best, average(paths))
    if RunFolder(run).config.exists():
        shutil.copyfile(RunFolder(run).config, folder.config)
    return folder.best, paths


