"""Exceptions raised by lexmargin. Every failure mode has its own readable type."""


class LexmarginError(Exception):
    """Base class of all lexmargin errors."""


class DataError(LexmarginError, ValueError):
    """Input data is malformed: non-finite values, wrong shapes, labels not +-1, ..."""


class ModelError(LexmarginError, ValueError):
    """A model declaration is inconsistent (bad shapes, unknown blocks, bad function)."""


class HomogeneityError(ModelError):
    """A block's declared positive-homogeneity degree does not hold."""


class NotSeparableError(LexmarginError):
    """The data cannot be separated by the model (the margin problem is infeasible)."""


class SolverError(LexmarginError, RuntimeError):
    """IPOPT failed (iteration limit, restoration failure, numerical trouble)."""

    def __init__(self, message: str, status: str = "failed"):
        super().__init__(message)
        self.status = status
