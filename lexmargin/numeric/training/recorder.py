"""What training records: the checkpoint schedule, the measurements at each checkpoint, and the ``History``.

``Recorder`` owns the schedule (log-spaced or given step numbers), the records taken so far and what they
are measured against (a ``Reference``, whether directions are stored).  ``measure`` is the measurement
itself, a function of the runs' parameters and margins only.  Records are numpy (the boundary of a run on
another array library).
"""

from __future__ import annotations

import numpy as np

from ..backend import to_numpy
from ..compare import Reference, angle, margin_ratio
from ..history import SERIES, History, log_checkpoints


def checkpoint_schedule(n_steps: int, checkpoints) -> np.ndarray:
    """The steps to record at.

    Args:
        n_steps: the steps of the training.
        checkpoints: how many log-spaced checkpoints, or the step numbers themselves.

    Returns:
        The sorted, distinct steps (int64) in [0, n_steps].

    Raises:
        ValueError: a step number outside [0, n_steps], or none.
    """
    if np.ndim(checkpoints) == 0:
        return log_checkpoints(n_steps, int(checkpoints))
    steps = np.unique(np.asarray(checkpoints, dtype=np.int64))
    if steps.size == 0 or steps[0] < 0 or steps[-1] > n_steps:
        raise ValueError(f"checkpoints must lie in [0, {n_steps}]; got {checkpoints!r}")
    return steps


def measure(kernel, step: int, theta, f, log_loss, eta, *, reference: Reference | None = None,
            store_direction: bool = True) -> dict:
    """One record of R runs: the ``History`` series at ``step``.

    Args:
        kernel: the kernel (``normalized_margins``, ``degree``).
        step: the step number.
        theta: the parameters (R, P), any array library.
        f: the margins (R, N).
        log_loss: log L per run (R,).
        eta: the step rule's step sizes (R,).
        reference: the max-margin reference to measure angles and margin ratios against, or None.
        store_direction: record theta / ||theta|| (else an (R, 0) array).

    Returns:
        name -> numpy array (R,) or (R, P), and "step".
    """
    raw, f = to_numpy(theta), to_numpy(f)       # the records are numpy (the boundary)
    runs = raw.shape[0]
    theta = raw.astype(float)
    norm = np.linalg.norm(theta, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        direction = theta / norm[:, None]
    nm = np.asarray(kernel.normalized_margins(raw, f), dtype=float)
    rec = {"step": step, "log_loss": to_numpy(log_loss).astype(float), "norm": norm,
           "min_margin": np.min(f, axis=1).astype(float), "normalized_margin": nm,
           "eta": np.asarray(to_numpy(eta), dtype=float).copy(),
           "direction": direction if store_direction else np.zeros((runs, 0)),
           "angle": np.full(runs, np.nan), "margin_ratio": np.full(runs, np.nan)}
    if reference is not None and np.all(norm > 0):
        rec["angle"] = angle(theta, reference.direction)
        ref_nm = nm if reference.norm == "l2" else reference.normalized_margins(theta, f, kernel.degree)
        rec["margin_ratio"] = margin_ratio(ref_nm, reference.normalized_margin)
    return rec


class Recorder:
    """The schedule and the records of one training.

    Args:
        schedule: the steps to record at (``checkpoint_schedule``).
        reference: a ``Reference`` for angles and margin ratios, or None.
        store_direction: record directions.
        records: records taken so far (a resumed run's).
    """

    def __init__(self, schedule, *, reference: Reference | None = None, store_direction: bool = True,
                 records: list[dict] | None = None):
        self.schedule = schedule
        self.reference, self.store_direction = reference, bool(store_direction)
        self.records: list[dict] = [] if records is None else records

    @property
    def schedule(self) -> np.ndarray:
        """The steps recorded at (int64, increasing)."""
        return self._schedule

    @schedule.setter
    def schedule(self, steps) -> None:
        self._schedule = np.asarray(steps, dtype=np.int64)
        self._due = set(np.ravel(self._schedule).tolist())

    def due(self, step: int) -> bool:
        """Whether ``step`` is a checkpoint."""
        return step in self._due

    def next_checkpoint(self, step: int) -> int | None:
        """The first checkpoint after ``step``, None if there is none."""
        later = self._schedule[np.searchsorted(self._schedule, step, side="right"):]
        return int(later[0]) if later.size else None

    def record_if_due(self, state) -> bool:
        """Append the record of ``state`` (a ``TrainingState``) if its step is a checkpoint.

        Returns:
            Whether a record was taken.
        """
        if not self.due(state.step):
            return False
        self.records.append(measure(state.kernel, state.step, state.gather("theta"), state.gather("f"),
                                    state.gather("log_loss"), state.rule.step_sizes(state.rule_state), reference=self.reference,
                                    store_direction=self.store_direction))
        return True

    def last_step(self) -> int | None:
        """The step of the last record, None before the first."""
        return self.records[-1]["step"] if self.records else None

    def history(self, theta, meta: dict) -> History:
        """The records as a ``History``.

        Args:
            theta: the final parameters (R, P) (copied to numpy).
            meta: the History's metadata (configuration, completed steps).
        """
        recs = self.records
        arrays = {name: np.array([r[name] for r in recs]) for name in SERIES}
        return History(steps=np.array([r["step"] for r in recs], dtype=np.int64), theta=to_numpy(theta).copy(),
                       meta=meta, **arrays)

    def arrays(self) -> dict:
        """The records as a checkpoint's entries ``rec_<series>`` and ``rec_step``."""
        out = {f"rec_{name}": np.array([r[name] for r in self.records]) for name in SERIES}
        out["rec_step"] = np.array([r["step"] for r in self.records], dtype=np.int64)
        return out

    @staticmethod
    def records_from(d) -> list[dict]:
        """The records of a checkpoint's (validated) entries, the inverse of ``arrays``.

        Args:
            d: the checkpoint's arrays.
        """
        return [{"step": int(s), **{name: d[f"rec_{name}"][i] for name in SERIES}}
                for i, s in enumerate(d["rec_step"])]


__all__ = ["Recorder", "checkpoint_schedule", "measure"]
