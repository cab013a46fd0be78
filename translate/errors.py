"""Exceptions for bad input: each carries a message meant for the user, one line, no traceback needed."""


class TranslateError(Exception):
    """Base class: the command line prints these as `error: <message>` and exits with status 2."""


class CorpusError(TranslateError):
    """A corpus is missing, unreadable, misaligned, or lacks a requested language."""


class CheckpointError(TranslateError):
    """A checkpoint is missing, corrupt, or was not written by this toolkit."""


class ConfigError(TranslateError):
    """A model or training setting is unknown or has an invalid value."""


class TrainingInterrupted(TranslateError):
    """Training stopped on Ctrl-C or SIGTERM after saving a resumable checkpoint."""

    def __init__(self, out: str, step: int):
        super().__init__(f"interrupted at step {step}: resume with `translate train --out {out} --resume`")
        self.out, self.step = out, step
