"""The errors of training: a run that diverged, a checkpoint that belongs to another training."""

from __future__ import annotations

from ...errors import DataError, LexmarginError


class DivergenceError(LexmarginError, FloatingPointError):
    """A run produced non-finite parameters or loss (usually: the step size is too large)."""


class CheckpointMismatchError(DataError):
    """A checkpoint belongs to another training: other data, another model or another configuration
    (a ``DataError``, hence a ``ValueError``)."""


__all__ = ["CheckpointMismatchError", "DivergenceError"]
