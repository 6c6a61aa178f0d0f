"""Training records at log-spaced checkpoints: a frozen ``History`` with npz/json round trips."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

# per-checkpoint arrays: name -> trailing shape kind ("R" per run, "RP" per run and parameter)
SERIES = {"log_loss": "R", "norm": "R", "min_margin": "R", "normalized_margin": "R", "eta": "R",
          "angle": "R", "margin_ratio": "R", "direction": "RP"}


def log_checkpoints(n_steps: int, count: int = 50) -> np.ndarray:
    """Step numbers 0, 1, ..., n_steps spaced logarithmically (always includes 0 and n_steps)."""
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
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in out.items()}

    @classmethod
    def from_dict(cls, d: dict) -> History:
        arrays = {f.name: np.asarray(d[f.name], dtype=np.int64 if f.name == "steps" else float)
                  for f in fields(cls) if f.name != "meta"}
        return cls(**arrays, meta=dict(d.get("meta", {})))

    def save(self, path) -> Path:
        """Write ``.npz`` (exact) or ``.json``."""
        path = Path(path)
        if path.suffix == ".json":
            path.write_text(json.dumps(self.to_dict(), allow_nan=True))
        elif path.suffix == ".npz":
            arrays = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "meta"}
            np.savez(path, **arrays, meta=np.array(json.dumps(self.meta)))
        else:
            raise ValueError(f"unsupported history file type {path.suffix!r}: use .npz or .json")
        return path

    @classmethod
    def load(cls, path) -> History:
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"history file not found: {path}")
        if path.suffix == ".json":
            return cls.from_dict(json.loads(path.read_text()))
        if path.suffix == ".npz":
            with np.load(path) as f:
                d = {k: f[k] for k in f.files}
            meta = json.loads(str(d.pop("meta")))
            return cls(**d, meta=meta)
        raise ValueError(f"unsupported history file type {path.suffix!r}: use .npz or .json")


__all__ = ["SERIES", "History", "log_checkpoints"]
