"""Multi-class margins: the constraint family f_{n,j}(theta) = g_{y_n}(theta; x_n) - g_j(theta; x_n), j != y_n.

A model with K outputs g(theta; x) in R^K (``Model(..., outputs=K)``) classifies data with integer labels
0..K-1 (``Dataset(X, y, n_classes=K)``).  Each sample n gives K - 1 margin rows, one per wrong class j.  Every
row is written as a *contrast* c in R^K applied to the model's output at one input,

    f_r(theta) = c_r . g(theta; x_{n_r}),      c_r = e_{y_n} - e_j,

which is the binary margin y_n g(theta; x_n) when K = 1 and c = y_n.  ``MarginRows`` holds the rows in this form
(inputs X[n_r], contrasts C (R, K), and the indices (n_r, j_r)); it stands wherever the pipeline evaluates margins
over a ``Dataset`` (``Model.margins``, ``margin_jacobian``, ``weighted_hessian``, the margin sources of
``problems.margins``), so every problem built on the pipeline gets one row -- and one multiplier -- per (n, j)
without knowing it is multi-class.  Rows are ordered sample-major: sample 0's wrong classes in increasing order,
then sample 1's, ...
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ClassCountError, DataError, ModelError
from .data import Dataset, as_dataset


@dataclass(frozen=True, eq=False)
class MarginRows:
    """The margin rows (n, j) of a K-class data set, in the Dataset interface the pipeline evaluates over.

    X: the input of each row (R, d) (row r: x_{n_r}).  y: the contrast of each row (R, K), e_{y_n} - e_j.
    sample, other: n_r and j_r (R,).  dataset: the multi-class Dataset the rows come from.
    ``n_samples`` is the number of rows R = N (K - 1): to the pipeline each row is a "sample".
    """

    X: np.ndarray
    y: np.ndarray
    sample: np.ndarray
    other: np.ndarray
    dataset: Dataset

    @property
    def n_samples(self) -> int:
        """Number of margin rows R (N (K - 1))."""
        return self.X.shape[0]

    @property
    def n_features(self) -> int:
        """Number of features d."""
        return self.X.shape[1]

    @property
    def n_classes(self) -> int:
        """Number of classes K."""
        return self.y.shape[1]

    @property
    def pairs(self) -> np.ndarray:
        """(R, 2) integer array of the rows' (n, j)."""
        return np.column_stack([self.sample, self.other])

    def subset(self, index) -> MarginRows:
        """The rows at ``index``, as MarginRows of the same data set.

        Args:
            index: indices, a boolean mask or a slice of the rows.

        Returns:
            The MarginRows of those rows.
        """
        return MarginRows(self.X[index], self.y[index], self.sample[index], self.other[index], self.dataset)

    @classmethod
    def of(cls, data: Dataset) -> MarginRows:
        """Every row (n, j), j != y_n, of a multi-class Dataset, sample-major.

        Args:
            data: a Dataset with ``n_classes`` set.

        Returns:
            The MarginRows.
        """
        if not isinstance(data, Dataset) or data.n_classes is None:
            raise ClassCountError("margin rows need a multi-class Dataset (integer labels, n_classes=K)")
        N, K = data.n_samples, data.n_classes
        labels = data.labels
        others = np.tile(np.arange(K), (N, 1))
        keep = others != labels[:, None]
        other = others[keep]                                   # (N (K - 1),), sample-major, increasing j
        sample = np.repeat(np.arange(N), K - 1)
        C = np.zeros((sample.size, K))
        C[np.arange(sample.size), labels[sample]] = 1.0
        C[np.arange(sample.size), other] = -1.0
        X = np.ascontiguousarray(data.X[sample])
        for arr in (X, C, sample, other):
            arr.setflags(write=False)
        return cls(X, C, sample, other, data)


def check_classes(n_outputs: int, data) -> None:
    """ClassCountError unless the data's classes fit a model with ``n_outputs`` outputs."""
    classes = data.n_classes if isinstance(data, (Dataset, MarginRows)) else None
    if n_outputs == 1:
        if classes is not None:
            raise ClassCountError(f"a model with one output classifies binary (+-1) data; the data has "
                                  f"{classes} classes (declare the model with outputs={classes})")
        return
    if classes is None:
        raise ClassCountError(f"the model has {n_outputs} outputs and needs data with integer labels "
                              f"0..{n_outputs - 1} (Dataset(X, y, n_classes={n_outputs})); got binary data")
    if classes != n_outputs:
        raise ClassCountError(f"the model has {n_outputs} outputs but the data has {classes} classes")


def rows_for(model, data):
    """What the pipeline evaluates the model's margins over: the Dataset itself for a binary model, its
    ``MarginRows`` for a model with K > 1 outputs (``ClassCountError`` when data and model disagree)."""
    if isinstance(data, MarginRows):
        check_classes(model.n_outputs, data)
        return data
    if not isinstance(data, Dataset):
        raise DataError(f"expected a lexmargin Dataset, got {type(data).__name__}")
    check_classes(model.n_outputs, data)
    return data if model.n_outputs == 1 else MarginRows.of(data)


def problem_data(model, data):
    """A problem's data (a Dataset, (X, y) or a tuple; integer labels read as the model's K classes) and the rows
    its margin constraints run over: ``(dataset, rows)`` (rows is the dataset itself for binary models)."""
    n_outputs = getattr(model, "n_outputs", 1)
    if isinstance(data, MarginRows):
        return data.dataset, rows_for(model, data)
    dataset = as_dataset(data, n_classes=n_outputs if n_outputs > 1 else None) if not isinstance(data, Dataset) \
        else data
    rows = rows_for(model, dataset)
    if n_outputs > 1:
        from .regions import uses_piecewise_linear_activations

        if uses_piecewise_linear_activations(model):
            raise ModelError(f"model {model.name!r}: K-output nets with relu/leaky_relu (activation regions) are not "
                             "supported yet (docs/multiclass.md)")
    return dataset, rows


def multiplier_matrix(certificate, n_classes: int | None = None) -> np.ndarray:
    """A multi-class certificate's multipliers as an (N, K) matrix: lambda_{n,j} at [n, j], 0 at [n, y_n].

    Args:
        certificate: a Certificate of a multi-class problem (its ``margin_rows`` are the (n, j) of its rows).
        n_classes: K (default: read from the rows, which name every class unless all samples share one).

    Returns:
        The (N, K) matrix.
    """
    if certificate.margin_rows is None:
        raise ClassCountError("the certificate is not multi-class (it has one margin row per sample)")
    pairs = np.asarray(certificate.margin_rows, dtype=int)
    K = int(n_classes) if n_classes is not None else int(pairs[:, 1].max()) + 1
    out = np.zeros((int(pairs[:, 0].max()) + 1, K))
    np.add.at(out, (pairs[:, 0], pairs[:, 1]), certificate.multipliers)
    return out


def with_margin_rows(certificate, rows):
    """The certificate with its (n, j) row indices recorded (``margin_rows``) when ``rows`` are MarginRows; the
    certificate itself otherwise (binary problems are unchanged)."""
    if not isinstance(rows, MarginRows) or certificate is None:
        return certificate
    from dataclasses import replace

    return replace(certificate, margin_rows=rows.pairs)


__all__ = ["MarginRows", "check_classes", "multiplier_matrix", "problem_data", "rows_for", "with_margin_rows"]
