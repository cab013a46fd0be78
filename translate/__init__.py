"""translate: train, compare, understand and serve sequence-to-sequence translation models.

Public API (what the service and scripts use):
    Translator, Translation        load a run and translate text, with attention
    train, RunConfig               train a model into a run folder
    read_parallel                  read a parallel corpus
    score, evaluate_run            sacreBLEU BLEU/chrF
    ARCHS, build_model             the model registry
"""

from translate.config import RunConfig
from translate.data import read_parallel
from translate.errors import CheckpointError, ConfigError, CorpusError, TranslateError
from translate.evaluation import evaluate_run, score
from translate.models import ARCHS, build_model
from translate.training import train
from translate.translator import Translation, Translator

__version__ = "0.1.0"

__all__ = [
    "ARCHS", "CheckpointError", "ConfigError", "CorpusError", "RunConfig", "TranslateError", "Translation",
    "Translator", "build_model", "evaluate_run", "read_parallel", "score", "train",
]
