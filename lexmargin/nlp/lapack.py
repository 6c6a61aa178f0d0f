"""Small dense factorizations by LAPACK directly: the routines scipy.linalg's ``cholesky``, ``cho_solve`` and
``solve_triangular`` call (potrf, potrs, trtrs), so the numbers are theirs bit for bit, without their per-call
validation of the input (5-10 us a call, several times the work on the systems of a few rows that the dual
route's active sets and the certificate's row-space block solve dozens of times per solve).  Inputs are finite
(the callers' matrices are Gram matrices of finite rows); empty systems give empty results without a LAPACK call
(trtrs rejects n = 0 with a message on the process's standard output)."""

from __future__ import annotations

import numpy as np
from scipy.linalg import LinAlgError
from scipy.linalg.lapack import dpotrf, dpotrs, dtrtrs

__all__ = ["cho_solve_lower", "cholesky_lower", "solve_lower"]


def cholesky_lower(K) -> np.ndarray:
    """The lower Cholesky factor L of K (upper triangle zero; 0 x 0: empty); LinAlgError when K is not positive
    definite."""
    K = np.asarray(K, dtype=float)
    if K.size == 0:
        return np.zeros(K.shape)
    L, info = dpotrf(K, lower=1, clean=1)
    if info > 0:
        raise LinAlgError(f"{info}-th leading minor of the array is not positive definite")
    return L


def cho_solve_lower(L, b) -> np.ndarray:
    """K^-1 b from the lower Cholesky factor L of K."""
    b = np.asarray(b, dtype=float)
    return np.zeros(b.shape) if b.size == 0 else dpotrs(L, b, lower=1)[0]


def solve_lower(L, b) -> np.ndarray:
    """L^-1 b for a lower triangular L with a nonzero diagonal."""
    b = np.asarray(b, dtype=float)
    return np.zeros(b.shape) if b.size == 0 else dtrtrs(L, b, lower=1)[0]
