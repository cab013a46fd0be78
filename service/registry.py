"""The served models: every run under a folder, loaded once; a run that fails keeps its reason."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from translate import CHECKPOINTS, TranslateError, Translator, find_runs

from service.errors import NotReady, UnknownModel

log = logging.getLogger(__name__)


@dataclass
class Registry:
    translators: dict[str, Translator] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    loaded: bool = False

    def load(self, models_dir: Path, device: str = "cpu") -> None:
        runs = find_runs(models_dir)
        if not runs:
            self.errors["*"] = f"no runs (folders with {CHECKPOINTS}) found in {models_dir}"
        for name, path in runs.items():
            try:
                self.translators[name] = Translator.load(path, device=device)
                log.info("loaded model %s from %s", name, path)
            except (TranslateError, OSError, RuntimeError) as e:
                self.errors[name] = str(e)
                log.error("model %s failed to load: %s", name, e)
        self.loaded = True

    def get(self, name: str) -> Translator:
        """The loaded model called `name`; raises NotReady while loading, UnknownModel for a name not served."""
        if not self.loaded:
            raise NotReady()
        if name not in self.translators:
            raise UnknownModel(name, sorted(self.translators))
        return self.translators[name]

    def metrics(self, name: str) -> dict[str, dict[str, float | int | str]]:
        """The run's own evaluation results: `translate evaluate` files, and the validation that chose the checkpoint."""
        translator = self.translators[name]
        out: dict[str, dict[str, float | int | str]] = {
            stem: {"bleu": r.bleu, "chrf": r.chrf, "split": r.split, "beam": r.beam, "n_sentences": r.n_sentences}
            for stem, r in translator.evaluations.items()
        }
        v = translator.validation
        if v is not None:
            out["validation"] = {"bleu": v.val_bleu, "chrf": v.val_chrf, "split": v.split, "beam": v.beam, "step": v.step}
        return out
