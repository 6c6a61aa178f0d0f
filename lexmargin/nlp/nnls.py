"""Nonnegative least squares, safe at every shape.

``scipy.optimize.nnls`` (scipy 1.17: Lawson-Hanson in C) aborts the interpreter ("free(): double free
detected") on a matrix without columns and returns uninitialized memory for one without rows.  An abort is the
worst failure a library can have (the user's process and everything unsaved in it are gone), so every
lexmargin call goes through ``nnls`` here, with the answers the definition gives at the empty shapes:

    min_{x >= 0} ||A x - b||_2:   no columns: x = (), residual ||b||;   no rows: x = 0, residual 0.

Every other shape is scipy's, exceptions included (its iteration limit raises ``RuntimeError``).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import nnls as _scipy_nnls


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
    x, residual = _scipy_nnls(A, b, maxiter=maxiter)
    return x, float(residual)


__all__ = ["nnls"]
