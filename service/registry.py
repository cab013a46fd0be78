"""The served models: every run under a folder, loaded once; a run that fails keeps its reason."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from translate import TranslateError, Translator

log = logging.getLogger(__name__)

METRIC_KEYS = ("bleu", "chrf", "split", "beam", "n_sentences")


def find_runs(models_dir: Path) -> dict[str, Path]:
    """name -> path: run folders (holding best.pt or last.pt) and loose .pt files, directly under models_dir."""
    models_dir = Path(models_dir)
    if not models_dir.is_dir():
        return {}
    runs = {}
    for path in sorted(models_dir.iterdir()):
        if path.is_dir() and ((path / "best.pt").exists() or (path / "last.pt").exists()):
            runs[path.name] = path
        elif path.suffix == ".pt" and path.is_file():
            runs[path.stem] = path
    return runs


@dataclass
class Registry:
    translators: dict[str, Translator] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    loaded: bool = False

    def load(self, models_dir: Path, device: str = "cpu") -> None:
        runs = find_runs(models_dir)
        if not runs:
            self.errors["*"] = f"no runs (folders with best.pt or last.pt) found in {models_dir}"
        for name, path in runs.items():
            try:
                self.translators[name] = Translator.load(path, device=device)
                log.info("loaded model %s from %s", name, path)
            except (TranslateError, OSError, RuntimeError) as e:
                self.errors[name] = str(e)
                log.error("model %s failed to load: %s", name, e)
        self.loaded = True

    def metrics(self, name: str) -> dict[str, dict]:
        """The run's own evaluation results: `translate evaluate` files, else its last validation."""
        out = {}
        for key, value in self.translators[name].metrics.items():
            if isinstance(value, dict) and "bleu" in value:
                out[key] = {k: value[k] for k in METRIC_KEYS if k in value}
        raw = self.translators[name].metrics
        if "val_bleu" in raw:
            out["validation"] = {"bleu": raw["val_bleu"], "chrf": raw.get("val_chrf", 0.0), "split": raw.get("split", "val"),
                                 "beam": raw.get("beam", 1), "step": raw.get("step", 0)}
        return out
