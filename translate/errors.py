"""Exceptions for bad input: each carries a message meant for the user, one line, no traceback needed."""


class TranslateError(Exception):
    """Base class: the command line prints these as `error: <message>` and exits with status 2."""


class CorpusError(TranslateError):
    """A corpus is missing, unreadable, misaligned, or lacks a requested language."""


class CheckpointError(TranslateError):
    """A checkpoint is missing, corrupt, or was not written by this toolkit."""


class ConfigError(TranslateError):
    """A model or training setting is unknown or has an invalid value."""
