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

Where the optional C extension ``_fused`` is built and the CPU has AVX-512F, the same arithmetic runs
in one pass over B per step (both products, floor and exp in registers), whole chunks of steps at a
time (``LinearExpLane.run``); otherwise numpy does it as above.
"""

from __future__ import annotations

import math
import os

import numpy as np

from .losses import _EXP_FLOOR

try:
    from . import _fused as _c_kernel
except ImportError:                   # not built (no C compiler at install time): the numpy path is used
    _c_kernel = None


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


def c_kernel_available() -> bool:
    """Whether the compiled AVX-512 kernel (numeric/_fused.c) is built and this CPU can run it.

    Set the environment variable LEXMARGIN_NUMPY_ONLY=1 to use the numpy path regardless.
    """
    if os.environ.get("LEXMARGIN_NUMPY_ONLY", "") not in ("", "0") or _c_kernel is None:
        return False
    return bool(_c_kernel.available())


_DIVERGED, _UNSAFE = 2, 1                  # statuses of _fused.run_steps

# When the compiled kernel is used (measured here): from two vectors of runs it beat
# numpy at every size; with fewer, its FMA chains are latency-bound (about 1.6 ns per sample, row and
# vector of runs) and numpy's BLAS wins on large problems, but below about 30000 such units a step
# costs less than numpy's fixed overhead of about 20 us (N=30, d=2: 0.4 us against 18 us).
_C_MIN_RUNS = {np.dtype(np.float64): 16, np.dtype(np.float32): 32}
_C_SMALL_WORK = 30_000


def _c_kernel_pays(dtype, runs: int, rows: int, samples: int) -> bool:
    vectors = -(-runs // (_C_MIN_RUNS[dtype] // 2))
    return runs >= _C_MIN_RUNS[dtype] or rows * samples * vectors <= _C_SMALL_WORK


def aligned_empty(shape, dtype, alignment: int = 64) -> np.ndarray:
    """An uninitialized C-ordered array whose data starts on an ``alignment``-byte boundary (numpy only
    guarantees 16): the compiled kernel's vector loads of its rows then do not straddle cache lines."""
    dtype = np.dtype(dtype)
    size = int(np.prod(shape))
    raw = np.empty(size * dtype.itemsize + alignment, np.uint8)
    start = -raw.ctypes.data % alignment
    return raw[start:start + size * dtype.itemsize].view(dtype).reshape(shape)


class LinearExpLane:
    """The state of R runs of full-batch exponential-loss GD on linear margins, advanced in place.

    ``augmented``: B = [A; 1] (d + 1, N), shared read-only between lanes.  ``shift``: the c_r the
    weights were last computed with (saved in checkpoints for bit-identical resume); None computes
    the exact minimum margins.  ``threads``: OpenMP threads of the compiled kernel (results are
    deterministic for a given number).  ``use_c``: compute the weights and sums with the compiled kernel
    (one pass over B) instead of numpy (two BLAS products and two passes); None chooses the kernel
    when it is available and beats numpy: from 16 runs (32 in float32), or on small problems.
    """

    def __init__(self, rows: slice, theta, augmented, shift=None, use_c: bool | None = None, threads: int = 1):
        self.rows = rows
        self.B = augmented
        dtype, (k, n) = augmented.dtype, augmented.shape
        runs = theta.shape[0]
        if use_c is None:
            use_c = c_kernel_available() and _c_kernel_pays(dtype, runs, k, n)
        elif use_c and not c_kernel_available():
            raise RuntimeError("the compiled kernel is not available (not built, LEXMARGIN_NUMPY_ONLY set, "
                               "or no AVX-512F on this CPU)")
        self.use_c = bool(use_c)
        self.threads = int(threads)
        self.P = aligned_empty((k, runs), dtype)
        np.negative(theta.T, out=self.P[:-1])
        self.X = None if self.use_c else np.empty((runs, n), dtype)
        self.GT = aligned_empty((k, runs), dtype)
        self.floor = _EXP_FLOOR[dtype]
        lo, hi = safe_log_sum_range(dtype, n)
        self.s_lo, self.s_hi = np.exp(np.array([lo, hi], dtype=dtype))
        self.exact_shifts = 0           # how often a shift was replaced by the exact minimum (diagnostics)
        self.log_loss = np.empty(runs, np.float64)
        with np.errstate(over="ignore", invalid="ignore"):
            if shift is None:
                self._exact_shift()
            else:
                self.P[-1] = shift
            self._refresh()

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
        with np.errstate(over="ignore", invalid="ignore"):    # an overflowing stale shift is redone
            if self.use_c:                                     # the same update, then the weights, in C
                _c_kernel.advance(self.P, self.B, self.GT, np.asarray(multiplier, np.float64), self.log_loss,
                                  self.floor, self.threads)
                return self._check_sums()
            G, s = self.GT[:-1], self.GT[-1]
            g2 = np.einsum("kr,kr->r", G, G)
            G *= multiplier / s
            self.P[:-1] -= G
            # first-order prediction of -log L at the new point:  -log L - grad log L . dtheta
            self.P[-1] = multiplier * (g2 / s) / s - self.log_loss
            self._refresh()

    def run(self, n: int, eta, constant: bool) -> tuple[int, bool]:
        """Up to n steps in the compiled kernel with multiplier eta_r (normalized GD) or eta_r L_r
        (``constant``: plain GD).  Returns (steps done, diverged); it stops early only at a run whose
        log L is not finite (diverged), before stepping from it."""
        eta = np.ascontiguousarray(eta, dtype=np.float64)
        done = 0
        while done < n:
            steps, status = _c_kernel.run_steps(self.P, self.B, self.GT, eta, bool(constant), self.log_loss,
                                                n - done, self.floor, float(self.s_lo), float(self.s_hi),
                                                self.threads)
            done += steps
            if status == _DIVERGED:
                return done, True
            if status == _UNSAFE:                 # the step was taken; its weights need the exact shift
                self._check_sums()
        return done, False

    # ---- pieces -----------------------------------------------------------------------------------
    def _refresh(self) -> None:
        """[G; s] = B e^T and log L at the current P, after checking that the shift was safe."""
        self._weight_sums()
        self._check_sums()

    def _check_sums(self) -> None:
        """Redo the weights with the exact shift if the sums show the shift unsafe; then log L."""
        s = self.GT[-1]
        if not (self.s_lo <= s.min() and s.max() <= self.s_hi):          # False for NaN too
            self._exact_shift()
            self._weight_sums()
        #: log L per run at the current parameters (non-finite for runs with non-finite parameters);
        #: float64, computed in C on the compiled path so that every step there uses the same arithmetic
        if self.use_c:
            _c_kernel.log_loss(self.P, self.GT, self.log_loss)
        else:
            self.log_loss = np.log(s) - self.P[-1]

    def _weight_sums(self) -> None:
        """GT = B e^T with e = exp(max(P^T B, floor)): the C kernel, or two products and two passes."""
        if self.use_c:
            _c_kernel.weight_sums(self.P, self.B, self.GT, self.floor, self.threads)
            return
        X = np.matmul(self.P.T, self.B, out=self.X)
        np.maximum(X, self.floor, out=X)
        np.exp(X, out=X)
        np.matmul(self.B, X.T, out=self.GT)

    def _exact_shift(self) -> None:
        """c_r = min_n f_rn (the prediction was off, or there is none yet)."""
        self.exact_shifts += 1
        self.P[-1] = 0
        self.P[-1] = -np.max(self.P.T @ self.B, axis=1)       # P^T B = -f


def augmented_matrix(A) -> np.ndarray:
    """[A; 1]: the (d, N) margin matrix with a row of ones (C order, same dtype)."""
    d, n = A.shape
    B = aligned_empty((d + 1, n), A.dtype)
    B[:-1] = A
    B[-1] = 1
    return B


__all__ = ["LinearExpLane", "aligned_empty", "augmented_matrix", "c_kernel_available", "safe_log_sum_range"]
