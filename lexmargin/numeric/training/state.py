"""The state of R runs in training: lanes of rows, the step rule's state, the step counter and the RNG.

A run's state is (step, theta, step-rule state, RNG state); everything else in a lane (margins, loss
weights, the kernel's cache) is recomputed from it, which is what makes resume exact.  ``TrainingState``
owns that state and the checks on it (finiteness, divergence); how it advances is ``steppers``', what is
recorded of it ``recorder``'s and how it is stored ``checkpoint``'s.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import numpy as np

from ..backend import copy, like, namespace, to_numpy
from .errors import DivergenceError


@dataclass
class Lane:
    """The state of a contiguous group of runs (rows) advanced by one worker (the generic path's lane)."""

    rows: slice
    theta: Any
    f: Any = None
    cache: object = None
    log_loss: Any = None
    e: Any = None                 # unnormalized loss weights; weights = e * inv_s
    inv_s: Any = None
    spare: tuple = (None, None)   # reusable (f, e) buffers for the next step (no page faults)
    rule_update: dict | None = None   # per-coordinate rules: the lane's new rule state, stored when it is adopted

    def adopt(self, new: Lane) -> None:
        """Take the state of ``new``; the replaced margin/weight arrays become the spare buffers.

        Args:
            new: the lane's next state (same rows).
        """
        self.spare = (self.f, self.e)
        self.theta, self.f, self.cache, self.log_loss, self.e, self.inv_s = (
            new.theta, new.f, new.cache, new.log_loss, new.e, new.inv_s)


def fits(buffer, theta, kernel):
    """``buffer`` if it can hold the (R, N) margins of theta, else None.

    Args:
        buffer: a spare array (or None).
        theta: the lane's parameters (R, P).
        kernel: the kernel (``n_samples``).

    Returns:
        ``buffer`` or None.
    """
    shape = (theta.shape[0], kernel.n_samples)
    ok = (isinstance(buffer, np.ndarray) and buffer.shape == shape and buffer.dtype == theta.dtype
          and buffer.flags.c_contiguous)
    return buffer if ok else None


def check_count(value, name: str) -> int:
    """``value`` as a positive int, else ValueError (``threads``, ``workers``).

    Args:
        value: the number given.
        name: its name in the error message.

    Returns:
        ``int(value)``.
    """
    if int(value) != value or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value}")
    return int(value)


def split_rows(runs: int, lanes: int) -> list[slice]:
    """The rows of ``runs`` runs split into at most ``lanes`` contiguous, near-equal groups.

    Args:
        runs: R.
        lanes: the number of lanes wanted.

    Returns:
        One slice per lane.
    """
    bounds = np.linspace(0, runs, min(lanes, runs) + 1).round().astype(int)
    return [slice(int(a), int(b)) for a, b in pairwise(bounds)]


def state_like(state: dict, reference) -> dict:
    """A step rule's state (numpy arrays) moved to the namespace and device of ``reference`` (theta).

    Args:
        state: the rule's state, name -> per-run array.
        reference: an array of the target library.

    Returns:
        The state in that library (``state`` itself for numpy).
    """
    if namespace(reference) is np:
        return state
    return {k: like(np.asarray(v), reference) for k, v in state.items()}


@dataclass
class TrainingState:
    """What changes while R runs train: the lanes, the step rule and its state, the step and the RNG.

    ``fused``: the lanes are fused lanes (``Kernel.fused_lane``: ``theta``, ``shift``, ``f``, ``log_loss``)
    rather than ``Lane``s.  ``unsaveable``: the state may be mid-step (a second Ctrl-C, a fused lane that
    failed): it is never saved nor run again.
    """

    kernel: Any
    loss: Any = None
    rule: Any = None
    rule_state: dict = field(default_factory=dict)
    step: int = 0
    rng: Any = None
    lanes: list = field(default_factory=list)
    fused: bool = False
    unsaveable: bool = False

    @property
    def n_runs(self) -> int:
        """R, the number of runs."""
        return self.lanes[-1].rows.stop

    def gather(self, name: str):
        """The lanes' arrays ``name`` ("theta", "f", "log_loss", "shift") stacked by rows.

        Args:
            name: the lane attribute.

        Returns:
            The (R, ...) array (the lane's own array for one lane).
        """
        if name not in ("theta", "shift"):
            self.evaluate_stale()
        parts = [getattr(lane, name) for lane in self.lanes]
        return parts[0] if len(parts) == 1 else namespace(*parts).concat(parts)

    def evaluate_stale(self) -> None:
        """Margins, loss and weights of generic lanes that a lazy minibatch step left without them."""
        if not self.fused:
            for lane in self.lanes:
                if lane.f is None:
                    self.refresh(lane)

    def margins(self):
        """Current margins (R, N) (a copy)."""
        return copy(self.gather("f"))

    def lane_rule_state(self, lane) -> dict:
        """The step rule's state (per-run arrays) for the runs of one lane.

        Args:
            lane: a lane of this state.

        Returns:
            name -> the lane's rows of that array (views).
        """
        return {k: val[lane.rows, ...] for k, val in self.rule_state.items()}

    def refresh(self, lane, buffers=(None, None)) -> None:
        """Recompute a generic lane's margins, cache and loss weights from its theta.

        Args:
            lane: a ``Lane``.
            buffers: spare (f, e) arrays to write into where they fit.
        """
        f_buf, e_buf = buffers
        lane.f, lane.cache = self.kernel.forward(lane.theta, out=fits(f_buf, lane.theta, self.kernel))
        lane.log_loss, lane.e, lane.inv_s = self.loss.scaled_weights(lane.f, out=fits(e_buf, lane.theta, self.kernel))

    def raise_divergence(self, bad, lane, state: dict, step: int, when: str = "at"):
        """Raise ``DivergenceError`` for the runs ``bad`` of ``lane`` (a fused state is marked unsaveable).

        Args:
            bad: a boolean mask over the lane's runs.
            lane: the lane.
            state: the lane's step-rule state (its step sizes go into the message).
            step: the step number reported.
            when: "at" or "by" (the message's wording).
        """
        self.unsaveable = self.fused          # the diverged state is not worth a checkpoint
        bad = np.nonzero(to_numpy(bad))[0]
        raise DivergenceError(f"runs {(bad[:10] + lane.rows.start).tolist()} diverged {when} step {step} "
                              f"(step sizes {to_numpy(self.rule.step_sizes(state))[bad][:5].tolist()}): reduce the step size")

    def check_finite(self, lane, state: dict) -> None:
        """``DivergenceError`` if a run of a generic lane's new state is not finite (one reduction when fine).

        Args:
            lane: the lane's new state.
            state: its step-rule state (for the message).
        """
        if lane.log_loss is None:                    # a lazy minibatch step: theta's finiteness, one reduction
            if not np.isfinite(lane.theta.sum()):
                self.raise_divergence(~np.all(np.isfinite(lane.theta), axis=1), lane, state, self.step + 1)
            return
        if type(lane.theta) is not np.ndarray:
            xp = namespace(lane.theta)
            lane_ok = xp.isfinite(xp.sum(lane.theta)) & xp.all(xp.isfinite(lane.log_loss))
            if bool(lane_ok):
                return
            theta, log_loss = to_numpy(lane.theta), to_numpy(lane.log_loss)
        elif np.isfinite(lane.theta.sum()) and np.isfinite(lane.log_loss).all():
            return                                   # fast path: one reduction
        else:
            theta, log_loss = lane.theta, lane.log_loss
        bad = ~(np.all(np.isfinite(theta), axis=1) & np.isfinite(log_loss))
        if bad.any():
            self.raise_divergence(bad, lane, state, self.step + 1)

    def nonfinite_runs(self) -> np.ndarray:
        """Indices of runs whose parameters, loss, fused shift or step-rule state are not finite."""
        bad = ~(np.all(np.isfinite(to_numpy(self.gather("theta"))), axis=1)
                & np.isfinite(to_numpy(self.gather("log_loss"))))
        if self.fused:
            bad |= ~np.isfinite(self.gather("shift"))
        for value in self.rule_state.values():
            finite = np.isfinite(np.asarray(to_numpy(value), dtype=float))
            bad |= ~(finite.reshape(finite.shape[0], -1).all(axis=1) if finite.ndim > 1 else finite)
        return np.nonzero(bad)[0]


__all__ = ["Lane", "TrainingState", "check_count", "fits", "split_rows", "state_like"]
