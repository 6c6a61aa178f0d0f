"""Log-sum-exp in numpy and CasADi (shifted by the max: never overflows)."""

from __future__ import annotations

import casadi as ca
import numpy as np


def softmax(a) -> np.ndarray:
    a = np.asarray(a, dtype=float)
    e = np.exp(a - np.max(a))
    return e / np.sum(e)


def logsumexp(a) -> float:
    a = np.asarray(a, dtype=float)
    m = float(np.max(a))
    return m + float(np.log(np.sum(np.exp(a - m))))


def casadi_logsumexp(a):
    """log sum exp(a_i) = m + log sum exp(a_i - m) with m = max_i a_i: never overflows, and smooth (the
    max drops out of the value, gradient softmax(a) and Hessian exactly; only the rounding depends on m)."""
    m = ca.mmax(a)
    return m + ca.log(ca.sum1(ca.exp(a - m)))
