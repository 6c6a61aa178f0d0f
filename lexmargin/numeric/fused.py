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

Three kernels do this arithmetic (``LinearExpLane.kernel``), chosen per lane by ``choose_kernel``:

* ``"c"``: the optional C extension ``_fused`` (built at install where a C compiler is found; CPUs with
  AVX-512F): one pass over B per step (both products, floor and exp in registers);
* ``"numba"``: ``_fused_numba`` (the optional ``numba`` package, ``pip install lexmargin[fast]``; every
  CPU): its own loops on tiny problems, BLAS products from inside numba otherwise;
* ``"numpy"``: the two products and two passes above, from Python (always there).

The compiled kernels ("c", "numba") run whole chunks of steps without returning to Python
(``LinearExpLane.run``): GD's, or a geometry's (``geometry.compiled_geometry``: steepest descent in l1 / linf
/ l_p, mirror descent, hypentropy).  ``choose_kernel`` takes C where it is fastest (many runs, or tiny problems),
numba elsewhere, numpy when neither is there (the measurements behind the rules: docs/architecture.md,
Numeric).  ``LEXMARGIN_NUMPY_ONLY=1`` turns both compiled kernels off; ``LEXMARGIN_FUSED_KERNEL=c|numba|
numpy`` picks one for new lanes where it is available.
"""

from __future__ import annotations

import math
import os

import numpy as np

from .losses import _EXP_FLOOR

try:
    from . import _fused as _c_kernel   # type: ignore[attr-defined]  # optional C extension (setup.py)
except ImportError:                   # not built (no C compiler at install time): numba or numpy is used
    _c_kernel = None

KERNELS = ("c", "numba", "numpy")


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


def _numpy_only() -> bool:
    return os.environ.get("LEXMARGIN_NUMPY_ONLY", "") not in ("", "0")


def c_kernel_available() -> bool:
    """Whether the compiled AVX-512 kernel (numeric/_fused.c) is built and this CPU can run it.

    Set the environment variable LEXMARGIN_NUMPY_ONLY=1 to use the numpy path regardless.
    """
    if _numpy_only() or _c_kernel is None:
        return False
    return bool(_c_kernel.available())


_numba_module = None                  # numeric._fused_numba once imported; False if it cannot be


def _numba_kernel():
    """The numba kernel module (imported on first use: numba takes about a second to import), or None."""
    global _numba_module
    if _numba_module is None:
        try:
            from . import _fused_numba
            _numba_module = _fused_numba
        except Exception:  # noqa: BLE001  numba missing, or too old or incompatible with this numpy
            _numba_module = False
    return _numba_module or None


def numba_available() -> bool:
    """Whether the numba kernel (numeric/_fused_numba.py) can be used: numba is installed and imports,
    and LEXMARGIN_NUMPY_ONLY is not set."""
    return not _numpy_only() and _numba_kernel() is not None


def kernel_available(kernel: str) -> bool:
    """Whether a kernel ("c", "numba", "numpy") can be used here."""
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {KERNELS}; got {kernel!r}")
    return {"c": c_kernel_available, "numba": numba_available, "numpy": lambda: True}[kernel]()


_DIVERGED, _UNSAFE = 2, 1                  # statuses of _fused.run_steps

# Which kernel where (measured on one AVX-512 machine, docs/architecture.md, Numeric).  The C kernel's
# vectors hold 8 runs (16 in float32): from two vectors of runs it beats numpy at every size and numba
# (BLAS products) at most; with fewer runs its FMA chains are latency-bound (about 1.6 ns per sample, row
# and vector of runs) and numba wins, by 2-10x, except on tiny problems (rows x samples <= 1000), where
# C wins from 3 runs (N=30, d=2: 0.4 us per step for 4 to 16 runs against 0.6-1.5 us) and is within 1.4x
# of numba for 1 or 2 runs (0.3 us against 0.4 us), which the second or so of importing numba and loading
# its compiled code would undo.  Without numba, C wins against numpy below about 30000 units (rows x
# samples x vectors), where a numpy step costs its fixed overhead of about 20 us.
_C_MIN_RUNS = {np.dtype(np.float64): 16, np.dtype(np.float32): 32}
_TINY = 1000                          # rows x samples up to which C beats numba
_C_SMALL_WORK = 30_000                # C against numpy
_NUMBA_LOOPS_WORK = 500               # runs x rows x samples up to which numba's LOOPS layout beats BLAS
_NUMBA_START_S = 1.0                  # importing numba and scipy's BLAS, loading the compiled kernel (per process)


def _numba_pays(runs: int, rows: int, samples: int, steps: int) -> bool:
    """Whether numba's start is likely to pay over ``steps`` steps where the alternative is numpy (or C with
    few runs): per step numba saves at least numpy's fixed cost of about 15 us and about a third of its
    arithmetic (4 runs x rows x samples flops at about 20 GFLOP/s); a conservative estimate from --grid."""
    return steps * (15e-6 + 0.3 * 4 * runs * rows * samples / 20e9) >= _NUMBA_START_S


def _c_kernel_pays(dtype, runs: int, rows: int, samples: int) -> bool:
    """Whether C beats numpy (see above)."""
    vectors = -(-runs // (_C_MIN_RUNS[dtype] // 2))
    return runs >= _C_MIN_RUNS[dtype] or rows * samples * vectors <= _C_SMALL_WORK


def numba_layout(runs: int, rows: int, samples: int) -> int:
    """The numba kernel's layout: its own loops (one run, or tiny problems), else BLAS products."""
    from . import _fused_numba as nb
    return nb.LOOPS if runs == 1 or runs * rows * samples <= _NUMBA_LOOPS_WORK else nb.BLAS


def choose_kernel(dtype, runs: int, rows: int, samples: int, steps: int | None = None) -> str:
    """The kernel for a lane of ``runs`` runs on B (rows, samples): LEXMARGIN_FUSED_KERNEL if set and
    available, else the fastest available one: C for many runs or tiny problems, numba otherwise, numpy
    when neither compiled kernel is there.  ``steps``: how many steps the lane will take, if known; numba
    is then taken only where it saves more than its start costs (about a second, once per process), and
    it is imported only when it may be chosen."""
    wanted = os.environ.get("LEXMARGIN_FUSED_KERNEL", "").strip().lower()
    if wanted in KERNELS and kernel_available(wanted):
        return wanted
    dtype = np.dtype(dtype)
    c = c_kernel_available()
    if c and (runs >= _C_MIN_RUNS[dtype] or rows * samples <= _TINY):
        return "c"
    if (steps is None or _numba_pays(runs, rows, samples, steps)) and numba_available():
        return "numba"
    return "c" if c and _c_kernel_pays(dtype, runs, rows, samples) else "numpy"


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
    the exact minimum margins.  ``kernel``: "c", "numba" or "numpy" (None: ``choose_kernel``, told the
    number of ``steps`` the lane is expected to take, if given); a kernel that is not available raises
    RuntimeError.  ``use_c``: the older switch (True: "c", False: "numpy").  ``threads``: OpenMP threads
    of the C kernel (results are deterministic for a given number; the other kernels use BLAS's threads).
    """

    def __init__(self, rows: slice, theta, augmented, shift=None, use_c: bool | None = None, threads: int = 1,
                 kernel: str | None = None, steps: int | None = None):
        self.rows = rows
        self.B = augmented
        dtype, (k, n) = augmented.dtype, augmented.shape
        runs = theta.shape[0]
        if kernel is None and use_c is not None:
            kernel = "c" if use_c else "numpy"
        if kernel is None:
            kernel = choose_kernel(dtype, runs, k, n, steps)
        elif not kernel_available(kernel):
            why = {"c": "not built, LEXMARGIN_NUMPY_ONLY set, or no AVX-512F on this CPU",
                   "numba": "numba not installed or not importable, or LEXMARGIN_NUMPY_ONLY set"}[kernel]
            raise RuntimeError(f"the {kernel!r} kernel is not available ({why})")
        self.kernel = kernel
        self.threads = int(threads)
        self.P = aligned_empty((k, runs), dtype)
        np.negative(theta.T, out=self.P[:-1])
        self.X = np.empty((runs, n), dtype) if kernel == "numpy" else None
        self.GT = aligned_empty((k, runs), dtype)
        self.floor = _EXP_FLOOR[dtype]
        if kernel == "numba":
            self._nb = _numba_kernel()
            self.layout = numba_layout(runs, k, n)
            self.work = aligned_empty(self._nb.workspace_shape(self.layout, runs, n), dtype)
            self._floor = dtype.type(self.floor)            # the kernel's floor is of the lane's dtype
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

    @property
    def use_c(self) -> bool:
        """Whether the lane runs on the C kernel."""
        return self.kernel == "c"

    @property
    def compiled(self) -> bool:
        """Whether the lane runs whole chunks of steps in a compiled kernel (C or numba): ``run``."""
        return self.kernel != "numpy"

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

    def nonfinite_runs(self) -> np.ndarray:
        """Per run: whether its parameters, shift or log L are not finite."""
        return ~(np.isfinite(self.log_loss) & np.all(np.isfinite(self.P), axis=0))

    # ---- one step ---------------------------------------------------------------------------------
    def advance(self, multiplier) -> None:
        """theta_r <- theta_r - multiplier_r * grad log L(theta_r), then the weights and sums at the new point."""
        with np.errstate(over="ignore", invalid="ignore"):    # an overflowing stale shift is redone
            if self.kernel == "c":                             # the same update, then the weights, in C
                _c_kernel.advance(self.P, self.B, self.GT, np.asarray(multiplier, np.float64), self.log_loss,
                                  self.floor, self.threads)
                return self._check_sums()
            if self.kernel == "numba":                         # one step of the loop with these multipliers
                multiplier = np.ascontiguousarray(np.broadcast_to(multiplier, self.log_loss.shape), np.float64)
                _, status = self._nb.run_steps(self.P, self.B, self.GT, self.work, self.layout, multiplier, False,
                                               self.log_loss, 1, self._floor, self.s_lo, self.s_hi, check=False)
                if status == self._nb.UNSAFE:
                    self._check_sums()
                return None
            G, s = self.GT[:-1], self.GT[-1]
            g2 = np.einsum("kr,kr->r", G, G)
            G *= multiplier / s
            self.P[:-1] -= G
            # first-order prediction of -log L at the new point:  -log L - grad log L . dtheta
            self.P[-1] = multiplier * (g2 / s) / s - self.log_loss
            self._refresh()

    def run(self, n: int, eta, constant: bool, geometry: tuple[int, float] = (0, 0.0)) -> tuple[int, bool]:
        """Up to n steps in the compiled kernel (C or numba) with multiplier m_r = eta_r (normalized) or eta_r L_r
        (``constant``), in a geometry (``geometry.compiled_geometry``: (code, param); (0, 0) is GD).

        Args:
            n: the steps.
            eta: per-run step sizes (R,).
            constant: m = eta L (else m = eta).
            geometry: (code, param) of the step's geometry.

        Returns:
            (steps done, diverged): it stops early only at a run whose log L is not finite (diverged), before
            stepping from it.
        """
        eta = np.ascontiguousarray(eta, dtype=np.float64)
        code, param = int(geometry[0]), float(geometry[1])
        done = 0
        while done < n:
            if self.kernel == "c":
                steps, status = _c_kernel.run_steps(self.P, self.B, self.GT, eta, bool(constant), self.log_loss,
                                                    n - done, self.floor, float(self.s_lo), float(self.s_hi),
                                                    self.threads, code, param)
            else:
                steps, status = self._nb.run_steps(self.P, self.B, self.GT, self.work, self.layout, eta, constant,
                                                   self.log_loss, n - done, self._floor, self.s_lo, self.s_hi,
                                                   code=code, param=param)
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
        #: float64, computed by the compiled kernel on its path so that every step uses the same arithmetic
        if self.kernel == "c":
            _c_kernel.log_loss(self.P, self.GT, self.log_loss)
        elif self.kernel == "numba":
            self._nb.log_loss(self.P, self.GT, self.log_loss)
        else:
            self.log_loss = np.log(s) - self.P[-1]

    def _weight_sums(self) -> None:
        """GT = B e^T with e = exp(max(P^T B, floor)): a compiled kernel, or two products and two passes."""
        if self.kernel == "c":
            _c_kernel.weight_sums(self.P, self.B, self.GT, self.floor, self.threads)
            return
        if self.kernel == "numba":
            self._nb.weight_sums(self.P, self.B, self.GT, self.work, self._floor, self.layout)
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


__all__ = ["KERNELS", "LinearExpLane", "aligned_empty", "augmented_matrix", "c_kernel_available", "choose_kernel",
           "kernel_available", "numba_available", "numba_layout", "safe_log_sum_range"]
