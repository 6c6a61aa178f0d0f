"""Nonnegative least squares, safe at every shape.

``scipy.optimize.nnls`` (scipy 1.17: Lawson-Hanson in C) aborts the interpreter ("free(): double free detected") on
a matrix without columns and returns uninitialized memory for one without rows. An abort is the worst failure a
library can have (the user's process and everything unsaved in it are gone), so every lexmargin call goes through
``nnls`` here, with the answers the definition gives at the empty shapes:

    min_{x >= 0} ||A x - b||_2:   no columns: x = (), residual ||b||;   no rows: x = 0, residual 0.

Every other shape is scipy's, exceptions included (its iteration limit raises ``RuntimeError``), with its answer
checked: scipy's reimplementation (1.15 to at least 1.17) can stop at a point that is not the minimizer and report a
residual that is not that point's (scipy issue 25389; here: 16 columns of a ReLU net's Clarke gradients, residual
3.4094 reported as 3.4002, the minimum 3.4032, found by the stationarity report's hunt of 2026-12-02). So the
residual is recomputed from x, and x must meet the NNLS optimality conditions,

    w = A^T (b - A x):   w_j <= tol_j where x_j = 0,   |w_j| <= tol_j where x_j > 0,

tol_j = TOL_FACTOR max(m, n) eps ||A_j||_2 (||b||_2 + sum_k ||A_k||_2 x_k) (the rounding of w_j); where they fail,
Lawson and Hanson's active-set iteration continues from scipy's point (each passive solve by ``lstsq``: least
squares by SVD, the passive columns need not be well conditioned) until they hold, for at most ``maxiter`` outer
steps (3 n by default); each step lowers the residual, so the answer is never worse than scipy's.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import nnls as _scipy_nnls

EPS = np.finfo(float).eps
TOL_FACTOR = 10.0


def nnls(A, b, maxiter: int | None = None) -> tuple[np.ndarray, float]:
    """``scipy.optimize.nnls(A, b, maxiter)`` that is defined at every shape (see the module docstring).

    Args:
        A: the (m, n) matrix.
        b: the (m,) right-hand side.
        maxiter: Lawson-Hanson's iteration limit (scipy's default 3 n when None).
    Returns:
        (x, residual): x >= 0 of shape (n,) and ||A x - b||_2.
    """
    A, b = np.asarray(A, dtype=float), np.asarray(b, dtype=float)
    if A.ndim != 2 or b.shape != (A.shape[0],):
        raise ValueError(f"nnls needs A of shape (m, n) and b of shape (m,); got {A.shape} and {b.shape}")
    m, n = A.shape
    if n == 0:
        return np.zeros(0), float(np.linalg.norm(b))
    if m == 0:
        return np.zeros(n), 0.0
    x = np.maximum(_scipy_nnls(A, b, maxiter=maxiter)[0], 0.0)
    x = _lawson_hanson(A, b, x, 3 * n if maxiter is None else max(int(maxiter), 1))
    return x, float(np.linalg.norm(A @ x - b))


def optimality_tolerance(A, b, x, norms) -> np.ndarray:
    """tol_j of the module docstring: the rounding level of w_j = A_j^T (b - A x) (``norms``: the column norms
    ||A_j||_2; || |A| x || is bounded by sum_j ||A_j|| x_j)."""
    m, n = A.shape
    return TOL_FACTOR * max(m, n) * EPS * norms * (float(np.linalg.norm(b)) + float(norms @ np.abs(x)))


def _violations(A, b, x, passive, norms):
    """(w, columns that would lower the residual from 0, passive columns off their least-squares optimum)."""
    w = A.T @ (b - A @ x)
    tol = optimality_tolerance(A, b, x, norms)
    return w, ~passive & (w > tol), passive & (np.abs(w) > tol)


def _lawson_hanson(A, b, x, steps: int) -> np.ndarray:
    """Lawson-Hanson's active-set NNLS continued from a feasible x >= 0 (see the module docstring): x itself when it
    meets the optimality conditions."""
    passive = x > 0
    norms = np.sqrt(np.einsum("ij,ij->j", A, A))
    for _ in range(steps):
        w, enter, off = _violations(A, b, x, passive, norms)
        if not enter.any() and not off.any():
            break
        if enter.any():
            passive[int(np.argmax(np.where(enter, w / np.where(norms > 0, norms, 1.0), -np.inf)))] = True
        x, passive = _passive_solve(A, b, x, passive)
    return x


def _passive_solve(A, b, x, passive):
    """Lawson-Hanson's inner loop: the least-squares solution on the passive columns, stepping back towards x (and
    dropping the columns that reach 0) while it has entries <= 0."""
    for _ in range(passive.size + 1):
        z = np.zeros_like(x)
        if passive.any():
            z[passive] = np.linalg.lstsq(A[:, passive], b, rcond=None)[0]
        if np.all(z[passive] > 0):
            return z, passive
        blocked = passive & (z <= 0)
        step = np.min(x[blocked] / np.maximum(x[blocked] - z[blocked], np.finfo(float).tiny))
        x = np.maximum(x + step * (z - x), 0.0)
        passive = passive & (x > 0)
        passive[blocked & (x <= EPS * np.max(x, initial=0.0))] = False
    return x, passive


__all__ = ["nnls", "optimality_tolerance"]
