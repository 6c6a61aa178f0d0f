"""Batched multi-class training: margin rows f_{n,j} = g_{y_n} - g_j (j != y_n) as the kernel's "samples".

A kernel of a K-output model has N (K - 1) margin rows, ordered like ``modeling.multiclass.MarginRows`` (sample-major,
wrong classes increasing), so every loss, step rule and the trainer work on them unchanged:

* ``loss="exp"`` on these rows is the multi-class exponential loss  L = sum_n sum_{j != y_n} exp(-f_{n,j});
* ``CrossEntropyLoss(K)`` is the softmax cross-entropy  L = sum_n log(1 + sum_{j != y_n} exp(-f_{n,j}))
  = sum_n -log softmax(g(x_n))_{y_n}, in log space (finite at margins of 1e5 and more).

``MulticlassLinearKernel``: g = W x (the bundled ``multiclass_linear``), theta = W in C order (R runs at once): one
product X W_r^T for all runs forward, one (K, N) x (N, d) product per run backward (no N (K - 1) x K d matrix).
``MulticlassCasadiKernel``: any K-output model through CasADi (the fallback; nets follow).
"""

from __future__ import annotations

import numpy as np

from ..errors import ClassCountError, DataError
from ..modeling.data import Dataset, as_dataset
from ..modeling.multiclass import MarginRows
from .kernels import CasadiKernel, Kernel, check_kernel_against_model
from .losses import _flush_subnormals, _log_softplus_neg, logsumexp


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

    def outputs(self, theta) -> np.ndarray:
        """g(theta_r; x_n) as (R, K, N)."""
        theta = np.asarray(theta, dtype=self.dtype)
        R, K, d = theta.shape[0], self.n_classes, self.X.shape[1]
        return np.matmul(theta.reshape(R * K, d), self.Xt).reshape(R, K, -1)

    def forward(self, theta, out=None):
        G = self.outputs(theta).reshape(theta.shape[0], -1)
        f = np.subtract(G[:, self._own], G[:, self._other], out=out if out is not None and out.shape == (
            theta.shape[0], self.n_samples) and out.dtype == self.dtype else None)
        return f, None

    def vjp(self, theta, cache, cotangent):
        c = np.asarray(cotangent, dtype=self.dtype)
        R, N, K = c.shape[0], self.dataset.n_samples, self.n_classes
        C = np.zeros((R, N * K), dtype=self.dtype)
        C[:, self._other_nk] = -c
        C[:, self._own_nk] = c.reshape(R, N, K - 1).sum(axis=2)
        # d/dW_k sum_r c_r f_r = sum_n C[n, k] x_n: (R, K, N) @ (N, d)
        return np.matmul(C.reshape(R, N, K).transpose(0, 2, 1), self.X).reshape(R, -1)

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
    W (K, d) (verified against CasADi's margins and gradients at random points), else ``MulticlassCasadiKernel``.

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
    return MulticlassCasadiKernel(model, dataset, dtype=dtype)


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

    def _grouped(self, f):
        f = np.asarray(f)
        if f.shape[-1] % (self.n_classes - 1):
            raise ValueError(f"{f.shape[-1]} margin rows are not a multiple of K - 1 = {self.n_classes - 1}")
        return f.reshape(f.shape[:-1] + (f.shape[-1] // (self.n_classes - 1), self.n_classes - 1))

    def sample_log_terms(self, f) -> np.ndarray:
        """log l_n per sample (..., N) (log of each sample's cross-entropy)."""
        s = logsumexp(-self._grouped(f))
        return _log_softplus_neg(-s)

    def log_terms(self, f) -> np.ndarray:
        return self.sample_log_terms(f)

    def log_loss(self, f) -> np.ndarray:
        return logsumexp(self.sample_log_terms(f))

    def value_and_weights(self, f):
        F = self._grouped(f)
        s = logsumexp(-F)                                   # (..., N)
        log_L = logsumexp(_log_softplus_neg(-s))
        w = np.exp(-F - np.logaddexp(0, s)[..., None] - log_L[..., None, None]).reshape(np.shape(f))
        _flush_subnormals(w)
        return log_L, w

    def scaled_weights(self, f, out=None):
        log_L, w = self.value_and_weights(f)
        return log_L, w, np.ones_like(log_L)

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


__all__ = ["CrossEntropyLoss", "MulticlassCasadiKernel", "MulticlassLinearKernel", "multiclass_exponential_loss",
           "multiclass_kernel"]
