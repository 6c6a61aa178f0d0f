"""Batched numpy kernels: margins f (R, N) and vector-Jacobian products for R parameter vectors.

Every kernel works on a flat parameter matrix ``theta`` of shape (R, P) (one row per run) whose
column layout matches ``Model.flatten`` of the equivalent lexmargin Model: arrays in declaration order,
each in C order.  ``forward(theta) -> (f, cache)`` gives the margins f[r, n] = f_n(theta_r);
``vjp(theta, cache, c) -> (R, P)`` gives sum_n c[r, n] * grad f_n(theta_r).

``forward`` and ``vjp`` of the structured kernels (linear, SVM with bias, layered nets, sums) are written against
the array API: theta of any array library (numpy, torch, CuPy, ``array_api_strict``) gives margins and products of
that library on theta's device, with the kernel's numpy constants (X, y, A) copied there once
(``backend.constants``).  ``CasadiKernel`` evaluates on the host and converts back.  The per-sample Jacobian
helpers (``per_sample_*``, stationarity reports) and ``normalized_margins`` stay numpy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ..modeling.data import Dataset, as_dataset
from ..errors import DataError
from .backend import astype, constants, like, namespace, to_numpy, xp_dtype
from .fused import LinearExpLane, augmented_matrix
from .registry import (
    KernelRequest,
    KernelUnavailable,
    declaration,
    factory_for,
    reference_builder,
    register_kernel,
    registered_families,
    warn_fallback,
)

ACTIVATIONS = ("linear", "relu", "leaky_relu", "squared_relu", "square")
_ACTIVATION_DEGREE = {"linear": 1, "relu": 1, "leaky_relu": 1, "squared_relu": 2, "square": 2}


# one batch of per-sample Jacobian rows (generic kernels): at most this many bytes (64 MiB)
ROW_BATCH_BYTES = 1 << 26


@dataclass(frozen=True)
class ArraySpec:
    """A named parameter array and its place in the flat theta."""

    name: str
    shape: tuple[int, ...]
    offset: int

    @cached_property
    def size(self) -> int:
        return math.prod(self.shape)

    @cached_property
    def columns(self) -> slice:
        return slice(self.offset, self.offset + self.size)

    def to_dict(self) -> dict:
        return {"name": self.name, "shape": list(self.shape), "offset": self.offset}


def _layout(named_shapes) -> tuple[ArraySpec, ...]:
    specs, offset = [], 0
    for name, shape in named_shapes:
        spec = ArraySpec(name, tuple(int(s) for s in shape), offset)
        specs.append(spec)
        offset += spec.size
    return tuple(specs)


def _check_dtype(dtype) -> np.dtype:
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64; got {dtype}")
    return dtype


class Kernel:
    """Base class: parameter layout, input checks and helpers shared by all kernels."""

    name = "kernel"
    degree: float | None = None
    # [A; 1] (d + 1, N) when the margins are f = theta @ A (linear in theta): enables the fused
    # exponential-loss path of the Trainer (numeric.fused); None for every other kernel.
    augmented_margin_matrix: np.ndarray | None = None
    # numpy arrays that forward / vjp use, copied to theta's namespace and device for other arrays
    backend_constants: tuple[str, ...] = ("y",)
    # whether the fused lanes (``fused_lane``) take steepest-descent geometries (numeric.geometry.fused_step)
    fused_geometry = True

    def __init__(self, data: Dataset, arrays, dtype=np.float64):
        self.data = data
        self.dtype = _check_dtype(dtype)
        self.arrays = _layout(arrays)
        self.n_params = sum(a.size for a in self.arrays)
        self.n_samples = data.n_samples
        self.y = data.y.astype(self.dtype)

    # ---- interface ----------------------------------------------------------------------------
    def forward(self, theta, out=None):
        """Margins of R parameter vectors at once, and what ``vjp`` needs.

        Args:
            theta: the parameters (R, P).
            out: an optional (R, N) buffer that may be used for the margins.

        Returns:
            ``(f, cache)``: the margins f (R, N) and the cache for ``vjp``.
        """
        raise NotImplementedError

    def vjp(self, theta, cache, cotangent):
        """Vector-Jacobian product: sum_n c[r, n] grad f_n(theta_r).

        Args:
            theta: the parameters (R, P).
            cache: what ``forward`` returned with the margins.
            cotangent: the weights c (R, N).

        Returns:
            The products (R, P).
        """
        raise NotImplementedError

    # ---- minibatches ---------------------------------------------------------------------------------
    def forward_rows(self, theta, rows, group: int = 1):
        """Each run's margins on its own rows, f[r, rows[r]] (R, B), and what ``vjp_rows`` needs.

        This default evaluates every row (``forward``) and takes each run's; ``LinearKernel``, ``LayeredNetKernel``
        and ``MulticlassLayeredNetKernel`` evaluate only the rows asked for, so a minibatch step costs O(B), not O(N).

        Args:
            theta: numpy parameters (R, P).
            rows: margin-row indices (R, B) (numpy integers).
            group: rows per sample: consecutive groups of ``group`` rows of ``rows`` belong to one sample (the whole
                samples of a cross-entropy minibatch), which an override evaluates once.

        Returns:
            (f_rows (R, B), cache).
        """
        f, cache = self.forward(theta)
        return np.take_along_axis(f, rows, axis=1), (cache, f.shape)

    def vjp_rows(self, theta, cache, cotangent, rows):
        """sum_b c[r, b] grad f_{rows[r, b]}(theta_r) (R, P), with the cache of ``forward_rows(theta, rows)``.

        Args:
            theta: numpy parameters (R, P).
            cache: what ``forward_rows`` returned.
            cotangent: the weights c (R, B).
            rows: the rows given to ``forward_rows``.

        Returns:
            The products (R, P).
        """
        full_cache, shape = cache
        c = np.zeros(shape, dtype=cotangent.dtype)
        np.add.at(c, (np.arange(shape[0])[:, None], rows), cotangent)      # a row drawn twice counts twice
        return self.vjp(theta, full_cache, c)

    # ---- the Trainer's fused exponential-loss path -------------------------------------------------
    @property
    def has_fused_lanes(self) -> bool:
        """Whether ``fused_lane`` gives lanes: full-batch exponential-loss steps fused for this kernel's model."""
        return self.augmented_margin_matrix is not None

    def fused_lane(self, rows: slice, theta, shift=None, *, threads: int = 1, kernel: str | None = None,
                   steps: int | None = None):
        """The state of runs ``rows`` on the Trainer's fused path (``fused.LinearExpLane`` for linear margins).

        Args:
            rows: the runs' rows in the Trainer's parameter matrix.
            theta: their parameters (R, P).
            shift: the weights' shift saved with a checkpoint (exact resume), or None.
            threads: OpenMP threads of the C kernel.
            kernel: "c", "numba" or "numpy" (None: the fastest available here).
            steps: how many steps the lane is expected to take (the kernel choice weighs numba's start).

        Returns:
            The lane; ``NotImplementedError`` where ``has_fused_lanes`` is False.
        """
        if self.augmented_margin_matrix is None:
            raise NotImplementedError(f"{type(self).__name__} has no fused lanes")
        return LinearExpLane(rows, theta, self.augmented_margin_matrix, shift, threads=threads, kernel=kernel,
                             steps=steps)

    # ---- derived --------------------------------------------------------------------------------
    def margins(self, theta) -> np.ndarray:
        """f (R, N) for theta (R, P); a single theta (P,) gives (N,).

        Args:
            theta: the parameters (R, P) or (P,).

        Returns:
            The margins (R, N) or (N,).
        """
        single = len(getattr(theta, "shape", np.shape(theta))) == 1
        f, _ = self.forward(self.check_theta(theta))
        return f[0, ...] if single else f

    def gradient(self, theta, cotangent) -> np.ndarray:
        """sum_n c[r, n] grad f_n(theta_r) (R, P).

        Args:
            theta: the parameters (R, P).
            cotangent: the weights c (R, N).

        Returns:
            The weighted gradient sums (R, P).
        """
        theta = self.check_theta(theta)
        xp = namespace(theta, cotangent)
        c = np.asarray(cotangent, dtype=self.dtype) if xp is np else xp.astype(cotangent, xp_dtype(xp, self.dtype))
        if tuple(c.shape) != (theta.shape[0], self.n_samples):
            raise ValueError(f"cotangent must have shape {(theta.shape[0], self.n_samples)}; got {c.shape}")
        _, cache = self.forward(theta)
        return self.vjp(theta, cache, c)

    def margin_jacobian(self, theta) -> np.ndarray:
        """d f_n / d theta for one theta (P,) as (N, P) (one vjp per sample: for tests and small N)."""
        theta = self.check_theta(theta)
        if theta.shape[0] != 1:
            raise ValueError("margin_jacobian takes a single parameter vector")
        eye = np.eye(self.n_samples, dtype=self.dtype)
        rows = np.repeat(theta, self.n_samples, axis=0)
        _, cache = self.forward(rows)
        return self.vjp(rows, cache, eye)

    # ---- per-sample rows of the Jacobian (stationarity reports) ---------------------------------
    def per_sample_jacobian(self, theta, rows) -> np.ndarray:
        """Rows J[rows] = (grad f_n(theta))_{n in rows} as (len(rows), P) for one theta (P,).

        Generic: one vjp with one-hot cotangents on len(rows) copies of theta (cost: len(rows) forward
        passes over all N samples); kernels with structure override it.  Callers bound the memory by
        asking for ``row_batch`` rows at a time.
        """
        theta = self.check_theta(theta)
        rows = np.asarray(rows, dtype=np.intp).reshape(-1)
        copies = np.repeat(theta, rows.size, axis=0)
        onehot = np.zeros((rows.size, self.n_samples), dtype=self.dtype)
        onehot[np.arange(rows.size), rows] = 1.0
        _, cache = self.forward(copies)
        return self.vjp(copies, cache, onehot)

    def row_batch(self, budget_bytes: int = ROW_BATCH_BYTES) -> int:
        """Rows of the Jacobian per batch so that one batch of (rows, P) floats stays within budget_bytes."""
        return max(1, int(budget_bytes) // max(1, self.n_params * self.dtype.itemsize))

    def _row_batches(self, rows, batch):
        rows = np.asarray(rows, dtype=np.intp).reshape(-1)
        batch = self.row_batch() if batch is None else max(1, int(batch))
        return [rows[i:i + batch] for i in range(0, rows.size, batch)]

    def per_sample_gram(self, theta, rows, batch: int | None = None) -> np.ndarray:
        """Gram matrix G = J_S J_S^T (k, k) of the rows S = ``rows`` (k of them), G[m, n] = <grad f_m, grad f_n>.

        Generic: from row batches of ``per_sample_jacobian`` (``batch`` rows, default ``row_batch()``),
        holding at most two batches at once; off-diagonal batch pairs recompute their rows, so the cost
        is about (k / batch)^2 / 2 batch evaluations when J_S does not fit in one batch.
        """
        chunks = self._row_batches(rows, batch)
        k = sum(c.size for c in chunks)
        G = np.zeros((k, k), dtype=np.float64)
        starts = np.cumsum([0] + [c.size for c in chunks])
        for i, ci in enumerate(chunks):
            Ji = np.asarray(self.per_sample_jacobian(theta, ci), dtype=np.float64)
            si = slice(starts[i], starts[i + 1])
            G[si, si] = Ji @ Ji.T
            for j in range(i + 1, len(chunks)):
                sj = slice(starts[j], starts[j + 1])
                G[si, sj] = Ji @ np.asarray(self.per_sample_jacobian(theta, chunks[j]), dtype=np.float64).T
                G[sj, si] = G[si, sj].T
        return G

    def per_sample_vjp(self, theta, rows, cotangent, batch: int | None = None) -> np.ndarray:
        """J_S^T c = sum_{n in rows} c_n grad f_n(theta) (P,) for one theta (P,).

        Generic: one ``gradient`` with c scattered into N entries (a forward pass and a vjp over all samples,
        no rows); ``CasadiKernel`` sums row batches instead, so that no (N, P) Jacobian is formed.
        """
        rows = np.asarray(rows, dtype=np.intp).reshape(-1)
        full = np.zeros((1, self.n_samples), dtype=self.dtype)
        full[0, rows] = np.asarray(cotangent, dtype=self.dtype).reshape(-1)
        return np.asarray(self.gradient(theta, full)[0], dtype=np.float64)

    def per_sample_jvp(self, theta, rows, vector, batch: int | None = None) -> np.ndarray:
        """J_S v: the directional derivatives <grad f_n(theta), v> for n in ``rows`` (k,), by row batches."""
        v = np.asarray(vector, dtype=np.float64).reshape(-1)
        parts = [np.asarray(self.per_sample_jacobian(theta, c), dtype=np.float64) @ v
                 for c in self._row_batches(rows, batch)]
        return np.concatenate(parts) if parts else np.zeros(0)

    def normalized_margins(self, theta, f) -> np.ndarray:
        """min_n f_n / ||theta||^degree per run (NaN when the kernel is not homogeneous)."""
        norm = np.linalg.norm(theta, axis=1)
        if self.degree is None:
            return np.full(theta.shape[0], np.nan)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.min(f, axis=1) / norm ** self.degree

    def unflatten(self, theta) -> dict:
        """Named arrays (R, *shape) of theta (R, P) (views)."""
        theta = np.asarray(theta)
        R = theta.shape[0]
        return {a.name: theta[:, a.columns].reshape((R,) + a.shape) for a in self.arrays}

    def flatten(self, params) -> np.ndarray:
        """Inverse of unflatten: arrays (R, *shape) -> theta (R, P)."""
        parts = []
        for a in self.arrays:
            arr = np.asarray(params[a.name], dtype=self.dtype)
            parts.append(arr.reshape(arr.shape[0], a.size))
        return np.concatenate(parts, axis=1)

    def consts(self, theta):
        """The kernel's ``backend_constants`` in theta's namespace and device (the kernel itself for numpy)."""
        return constants(self, self.backend_constants, theta)

    def check_theta(self, theta) -> np.ndarray:
        """theta as (R, P) in the kernel's dtype and in its own array namespace (numpy for lists and numpy arrays).

        Args:
            theta: the parameters (R, P) or (P,).

        Returns:
            theta (R, P), converted to the kernel's dtype.

        Raises:
            ValueError: wrong shape or non-finite entries.
        """
        xp = namespace(theta)
        if xp is not np:
            return self._check_foreign_theta(xp, theta)
        theta = np.asarray(theta, dtype=self.dtype)
        if theta.ndim == 1:
            theta = theta[None, :]
        if theta.ndim != 2 or theta.shape[1] != self.n_params:
            raise ValueError(f"theta must have shape (R, {self.n_params}) for {self.name}; got {theta.shape}")
        if not np.all(np.isfinite(theta)):
            raise ValueError(f"theta contains non-finite values in runs {np.unique(np.nonzero(~np.isfinite(theta))[0])[:5].tolist()}")
        return theta

    def _check_foreign_theta(self, xp, theta):
        """``check_theta`` for arrays of another library: same checks, the array stays on its device."""
        if theta.dtype != xp_dtype(xp, self.dtype):
            theta = xp.astype(theta, xp_dtype(xp, self.dtype))
        if theta.ndim == 1:
            theta = xp.reshape(theta, (1, -1))
        if theta.ndim != 2 or theta.shape[1] != self.n_params:
            raise ValueError(f"theta must have shape (R, {self.n_params}) for {self.name}; got {tuple(theta.shape)}")
        if not bool(xp.all(xp.isfinite(theta))):
            self.check_theta(to_numpy(theta))                   # the numpy check names the runs
        return theta

    def random_theta(self, seeds, scales=1.0) -> np.ndarray:
        """One Gaussian initialization per seed, scaled so that ||theta_r|| is about scales[r].

        Args:
            seeds: one seed per run.
            scales: the norm of each run's start (a scalar or one per seed).

        Returns:
            The starts (R, P) in the kernel's dtype.
        """
        seeds = np.atleast_1d(seeds)
        scales = np.broadcast_to(np.asarray(scales, dtype=float), seeds.shape)
        rows = [np.random.default_rng(int(s)).standard_normal(self.n_params) for s in seeds]
        return (np.array(rows) * (scales[:, None] / math.sqrt(self.n_params))).astype(self.dtype)

    def describe(self) -> dict:
        """The kernel's name, sizes, degree, dtype and arrays, as a JSON-ready dict."""
        return {"kernel": self.name, "n_params": self.n_params, "n_samples": self.n_samples,
                "degree": self.degree, "dtype": self.dtype.name, "arrays": [a.to_dict() for a in self.arrays]}

    def __repr__(self):
        return f"{type(self).__name__}(P={self.n_params}, N={self.n_samples}, dtype={self.dtype.name})"


def _as_data(X, y) -> Dataset:
    return as_dataset(X, y)


class LinearKernel(Kernel):
    """f_n = y_n <w, x_n>: margins theta @ A with A = (y * X)^T, BLAS-bound in both directions."""

    name = "linear"
    degree = 1.0
    backend_constants = ("y", "A", "At")

    def __init__(self, X, y=None, dtype=np.float64):
        data = _as_data(X, y)
        super().__init__(data, [("w", (data.n_features,))], dtype)
        yx = data.y[:, None] * data.X
        self.augmented_margin_matrix = augmented_matrix(np.asarray(yx.T, dtype=self.dtype))   # [A; 1]
        self.A = self.augmented_margin_matrix[:-1]                 # (d, N), a C-ordered view
        self.At = np.ascontiguousarray(yx, dtype=self.dtype)     # (N, d)

    def forward(self, theta, out=None):
        if type(theta) is not np.ndarray:
            return theta @ self.consts(theta).A, None
        return np.matmul(theta, self.A, out=out), None

    def vjp(self, theta, cache, cotangent):
        return cotangent @ (self.At if type(cotangent) is np.ndarray else self.consts(cotangent).At)

    def forward_rows(self, theta, rows, group: int = 1):
        """f[r, b] = <theta_r, a_{rows[r, b]}> from the rows' columns of A only: O(R B d)."""
        At_b = self.At[rows]                                          # (R, B, d)
        return np.matmul(At_b, theta[:, :, None])[:, :, 0], At_b

    def vjp_rows(self, theta, cache, cotangent, rows):
        return np.matmul(cotangent[:, None, :], cache)[:, 0, :]     # sum_b c_b a_b per run


    def per_sample_jacobian(self, theta, rows) -> np.ndarray:
        """grad f_n = y_n x_n: rows of (y * X), independent of theta."""
        self.check_theta(theta)
        return self.At[np.asarray(rows, dtype=np.intp).reshape(-1)]

BIAS_FORMS = ("square", "squares_difference", "product")


def _bias_and_gradient(form: str, c):
    """Bias b(c) (R,) and db/dc (R, k) of the bias parameters c (R, k) (in the namespace of c)."""
    xp = namespace(c)
    if form == "square":
        return c[:, 0] ** 2, 2 * c
    if form == "squares_difference":
        return c[:, 0] ** 2 - c[:, 1] ** 2, xp.stack([2 * c[:, 0], -2 * c[:, 1]], axis=1)
    k = c.shape[1]
    others = [xp.prod(xp.concat([c[:, :j], c[:, j + 1:]], axis=1), axis=1) for j in range(k)]
    return xp.prod(c, axis=1), xp.stack(others, axis=1)


class SVMBiasKernel(Kernel):
    """f_n = y_n (<w, x_n> + b(c)): a linear predictor whose bias b is a homogeneous function of c.

    ``bias="square"``: b = c^2 (the bundled ``svm_bias`` model, sign="positive", arrays w, b);
    ``"squares_difference"``: b = c1^2 - c2^2 (``svm_bias`` sign="both", arrays w, b1, b2);
    ``"product"``: b = c_1 ... c_k with k = ``bias_degree`` (arrays w, c).
    With a bias of degree >= 2 the bias is cheaper in norm than the weights, and gradient descent
    converges in direction to the SVM with an unregularized bias (Nacson et al. 2019).
    """

    name = "svm_bias"
    degree = None
    backend_constants = ("y", "A", "At")

    def __init__(self, X, y=None, bias: str = "squares_difference", bias_degree: int = 2,
                 dtype=np.float64, names=None):
        data = _as_data(X, y)
        if bias not in BIAS_FORMS:
            raise ValueError(f"bias must be one of {BIAS_FORMS}; got {bias!r}")
        if int(bias_degree) != bias_degree or bias_degree < 1:
            raise ValueError(f"bias_degree must be a positive integer; got {bias_degree}")
        self.bias_form = bias
        k = {"square": 1, "squares_difference": 2, "product": int(bias_degree)}[bias]
        default = {"square": [("b", (1,))], "squares_difference": [("b1", (1,)), ("b2", (1,))],
                   "product": [("c", (k,))]}[bias]
        arrays = names or [("w", (data.n_features,))] + default
        super().__init__(data, arrays, dtype)
        if self.n_params != data.n_features + k:
            raise ValueError(f"SVMBiasKernel arrays {arrays} do not hold {data.n_features} weights + {k} bias terms")
        self.linear = LinearKernel(data, dtype=dtype)
        self.A, self.At = self.linear.A, self.linear.At

    def split(self, theta):
        d = self.data.n_features
        return theta[:, :d], theta[:, d:]

    def bias(self, theta) -> np.ndarray:
        return _bias_and_gradient(self.bias_form, self.split(self.check_theta(theta))[1])[0]

    def forward(self, theta, out=None):
        w, c = self.split(theta)
        k = self.consts(theta)
        return w @ k.A + _bias_and_gradient(self.bias_form, c)[0][:, None] * k.y, None

    def vjp(self, theta, cache, cotangent):
        w, c = self.split(theta)
        k, xp = self.consts(theta), namespace(theta, cotangent)
        total = cotangent @ k.y                                     # (R,)
        return xp.concat([cotangent @ k.At, total[:, None] * _bias_and_gradient(self.bias_form, c)[1]], axis=1)

    def normalized_margins(self, theta, f):
        """min_n f_n / ||w|| (the bias is not regularized)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.min(f, axis=1) / np.linalg.norm(self.split(theta)[0], axis=1)

    def describe(self) -> dict:
        return {**super().describe(), "bias": self.bias_form}


def _activation(name: str, slope: float):
    """(s, s') of a homogeneous activation on numpy arrays (the numpy path's own functions)."""
    if name == "linear":
        return (lambda z: z), (lambda z: np.ones_like(z))
    if name == "relu":
        return (lambda z: np.maximum(z, 0)), (lambda z: (z > 0).astype(z.dtype))
    if name == "leaky_relu":
        return (lambda z: np.maximum(z, slope * z)), (lambda z: np.where(z > 0, 1.0, slope).astype(z.dtype))
    if name == "squared_relu":
        return (lambda z: np.square(np.maximum(z, 0))), (lambda z: 2 * np.maximum(z, 0))
    if name == "square":
        return np.square, (lambda z: 2 * z)
    raise ValueError(f"unknown activation {name!r}; choose from {ACTIVATIONS}")


def _activation_xp(name: str, slope: float):
    """(s, s') of a homogeneous activation for arrays of any array-API namespace (the generic path)."""
    if name == "linear":
        return (lambda z: z), (lambda z: namespace(z).ones_like(z))
    if name == "relu":
        return (lambda z: namespace(z).maximum(z, 0)), (lambda z: astype(z > 0, z.dtype))
    if name == "leaky_relu":
        return ((lambda z: namespace(z).maximum(z, slope * z)),
                (lambda z: namespace(z).where(z > 0, namespace(z).ones_like(z), namespace(z).full_like(z, slope))))
    if name == "squared_relu":
        return (lambda z: namespace(z).square(namespace(z).maximum(z, 0))), (lambda z: 2 * namespace(z).maximum(z, 0))
    if name == "square":
        return (lambda z: namespace(z).square(z)), (lambda z: 2 * z)
    raise ValueError(f"unknown activation {name!r}; choose from {ACTIVATIONS}")


def layered_degree(n_hidden: int, activation: str) -> float:
    """Homogeneity degree of  a . s(W_k ... s(W_1 x))  with k = n_hidden layers.

    Args:
        n_hidden: the number of hidden layers k.
        activation: the activation's name (``ACTIVATIONS``).

    Returns:
        The degree: (k + 1) for degree-1 activations, more for squared ones.
    """
    p = _ACTIVATION_DEGREE[activation]
    deg = 0
    for _ in range(n_hidden):
        deg = p * (deg + 1)
    return float(deg + 1)


class LayeredNetKernel(Kernel):
    """f_n = y_n a . s(W_k s(... s(W_1 x_n + b_1))), s a homogeneous activation, optional first-layer bias.

    Parameters W1 (h1, d), [b1 (h1,)], W2 (h2, h1), ..., Wk (hk, h_{k-1}) and the output vector a (hk,),
    in this order in the flat theta.  ``hidden=()`` is the linear model.  ``first_bias=True`` adds b1: a
    weight on a constant input 1, so ``W_1 x + b_1 = [W_1, b_1] [x; 1]`` and the net stays homogeneous of the
    same degree (a bias in a later layer would not: ``models/mlp.py``).  For Path-SGD the bias is the edge
    from that constant unit, whose gamma_in is 1 like an input's.
    """

    name = "layered_net"
    backend_constants = ("y", "X", "XT")

    def __init__(self, X, y=None, hidden=(10,), activation: str = "relu", slope: float = 0.1,
                 dtype=np.float64, output_name: str = "a", layer_names=None, first_bias: bool = False,
                 bias_name: str = "b1"):
        data = _as_data(X, y)
        self.hidden = tuple(int(h) for h in hidden)
        if any(h <= 0 for h in self.hidden):
            raise ValueError(f"hidden widths must be positive; got {hidden}")
        if first_bias and not self.hidden:
            raise ValueError("a first-layer bias needs a hidden layer (an output bias is not homogeneous)")
        self.activation, self.slope = activation, float(slope)
        self.first_bias = bool(first_bias)
        self._set_activation()
        self.widths = (data.n_features,) + self.hidden
        names = list(layer_names or [f"W{i + 1}" for i in range(len(self.hidden))])
        if len(names) != len(self.hidden):
            raise ValueError(f"need {len(self.hidden)} layer names; got {names}")
        shapes = [(names[i], (self.widths[i + 1], self.widths[i])) for i in range(len(self.hidden))]
        if self.first_bias:
            shapes.insert(1, (bias_name, (self.widths[1],)))
        super().__init__(data, shapes + [(output_name, (self.widths[-1],))], dtype)
        self.degree = layered_degree(len(self.hidden), activation)
        self.XT = np.ascontiguousarray(data.X.T, dtype=self.dtype)     # (d, N)
        self.X = np.ascontiguousarray(data.X, dtype=self.dtype)

    def _set_activation(self) -> None:
        """s and s' of ``self.activation`` for numpy (``_act``, ``_dact``) and for other namespaces (``_xp``)."""
        self._act, self._dact = _activation(self.activation, self.slope)
        self._act_xp, self._dact_xp = _activation_xp(self.activation, self.slope)

    def _matrix_specs(self) -> tuple[ArraySpec, ...]:
        """The specs of W1 ... Wk, a (the bias, when present, is arrays[1])."""
        return self.arrays[:1] + self.arrays[2:] if self.first_bias else self.arrays

    def weights(self, theta) -> list[np.ndarray]:
        """Layer matrices (R, out, in) as views into theta, the output layer as (R, 1, hk); no bias."""
        R = theta.shape[0]
        specs = self._matrix_specs()
        if type(theta) is not np.ndarray:
            xp = namespace(theta)
            mats = [xp.reshape(theta[:, a.columns], (R, *a.shape)) for a in specs[:-1]]
            return mats + [xp.reshape(theta[:, specs[-1].columns], (R, 1, -1))]
        mats = [theta[:, a.columns].reshape(R, *a.shape) for a in specs[:-1]]
        return mats + [theta[:, specs[-1].columns].reshape(R, 1, -1)]

    def bias(self, theta) -> np.ndarray | None:
        """The first-layer bias b1 (R, h1) as a view into theta (None without one)."""
        return theta[:, self.arrays[1].columns] if self.first_bias else None

    def _forward_outputs(self, theta, XT=None):
        """The output layer's values Ws[-1] @ H, (R, outputs, N), and the cache (Ws, Zs, Hs) of the pass; ``XT``:
        other inputs (numpy only), e.g. each run's own minibatch (R, d, B)."""
        Ws = self.weights(theta)
        b = self.bias(theta)
        numpy = type(theta) is np.ndarray
        if XT is not None:
            act = self._act
        else:
            XT, act = (self.XT, self._act) if numpy else (self.consts(theta).XT, self._act_xp)
        H, Zs, Hs = XT, [], [XT]
        for i, W in enumerate(Ws[:-1]):
            Z = W @ H
            if i == 0 and b is not None:
                Z += b[:, :, None]
            H = act(Z)
            Zs.append(Z)
            Hs.append(H)
        return Ws[-1] @ H, (Ws, Zs, Hs)

    def forward(self, theta, out=None):
        G, cache = self._forward_outputs(theta)
        return G[:, 0, :] * (self.y if type(theta) is np.ndarray else self.consts(theta).y), cache

    def pre_activations(self, theta, rows) -> list[np.ndarray]:
        """The hidden layers' pre-activations W_l h_{l-1} (+ b_1) at one theta (P,) on the samples ``rows``: one
        (h_l, k) array per layer, in the order the net applies its activations."""
        theta = np.asarray(theta, dtype=self.dtype).reshape(1, -1)
        XT = np.ascontiguousarray(self.X[np.asarray(rows, dtype=int)].T)[None]
        _, (_, Zs, _) = self._forward_outputs(theta, XT=XT)
        return [Z[0] for Z in Zs]

    def vjp(self, theta, cache, cotangent):
        y = self.y if type(cotangent) is np.ndarray else self.consts(cotangent).y
        return self._backward(theta, cache, (cotangent * y)[:, None, :])    # delta (R, 1, N): d/d(output)

    def forward_rows(self, theta, rows, group: int = 1):
        """The net on each run's own samples only: inputs (R, B, d), O(R B) instead of O(R N)."""
        X_b = self.X[rows]
        G, cache = self._forward_outputs(theta, XT=np.swapaxes(X_b, 1, 2))
        y_b = self.y[rows]
        return G[:, 0, :] * y_b, (cache, X_b, y_b)

    def vjp_rows(self, theta, cache, cotangent, rows):
        cache, X_b, y_b = cache
        return self._backward(theta, cache, (cotangent * y_b)[:, None, :], X=X_b)

    def _backward(self, theta, cache, delta, X=None):
        """theta's gradient (R, P) from the output cotangents delta (R, outputs, N) and the forward cache; ``X``: the
        inputs of a ``_forward_outputs`` with other inputs (each run's (R, B, d))."""
        if type(delta) is not np.ndarray or type(theta) is not np.ndarray:
            return self._backward_xp(theta, cache, delta)
        Ws, Zs, Hs = cache
        grads: list = [None] * len(Ws)
        bias_grad = None
        for i in range(len(Ws) - 1, -1, -1):
            if i == 0:
                grads[i] = delta @ (self.X if X is None else X)
                bias_grad = delta.sum(axis=2)                          # d/d b1: the constant input 1
            else:
                grads[i] = delta @ np.swapaxes(Hs[i], 1, 2)
                delta = (np.swapaxes(Ws[i], 1, 2) @ delta) * self._dact(Zs[i - 1])
        R = theta.shape[0]
        parts = [g.reshape(R, -1) for g in grads]
        if self.first_bias:
            parts.insert(1, bias_grad)
        return np.concatenate(parts, axis=1)

    def _backward_xp(self, theta, cache, delta):
        """``_backward`` in the array namespace of theta and delta (torch, CuPy, array_api_strict, ...)."""
        Ws, Zs, Hs = cache
        xp = namespace(theta, delta)
        X = self.consts(delta).X
        grads: list = [None] * len(Ws)
        bias_grad = None
        for i in range(len(Ws) - 1, -1, -1):
            if i == 0:
                grads[i] = delta @ X
                bias_grad = xp.sum(delta, axis=2)
            else:
                grads[i] = delta @ xp.matrix_transpose(Hs[i])
                delta = (xp.matrix_transpose(Ws[i]) @ delta) * self._dact_xp(Zs[i - 1])
        R = theta.shape[0]
        parts = [xp.reshape(g, (R, -1)) for g in grads]
        if self.first_bias:
            parts.insert(1, bias_grad)
        return xp.concat(parts, axis=1)

    def per_sample_factors(self, theta, rows) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per-sample gradients of the rows S as outer products: one pair (D, H) per array.

        For layer k, z_k = W_k h_{k-1} (+ b_1 when k = 1; h_0 = x), h_k = s(z_k), f = y a . h_K:
        grad_{W_k} f_n = delta_k[n] (x) h_{k-1}[n] with delta_K = y a * s'(z_K),
        delta_{k-1} = (W_k^T delta_k) * s'(z_{k-1}); grad_{b_1} f_n = delta_1[n] (x) 1 (H = ones (k, 1));
        grad_a f_n = y_n h_K[n] (D = y as (k, 1)).  Returns [(D_1 (k, h_1), H_0 (k, d)), [(D_1, 1)], ...,
        (y (k, 1), H_K (k, h_K))] in the array order of theta: row n of an array's Jacobian block is
        outer(D[n], H[n]) in C order.  Memory O(k * sum of widths); the Jacobian is never formed.
        """
        theta = self.check_theta(theta)
        if theta.shape[0] != 1:
            raise ValueError("per_sample_factors takes a single parameter vector")
        if not self._factored_layout():
            raise ValueError("per_sample_factors: the layout has arrays beyond W_1..W_K, [b_1,] a")
        rows = np.asarray(rows, dtype=np.intp).reshape(-1)
        Ws = [W[0] for W in self.weights(theta)]
        bias = self.bias(theta)
        y = self.y[rows]
        H, Zs, Hs = self.X[rows], [], [self.X[rows]]
        for i, W in enumerate(Ws[:-1]):
            Z = H @ W.T
            if i == 0 and bias is not None:
                Z += bias[0]
            H = self._act(Z)
            Zs.append(Z)
            Hs.append(H)
        factors = [(y[:, None], Hs[-1])]
        delta = y[:, None] * Ws[-1]                                  # (k, h_K): d f / d h_K
        for i in range(len(Ws) - 2, -1, -1):
            delta = delta * self._dact(Zs[i])                         # d f / d z_{i+1}
            factors.append((delta, Hs[i]))
            if i:
                delta = delta @ Ws[i]
        factors.reverse()
        if bias is not None:
            factors.insert(1, (factors[0][0], np.ones((rows.size, 1), dtype=self.dtype)))
        return factors

    def _factored_layout(self) -> bool:
        """The arrays are exactly W_1, [b_1,] W_2 .. W_K, a (what ``per_sample_factors`` covers)."""
        return len(self.arrays) == len(self.hidden) + 1 + int(getattr(self, "first_bias", False))

    def per_sample_jacobian(self, theta, rows) -> np.ndarray:
        """Rows of the Jacobian from ``per_sample_factors`` (one outer product per array and row)."""
        if not self._factored_layout():
            return super().per_sample_jacobian(theta, rows)
        factors = self.per_sample_factors(theta, rows)
        k = factors[0][0].shape[0]
        return np.concatenate([(D[:, :, None] * H[:, None, :]).reshape(k, -1) for D, H in factors], axis=1)

    def per_sample_gram(self, theta, rows, batch: int | None = None) -> np.ndarray:
        """G = J_S J_S^T = sum_k (D_k D_k^T) o (H_k H_k^T) (o: elementwise) from ``per_sample_factors``.

        <outer(d, h), outer(d', h')> = <d, d'> <h, h'>: O(k^2 sum of widths) time and O(k^2 + k sum of
        widths) memory, never the (k, P) rows.  ``batch`` is unused (kept for the protocol).
        """
        if not self._factored_layout():
            return super().per_sample_gram(theta, rows, batch)
        G = None
        for D, H in self.per_sample_factors(theta, rows):
            term = np.asarray(D @ D.T, dtype=np.float64)
            term *= H @ H.T
            G = term if G is None else G + term
        return G

    def per_sample_jvp(self, theta, rows, vector, batch: int | None = None) -> np.ndarray:
        """J_S v = sum_k rowsum((H_k V_k^T) o D_k) with V_k the block of v on array k (no Jacobian rows)."""
        if not self._factored_layout():
            return super().per_sample_jvp(theta, rows, vector, batch)
        v = np.asarray(vector, dtype=self.dtype).reshape(-1)
        total = 0.0
        for (D, H), spec in zip(self.per_sample_factors(theta, rows), self.arrays):
            V = v[spec.columns].reshape(D.shape[1], H.shape[1])
            total = total + np.einsum("ni,ni->n", H @ V.T, D)
        return np.asarray(total, dtype=np.float64)

    def path_scales(self, theta) -> np.ndarray:
        """Path-SGD (p = 2) per-edge scales kappa_e = gamma_in(u) gamma_out(v), flat (R, P).

        The bias b1 is the column of the constant unit: the scales are those of [W1, b1] on [x; 1].
        """
        from .pathsgd import path_scales
        R, xp = theta.shape[0], namespace(theta)
        Ws = self.weights(theta)
        if self.first_bias:
            Ws = [xp.concat([Ws[0], self.bias(theta)[:, :, None]], axis=2)] + Ws[1:]
        kappa = path_scales(Ws)
        parts = [xp.reshape(k, (R, -1)) for k in kappa]
        if self.first_bias:
            parts[:1] = [xp.reshape(kappa[0][:, :, :-1], (R, -1)), kappa[0][:, :, -1]]
        return xp.concat(parts, axis=1)

    def describe(self) -> dict:
        out = {**super().describe(), "hidden": list(self.hidden), "activation": self.activation}
        if self.first_bias:            # only then: the fingerprints of existing checkpoints stay as they were
            out["first_bias"] = True
        return out


def DeepLinearKernel(X, y=None, hidden=(10,), dtype=np.float64, **names) -> LayeredNetKernel:
    """f_n = y_n a . W_k ... W_1 x_n (a layered net with the identity activation)."""
    kernel = LayeredNetKernel(X, y, hidden=hidden, activation="linear", dtype=dtype, **names)
    kernel.name = "deep_linear"
    return kernel


class SumKernel(Kernel):
    """f_n = sum_k f_n^(k)(theta_k): sub-networks on the same data with concatenated parameters."""

    name = "sum"

    def __init__(self, kernels, prefixes=None):
        kernels = list(kernels)
        if not kernels:
            raise ValueError("SumKernel needs at least one kernel")
        first = kernels[0]
        for k in kernels[1:]:
            if k.data is not first.data and not (np.array_equal(k.data.X, first.data.X)
                                                 and np.array_equal(k.data.y, first.data.y)):
                raise DataError("all kernels of a SumKernel must use the same data")
            if k.dtype != first.dtype:
                raise ValueError("all kernels of a SumKernel must use the same dtype")
        self.kernels = kernels
        prefixes = prefixes or [f"k{i}." if len(kernels) > 1 else "" for i in range(len(kernels))]
        arrays = [(p + a.name, a.shape) for p, k in zip(prefixes, kernels) for a in k.arrays]
        super().__init__(first.data, arrays, first.dtype)
        degrees = {k.degree for k in kernels}
        self.degree = degrees.pop() if len(degrees) == 1 else None
        bounds = np.cumsum([0] + [k.n_params for k in kernels])
        self.slices = [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]

    def forward(self, theta, out=None):
        total, caches = 0, []
        for k, s in zip(self.kernels, self.slices):
            f, cache = k.forward(theta[:, s])
            total = total + f
            caches.append(cache)
        return total, caches

    def vjp(self, theta, cache, cotangent):
        return namespace(theta, cotangent).concat([k.vjp(theta[:, s], c, cotangent)
                                                   for k, s, c in zip(self.kernels, self.slices, cache)], axis=1)

    def per_sample_jacobian(self, theta, rows) -> np.ndarray:
        """Rows of the parts' Jacobians side by side (each part on its own parameters)."""
        theta = self.check_theta(theta)
        return np.concatenate([k.per_sample_jacobian(theta[:, s], rows)
                               for k, s in zip(self.kernels, self.slices)], axis=1)

    def per_sample_gram(self, theta, rows, batch: int | None = None) -> np.ndarray:
        """The parts' parameters are disjoint: G = sum of the parts' Gram matrices."""
        theta = self.check_theta(theta)
        return sum(k.per_sample_gram(theta[:, s], rows, batch) for k, s in zip(self.kernels, self.slices))

    def per_sample_jvp(self, theta, rows, vector, batch: int | None = None) -> np.ndarray:
        """J_S v = sum of the parts' J_S^(k) v_k."""
        theta = self.check_theta(theta)
        v = np.asarray(vector).reshape(-1)
        return sum(k.per_sample_jvp(theta[:, s], rows, v[s], batch) for k, s in zip(self.kernels, self.slices))

    def describe(self) -> dict:
        return {**super().describe(), "parts": [k.describe() for k in self.kernels]}


class CasadiKernel(Kernel):
    """Fallback for any declared Model: CasADi-evaluated margins and Jacobians, one run at a time."""

    name = "casadi"

    def __init__(self, model, X, y=None, dtype=np.float64):
        data = _as_data(X, y)
        if data.n_features != model.input_dim:
            raise DataError(f"model {model.name!r} expects {model.input_dim} features; data has {data.n_features}")
        super().__init__(data, zip(model.layout.names, model.layout.shapes), dtype)
        self.model = model
        self.degree = model.degree

    def forward(self, theta, out=None):
        rows = np.asarray(to_numpy(theta), dtype=float)            # CasADi evaluates on the host
        f = np.stack([self.model.margins(t, self.data) for t in rows]).astype(self.dtype)
        return like(f, theta), None

    def vjp(self, theta, cache, cotangent):
        rows = np.asarray(to_numpy(theta), dtype=float)
        grads = [c @ self.model.margin_jacobian(t, self.data) for t, c in zip(rows, to_numpy(cotangent))]
        return like(np.stack(grads).astype(self.dtype), theta)

    def per_sample_vjp(self, theta, rows, cotangent, batch: int | None = None) -> np.ndarray:
        """J_S^T c from row batches of CasADi gradients (at most ``batch`` rows, default ``row_batch()``, at once)."""
        c = np.asarray(cotangent, dtype=np.float64).reshape(-1)
        total, start = np.zeros(self.n_params), 0
        for chunk in self._row_batches(rows, batch):
            total += c[start:start + chunk.size] @ np.asarray(self.per_sample_jacobian(theta, chunk), dtype=np.float64)
            start += chunk.size
        return total

    def per_sample_jacobian(self, theta, rows) -> np.ndarray:
        """CasADi gradients of the rows' samples only (not all N)."""
        theta = self.check_theta(theta)
        rows = np.asarray(rows, dtype=np.intp).reshape(-1)
        return self.model.margin_jacobian(theta[0].astype(float), self.data.subset(rows)).astype(self.dtype)

    def describe(self) -> dict:
        return {**super().describe(), "model": self.model.name}


def check_kernel_against_model(kernel: Kernel, model, points: int = 2, seed: int = 0,
                               rtol: float = 1e-7, block: str | None = None) -> float:
    """Largest relative error of kernel margins and gradients vs CasADi at random points.

    With ``block`` the kernel is compared to that summand of a sum-of-blocks model on the block's
    parameters.

    Args:
        kernel: the numpy kernel.
        model: the Model it should reproduce.
        points: how many random points.
        seed: seed of the points.
        rtol: the relative tolerance the caller will apply (scales the random points' check).
        block: compare with this block's summand only.

    Returns:
        The largest relative error over the points (margins and gradients).
    """
    rng = np.random.default_rng(seed)
    data = kernel.data
    n = min(data.n_samples, 25)
    sub = data.subset(np.arange(n))
    worst = 0.0
    for _ in range(points):
        theta = rng.standard_normal(model.n_params)
        cols = model.block_slice(block) if block else slice(None)
        f_ref, J_ref = _reference(model, theta, sub, block)
        k_theta = theta[cols][None, :].astype(kernel.dtype)
        f, cache = kernel.forward(k_theta)
        c = rng.standard_normal((1, data.n_samples)).astype(kernel.dtype)
        c[:, n:] = 0
        g = kernel.vjp(k_theta, cache, c)[0]
        g_ref = c[0, :n] @ J_ref[:, cols]
        worst = max(worst, _rel_err(f[0, :n], f_ref), _rel_err(g, g_ref))
    return worst


def _reference(model, theta, data, block):
    if block is None:
        return model.margins(theta, data), model.margin_jacobian(theta, data)
    import casadi as ca
    fn = model.casadi_summand(block)
    theta_sym = ca.SX.sym("t", model.n_params)
    x, y = ca.SX.sym("x", model.input_dim), ca.SX.sym("y")
    expr = fn(theta_sym, x, y)
    grad = ca.Function("g", [theta_sym, x, y], [expr, ca.gradient(expr, theta_sym)]).map(data.n_samples)
    f, J = grad(theta, data.X.T, data.y[None, :])
    return np.array(f).ravel(), np.array(J).T


def _rel_err(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        return math.inf
    return float(np.max(np.abs(a - b)) / max(1.0, float(np.max(np.abs(b)))))


def _candidates(arrays, data: Dataset, hint: dict | None = None):
    """Factories (dtype -> kernel) of fast kernels whose layout matches the (name, shape) arrays.

    ``hint`` (a model's ``numeric_structure``, e.g. the bundled ``mlp``) puts its activation first and gives
    the leaky slope; every candidate is still verified by the caller.
    """
    d = data.n_features
    names = [n for n, _ in arrays]
    shapes = [tuple(s) for _, s in arrays]
    if shapes == [(d,)] or shapes == [(1, d)]:
        yield lambda dtype: LinearKernel(data, dtype=dtype)
        return
    if shapes[0] in ((d,), (1, d)) and len(shapes) > 1:
        bias_sizes = [int(np.prod(s)) for s in shapes[1:]]
        k = sum(bias_sizes)
        forms = [("square", 1)] if k == 1 else [("squares_difference", 2)] if k == 2 else []
        for form, degree in forms + [("product", k)]:
            yield lambda dtype, form=form, degree=degree: SVMBiasKernel(
                data, bias=form, bias_degree=degree, dtype=dtype, names=list(zip(names, shapes)))
    yield from _layered_candidates(names, shapes, d, data, hint or {})


def layered_layouts(names, shapes, d, hint: dict):
    """The layered-net readings of a model's arrays, for the kernels' factories.

    Args:
        names: the arrays' names, the output layer's last.
        shapes: their shapes, the output layer's as a vector (hk,).
        d: input dimension.
        hint: the model's ``numeric_structure`` (``activation``, ``slope``, ``first_bias``), possibly empty.

    Returns:
        (slope, activations, layouts): the leaky slope, every activation (the hinted one first), and each
        (hidden widths, first-layer bias, layer names, bias name) that fits: without a bias, then with b1 after
        W1 (the other way round when the hint says ``first_bias``).
    """
    slope = hint.get("slope", 0.1)
    slope = float(slope) if isinstance(slope, (int, float)) and not isinstance(slope, bool) else 0.1
    first = hint.get("activation")
    activations = ([first] if first in ACTIVATIONS else []) + [a for a in ACTIVATIONS if a != first]
    layouts = []
    hidden = _chain_widths(shapes, d)
    if hidden:
        layouts.append((hidden, False, names[:-1], "b1"))
    hidden = _biased_chain_widths(shapes, d)
    if hidden:
        layouts.append((hidden, True, [names[0]] + names[2:-1], names[1]))
    if hint.get("first_bias"):
        layouts.reverse()
    return slope, activations, layouts


def _layered_candidates(names, shapes, d, data: Dataset, hint: dict, kernel_class=None):
    """Factories (dtype -> kernel) of ``kernel_class`` (default ``LayeredNetKernel``; the K-output nets pass
    theirs): every layout of ``layered_layouts`` and activation."""
    kernel_class = kernel_class or LayeredNetKernel
    slope, activations, layouts = layered_layouts(names, shapes, d, hint)
    for hidden, bias, layer_names, bias_name in layouts:
        for act in activations:
            yield lambda dtype, hidden=hidden, act=act, bias=bias, layer_names=layer_names, bias_name=bias_name: \
                kernel_class(data, hidden=hidden, activation=act, slope=slope, dtype=dtype,
                             output_name=names[-1], layer_names=layer_names, first_bias=bias,
                             bias_name=bias_name)


def _chain_widths(shapes, d):
    """Hidden widths when shapes are (h1, d), (h2, h1), ..., then (hk,) or (1, hk)."""
    if len(shapes) < 2 or any(len(s) != 2 for s in shapes[:-1]):
        return None
    widths = [d]
    for s in shapes[:-1]:
        if s[1] != widths[-1]:
            return None
        widths.append(s[0])
    if shapes[-1] not in ((widths[-1],), (1, widths[-1])):
        return None
    return tuple(widths[1:])


def _biased_chain_widths(shapes, d):
    """Hidden widths when shapes are (h1, d), (h1,) [the bias b1], (h2, h1), ..., then (hk,) or (1, hk)."""
    if len(shapes) < 3 or len(shapes[0]) != 2 or shapes[1] != (shapes[0][0],):
        return None
    return _chain_widths([shapes[0]] + list(shapes[2:]), d)


def _verified(factories, model, block, tol, dtype, notes: list | None = None):
    """The first candidate (checked in float64) that reproduces the model, built in ``dtype``.

    ``notes`` (optional) collects why each rejected candidate was rejected (its error, or the exception).
    """
    for make in factories:
        if getattr(make, "reference", False):                # the CasADi kernel: the reference itself
            return make(dtype)
        try:
            err = check_kernel_against_model(make(np.float64), model, block=block)
        except (ValueError, ArithmeticError, RuntimeError) as exc:     # ModelError, KernelUnavailable: ValueErrors
            if notes is not None:
                notes.append(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            continue
        if err <= tol:
            return make(dtype)
        if notes is not None:
            notes.append(float(err))
    return None


def _why(notes: list, tol: float) -> str:
    """What rejected the candidates: the closest one's error, and the distinct reasons of those that failed."""
    errors = [n for n in notes if isinstance(n, float)]
    reasons = list(dict.fromkeys(n for n in notes if isinstance(n, str)))[:2]
    parts = ([f"the closest candidate is off by a relative {min(errors):.2g} (tol {tol:g})"] if errors else []) + reasons
    return "; ".join(parts) or "no candidate was offered"


def _block_arrays(model, block):
    return list(model.block(block).shapes.items())


def _arrays(model) -> list:
    return list(zip(model.layout.names, (tuple(s) for s in model.layout.shapes)))


def _fallback_kernel(model, data, dtype) -> Kernel:
    """The CasADi kernel of ``model`` (its K-output variant for K > 1)."""
    if getattr(model, "n_outputs", 1) > 1:
        from .multiclass import MulticlassCasadiKernel

        return MulticlassCasadiKernel(model, data, dtype=dtype)
    return CasadiKernel(model, data, dtype=dtype)


def _declared_kernel(model, data, family: str, options: dict, dtype, tol) -> Kernel:
    """The kernel of a declared family (``registry``), or the CasADi kernel with a warning that says why."""
    factory = factory_for(family)
    if factory is None:
        warn_fallback(model, f"it declares kernel family {family!r}, which has no registered kernel "
                             f"(registered: {', '.join(registered_families())}; numeric.registry.register_kernel)")
        return _fallback_kernel(model, data, dtype)
    notes: list = []
    try:
        builders = list(factory(KernelRequest(model, data, _arrays(model), dict(options))))
    except KernelUnavailable as exc:
        warn_fallback(model, f"the {family!r} kernel cannot serve its declaration: {exc}")
        return _fallback_kernel(model, data, dtype)
    kernel = _verified(builders, model, None, tol, dtype, notes)
    if kernel is None:
        warn_fallback(model, f"the {family!r} kernel does not reproduce its CasADi margins and gradients "
                             f"({_why(notes, tol)})")
        return _fallback_kernel(model, data, dtype)
    return kernel


def kernel_for(model, X, y=None, dtype=np.float64, tol: float = 1e-8) -> Kernel:
    """The batched kernel that the model's family declares (``numeric.registry``), verified against CasADi.

    1. A model that declares a family (``model.numeric_structure = {"family": tag, ...options}``, as every bundled
       declaration does) gets the kernel registered for that tag (``registry.register_kernel``), accepted only if
       it reproduces the CasADi margins and gradients at random points.
    2. A model that declares nothing (built directly with ``Model(...)``) is read from its parameter arrays:
       linear, SVM with a homogeneous bias, layered net (a ``numeric_structure`` without a family still orders the
       activations and gives the leaky slope), sums of those per block, and the K-output kernels
       (``multiclass.multiclass_kernel``); every reading is verified the same way.
    3. Otherwise ``CasadiKernel`` (one run at a time), with a ``registry.KernelFallbackWarning`` naming the model
       and what was missing -- except for models that declare the ``casadi`` family themselves.

    Args:
        model: the Model.
        X: a Dataset, or the inputs (N, d) with ``y``.
        y: the labels when ``X`` is an array.
        dtype: float64 or float32 (the kernel's arithmetic).
        tol: relative agreement with CasADi required to accept a numpy kernel.

    Returns:
        The Kernel (batched margins f (R, N) and vector-Jacobian products).  A model with K > 1 outputs gets a
        multi-class kernel over its N (K - 1) margin rows.
    """
    from . import multiclass            # registers the K-output families

    K = getattr(model, "n_outputs", 1)
    data = multiclass._multiclass_data(X, y, K) if K > 1 else _as_data(X, y)
    if data.n_features != model.input_dim:
        raise DataError(f"model {model.name!r} expects {model.input_dim} features; data has {data.n_features}")
    declared = declaration(model)
    if declared is not None:
        return _declared_kernel(model, data, *declared, dtype, tol)
    if K > 1:
        return multiclass.multiclass_kernel(model, data, dtype=dtype, tol=tol)
    return _inferred_kernel(model, data, dtype, tol)


def _inferred_kernel(model, data, dtype, tol) -> Kernel:
    """A model that declares no family: its arrays read as one of the bundled layouts (verified), else CasADi."""
    hint = getattr(model, "numeric_structure", None)
    notes: list = []
    kernel = _verified(_candidates(_arrays(model), data, hint if isinstance(hint, dict) else None), model, None,
                       tol, dtype, notes)
    if kernel is None and model.is_sum_of_blocks and len(model.blocks) > 1:
        parts = [_verified(_candidates(_block_arrays(model, b.name), data), model, b.name, tol, dtype)
                 for b in model.blocks]
        if all(p is not None for p in parts):
            kernel = SumKernel(parts, prefixes=[""] * len(parts))
    if kernel is None:
        found = (f"the readings of its arrays as one do not reproduce its margins ({_why(notes, tol)})" if notes
                 else f"its arrays [{_layout_text(_arrays(model))}] fit none")
        warn_fallback(model, "it declares no kernel family (numeric_structure = {'family': ...}) and is none of the "
                             f"batched layouts (linear, svm_bias, layered_net, sums of those per block): {found}")
        return CasadiKernel(model, data, dtype=dtype)
    return kernel


# ---- the kernel families' factories (numeric.registry): what a model's declaration maps to ------------------------
def _require(ok: bool, reason: str) -> None:
    if not ok:
        raise KernelUnavailable(reason)


def _layout_text(arrays) -> str:
    return ", ".join(f"{n} {tuple(s)}" for n, s in arrays)


@register_kernel("linear")
def linear_factory(request: KernelRequest):
    """f = y <w, x>: one array of d entries (w (d,) or (1, d)) -> ``LinearKernel``."""
    d = request.data.n_features
    _require([tuple(s) for _, s in request.arrays] in ([(d,)], [(1, d)]),
             f"the linear layout is one array w ({d},); got [{_layout_text(request.arrays)}]")
    return [lambda dtype: LinearKernel(request.data, dtype=dtype)]


@register_kernel("svm_bias")
def svm_bias_factory(request: KernelRequest):
    """f = y (<w, x> + b(c)): w (d,), then the bias parameters -> ``SVMBiasKernel`` (``bias`` form, or every form
    that fits the number of bias parameters)."""
    d, arrays = request.data.n_features, request.arrays
    _require(len(arrays) > 1 and tuple(arrays[0][1]) in ((d,), (1, d)),
             f"the svm_bias layout is w ({d},) and bias parameters; got [{_layout_text(arrays)}]")
    k = sum(math.prod(s) for _, s in arrays[1:])
    form = request.options.get("bias")
    forms = [form] if form else (["square"] if k == 1 else ["squares_difference"] if k == 2 else []) + ["product"]
    _require(all(f in BIAS_FORMS for f in forms), f"bias form {form!r} is none of {BIAS_FORMS}")
    return [lambda dtype, f=f: SVMBiasKernel(request.data, bias=f, bias_degree=k, dtype=dtype, names=list(arrays))
            for f in forms]


def _declared_activation(options: dict) -> tuple[str, float]:
    """(activation, slope) of a layered declaration: ``activation`` (+ ``slope``), or equal ``activations`` pairs."""
    slope = options.get("slope", 0.1)
    if "activations" in options:
        pairs = {(str(kind), float(s) if kind == "leaky_relu" else 0.1) for kind, s in options["activations"]}
        _require(len(pairs) <= 1, f"mixed activations {sorted(pairs)}: the layered kernel takes one activation for "
                                  "all hidden layers")
        kind, slope = next(iter(pairs)) if pairs else ("linear", 0.1)
    else:
        kind = options.get("activation", "relu")
    kind = "linear" if kind == "identity" else kind
    _require(kind in ACTIVATIONS, f"activation {kind!r} has no batched kernel (kernels: {', '.join(ACTIVATIONS)})")
    return kind, float(slope)


@register_kernel("layered_net")
def layered_net_factory(request: KernelRequest):
    """f = y a . s(W_k ... s(W_1 x [+ b_1])) (K outputs: g = A s(...)) -> ``LayeredNetKernel`` /
    ``MulticlassLayeredNetKernel``; no hidden layer -> ``LinearKernel``."""
    options, arrays = request.options, request.arrays
    _require("hidden" in options, "the declaration gives no hidden widths ('hidden')")
    hidden = tuple(int(h) for h in options["hidden"])
    activation, slope = _declared_activation(options)
    if not hidden:
        return linear_factory(request)
    first_bias = bool(options.get("first_bias", False))
    names = [n for n, _ in arrays]
    _require(len(names) == len(hidden) + 1 + first_bias,
             f"{len(hidden)} hidden layers{' and a first-layer bias' if first_bias else ''} need "
             f"{len(hidden) + 1 + first_bias} arrays; got [{_layout_text(arrays)}]")
    kw = dict(hidden=hidden, activation=activation, slope=slope, output_name=names[-1], first_bias=first_bias,
              layer_names=[names[0]] + names[2:-1] if first_bias else names[:-1],
              bias_name=names[1] if first_bias else "b1")
    make = _layered_class(getattr(request.model, "n_outputs", 1))

    def build(dtype):
        kernel = make(request.data, dtype=dtype, **kw)
        _require([(a.name, a.shape) for a in kernel.arrays] == [(n, tuple(s)) for n, s in arrays],
                 f"the declared net's arrays [{_layout_text((a.name, a.shape) for a in kernel.arrays)}] are not the "
                 f"model's [{_layout_text(arrays)}]")
        return kernel

    return [build]


def _layered_class(outputs: int) -> type:
    """``LayeredNetKernel`` for one output, ``MulticlassLayeredNetKernel`` for K > 1."""
    if outputs > 1:
        from .multiclass import MulticlassLayeredNetKernel

        return MulticlassLayeredNetKernel
    return LayeredNetKernel


@register_kernel("sum")
def sum_factory(request: KernelRequest):
    """f = sum over blocks: ``blocks`` maps every block to its own declaration -> ``SumKernel`` of their kernels."""
    model, blocks = request.model, request.options.get("blocks")
    if not (model.is_sum_of_blocks and isinstance(blocks, dict)):
        raise KernelUnavailable("a sum declares {'blocks': {name: declaration}} on a model declared as a sum of blocks")
    parts = []
    for b in model.blocks:
        spec = blocks.get(b.name)
        if not (isinstance(spec, dict) and isinstance(spec.get("family"), str)):
            raise KernelUnavailable(f"block {b.name!r} declares no family")
        factory = factory_for(spec["family"])
        if factory is None or spec["family"] in ("sum", "casadi"):
            raise KernelUnavailable(f"block {b.name!r} declares family {spec['family']!r}, which has no batched kernel")
        options = {k: v for k, v in spec.items() if k != "family"}
        builders = list(factory(KernelRequest(model, request.data, _block_arrays(model, b.name), options, b.name)))
        _require(bool(builders), f"block {b.name!r}: no candidate kernel")
        parts.append(builders[0])
    return [lambda dtype: SumKernel([make(dtype) for make in parts], prefixes=[""] * len(parts))]


@register_kernel("casadi")
def casadi_factory(request: KernelRequest):
    """A family that declares no batched kernel: ``CasadiKernel`` (its K-output variant), without a warning."""
    return [reference_builder(lambda dtype: _fallback_kernel(request.model, request.data, dtype))]


__all__ = [
    "ACTIVATIONS",
    "BIAS_FORMS",
    "ROW_BATCH_BYTES",
    "ArraySpec",
    "CasadiKernel",
    "DeepLinearKernel",
    "Kernel",
    "LayeredNetKernel",
    "LinearKernel",
    "SVMBiasKernel",
    "SumKernel",
    "check_kernel_against_model",
    "kernel_for",
    "layered_degree",
]
