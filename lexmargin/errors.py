"""Exceptions raised by lexmargin. Every failure mode has its own readable type.

Errors raised for a solve that ended without success carry the certificate (``.certificate``) with
the status and the numbers, so nothing computed is lost.
"""


class LexmarginError(Exception):
    """Base class of all lexmargin errors."""


class DataError(LexmarginError, ValueError):
    """Input data is malformed: non-finite values, wrong shapes, labels not +-1, ..."""


class LabelError(DataError):
    """Multi-class labels that are not integers in 0..K-1 for a data set of K classes."""


class ClassCountError(DataError):
    """The data's classes and the model's outputs disagree: a K-output model on binary (+-1) data, a binary
    model on K-class data, or K classes against a different number of outputs."""


class ModelError(LexmarginError, ValueError):
    """A model declaration is inconsistent (bad shapes, unknown blocks, bad function)."""


class HomogeneityError(ModelError):
    """A block's declared positive-homogeneity degree does not hold."""


class NotSeparableError(LexmarginError):
    """Proved: the data cannot be separated by the model (a Farkas certificate for models linear in theta,
    stored in ``certificate.diagnostics.farkas``)."""

    def __init__(self, message: str, certificate=None):
        super().__init__(message)
        self.certificate = certificate


class SolverError(LexmarginError, RuntimeError):
    """A solve ended without a certified solution; ``status`` says how (max_iterations, inaccurate, ...)."""

    def __init__(self, message: str, status: str = "failed", certificate=None):
        super().__init__(message)
        self.status = str(status)
        self.certificate = certificate


class NoSeparatingPointError(SolverError):
    """A nonconvex model: no start reached a separating point (local evidence, not a proof)."""


class FileInUseError(LexmarginError, OSError):
    """Another run (in this or another process) is writing the same file; raised before any work is done."""


class MissingDependencyError(LexmarginError, ImportError):
    """An optional dependency a feature needs is not installed (e.g. dask for ``--jobs``); the message names
    the extra to install."""


class SweepError(LexmarginError, ValueError):
    """A sweep configuration or a sweep report is invalid, or reports of different sweeps were merged."""
