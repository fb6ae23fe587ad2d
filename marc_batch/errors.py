"""User-facing errors.

Everything a user can cause (a bad config, a missing file, a catalogue past its
error budget) raises a subclass of :class:`MarcBatchError`. The CLI prints such
errors on one line and exits non-zero; any other exception is a bug and keeps
its traceback.
"""


class MarcBatchError(Exception):
    """An error the user can fix; its message is the whole explanation."""


class ConfigError(MarcBatchError):
    """The configuration file or an environment override is invalid."""


class SourceError(MarcBatchError):
    """A source cannot be read, or lacks a column the schema requires."""


class TemplateError(MarcBatchError):
    """A text template is malformed or names a field it may not use."""


class ErrorBudgetExceeded(MarcBatchError):
    """More rows were quarantined than the configured error budget allows."""


class ArtifactError(MarcBatchError):
    """A model artifact is missing, incomplete, or does not match its recorded hashes."""
