"""Training records at log-spaced checkpoints: a frozen ``History`` with npz/json round trips.

Saves are atomic (``lexmargin.fileio``); the JSON form is strict (non-finite numbers are written as
``null`` and read back as NaN); loading a truncated, damaged or foreign file raises ``DataError``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from ..fileio import corrupt, dumps_strict, json_from_array, read_json, read_npz, savez_atomic, write_text_atomic

# per-checkpoint arrays: name -> trailing shape kind ("R" per run, "RP" per run and parameter)
SERIES = {"log_loss": "R", "norm": "R", "min_margin": "R", "normalized_margin": "R", "eta": "R",
          "angle": "R", "margin_ratio": "R", "direction": "RP"}


def log_checkpoints(n_steps: int, count: int = 50) -> np.ndarray:
    """Step numbers 0, 1, ..., n_steps spaced logarithmically (always includes 0 and n_steps).

    Args:
        n_steps: the last step.
        count: about how many checkpoints.

    Returns:
        The sorted, distinct step numbers (int).
    """
    n_steps, count = int(n_steps), int(count)
    if n_steps < 0 or count < 2:
        raise ValueError(f"need n_steps >= 0 and count >= 2; got {n_steps}, {count}")
    steps = np.unique(np.round(np.logspace(0, np.log10(max(n_steps, 1)), count - 1)).astype(np.int64))
    return np.unique(np.concatenate([[0], steps[steps <= n_steps], [n_steps]]))


@dataclass(frozen=True, eq=False)
class History:
    """Metrics of R runs at K checkpoints.  Arrays are (K, R) (``direction`` (K, R, P));
    ``angle``/``margin_ratio`` are NaN without a reference.  ``theta`` is the final (R, P)."""

    steps: np.ndarray
    log_loss: np.ndarray
    norm: np.ndarray
    min_margin: np.ndarray
    normalized_margin: np.ndarray
    eta: np.ndarray
    angle: np.ndarray
    margin_ratio: np.ndarray
    direction: np.ndarray
    theta: np.ndarray
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.ndarray):
                value = np.array(value)
                value.setflags(write=False)
                object.__setattr__(self, f.name, value)

    @property
    def loss(self) -> np.ndarray:
        """L at the checkpoints (underflows to 0 for huge margins: prefer ``log_loss``)."""
        with np.errstate(over="ignore", under="ignore"):
            return np.exp(self.log_loss)

    @property
    def n_runs(self) -> int:
        return self.theta.shape[0]

    def run(self, r: int) -> dict:
        """The series of one run."""
        return {name: getattr(self, name)[:, r] for name in SERIES}

    def to_dict(self) -> dict:
        """Plain lists and the meta dict (NaN stays NaN here; ``save`` writes it as JSON null)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in out.items()}

    @classmethod
    def from_dict(cls, d: dict) -> History:
        """Inverse of ``to_dict``; ``None`` (JSON null) in a float series is read as NaN."""
        arrays = {f.name: np.asarray(d[f.name], dtype=np.int64 if f.name == "steps" else float)
                  for f in fields(cls) if f.name != "meta"}
        return cls(**arrays, meta=dict(d.get("meta", {})))

    def save(self, path) -> Path:
        """Write ``.npz`` (exact) or ``.json`` (strict JSON: non-finite numbers as null), atomically."""
        path = Path(path)
        if path.suffix == ".json":
            write_text_atomic(path, dumps_strict(self.to_dict()))
        elif path.suffix == ".npz":
            arrays = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "meta"}
            savez_atomic(path, **arrays, meta=np.array(dumps_strict(self.meta)))
        else:
            raise ValueError(f"unsupported history file type {path.suffix!r}: use .npz or .json")
        return path

    @classmethod
    def load(cls, path) -> History:
        """Read a file written by ``save``.

        Raises:
            FileNotFoundError: there is no file at ``path``.
            ValueError: the suffix is neither .npz nor .json.
            DataError: the file is truncated, damaged, not a History (e.g. a checkpoint or a data file)
                or its arrays have inconsistent shapes.
        """
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"history file not found: {path}")
        if path.suffix == ".json":
            d = read_json(path, KIND)
            if not isinstance(d, dict):
                raise corrupt(path, KIND, "the document is not a mapping")
        elif path.suffix == ".npz":
            d = read_npz(path, KIND, required=[f.name for f in fields(cls)])
            d["meta"] = json_from_array(d["meta"], path, KIND)
        else:
            raise ValueError(f"unsupported history file type {path.suffix!r}: use .npz or .json")
        names = {f.name for f in fields(cls)}
        if set(d) != names:
            raise corrupt(path, KIND, f"entries {sorted(set(d))}; expected {sorted(names)}")
        if not isinstance(d["meta"], dict):
            raise corrupt(path, KIND, "meta is not a mapping")
        if path.suffix == ".npz":                      # exact: the arrays keep their dtypes
            kinds = {name: ("iu" if name == "steps" else "f") for name in names - {"meta"}}
            wrong = sorted(name for name, k in kinds.items() if d[name].dtype.kind not in k and d[name].size)
            if wrong:
                raise corrupt(path, KIND, f"arrays {wrong} have the wrong dtype")
            history = cls(**d)
        else:
            try:
                history = cls.from_dict(d)
            except (TypeError, ValueError, OverflowError) as exc:
                raise corrupt(path, KIND, exc) from None
        problem = history._inconsistency()
        if problem:
            raise corrupt(path, KIND, problem)
        return history

    def _inconsistency(self) -> str | None:
        """Why the arrays' shapes do not fit together (None if they do)."""
        if self.theta.ndim != 2 or self.steps.ndim != 1:
            return f"theta has shape {self.theta.shape} and steps {self.steps.shape}"
        (R, P), K = self.theta.shape, self.steps.size
        if K and np.any(np.diff(self.steps) <= 0):
            return "steps are not increasing"
        for name, kind in SERIES.items():
            value = getattr(self, name)
            shape = (K, R) if kind == "R" else (K, R, P)
            if not (value.shape == shape or (kind == "RP" and value.shape == (K, R, 0)) or (K == 0 and value.size == 0)):
                return f"{name} has shape {value.shape}; expected {shape}"
        return None


KIND = "History"


__all__ = ["SERIES", "History", "log_checkpoints"]
