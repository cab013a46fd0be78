"""The served models: every run under a folder, loaded once; a run that fails keeps its reason.

A reload (`Registry.load` with `previous`) loads only runs whose checkpoint changed, reuses the others, and keeps
serving the previous version of a run whose new files fail to load.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from translate import CHECKPOINTS, ConfigError, TranslateError, Translator, find_runs, resolve_checkpoint

from service.errors import NotReady, UnknownModel, UnsupportedPair
from service.schemas import Score

log = logging.getLogger(__name__)

Version = tuple[str, int, int]  # the checkpoint file's path, modification time (ns) and size


def version_of(run: Path) -> Version:
    checkpoint = resolve_checkpoint(run)
    stat = checkpoint.stat()
    return str(checkpoint), stat.st_mtime_ns, stat.st_size


@dataclass
class Registry:
    translators: dict[str, Translator] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    sources: dict[str, Path] = field(default_factory=dict)  # name -> the run each served model was loaded from
    versions: dict[str, Version] = field(default_factory=dict)
    kept: set[str] = field(default_factory=set)  # served from memory: their files changed and failed to load
    loaded: bool = False  # set by the app once the models are loaded and their workers are ready

    @property
    def status(self) -> str:
        """loading | ready | no models (what `/ready` says)."""
        return "loading" if not self.loaded else "ready" if self.translators else "no models"

    def load(
        self, models_dir: Path, device: str = "cpu", engine: str = "torch", quantize: str = "none",
        previous: Registry | None = None,
    ) -> None:
        """Every run under `models_dir`; with engine ctranslate2, Transformers run on it and the others on ours.

        With `previous` (a reload): unchanged runs reuse its translators, and a run that fails keeps its old version.
        """
        runs = find_runs(models_dir)
        if not runs:
            self.errors["*"] = f"no runs (folders with {CHECKPOINTS}) found in {models_dir}"
        for name, path in runs.items():
            try:
                version = version_of(path)
                if previous is not None and previous.versions.get(name) == version and name not in previous.kept:
                    self._serve(name, path, version, previous.translators[name])
                    continue
                self._serve(name, path, version, self.load_one(path, device, engine, quantize))
                t = self.translators[name]
                log.info("loaded model %s from %s (%s engine, %s)", name, path, t.engine_name, t.quantize)
            except (TranslateError, OSError, RuntimeError) as e:
                if previous is not None and name in previous.translators:
                    self._serve(name, previous.sources[name], previous.versions[name], previous.translators[name])
                    self.kept.add(name)
                    self.errors[name] = f"reload failed, serving the previous version: {e}"
                else:
                    self.errors[name] = str(e)
                log.error("model %s failed to load: %s", name, e)

    def _serve(self, name: str, path: Path, version: Version, translator: Translator) -> None:
        self.translators[name], self.sources[name], self.versions[name] = translator, path, version

    @staticmethod
    def load_one(path: Path, device: str, engine: str, quantize: str) -> Translator:
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

    def pairs(self) -> dict[tuple[str, str], list[str]]:
        """(source, target) -> the models for that language pair, the best validation BLEU first."""
        def rank(name: str) -> tuple[float, str]:
            v = self.translators[name].validation
            return (-(v.val_bleu if v is not None else 0.0), name)

        out: dict[tuple[str, str], list[str]] = {}
        for name in sorted(self.translators, key=rank):
            t = self.translators[name]
            out.setdefault((t.src_lang, t.tgt_lang), []).append(name)
        return out

    def source_languages(self) -> list[str]:
        """The languages some served model translates from."""
        return sorted({source for source, _ in self.pairs()})

    def route(self, source: str, target: str) -> str:
        """The model that serves source -> target (the best by validation BLEU); UnsupportedPair if none does."""
        if not self.loaded:
            raise NotReady()
        pairs = self.pairs()
        if (source, target) not in pairs:
            raise UnsupportedPair(source, target, sorted(f"{s}-{t}" for s, t in pairs))
        return pairs[source, target][0]

    def metrics(self, name: str) -> dict[str, Score]:
        """The run's own evaluation results: `translate evaluate` files, and the validation that chose the checkpoint."""
        translator = self.translators[name]
        out = {
            stem: Score(r.bleu, r.chrf, r.split, r.beam, n_sentences=r.n_sentences)
            for stem, r in translator.evaluations.items()
        }
        v = translator.validation
        if v is not None:
            out["validation"] = Score(v.val_bleu, v.val_chrf, v.split, v.beam, step=v.step)
        return out
