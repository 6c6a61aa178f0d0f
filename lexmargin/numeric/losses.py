"""Losses L(theta) = sum_n l(f_n) computed in log space, so nothing under- or overflows at huge margins.

``value_and_weights(f) -> (log_L, w)`` for margins f (R, N): log_L (R,) and softmax-like weights w (R, N)
with  grad log L = -sum_n w_n grad f_n.  For the exponential loss w = softmax(-f), and the normalized
GD step eta * grad L / L is exactly eta * grad log L.

Every function takes its array namespace from the margins (``backend.namespace``): numpy arrays run the numpy code
(with its in-place buffers), other array-API arrays (torch, CuPy, ``array_api_strict``) the same formulas through
``xp``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from .backend import namespace


def logsumexp(a, axis=-1) -> np.ndarray:
    """log sum_i exp(a_i) along ``axis``, without overflow.

    Args:
        a: the exponents.
        axis: the axis summed over.

    Returns:
        The log-sum-exp, ``axis`` removed.
    """
    xp = namespace(a)
    if xp is np:
        m = np.max(a, axis=axis, keepdims=True)
        m = np.where(np.isfinite(m), m, 0)
        return (np.log(np.sum(np.exp(a - m), axis=axis, keepdims=True)) + m).squeeze(axis)
    m = xp.max(a, axis=axis, keepdims=True)
    m = xp.where(xp.isfinite(m), m, xp.zeros_like(m))
    return xp.squeeze(xp.log(xp.sum(xp.exp(a - m), axis=axis, keepdims=True)) + m, axis=axis)


def _flush_subnormals(w):
    """Weights below the smallest normal number set to 0 (in place for numpy; returns the array).

    They are < 1e-300 relative to the largest weight, so this changes no sum, but subnormal operands
    make BLAS matrix products up to 100x slower.
    """
    xp = namespace(w)
    if xp is np:
        np.copyto(w, 0, where=w < np.finfo(w.dtype).tiny)
        return w
    return xp.where(w < xp.finfo(w.dtype).smallest_normal, xp.zeros_like(w), w)


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
        return logsumexp(-(f if namespace(f) is not np else np.asarray(f)))

    def scaled_weights(self, f, out=None):
        """(log L, e, 1/s) with weights w = e / s: e_n = exp(min f - f_n), s = sum_n e_n (5 passes over f).

        ``out``: optional buffer for e (same shape and dtype as f; numpy only).
        """
        xp = np if type(f) is np.ndarray else namespace(f)
        if xp is not np:
            fmin = xp.min(f, axis=-1, keepdims=True)
            e = xp.exp(xp.clip(fmin - f, min=-87.0 if f.dtype == xp.float32 else -700.0))      # _EXP_FLOOR
            s = xp.sum(e, axis=-1)
            return xp.log(s) - fmin[..., 0], e, 1.0 / s
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
    xp = namespace(f)
    if xp is not np:
        return _log_softplus_neg_xp(xp, f)
    f = np.asarray(f)
    pos = f > 0
    u = np.exp(-np.where(pos, f, 0))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(u > 0, np.log1p(u) / np.where(u > 0, u, 1), 1)
        small = -f + np.log(ratio)
        large = np.log(np.logaddexp(0, -np.where(pos, 0, f)))
    return np.where(pos, small, large)


def _log_softplus_neg_xp(xp, f):
    """``_log_softplus_neg`` in the array namespace ``xp`` (no numpy error states there)."""
    zero, one = xp.zeros_like(f), xp.ones_like(f)
    pos = f > 0
    u = xp.exp(-xp.where(pos, f, zero))
    ratio = xp.where(u > 0, xp.log1p(u) / xp.where(u > 0, u, one), one)
    small = -f + xp.log(ratio)
    large = xp.log(xp.logaddexp(zero, -xp.where(pos, zero, f)))
    return xp.where(pos, small, large)


def softplus(f):
    """log(1 + exp(f)) elementwise, without overflow (``logaddexp(0, f)`` in the namespace of f)."""
    xp = namespace(f)
    return np.logaddexp(0, f) if xp is np else xp.logaddexp(xp.zeros_like(f), f)


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
        xp = namespace(f)
        w = _flush_subnormals(xp.exp(-softplus(f) - log_L[..., None]))
        return log_L, w

    def scaled_weights(self, f, out=None):
        log_L, w = self.value_and_weights(f)
        return log_L, w, namespace(log_L).ones_like(log_L)

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
