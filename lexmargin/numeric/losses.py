"""Losses L(theta) = sum_n l(f_n) computed in log space, so nothing under- or overflows at huge margins.

``value_and_weights(f) -> (log_L, w)`` for margins f (R, N): log_L (R,) and softmax-like weights w (R, N)
with  grad log L = -sum_n w_n grad f_n.  For the exponential loss w = softmax(-f), and the normalized
GD step eta * grad L / L is exactly eta * grad log L.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


def logsumexp(a, axis=-1) -> np.ndarray:
    """log sum_i exp(a_i) along ``axis``, without overflow.

    Args:
        a: the exponents.
        axis: the axis summed over.

    Returns:
        The log-sum-exp, ``axis`` removed.
    """
    m = np.max(a, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    return (np.log(np.sum(np.exp(a - m), axis=axis, keepdims=True)) + m).squeeze(axis)


def _flush_subnormals(w) -> None:
    """Set weights below the smallest normal number to 0 in place.

    They are < 1e-300 relative to the largest weight, so this changes no sum, but subnormal operands
    make BLAS matrix products up to 100x slower.
    """
    np.copyto(w, 0, where=w < np.finfo(w.dtype).tiny)


# exp(x) for x below this is replaced by exp(this), a normal number ~1e-304 (float64) / ~1e-38 (float32):
# invisible next to the largest weight 1, and it keeps exp and BLAS off their slow subnormal paths.
_EXP_FLOOR = {np.dtype(np.float64): -700.0, np.dtype(np.float32): -87.0}


@dataclass(frozen=True)
class ExponentialLoss:
    """l(f) = exp(-f)."""

    name: str = "exp"

    def log_terms(self, f) -> np.ndarray:
        return -f

    def log_loss(self, f) -> np.ndarray:
        return logsumexp(-np.asarray(f))

    def scaled_weights(self, f, out=None):
        """(log L, e, 1/s) with weights w = e / s: e_n = exp(min f - f_n), s = sum_n e_n (5 passes over f).

        ``out``: optional buffer for e (same shape and dtype as f).
        """
        fmin = f.min(axis=-1, keepdims=True)
        e = np.subtract(fmin, f, out=out)
        np.maximum(e, _EXP_FLOOR.get(e.dtype, -700.0), out=e)
        np.exp(e, out=e)
        s = e.sum(axis=-1)
        return np.log(s) - fmin[..., 0], e, 1.0 / s

    def value_and_weights(self, f):
        log_L, e, inv_s = self.scaled_weights(f)
        e *= inv_s[..., None]
        return log_L, e

    def to_dict(self) -> dict:
        return {"name": self.name}


def _log_softplus_neg(f) -> np.ndarray:
    """log(log(1 + exp(-f))) without underflow: -f + log(log1p(u) / u), u = exp(-f), for f > 0."""
    f = np.asarray(f)
    pos = f > 0
    u = np.exp(-np.where(pos, f, 0))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(u > 0, np.log1p(u) / np.where(u > 0, u, 1), 1)
        small = -f + np.log(ratio)
        large = np.log(np.logaddexp(0, -np.where(pos, 0, f)))
    return np.where(pos, small, large)


@dataclass(frozen=True)
class LogisticLoss:
    """l(f) = log(1 + exp(-f))."""

    name: str = "logistic"

    def log_terms(self, f) -> np.ndarray:
        return _log_softplus_neg(f)

    def log_loss(self, f) -> np.ndarray:
        return logsumexp(self.log_terms(f))

    def value_and_weights(self, f):
        log_L = self.log_loss(f)
        # -l'(f) = sigmoid(-f);  log sigmoid(-f) = -log(1 + exp(f))
        w = np.exp(-np.logaddexp(0, f) - log_L[..., None])
        _flush_subnormals(w)
        return log_L, w

    def scaled_weights(self, f, out=None):
        log_L, w = self.value_and_weights(f)
        return log_L, w, np.ones_like(log_L)

    def to_dict(self) -> dict:
        return {"name": self.name}


class Loss(Protocol):
    """What the trainer asks of a loss: ``scaled_weights(f, out=None) -> (log L, e, 1/s)`` for margins f (R, N),
    with weights w = e / s and grad log L = -sum_n w_n grad f_n (e may be written into ``out``), and ``to_dict()``
    for checkpoints.  ``ExponentialLoss`` and ``LogisticLoss`` are the two built in (only the exponential loss
    takes the fused path)."""

    name: str

    def scaled_weights(self, f: np.ndarray, out: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        ...

    def to_dict(self) -> dict: ...


LOSSES = {"exp": ExponentialLoss, "exponential": ExponentialLoss, "logistic": LogisticLoss}


def get_loss(loss):
    """A loss object from a name ("exp", "logistic") or a loss object.

    Args:
        loss: a name or a loss object (a ``Loss``: what the trainer calls; returned as it is).

    Returns:
        ExponentialLoss, LogisticLoss or the given Loss.
    """
    if isinstance(loss, str):
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}; choose from {sorted(LOSSES)}")
        return LOSSES[loss]()
    if not (hasattr(loss, "scaled_weights") and hasattr(loss, "to_dict")):
        raise TypeError(f"loss must be a name or a Loss (scaled_weights(f, out), to_dict()); got {type(loss).__name__}")
    return loss


__all__ = ["ExponentialLoss", "LogisticLoss", "Loss", "get_loss", "logsumexp"]
