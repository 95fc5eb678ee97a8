"""Exceptions that carry a one-line, user-facing message (file, row or argument, and what to do)."""


class EmbedLLMError(Exception):
    """Base class: the CLI prints str(exc) on one line and exits non-zero."""


class WarehouseError(EmbedLLMError):
    """The warehouse file is missing, locked or has an unexpected schema."""


class WarehouseLocked(WarehouseError):
    """Another process holds the DuckDB write lock."""


class InputError(EmbedLLMError):
    """An input file or directory is malformed (names file, line and column)."""


class UnknownModel(InputError):
    """A model name that the registry or the training run does not hold."""


class AggregateMismatch(InputError):
    """Per-sample labels do not reproduce lm-eval's aggregate for a task."""


class ConfigError(EmbedLLMError):
    """A suite, label rule, model entry or threshold is unknown or invalid."""


class PipelineStopped(EmbedLLMError):
    """A stage refused to go on (e.g. validation failed before training)."""
