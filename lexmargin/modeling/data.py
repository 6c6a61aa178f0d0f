"""Validated binary-classification data sets (X in R^{N x D}, y in {-1, +1})."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError


def _as_features(X) -> np.ndarray:
    if np.iscomplexobj(X):
        raise DataError("X must be real; got complex values")
    try:
        X = np.array(X, dtype=float)
    except (TypeError, ValueError) as exc:
        raise DataError(f"X must be a numeric array: {exc}") from None
    if X.ndim == 1:
        raise DataError(f"X must be 2-D (N samples x D features); got a 1-D array of length {X.shape[0]}"
                        " (use X.reshape(-1, 1) for one feature)")
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise DataError(f"X must be a non-empty 2-D array (N x D); got shape {X.shape}")
    bad = ~np.isfinite(X)
    if bad.any():
        rows = np.unique(np.nonzero(bad)[0])[:5].tolist()
        raise DataError(f"X contains non-finite values (NaN or inf) in rows {rows}")
    return X


def _as_labels(y, n: int) -> np.ndarray:
    if np.iscomplexobj(y):
        raise DataError("y must be real labels in {-1, +1}; got complex values")
    try:
        y = np.array(y, dtype=float)
    except (TypeError, ValueError) as exc:
        raise DataError(f"y must be numeric labels in {{-1, +1}}: {exc}") from None
    if y.ndim != 1 or y.shape[0] != n:
        raise DataError(f"y must be a 1-D array with one label per row of X ({n}); got shape {y.shape}")
    if not np.all(np.isfinite(y)):
        raise DataError("y contains non-finite values")
    bad = ~np.isin(y, (-1.0, 1.0))
    if bad.any():
        raise DataError(f"labels must be -1 or +1; found {np.unique(y[bad])[:5].tolist()} "
                        "(for 0/1 labels use 2*y - 1)")
    return y


def _check_conflicting_duplicates(X: np.ndarray, y: np.ndarray) -> None:
    order = np.lexsort(X.T[::-1])
    Xs, ys = X[order], y[order]
    same = np.all(Xs[1:] == Xs[:-1], axis=1) & (ys[1:] != ys[:-1])
    if same.any():
        i = int(np.nonzero(same)[0][0])
        a, b = sorted((int(order[i]), int(order[i + 1])))
        raise DataError(f"samples {a} and {b} are identical but have opposite labels: "
                        "the data cannot be separated by any model")


@dataclass(frozen=True, eq=False)
class Dataset:
    """Features ``X`` (N x D) and labels ``y`` in {-1, +1}, validated on construction."""

    X: np.ndarray
    y: np.ndarray

    def __post_init__(self):
        X = _as_features(self.X)
        y = _as_labels(self.y, X.shape[0])
        _check_conflicting_duplicates(X, y)
        X.setflags(write=False)
        y.setflags(write=False)
        object.__setattr__(self, "X", X)
        object.__setattr__(self, "y", y)

    @property
    def n_samples(self) -> int:
        return self.X.shape[0]

    @property
    def n_features(self) -> int:
        return self.X.shape[1]

    def subset(self, index) -> "Dataset":
        return Dataset(self.X[index], self.y[index])

    def to_dict(self) -> dict:
        return {"X": self.X.tolist(), "y": self.y.tolist()}

    @classmethod
    def load(cls, path) -> "Dataset":
        """Load ``.npz`` (arrays ``X`` and ``y``) or ``.csv`` (label in the last column)."""
        path = Path(path)
        if not path.exists():
            raise DataError(f"data file not found: {path}")
        if path.suffix == ".npz":
            with np.load(path) as f:
                missing = {"X", "y"} - set(f.files)
                if missing:
                    raise DataError(f"{path} lacks arrays {sorted(missing)} (has {f.files})")
                return cls(f["X"], f["y"])
        if path.suffix in (".csv", ".txt"):
            try:
                table = np.loadtxt(path, delimiter="," if path.suffix == ".csv" else None, ndmin=2)
            except ValueError as exc:
                raise DataError(f"{path} is not a numeric table (features then label per row): {exc}") from None
            if table.shape[1] < 2:
                raise DataError(f"{path} needs at least one feature column and the label column")
            return cls(table[:, :-1], table[:, -1])
        raise DataError(f"unsupported data file type {path.suffix!r}: use .npz or .csv")

    def save(self, path) -> None:
        """Save as ``.npz`` (arrays X, y) or ``.csv`` (label last), chosen by the file suffix."""
        path = Path(path)
        if path.suffix == ".csv":
            np.savetxt(path, np.column_stack([self.X, self.y]), delimiter=",", fmt="%.17g")
        elif path.suffix == ".npz":
            np.savez(path, X=self.X, y=self.y)
        else:
            raise DataError(f"unsupported data file type {path.suffix!r}: use .npz or .csv")


def as_dataset(X, y=None) -> Dataset:
    """Accept a Dataset, arrays ``X, y``, or a tuple ``(X, y)``."""
    if isinstance(X, Dataset):
        if y is not None:
            raise DataError("pass either a Dataset or arrays X, y, not both")
        return X
    if y is None and isinstance(X, tuple) and len(X) == 2:
        X, y = X
    if y is None:
        raise DataError("labels y are required")
    return Dataset(X, y)
