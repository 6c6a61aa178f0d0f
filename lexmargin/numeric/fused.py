"""Fused full-batch exponential-loss steps for linear margins f = theta @ A (the fast path of ``Trainer``).

For R runs held as the columns of P = [-theta^T; c] (shape (d + 1, R)) and the augmented data
B = [A; 1] (shape (d + 1, N)), one step is two matrix products and two elementwise passes::

    X = P^T B                  X[r, n] = c_r - f_rn   (the shift c_r rides inside the product)
    e = exp(max(X, floor))     in place; the floor keeps exp and BLAS off subnormal numbers
    [G; s] = B e^T             G = sum_n e_n a_n and the sums s_r = sum_n e_rn in one product
    log L = log s - c,   grad log L = -G / s,   theta <- theta + m * G / s

The generic path (``ExponentialLoss.scaled_weights``) finds min_n f_n, subtracts, floors,
exponentiates and sums: five passes.  Here the shift c_r is instead a first-order prediction of
-log L at the new point, which lies within log N of min_n f_n.  Any shift gives the same weights up
to rounding as long as nothing overflows and the largest weights stay far above the floor; both are
read off s (log s lies within log N of max_n X[r, n]).  A shift that fails this check is replaced
by the exact minimum and the weights are recomputed, so a bad prediction costs time, never accuracy.
"""

from __future__ import annotations

import math

import numpy as np

from .losses import _EXP_FLOOR


def safe_log_sum_range(dtype, n_samples: int) -> tuple[float, float]:
    """(lo, hi) bounds on log s for weights computed with a stale shift to be exact to rounding.

    lo: the largest weight is at least exp(lo - log N), so weights clipped at the floor are below
    machine epsilon relative to it.  hi: the sum cannot overflow.
    """
    dtype = np.dtype(dtype)
    floor = _EXP_FLOOR[dtype]
    log_n = math.log(max(n_samples, 1))
    lo = floor + 2 * log_n - math.log(np.finfo(dtype).eps) + 2.0
    hi = math.log(np.finfo(dtype).max) - log_n - 2.0
    return lo, min(hi, -floor / 2)


class LinearExpLane:
    """The state of R runs of full-batch exponential-loss GD on linear margins, advanced in place.

    ``augmented``: B = [A; 1] (d + 1, N), shared read-only between lanes.  ``shift``: the c_r the
    weights were last computed with (saved in checkpoints for bit-identical resume); None computes
    the exact minimum margins.
    """

    def __init__(self, rows: slice, theta, augmented, shift=None):
        self.rows = rows
        self.B = augmented
        dtype, (k, n) = augmented.dtype, augmented.shape
        runs = theta.shape[0]
        self.P = np.empty((k, runs), dtype)
        np.negative(theta.T, out=self.P[:-1])
        self.X = np.empty((runs, n), dtype)
        self.GT = np.empty((k, runs), dtype)
        self.floor = _EXP_FLOOR[dtype]
        lo, hi = safe_log_sum_range(dtype, n)
        self.s_lo, self.s_hi = np.exp(np.array([lo, hi], dtype=dtype))
        self.exact_shifts = 0           # how often a shift was replaced by the exact minimum (diagnostics)
        with np.errstate(over="ignore", invalid="ignore"):
            if shift is None:
                self._exact_weights()
            else:
                self.P[-1] = shift
                self._weights()
            self._sums()

    # ---- state ------------------------------------------------------------------------------------
    @property
    def theta(self) -> np.ndarray:
        """Current parameters (R, d) (a copy)."""
        return np.negative(self.P[:-1].T, order="C")

    @property
    def shift(self) -> np.ndarray:
        return self.P[-1].copy()

    @property
    def f(self) -> np.ndarray:
        """Current margins (R, N) (one matrix product; for checkpoints)."""
        return self.theta @ self.B[:-1]

    # ---- one step ---------------------------------------------------------------------------------
    def advance(self, multiplier) -> None:
        """theta_r <- theta_r - multiplier_r * grad log L(theta_r), then the weights and sums at the new point."""
        G, s = self.GT[:-1], self.GT[-1]
        with np.errstate(over="ignore", invalid="ignore"):    # an overflowing stale shift is redone
            g2 = np.einsum("kr,kr->r", G, G)
            G *= multiplier / s
            self.P[:-1] -= G
            # first-order prediction of -log L at the new point:  -log L - grad log L . dtheta
            self.P[-1] = multiplier * (g2 / s) / s - self.log_loss
            self._weights()
            self._sums()

    # ---- pieces -----------------------------------------------------------------------------------
    def _weights(self) -> None:
        X = np.matmul(self.P.T, self.B, out=self.X)
        np.maximum(X, self.floor, out=X)
        np.exp(X, out=X)

    def _sums(self) -> None:
        """[G; s] = B e^T and log L, after checking that the shift was safe (else: the exact shift)."""
        s = np.matmul(self.B, self.X.T, out=self.GT)[-1]
        if not (self.s_lo <= s.min() and s.max() <= self.s_hi):          # False for NaN too
            self._exact_weights()
            np.matmul(self.B, self.X.T, out=self.GT)
        #: log L per run at the current parameters (non-finite for runs with non-finite parameters)
        self.log_loss = np.log(s) - self.P[-1]

    def _exact_weights(self) -> None:
        """Weights with the shift c_r = min_n f_rn (the prediction was off, or there is none yet)."""
        self.exact_shifts += 1
        self.P[-1] = 0
        X = np.matmul(self.P.T, self.B, out=self.X)           # -f
        self.P[-1] = -np.max(X, axis=1)
        self._weights()


def augmented_matrix(A) -> np.ndarray:
    """[A; 1]: the (d, N) margin matrix with a row of ones (C order, same dtype)."""
    d, n = A.shape
    B = np.empty((d + 1, n), A.dtype)
    B[:-1] = A
    B[-1] = 1
    return B


__all__ = ["LinearExpLane", "augmented_matrix", "safe_log_sum_range"]
