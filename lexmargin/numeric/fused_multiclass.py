"""Fused full-batch multi-class exponential-loss steps for the linear K-output model (a fast path of ``Trainer``).

For R runs of g = W x (W (K, d), theta = W in C order) on N samples with labels y_n, the loss on the margin rows
f_{n,k} = g_{y_n}(x_n) - g_k(x_n) (k != y_n) is L = sum_n sum_{k != y_n} exp(-f_{n,k}).  One step works on the
dense outputs instead of the N (K - 1) rows (no gathers or scatters of rows)::

    G = W X^T                       (R K, N): one matrix product for all runs
    z_{k,n} = G_{k,n} - G_{y_n,n},  c_r = -max_{k != y_n} z_{k,n}      (c_r = the smallest margin of run r)
    e_{k,n} = exp(max(z_{k,n} + c_r, floor))  (k != y_n),   S_r = sum e
    C_{k,n} = e_{k,n} (k != y_n),   C_{y_n,n} = -sum_{k != y_n} e_{k,n}     (the cotangent of L e^{c_r} at G)
    grad_W log L = C X / S_r        (R K, d): one matrix product for all runs
    log L = log S_r - c_r,          W <- W - m_r C X / S_r

The middle (the weights, ``weights_kernel``) is the only pass over G besides the two products:

* ``"c"``: the AVX-512 C extension (``_fused.c``, ``_fused_multiclass.h``).  A step is one call,
  ``multiclass_step``: per block of 128 samples, the block's outputs (R K x 128, in L2) from register tiles, their
  weights, and the block's share of the gradient from register tiles, so G is never stored whole (the other
  kernels write and read its R K N values three times per step).  The exact shifts (the first step, a redone
  run) come from the outputs and ``multiclass_weights``: two vectorized passes per run with the samples' own
  classes as bit masks; the gradient is then the fused step's with that shift, so every step's numbers come from
  the same arithmetic (exact resume).  ``threads`` splits the runs over OpenMP threads (same bits);
* ``"numba"``: the same passes in numba (its polynomial exponential), every CPU, between two BLAS products;
* ``"numpy"``: the same arithmetic as whole-array numpy operations, between two BLAS products.

After a step the shift is predicted, c_r = -log L + m_r |grad log L|^2 (first order, as ``numeric.fused``), and the
weights take one pass; a run whose sum S_r falls outside ``fused.safe_log_sum_range`` (overflow, or the largest
weight near the floor) is redone with the exact shift, c_r = min margin (two passes), so a bad prediction costs
time, never accuracy.  The shift is saved in checkpoints: a resumed run repeats the original bit for bit on the same
kernel.  The kernels agree with each other and with the
generic path (``MulticlassLinearKernel`` rows, ``ExponentialLoss``) to rounding.  ``LEXMARGIN_NUMPY_ONLY=1`` and
``LEXMARGIN_FUSED_KERNEL`` select kernels as in ``numeric.fused``.
"""

from __future__ import annotations

import os

import numpy as np

from . import fused
from .losses import _EXP_FLOOR

KERNELS = fused.KERNELS


def _c_weights_available() -> bool:
    return fused.c_kernel_available() and hasattr(fused._c_kernel, "multiclass_weights")


def weights_kernel_available(kernel: str) -> bool:
    """Whether a weights kernel ("c", "numba", "numpy") can be used here."""
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {KERNELS}; got {kernel!r}")
    return {"c": _c_weights_available, "numba": fused.numba_available, "numpy": lambda: True}[kernel]()


def choose_weights_kernel(steps: int | None = None) -> str:
    """LEXMARGIN_FUSED_KERNEL if set and available; else C (AVX-512), then numba (where ``steps`` repay its start
    of about a second: numba saves about 3 ms per step of the issue's size over numpy), then numpy."""
    wanted = os.environ.get("LEXMARGIN_FUSED_KERNEL", "").strip().lower()
    if wanted in KERNELS and weights_kernel_available(wanted):
        return wanted
    if _c_weights_available():
        return "c"
    if (steps is None or steps >= 300) and fused.numba_available():
        return "numba"
    return "numpy"


def numpy_weights(G, labels, S, shift, floor, given: bool = False) -> None:
    """The weights pass in numpy (see the module docstring): G (R, K, N) in place, S (R,) written, shift (R,)
    written (the exact smallest margins) or, ``given``, read.  The exponent is g + (c - g_{y_n}) in both cases, so
    a given shift equal to the exact one gives the same bits."""
    N = G.shape[2]
    samples = np.arange(N)
    own = G[:, labels, samples]                                # (R, N): g_{y_n}(x_n), a copy
    if not given:
        z = G - own[:, None, :]
        z[:, labels, samples] = -np.inf
        shift[:] = -z.max(axis=(1, 2))
    G += (shift[:, None].astype(G.dtype) - own)[:, None, :]
    G[:, labels, samples] = -np.inf
    np.maximum(G, G.dtype.type(floor), out=G)
    np.exp(G, out=G)
    G[:, labels, samples] = 0.0
    column = G.sum(axis=1)                                     # (R, N)
    G[:, labels, samples] = -column
    S[:] = column.sum(axis=1, dtype=np.float64)


def _numba_weights():
    from . import _fused_numba
    return _fused_numba.multiclass_weights


class MulticlassExpLane:
    """The state of R runs of full-batch multi-class exponential-loss GD on ``MulticlassLinearKernel``, in place.

    The lane protocol of ``Trainer``'s fused path (like ``fused.LinearExpLane``): ``theta``, ``shift``, ``f``,
    ``log_loss``, ``advance(multiplier)``, ``kernel``, ``compiled`` and ``nonfinite_runs()``.  ``shift``: the shift the
    weights were last computed with (from a checkpoint: exact resume); None: the exact smallest margins.
    """

    compiled = False            # one step per call: a step is 4 R K N d flops, Python's cost is noise
    supports_geometry = False   # steepest-descent geometries take the generic path

    def __init__(self, rows: slice, theta, model_kernel, shift=None, threads: int = 1, kernel: str | None = None,
                 steps: int | None = None):
        self.rows = rows
        self.model_kernel = model_kernel
        self.dtype = model_kernel.dtype
        K, N = model_kernel.n_classes, model_kernel.X.shape[0]
        d = model_kernel.X.shape[1]
        theta = np.asarray(theta, dtype=self.dtype)
        R = theta.shape[0]
        self.shape = (R, K, N)
        if kernel is None:
            kernel = choose_weights_kernel(steps)
        elif not weights_kernel_available(kernel):
            raise RuntimeError(f"the {kernel!r} kernel is not available for multi-class lanes")
        self.kernel = kernel
        self.threads = int(threads)     # the C step's OpenMP threads; BLAS's threads are the caller's (threadpoolctl)
        self._weights = {"c": lambda: fused._c_kernel.multiclass_weights, "numba": _numba_weights,
                         "numpy": lambda: numpy_weights}[kernel]()
        self.W = np.ascontiguousarray(theta.reshape(R * K, d))
        self.grad = np.empty((R * K, d), self.dtype)
        self.S = np.empty(R, np.float64)
        self._shift = np.empty(R, np.float64)
        self.log_loss = np.empty(R, np.float64)
        self.labels = np.ascontiguousarray(model_kernel.dataset.labels, dtype=np.int64)
        self.floor = _EXP_FLOOR[np.dtype(self.dtype)]
        lo, hi = fused.safe_log_sum_range(self.dtype, N * (K - 1))
        self.s_lo, self.s_hi = float(np.exp(lo)), float(np.exp(hi))
        self.exact_shifts = 0           # how often a predicted shift was replaced by the exact one (diagnostics)
        if shift is None:
            self._refresh()
        else:
            self._shift[:] = shift
            self._refresh(predicted=True)

    # ---- state ------------------------------------------------------------------------------------
    @property
    def theta(self) -> np.ndarray:
        """Current parameters (R, K d) (a copy)."""
        return self.W.reshape(self.shape[0], -1).copy()

    @property
    def shift(self) -> np.ndarray:
        """The smallest margin of each run at the current parameters."""
        return self._shift.copy()

    @property
    def f(self) -> np.ndarray:
        """Current margin rows (R, N (K - 1)) (one product; for records and checkpoints)."""
        return self.model_kernel.forward(self.theta)[0]

    def nonfinite_runs(self) -> np.ndarray:
        """Per run: whether its parameters or log L are not finite."""
        finite = np.isfinite(self.W.reshape(self.shape[0], -1)).all(axis=1) & np.isfinite(self.log_loss)
        return ~finite

    # ---- one step ---------------------------------------------------------------------------------
    def advance(self, multiplier) -> None:
        """W_r <- W_r - multiplier_r * grad log L(W_r), then the weights at the new point, shifted by the
        first-order prediction of -log L there:  -log L + multiplier |grad log L|^2."""
        R = self.shape[0]
        m = np.broadcast_to(np.asarray(multiplier, dtype=np.float64), (R,))
        direction = self.grad.reshape(R, -1)
        norm2 = np.einsum("rp,rp->r", direction, direction, dtype=np.float64) / (self.S * self.S)
        with np.errstate(over="ignore", invalid="ignore"):
            self.W.reshape(R, -1)[:] -= (m / self.S).astype(self.dtype)[:, None] * direction
            self._shift[:] = m * norm2 - self.log_loss
            self._refresh(predicted=True)

    def _refresh(self, predicted: bool = False) -> None:
        """grad = C X, S and log L at the current W with the shift in ``_shift`` if ``predicted`` (runs whose sums
        show it unsafe are redone with the exact shift), else with the exact shifts."""
        every = np.arange(self.shape[0])
        with np.errstate(over="ignore", invalid="ignore"):
            if not predicted:
                self._exact(every)
            else:
                self._gradient(every)
                unsafe = np.flatnonzero(~((self.S >= self.s_lo) & (self.S <= self.s_hi)))
                if unsafe.size:
                    self.exact_shifts += 1
                    self._exact(unsafe)
            self.log_loss = np.log(self.S) - self._shift

    def _rows(self, runs):
        """The rows of W of ``runs`` (a slice when they are all the runs: no copies)."""
        if len(runs) == self.shape[0]:
            return slice(None)
        K = self.shape[1]
        return (np.asarray(runs)[:, None] * K + np.arange(K)).ravel()

    def _exact(self, runs) -> None:
        """grad, S and the shift of ``runs`` with the exact shift (the smallest margin): their outputs, one weights
        pass that computes the shift too, and the gradient (the C kernel's fused step with that shift, so that
        every step's numbers come from one arithmetic; the others' product of the same outputs)."""
        rows = self._rows(runs)
        G = np.ascontiguousarray(np.matmul(self.W[rows], self.model_kernel.Xt).reshape(len(runs), self.shape[1], -1))
        S, shift = np.empty(len(runs)), np.empty(len(runs))
        self._weights(G, self.labels, S, shift, self.floor, False)
        self._shift[runs] = shift
        if self.kernel == "c":
            self._gradient(runs)
        else:
            self.grad[rows] = np.matmul(G.reshape(-1, G.shape[2]), self.model_kernel.X)
            self.S[runs] = S

    def _gradient(self, runs) -> None:
        """grad and S of ``runs`` with their shifts in ``_shift``.  The C kernel's fused step (``multiclass_step``:
        outputs, weights and gradient block by block, the outputs never stored whole), or outputs, the weights pass
        and a second product.  A run's numbers do not depend on which other runs are computed with it (the C step's
        rows and runs are independent sums in a fixed order)."""
        rows = self._rows(runs)
        every = isinstance(rows, slice)
        W = self.W[rows]
        grad = self.grad if every else np.empty((W.shape[0], self.grad.shape[1]), self.dtype)
        S, shift = (self.S, self._shift) if every else (np.empty(len(runs)), self._shift[runs])
        X, Xt = self.model_kernel.X, self.model_kernel.Xt
        if self.kernel == "c":
            fused._c_kernel.multiclass_step(W, Xt, X, self.labels, grad, S, shift, self.shape[1], self.floor,
                                            self.threads)
        else:
            G = np.matmul(W, Xt).reshape(len(runs), self.shape[1], -1)
            self._weights(G, self.labels, S, np.array(shift, dtype=np.float64), self.floor, True)
            np.matmul(G.reshape(W.shape[0], -1), X, out=grad)
        if not every:
            self.grad[rows], self.S[runs] = grad, S


__all__ = ["KERNELS", "MulticlassExpLane", "choose_weights_kernel", "numpy_weights", "weights_kernel_available"]
