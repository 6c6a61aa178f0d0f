"""Batched multi-class training: margin rows f_{n,j} = g_{y_n} - g_j (j != y_n) as the kernel's "samples".

A kernel of a K-output model has N (K - 1) margin rows, ordered like ``modeling.multiclass.MarginRows`` (sample-major,
wrong classes increasing), so every loss, step rule and the trainer work on them unchanged:

* ``loss="exp"`` on these rows is the multi-class exponential loss  L = sum_n sum_{j != y_n} exp(-f_{n,j});
* ``CrossEntropyLoss(K)`` is the softmax cross-entropy  L = sum_n log(1 + sum_{j != y_n} exp(-f_{n,j}))
  = sum_n -log softmax(g(x_n))_{y_n}, in log space (finite at margins of 1e5 and more).

``MulticlassLinearKernel``: g = W x (the bundled ``multiclass_linear``), theta = W in C order (R runs at once): one
product X W_r^T for all runs forward, one (K, N) x (N, d) product per run backward (no N (K - 1) x K d matrix).
``MulticlassLayeredNetKernel``: K-output nets g = A s(W_k ... s(W_1 x [+ b_1])) (the bundled ``mlp`` with
``n_classes=K``), R runs at once: forward the layers' batched products and G = A H_k (R, K, N); backward the row
cotangents scattered to C (R, K, N) (C[n, y_n] = sum_j c_{n,j}, C[n, j] = -c_{n,j}) and propagated like a
one-output net's.  ``MulticlassCasadiKernel``: any other K-output model through CasADi (the fallback).

Margins, products and ``CrossEntropyLoss`` compute in the namespace of theta (numpy, torch, CuPy,
``array_api_strict``; ``backend``): the row gathers are ``xp.take``, and the scatter of row cotangents to the
(N, K) output cotangents is one ``xp.take`` through the inverse permutation (every (n, k) slot is either a row's
wrong class or the sample's own class), so no in-place fancy assignment is needed off numpy.
"""

from __future__ import annotations

import numpy as np

from ..errors import ClassCountError, DataError
from ..modeling.data import Dataset, as_dataset
from ..modeling.multiclass import MarginRows
from .kernels import (
    ACTIVATIONS,
    CasadiKernel,
    Kernel,
    LayeredNetKernel,
    _layered_candidates,
    check_kernel_against_model,
    layered_degree,
)
from .backend import constants, namespace, xp_dtype
from .registry import KernelRequest, KernelUnavailable, register_kernel, warn_fallback
from .losses import _flush_subnormals, _log_softplus_neg, logsumexp, softplus


def _scatter_source_index(other_nk, own_nk) -> np.ndarray:
    """inv with C_flat = concat([-c, sum_j c], axis=1)[:, inv]: the source of each (n, k) slot of the (N, K) cotangents.

    The first N (K - 1) sources are the rows (slots ``other_nk``), the last N the per-sample sums (slots ``own_nk``).
    """
    inv = np.empty(other_nk.size + own_nk.size, dtype=np.int64)
    inv[other_nk] = np.arange(other_nk.size)
    inv[own_nk] = other_nk.size + np.arange(own_nk.size)
    return inv


def _scatter_rows(xp, c, inv, N: int, K: int):
    """The (R, N K) output cotangents (sample-major) of row cotangents c (R, N (K - 1)), off numpy."""
    R = c.shape[0]
    sums = xp.sum(xp.reshape(c, (R, N, K - 1)), axis=2)
    return xp.take(xp.concat([-c, sums], axis=1), inv, axis=1)


def _multiclass_data(X, y=None, n_classes: int | None = None) -> Dataset:
    if isinstance(X, MarginRows):
        return X.dataset
    data = X if isinstance(X, Dataset) else as_dataset(X, y, n_classes=n_classes)
    if data.n_classes is None:
        raise ClassCountError("a multi-class kernel needs integer labels 0..K-1 (Dataset(X, y, n_classes=K))")
    if n_classes is not None and data.n_classes != n_classes:
        raise ClassCountError(f"the kernel has {n_classes} classes but the data has {data.n_classes}")
    return data


class MulticlassLinearKernel(Kernel):
    """f_{n,j} = (W_{y_n} - W_j) . x_n for R parameter matrices W (K, d) at once (theta (R, K d), C order).

    ``n_samples`` is the number of margin rows N (K - 1); ``rows`` their (n, j).
    """

    name = "multiclass_linear"
    degree = 1.0
    backend_constants = ("y", "X", "Xt", "_own", "_other", "_inv")

    def __init__(self, X, y=None, n_classes: int | None = None, dtype=np.float64):
        dataset = _multiclass_data(X, y, n_classes)
        rows = MarginRows.of(dataset)
        K, d = rows.n_classes, dataset.n_features
        super().__init__(rows, [("W", (K, d))], dtype)     # type: ignore[arg-type]  # MarginRows: Dataset's interface
        self.dataset, self.rows, self.n_classes = dataset, rows, K
        N = dataset.n_samples
        self.X = np.ascontiguousarray(dataset.X, dtype=self.dtype)          # (N, d)
        self.Xt = np.ascontiguousarray(self.X.T)                              # (d, N)
        labels = dataset.labels
        # positions in the (K, N) output matrix of each row's own class and wrong class
        self._own = labels[rows.sample] * N + rows.sample
        self._other = rows.other * N + rows.sample
        # positions in the (N, K) cotangent matrix (sample-major)
        self._other_nk = rows.sample * K + rows.other
        self._own_nk = np.arange(N) * K + labels
        self._inv = _scatter_source_index(self._other_nk, self._own_nk)

    def outputs(self, theta) -> np.ndarray:
        """g(theta_r; x_n) as (R, K, N)."""
        xp = namespace(theta)
        R, K, d = theta.shape[0], self.n_classes, self.X.shape[1]
        if xp is not np:
            return xp.reshape(xp.reshape(theta, (R * K, d)) @ self.consts(theta).Xt, (R, K, -1))
        theta = np.asarray(theta, dtype=self.dtype)
        return np.matmul(theta.reshape(R * K, d), self.Xt).reshape(R, K, -1)

    def forward(self, theta, out=None):
        xp = namespace(theta)
        if xp is not np:
            k = self.consts(theta)
            G = xp.reshape(self.outputs(theta), (theta.shape[0], -1))
            return xp.take(G, k._own, axis=1) - xp.take(G, k._other, axis=1), None
        G = self.outputs(theta).reshape(theta.shape[0], -1)
        f = np.subtract(G[:, self._own], G[:, self._other], out=out if out is not None and out.shape == (
            theta.shape[0], self.n_samples) and out.dtype == self.dtype else None)
        return f, None

    def vjp(self, theta, cache, cotangent):
        xp = namespace(theta, cotangent)
        R, N, K = cotangent.shape[0], self.dataset.n_samples, self.n_classes
        if xp is not np:
            k = self.consts(cotangent)
            C = _scatter_rows(xp, xp.astype(cotangent, xp_dtype(xp, self.dtype)), k._inv, N, K)
            return xp.reshape(xp.matrix_transpose(xp.reshape(C, (R, N, K))) @ k.X, (R, -1))
        c = np.asarray(cotangent, dtype=self.dtype)
        C = np.zeros((R, N * K), dtype=self.dtype)
        C[:, self._other_nk] = -c
        C[:, self._own_nk] = c.reshape(R, N, K - 1).sum(axis=2)
        # d/dW_k sum_r c_r f_r = sum_n C[n, k] x_n: (R, K, N) @ (N, d)
        return np.matmul(C.reshape(R, N, K).transpose(0, 2, 1), self.X).reshape(R, -1)

    # the Trainer's fused path: dense outputs instead of rows (numeric.fused_multiclass); no geometries
    has_fused_lanes = True
    fused_geometry = False

    def fused_lane(self, rows: slice, theta, shift=None, *, threads: int = 1, kernel: str | None = None,
                   steps: int | None = None):
        """A ``fused_multiclass.MulticlassExpLane`` of the runs ``rows`` (arguments as ``Kernel.fused_lane``)."""
        from .fused_multiclass import MulticlassExpLane
        return MulticlassExpLane(rows, theta, self, shift, threads=threads, kernel=kernel, steps=steps)

    def per_sample_jacobian(self, theta, rows) -> np.ndarray:
        """grad f_{n,j} = (e_{y_n} - e_j) kron x_n: rows of the constant Jacobian."""
        self.check_theta(theta)
        rows = np.asarray(rows, dtype=np.intp).reshape(-1)
        out = np.zeros((rows.size, self.n_classes, self.X.shape[1]), dtype=self.dtype)
        contrasts = self.rows.y[rows]
        out += contrasts[:, :, None] * self.rows.X[rows][:, None, :]
        return out.reshape(rows.size, -1)

    def describe(self) -> dict:
        return {**super().describe(), "n_classes": self.n_classes}


class _RowScatter:
    """Positions that map the N (K - 1) margin rows to and from a (K, N) output matrix (sample n, class k)."""

    def __init__(self, dataset: Dataset, rows: MarginRows):
        N, K = dataset.n_samples, rows.n_classes
        labels = dataset.labels
        self.N, self.K = N, K
        self.own = labels[rows.sample] * N + rows.sample          # g_{y_n}(x_n) in (K, N) flat
        self.other = rows.other * N + rows.sample                  # g_j(x_n)
        self.other_nk = rows.sample * K + rows.other               # (N, K) flat positions of the cotangents
        self.own_nk = np.arange(N) * K + labels
        self.inv = _scatter_source_index(self.other_nk, self.own_nk)

    def rows_of(self, G: np.ndarray) -> np.ndarray:
        """f_{n,j} = G[y_n, n] - G[j, n] for outputs G (R, K, N): (R, N (K - 1))."""
        xp = namespace(G)
        if xp is not np:
            k = constants(self, ("own", "other"), G)
            flat = xp.reshape(G, (G.shape[0], -1))
            return xp.take(flat, k.own, axis=1) - xp.take(flat, k.other, axis=1)
        flat = G.reshape(G.shape[0], -1)
        return flat[:, self.own] - flat[:, self.other]

    def outputs_cotangent(self, c: np.ndarray) -> np.ndarray:
        """sum_{n,j} c_{n,j} grad f_{n,j} = sum_{n,k} C[k, n] grad g_k(x_n): C (R, K, N) from c (R, N (K - 1))."""
        xp = namespace(c)
        R = c.shape[0]
        if xp is not np:
            C = _scatter_rows(xp, c, constants(self, ("inv",), c).inv, self.N, self.K)
            return xp.matrix_transpose(xp.reshape(C, (R, self.N, self.K)))
        C = np.zeros((R, self.N * self.K), dtype=c.dtype)
        C[:, self.other_nk] = -c
        C[:, self.own_nk] = c.reshape(R, self.N, self.K - 1).sum(axis=2)
        return np.ascontiguousarray(C.reshape(R, self.N, self.K).transpose(0, 2, 1))


class MulticlassLayeredNetKernel(LayeredNetKernel):
    """K-output layered nets  g(x) = A s(W_k s(... s(W_1 x + b_1)))  (b_1 optional), margin rows
    f_{n,j} = g_{y_n}(x_n) - g_j(x_n), R runs at once.

    Parameters W1 (h1, d), [b1 (h1,)], W2 (h2, h1), ..., Wk (hk, h_{k-1}) and the output matrix A (K, hk) (the
    bundled ``mlp``'s ``a`` with ``n_classes=K``), flat in this order, C order.  Forward: Z_1 = W_1 X^T (+ b_1),
    H_i = s(Z_i), Z_{i+1} = W_{i+1} H_i (batched over runs), G = A H_k (R, K, N), rows gathered from G.  Backward:
    the row cotangents c become output cotangents C (R, K, N) with C[y_n, n] = sum_j c_{n,j}, C[j, n] = -c_{n,j};
    grad A = C H_k^T, delta_k = (A^T C) * s'(Z_k), grad W_i = delta_i H_{i-1}^T, delta_{i-1} = (W_i^T delta_i) *
    s'(Z_{i-1}), grad b_1 = delta_1 1.  Homogeneous of degree k + 1 (relu, leaky_relu, linear).

    ``path_scales`` (Path-SGD, p = 2) is the one-output net's with gamma_out = 1 at each of the K outputs: the path
    norm sums over all input-output paths to every output.
    """

    name = "multiclass_layered_net"

    def __init__(self, X, y=None, n_classes: int | None = None, hidden=(10,), activation: str = "relu",
                 slope: float = 0.1, dtype=np.float64, output_name: str = "a", layer_names=None,
                 first_bias: bool = False, bias_name: str = "b1"):
        dataset = _multiclass_data(X, y, n_classes)
        rows = MarginRows.of(dataset)
        self.hidden = tuple(int(h) for h in hidden)
        if not self.hidden or any(h <= 0 for h in self.hidden):
            raise ValueError(f"hidden widths must be positive and at least one; got {hidden}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose from {ACTIVATIONS}")
        self.activation, self.slope, self.first_bias = activation, float(slope), bool(first_bias)
        self._set_activation()
        K = rows.n_classes
        self.widths = (dataset.n_features,) + self.hidden
        names = list(layer_names or [f"W{i + 1}" for i in range(len(self.hidden))])
        if len(names) != len(self.hidden):
            raise ValueError(f"need {len(self.hidden)} layer names; got {names}")
        shapes: list[tuple[str, tuple[int, ...]]] = [(names[i], (self.widths[i + 1], self.widths[i]))
                                                     for i in range(len(self.hidden))]
        if self.first_bias:
            shapes.insert(1, (bias_name, (self.widths[1],)))
        Kernel.__init__(self, rows, shapes + [(output_name, (K, self.widths[-1]))], dtype)  # type: ignore[arg-type]
        self.degree = layered_degree(len(self.hidden), activation)
        self.dataset, self.rows, self.n_classes = dataset, rows, K
        self.X = np.ascontiguousarray(dataset.X, dtype=self.dtype)
        self.XT = np.ascontiguousarray(self.X.T)
        self._scatter = _RowScatter(dataset, rows)

    def weights(self, theta) -> list[np.ndarray]:
        """Layer matrices (R, out, in) as views into theta; the output layer A as (R, K, hk); no bias."""
        R, xp = theta.shape[0], namespace(theta)
        return [xp.reshape(theta[:, a.columns], (R, *a.shape)) for a in self._matrix_specs()]

    def outputs(self, theta) -> np.ndarray:
        """g(theta_r; x_n) as (R, K, N)."""
        if namespace(theta) is np:
            theta = np.asarray(theta, dtype=self.dtype)
        return self._forward_outputs(theta)[0]

    def forward(self, theta, out=None):
        G, cache = self._forward_outputs(theta)
        return self._scatter.rows_of(G), cache

    def vjp(self, theta, cache, cotangent):
        xp = namespace(theta, cotangent)
        c = np.asarray(cotangent, dtype=self.dtype) if xp is np else xp.astype(cotangent, xp_dtype(xp, self.dtype))
        return self._backward(theta, cache, self._scatter.outputs_cotangent(c))      # delta (R, K, N)

    def forward_rows(self, theta, rows, group: int = 1):
        """The net on the samples of each run's rows only (each group of ``group`` rows: one sample, evaluated
        once): outputs G (R, K, B / group), rows f_{n,j} = G[y_n] - G[j]."""
        samples = self.rows.sample[rows[:, ::group]]                    # (R, S)
        X_b = self.X[samples]                                           # (R, S, d)
        G, cache = self._forward_outputs(theta, XT=np.swapaxes(X_b, 1, 2))
        own, other = self._row_positions(rows, samples, group)
        flat = G.reshape(G.shape[0], -1)
        f = np.take_along_axis(flat, own, axis=1) - np.take_along_axis(flat, other, axis=1)
        return f, (cache, X_b, own, other, G.shape)

    def _row_positions(self, rows, samples, group: int):
        """Flat positions in G (R, K, S) of g_{y_n}(x_n) and g_j(x_n) for each row (n, j) of ``rows`` (R, B)."""
        S = samples.shape[1]
        column = np.arange(rows.shape[1]) // group                       # the row's sample in the minibatch
        labels = self.dataset.labels[samples][:, column]
        return labels * S + column, self.rows.other[rows] * S + column

    def vjp_rows(self, theta, cache, cotangent, rows):
        cache, X_b, own, other, shape = cache
        R, size = shape[0], int(np.prod(shape[1:]))
        C = np.zeros(R * size, dtype=self.dtype)
        c = np.asarray(cotangent, dtype=self.dtype).ravel()
        offset = (np.arange(R) * size)[:, None]
        np.add.at(C, (own + offset).ravel(), c)                        # sum_{n,j} c_{n,j} (e_{y_n} - e_j) at x_n
        np.subtract.at(C, (other + offset).ravel(), c)
        return self._backward(theta, cache, C.reshape(shape), X=X_b)

    def _factored_layout(self) -> bool:
        return False            # per-sample rows through the generic (vjp-based) helpers

    def per_sample_jacobian(self, theta, rows) -> np.ndarray:
        return Kernel.per_sample_jacobian(self, theta, rows)

    def describe(self) -> dict:
        return {**super().describe(), "n_classes": self.n_classes}


def _layered_factories(model, dataset: Dataset):
    """MulticlassLayeredNetKernel factories (dtype -> kernel) for a K-output model whose arrays chain
    W1 (h1, d), [b1 (h1,)], ..., A (K, hk); the activation hinted by ``numeric_structure`` first."""
    names, shapes = list(model.layout.names), [tuple(s) for s in model.layout.shapes]
    K, d = model.n_outputs, dataset.n_features
    if len(shapes) < 2 or shapes[-1][:1] != (K,) or len(shapes[-1]) != 2:
        return
    inner = shapes[:-1] + [(shapes[-1][1],)]
    hint = getattr(model, "numeric_structure", None)
    yield from _layered_candidates(names, inner, d, dataset, hint if isinstance(hint, dict) else {},
                                   MulticlassLayeredNetKernel)


class MulticlassCasadiKernel(CasadiKernel):
    """Any K-output model through its CasADi margins, one run at a time (the fallback of ``multiclass_kernel``)."""

    name = "multiclass_casadi"

    def __init__(self, model, X, y=None, dtype=np.float64):
        dataset = _multiclass_data(X, y, model.n_outputs)
        if dataset.n_features != model.input_dim:
            raise DataError(f"model {model.name!r} expects {model.input_dim} features; data has {dataset.n_features}")
        rows = MarginRows.of(dataset)
        Kernel.__init__(self, rows, zip(model.layout.names, model.layout.shapes), dtype)  # type: ignore[arg-type]
        self.model, self.degree = model, model.degree
        self.dataset, self.rows, self.n_classes = dataset, rows, rows.n_classes


def multiclass_kernel(model, X, y=None, dtype=np.float64, tol: float = 1e-8) -> Kernel:
    """The batched kernel of a K-output model: ``MulticlassLinearKernel`` when the model is g = W x with one array
    W (K, d), ``MulticlassLayeredNetKernel`` when its arrays chain W1 (h1, d), [b1], ..., A (K, hk) with a relu /
    leaky_relu / linear activation (each verified against CasADi's margins and gradients at random points), else
    ``MulticlassCasadiKernel``.

    Args:
        model: a Model with ``n_outputs = K > 1``.
        X: a multi-class Dataset, or the inputs (N, d) with ``y``.
        y: integer labels 0..K-1 when ``X`` is an array.
        dtype: float64 or float32.
        tol: relative agreement with CasADi required to accept the numpy kernel.

    Returns:
        The Kernel (margins over the N (K - 1) rows (n, j)).
    """
    K = getattr(model, "n_outputs", 1)
    if K < 2:
        raise ClassCountError(f"model {model.name!r} has one output: use kernel_for")
    dataset = _multiclass_data(X, y, K)
    if dataset.n_features != model.input_dim:
        raise DataError(f"model {model.name!r} expects {model.input_dim} features; data has {dataset.n_features}")
    shapes = list(model.layout.shapes)
    if len(shapes) == 1 and tuple(shapes[0]) == (K, model.input_dim):
        kernel = MulticlassLinearKernel(dataset, dtype=np.float64)
        try:
            if check_kernel_against_model(kernel, model) <= tol:
                return kernel if np.dtype(dtype) == np.float64 else MulticlassLinearKernel(dataset, dtype=dtype)
        except (ValueError, ArithmeticError, RuntimeError):
            pass
    for make in _layered_factories(model, dataset):
        try:
            if check_kernel_against_model(make(np.float64), model) <= tol:
                return make(dtype)
        except (ValueError, ArithmeticError, RuntimeError):
            continue
    warn_fallback(model, f"it declares no kernel family (numeric_structure) and its arrays are neither W ({K}, "
                         f"{model.input_dim}) nor a layered net ending in A ({K}, h) that reproduces its margins")
    return MulticlassCasadiKernel(model, dataset, dtype=dtype)


@register_kernel("multiclass_linear")
def multiclass_linear_factory(request: KernelRequest):
    """g = W x with one array W (K, d) -> ``MulticlassLinearKernel`` (registry family ``multiclass_linear``)."""
    K, d = getattr(request.model, "n_outputs", 1), request.data.n_features
    if [tuple(s) for _, s in request.arrays] != [(K, d)]:
        raise KernelUnavailable(f"the multiclass_linear layout is one array W ({K}, {d}); got {request.arrays}")
    return [lambda dtype: MulticlassLinearKernel(request.data, n_classes=K, dtype=dtype)]


class CrossEntropyLoss:
    """Softmax cross-entropy over K classes on a multi-class kernel's margin rows (K - 1 per sample, sample-major):

        L = sum_n l_n,   l_n = log(1 + sum_{j != y_n} exp(-f_{n,j})) = -log softmax(g(x_n))_{y_n}.

    In log space: s_n = logsumexp_j(-f_{n,j}), log l_n = log softplus(s_n) (= s_n + O(e^{s_n}) at large margins),
    log L = logsumexp_n log l_n, and the weights of grad log L = -sum w_{n,j} grad f_{n,j} are
    w_{n,j} = exp(-f_{n,j} - softplus(s_n) - log L).  K = 2 is the logistic loss.
    """

    def __init__(self, n_classes: int):
        if isinstance(n_classes, bool) or int(n_classes) != n_classes or n_classes < 2:
            raise ValueError(f"n_classes must be an integer >= 2; got {n_classes!r}")
        self.n_classes = int(n_classes)
        self.name = "cross_entropy"
        # minibatches keep a sample's K - 1 rows together (the trainer's batch_size counts samples)
        self.rows_per_sample = self.n_classes - 1

    def _grouped(self, f):
        xp = namespace(f)
        f = np.asarray(f) if xp is np else f
        if f.shape[-1] % (self.n_classes - 1):
            raise ValueError(f"{f.shape[-1]} margin rows are not a multiple of K - 1 = {self.n_classes - 1}")
        return xp.reshape(f, tuple(f.shape[:-1]) + (f.shape[-1] // (self.n_classes - 1), self.n_classes - 1))

    def sample_log_terms(self, f) -> np.ndarray:
        """log l_n per sample (..., N) (log of each sample's cross-entropy)."""
        s = logsumexp(-self._grouped(f))
        return _log_softplus_neg(-s)

    def log_terms(self, f) -> np.ndarray:
        return self.sample_log_terms(f)

    def log_loss(self, f) -> np.ndarray:
        return logsumexp(self.sample_log_terms(f))

    def value_and_weights(self, f):
        xp = namespace(f)
        F = self._grouped(f)
        s = logsumexp(-F)                                   # (..., N)
        log_L = logsumexp(_log_softplus_neg(-s))
        w = xp.reshape(xp.exp(-F - softplus(s)[..., None] - log_L[..., None, None]), tuple(f.shape))
        return log_L, _flush_subnormals(w)

    def scaled_weights(self, f, out=None):
        log_L, w = self.value_and_weights(f)
        return log_L, w, namespace(log_L).ones_like(log_L)

    def to_dict(self) -> dict:
        return {"name": self.name, "n_classes": self.n_classes}

    def __eq__(self, other):
        return isinstance(other, CrossEntropyLoss) and other.n_classes == self.n_classes

    def __hash__(self):
        return hash((self.name, self.n_classes))

    def __repr__(self):
        return f"CrossEntropyLoss(n_classes={self.n_classes})"


def multiclass_exponential_loss(f) -> np.ndarray:
    """log L of the multi-class exponential loss sum_{n, j != y_n} exp(-f_{n,j}) for margin rows f (..., N (K-1)):
    ``ExponentialLoss`` over the rows (the trainer's ``loss="exp"``), named for the reader."""
    return logsumexp(-np.asarray(f))


__all__ = ["CrossEntropyLoss", "MulticlassCasadiKernel", "MulticlassLayeredNetKernel", "MulticlassLinearKernel", "multiclass_exponential_loss",
           "multiclass_kernel"]
