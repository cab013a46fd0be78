"""translate: train, compare, understand and serve sequence-to-sequence translation models.

Public API (what the service and scripts use):
    Translator, Translation        load a run and translate text, with attention
    train, RunConfig               train a model into a run folder
    RunFolder, find_runs           a run folder's layout and records; the runs under a folder
    resolve_checkpoint             the checkpoint file a run folder serves
    read_parallel                  read a parallel corpus
    score, evaluate_run            sacreBLEU BLEU/chrF
    ARCHS, build_model             the model registry
    decode_settings                typed settings from config files, strings and environment variables
"""

from translate.config import RunConfig
from translate.data import read_parallel
from translate.errors import CheckpointError, ConfigError, CorpusError, TrainingInterrupted, TranslateError
from translate.evaluation import evaluate_run, score
from translate.models import ARCHS, build_model
from translate.records import EvalResult, TrainSummary, ValidationRecord
from translate.runfolder import CHECKPOINTS, RunFolder, find_runs, resolve_checkpoint
from translate.settings import decode_settings
from translate.training import train
from translate.engine import default_workers, pin_threads
from translate.translator import Translation, Translator, pick_device

__version__ = "0.1.0"

__all__ = [
    "ARCHS", "CHECKPOINTS", "CheckpointError", "ConfigError", "CorpusError", "EvalResult", "RunConfig", "RunFolder",
    "TrainSummary", "TrainingInterrupted", "TranslateError", "Translation", "Translator", "ValidationRecord",
    "build_model", "decode_settings", "default_workers", "evaluate_run", "find_runs", "pick_device", "pin_threads",
    "read_parallel", "resolve_checkpoint",
    "score", "train",
]
