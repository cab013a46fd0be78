"""The served models: every run under a folder, loaded once; a run that fails keeps its reason."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from translate import CHECKPOINTS, ConfigError, TranslateError, Translator, find_runs

from service.errors import NotReady, UnknownModel

log = logging.getLogger(__name__)


@dataclass
class Registry:
    translators: dict[str, Translator] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    loaded: bool = False  # set by the app once the models are loaded and their workers are ready

    def load(self, models_dir: Path, device: str = "cpu", engine: str = "torch", quantize: str = "none") -> None:
        """Every run under `models_dir`; with engine ctranslate2, Transformers run on it and the others on ours."""
        runs = find_runs(models_dir)
        if not runs:
            self.errors["*"] = f"no runs (folders with {CHECKPOINTS}) found in {models_dir}"
        for name, path in runs.items():
            try:
                self.translators[name] = self._load_one(path, device, engine, quantize)
                t = self.translators[name]
                log.info("loaded model %s from %s (%s engine, %s)", name, path, t.engine_name, t.quantize)
            except (TranslateError, OSError, RuntimeError) as e:
                self.errors[name] = str(e)
                log.error("model %s failed to load: %s", name, e)

    @staticmethod
    def _load_one(path: Path, device: str, engine: str, quantize: str) -> Translator:
        # One search per call: the service runs one call per worker, each worker on one core.
        if engine == "ctranslate2":
            try:
                return Translator.load(path, device=device, engine=engine, quantize=quantize, workers=1)
            except ConfigError as e:
                log.info("%s stays on the torch engine: %s", path.name, e)
        return Translator.load(path, device=device, quantize=quantize, workers=1)

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
