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


class IndexBuildError(MarcBatchError):
    """An index cannot be built from these ids or vectors."""


class IndexRecallError(IndexBuildError):
    """An approximate index missed its recall target; it must not be published."""


class ConservationError(MarcBatchError):
    """Rows in differ from rows embedded plus rows quarantined; nothing was published."""


class EncodeError(MarcBatchError):
    """Texts could not be encoded (e.g. one text alone does not fit in device memory)."""


class StoreError(MarcBatchError):
    """A snapshot store operation cannot proceed; the published state is unchanged."""


class StoreUnavailable(StoreError):
    """The object store kept failing past the client's retries: transient, so a re-run resumes."""


class ManifestError(StoreError):
    """A manifest is malformed or names something it may not (a path outside the root)."""


class SnapshotNotFound(StoreError):
    """No retained snapshot or channel has the requested version, id or name."""


class SnapshotConflict(StoreError):
    """Another publisher committed first and the two changes cannot both stand."""


class ChannelConflict(StoreError):
    """A channel moved between reading it and updating it."""


class CorruptFile(StoreError):
    """A file's size, checksum, row count or schema differs from what its manifest records."""


class SpaceMismatch(StoreError):
    """Vectors of different model versions were to be combined, with no aligned view asked for."""


class ArtifactError(MarcBatchError):
    """A model artifact is missing, incomplete, or does not match its recorded hashes."""


class SlotUnavailable(MarcBatchError):
    """No 'gpu' concurrency slot came free within ``flows.slot_wait_seconds``."""


class IncompatibleModel(StoreError):
    """A protected channel would move to vectors of a model its readers were not trained on."""
