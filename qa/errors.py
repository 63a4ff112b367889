"""The one error tree. Messages say what went wrong and what to do; only the CLI/TUI print them.

::

    QAError                    every error newsqa reports to a person (exit code 1)
    ├── IndexNotFound          no index in the folder: run `newsqa index` first
    ├── IndexMismatch          index built with another embedding model or dimension
    ├── CorruptIndex           index files exist but cannot be read
    │   └── DamagedStore       the SQLite store file is damaged: run `newsqa index --rebuild`
    ├── BadArticle             one file, line or record is not a usable article
    ├── FetchError             a page or feed could not be fetched or holds no article
    ├── BackendError           the search backend cannot be used (unreachable, refused a call)
    ├── TrainingError          reader training cannot go on (checkpoint, data, device, bundle)
    ├── ClusterError           the Ray cluster of `import --ray` is unreachable or failed
    ├── UsageError             bad arguments the CLI parser could not catch (exit code 2)
    │   ├── SettingError       a NEWSQA_* environment variable has a value it does not allow
    │   └── BadBackendURI      a --backend URI that names no backend newsqa knows
    └── ModelLoadError         a model (embedder or reader) could not be loaded
        ├── ReaderLoadError    the reader's files are missing, corrupt or incomplete
        └── TeacherMismatch    a distillation teacher cannot read the student's windows
"""

from __future__ import annotations


class QAError(Exception):
    """Base class of every error newsqa reports to a person."""


class IndexNotFound(QAError):
    """No index in the index folder."""

    def __init__(self, index_dir: str) -> None:
        super().__init__(f"no index in {index_dir}: run `newsqa index` first")


class IndexMismatch(QAError):
    """The index was built with another embedding model or dimension."""


class CorruptIndex(QAError):
    """Index files exist but cannot be read."""


class DamagedStore(CorruptIndex):
    """The index's SQLite store file is damaged (or is not a store at all)."""

    def __init__(self, path: str, detail: str) -> None:
        super().__init__(
            f"the index store {path} is damaged ({detail}): run `newsqa index --rebuild` "
            "to rebuild it from the corpus"
        )
        self.path = path
        self.detail = detail


class BadArticle(QAError):
    """An input file (or one line/record of it) is not a usable article."""

    def __init__(self, origin: str, reason: str, line: int | None = None) -> None:
        where = f"{origin}:{line}" if line is not None else origin
        super().__init__(f"{where}: {reason}")
        self.origin = origin
        self.reason = reason
        self.line = line


class ModelLoadError(QAError):
    """A model (embedder or reader) could not be loaded."""


class ReaderLoadError(ModelLoadError):
    """The reader model could not be loaded (missing, corrupt or incomplete files)."""


class TeacherMismatch(ModelLoadError):
    """The teacher's tokenizer cannot read the student's windows."""


class UsageError(QAError):
    """Bad arguments that the CLI parser could not catch (dates, files)."""


class SettingError(UsageError):
    """A ``NEWSQA_*`` environment variable holds a value it does not allow."""


class TrainingError(QAError):
    """Reader training, calibration or its GPU bundle cannot go on (``python -m qa.train``).

    A missing checkpoint to resume, a missing data file, a device that is not there, or a
    GPU bundle that is incomplete, damaged or unsafe to extract.
    """


class ClusterError(QAError):
    """The Ray cluster of ``newsqa import --ray`` cannot be reached, or its work failed."""


class FetchError(QAError):
    """A web page or feed could not be fetched, or holds no usable article (``newsqa add``)."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


class BadBackendURI(UsageError):
    """A search backend URI (``--backend``, ``NEWSQA_BACKEND``) that names no known backend."""

    def __init__(self, uri: str, reason: str) -> None:
        super().__init__(
            f"backend {uri!r}: {reason}; use embedded, milvus:PATH.db (a Milvus Lite file) "
            "or milvus://HOST:PORT (a Milvus server)"
        )
        self.uri = uri


class BackendError(QAError):
    """The search backend cannot be used: the server is unreachable or refused a call."""
