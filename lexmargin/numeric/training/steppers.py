"""How the lanes of a ``TrainingState`` advance: three paths behind one protocol.

* ``GenericStepper`` -- one step of every lane per call, on any kernel, loss and step rule (geometries,
  per-coordinate rules, Path-SGD, minibatches), in any array library; lanes in parallel compute their
  step before any adopts it, so a diverging lane leaves all at the last good step.
* ``FusedStepper`` -- fused lanes (``numeric.fused`` / ``numeric.fused_multiclass``) stepped one step at
  a time from Python (any fixed step rule, geometries with ``fused_step``).
* ``CompiledStepper`` -- fused lanes whose compiled kernel runs a whole chunk of steps itself (``Constant``
  and ``Normalized`` rules, also inside ``geometry.Steepest``: ``geometry.compiled_geometry``); a lane whose
  kernel is not compiled, or another rule, falls back to the ``FusedStepper`` loop.

Fused lanes advance up to ``max_chunk`` steps between synchronizations (their runs are independent).  The
arithmetic is unchanged from the single ``Trainer`` it was split from: the inner loops are those of the
lanes themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import wait
from typing import Protocol

import numpy as np

from .. import geometry
from ..backend import astype, like, namespace
from ..geometry import fused_step, incremental_margins
from ..pathsgd import path_sgd_direction
from ..steps import CoordinateUpdate, apply_update
from .state import Lane, TrainingState, fits

# fused lanes in parallel advance this many steps between synchronizations at most
MAX_STEPS_PER_SYNC = 256


class Stepper(Protocol):
    """Advances a ``TrainingState``'s lanes and its step counter."""

    max_chunk: int          # the most steps one ``advance`` may take

    def advance(self, n: int, pool=None) -> None:
        """Advance every lane ``n`` steps (``n <= max_chunk``), in ``pool``'s threads when given."""

    def check_chunk(self) -> None:
        """After ``advance``: ``DivergenceError`` for a run that went non-finite in its last step."""


def sample_minibatches(rng, runs: int, n_rows: int, batch_size: int, rows_per_sample: int = 1) -> np.ndarray:
    """Indices (R, B) of a uniform minibatch without replacement per run.

    With a loss over whole samples (``CrossEntropyLoss``: K - 1 rows each) ``batch_size`` counts samples: B
    samples are drawn and all their rows taken (R, B (K - 1)), in increasing order within each sample.

    Args:
        rng: the training's ``numpy.random.Generator`` (advanced).
        runs: R.
        n_rows: the kernel's margin rows N.
        batch_size: B, in samples.
        rows_per_sample: margin rows per sample.

    Returns:
        The (R, B rows_per_sample) row indices.
    """
    g = rows_per_sample
    R, N, B = runs, n_rows // g, batch_size
    idx = np.argpartition(rng.random((R, N)), B - 1, axis=1)[:, :B]
    if g == 1:
        return idx
    return (idx[:, :, None] * g + np.arange(g)).reshape(R, B * g)


def rows_per_sample(loss) -> int:
    """Margin rows per sample that a minibatch keeps together (K - 1 for ``CrossEntropyLoss``, else 1)."""
    return int(getattr(loss, "rows_per_sample", 1))


class GenericStepper:
    """One full step of every generic lane per ``advance`` (``max_chunk`` 1).

    Args:
        state: the training state (generic ``Lane``s).
        batch_size: minibatch size in samples (None: full batch).
        path_sgd: Path-SGD directions.
        exact_every: returns ``geometry.EXACT_EVERY`` (coordinate descent's margins are recomputed exactly
            at steps divisible by it); read at each step.
    """

    max_chunk = 1

    def __init__(self, state: TrainingState, *, batch_size: int | None = None, path_sgd: bool = False,
                 exact_every: Callable[[], int] | None = None):
        self.state, self.batch_size, self.path_sgd = state, batch_size, path_sgd
        self.exact_every = exact_every or (lambda: geometry.EXACT_EVERY)

    def advance(self, n: int = 1, pool=None) -> None:
        """One step of every lane (``n`` is 1), then the adaptive rule's update and the step counter.

        Args:
            n: 1.
            pool: a thread pool for the lanes, or None.
        """
        state = self.state
        idx = self.sample() if self.batch_size else None
        jobs = [(lane, None if idx is None else idx[lane.rows]) for lane in state.lanes]
        if pool is None:
            news = [self.lane_step(*job) for job in jobs]
            accepted = [self.commit(lane, new) for lane, new in zip(state.lanes, news)]
        else:
            # every lane computes its step before any adopts it: a lane that diverges leaves all lanes
            # at the same (last good) step, a state that can be saved and resumed
            futures = [pool.submit(self.lane_step, *job) for job in jobs]
            wait(futures)
            news = [future.result() for future in futures]
            accepted = list(pool.map(self.commit, state.lanes, news))
        if state.rule.adaptive:
            state.rule_state = state.rule.accept(state.rule_state, namespace(*accepted).concat(accepted))
        state.step += 1

    def check_chunk(self) -> None:
        """Nothing: each generic step is checked before it is adopted."""

    def sample(self) -> np.ndarray:
        """This step's minibatch indices (R, B) (``sample_minibatches`` on the state's RNG)."""
        state, batch_size = self.state, self.batch_size
        if batch_size is None:
            raise ValueError("a full-batch stepper samples no minibatches")
        return sample_minibatches(state.rng, state.n_runs, state.kernel.n_samples, batch_size,
                                  rows_per_sample(state.loss))

    def minibatch(self, lane, idx):
        """Minibatch loss (N/B) sum_{n in B_r} l(f_n) and its weights scattered to (R, N).

        Args:
            lane: a generic lane.
            idx: its runs' minibatch rows.

        Returns:
            (log_loss, e, inv_s) as ``Loss.scaled_weights``.
        """
        loss = self.state.loss
        N, B = self.state.kernel.n_samples // rows_per_sample(loss), self.batch_size
        xp = namespace(lane.f)
        if xp is not np:
            return self._minibatch_xp(xp, lane, idx, float(np.log(N / B)))
        log_loss, eb, inv_s = loss.scaled_weights(np.take_along_axis(lane.f, idx, axis=1))
        e = np.zeros_like(lane.f)
        np.put_along_axis(e, idx, eb, axis=1)
        return log_loss + np.log(N / B), e, inv_s

    def lazy(self, lane, idx) -> bool:
        """Whether this minibatch step evaluates the minibatch's rows only, leaving the new lane's margins to be
        computed when something reads them (``TrainingState.gather``): numpy minibatch steps of rules that do not
        judge a step by the full loss (not ``adaptive``)."""
        return idx is not None and not self.state.rule.adaptive and type(lane.theta) is np.ndarray

    def minibatch_rows(self, lane, idx):
        """The minibatch loss (N/B) sum_{n in B_r} l(f_n), 1/s and v = -grad log L_B / inv_s from the minibatch's
        rows alone (``Kernel.forward_rows`` / ``vjp_rows``): O(B) per step on kernels that evaluate rows.

        Args:
            lane: a generic lane (numpy).
            idx: its runs' minibatch rows (R, B (rows per sample)).

        Returns:
            (log_loss, inv_s, v).
        """
        kernel, loss = self.state.kernel, self.state.loss
        group = rows_per_sample(loss)
        f, cache = kernel.forward_rows(lane.theta, idx, group)
        log_loss, e, inv_s = loss.scaled_weights(f)
        log_ratio = np.log((kernel.n_samples // group) / self.batch_size)
        return log_loss + log_ratio, inv_s, kernel.vjp_rows(lane.theta, cache, e, idx)

    def _minibatch_xp(self, xp, lane, idx, log_ratio: float):
        """``minibatch`` off numpy: a gather of the minibatch's margins and a gather back through the positions
        of the rows in the minibatch (the others read an appended zero column), both ``take_along_axis``."""
        R, rows = lane.f.shape
        position = np.full((R, rows), idx.shape[1], dtype=np.int64)
        np.put_along_axis(position, idx, np.arange(idx.shape[1])[None, :], axis=1)
        log_loss, eb, inv_s = self.state.loss.scaled_weights(
            xp.take_along_axis(lane.f, like(idx.astype(np.int64), lane.f), axis=1))
        padded = xp.concat([eb, xp.zeros_like(eb[:, :1])], axis=1)
        return log_loss + log_ratio, xp.take_along_axis(padded, like(position, lane.f), axis=1), inv_s

    def lane_step(self, lane, idx) -> Lane:
        """The next state of one lane (not adopted yet): the rule's update of d = -grad log L.

        Args:
            lane: a generic lane.
            idx: its minibatch rows, or None (full batch).

        Returns:
            The new ``Lane`` with the rule's next state in ``rule_update`` (finite, except for adaptive rules,
            which reject runs in ``commit``).
        """
        state, rule = self.state, self.state.rule
        lazy = self.lazy(lane, idx)
        log_loss, inv_s, v = self.direction(lane, idx, lazy)
        rule_state = state.lane_rule_state(lane)
        delta, rule_next = self.update(lane, rule_state, log_loss, inv_s, v)
        new = Lane(lane.rows, apply_update(lane.theta, delta))
        if not lazy:
            self.refresh(lane, new, delta)
        if rule_next is not rule_state:
            new.rule_update = rule_next          # stored in commit, once every lane's step is finite
        if not rule.adaptive:
            state.check_finite(new, rule_state)
        return new

    def direction(self, lane, idx, lazy: bool):
        """(log L, 1/s, v) with v = -grad log L / inv_s: of the full data, or of the minibatch ``idx`` (its rows only
        when ``lazy``); Path-SGD's direction with ``path_sgd``.

        Args:
            lane: a generic lane.
            idx: its minibatch rows, or None.
            lazy: evaluate the minibatch's rows only (``lazy``).

        Returns:
            (log_loss (R,), inv_s (R,), v (R, P)).
        """
        if lazy:
            log_loss, inv_s, v = self.minibatch_rows(lane, idx)
        else:
            log_loss, e, inv_s = self.minibatch(lane, idx) if idx is not None else (lane.log_loss, lane.e, lane.inv_s)
            v = self.state.kernel.vjp(lane.theta, lane.cache, e)
        if self.path_sgd:
            v = path_sgd_direction(self.state.kernel, lane.theta, v)
        return log_loss, inv_s, v

    def update(self, lane, rule_state, log_loss, inv_s, v):
        """The rule's (delta, next state) for d = v inv_s.  Fusable rules without a geometry (delta = m d) are taken
        as (m / s) v: the fused lanes' form and the arithmetic of earlier releases, so checkpoints and the starts of
        nonconvex solves (many steps on ReLU nets) stay bit for bit the same.

        Args:
            lane: the lane (its theta).
            rule_state: the rule's state for the lane's runs.
            log_loss: log L per run.
            inv_s: the weights' scale per run.
            v: -grad log L / inv_s (R, P).

        Returns:
            (delta, rule state').
        """
        rule, dtype = self.state.rule, lane.theta.dtype
        if rule.fusable and rule.geometry is None:
            return astype(rule.multiplier(rule_state, log_loss) * inv_s, dtype)[:, None] * v, rule_state
        return rule.update(v * astype(inv_s[:, None], dtype), rule_state, log_loss, lane.theta)

    def refresh(self, lane, new, delta) -> None:
        """Margins, loss and weights at the new point: a ``CoordinateUpdate`` on a linear kernel updates the
        margins in O(N) per run, recomputed exactly at every step divisible by ``geometry.EXACT_EVERY`` (by step
        number: a resumed run does the same); anything else is recomputed.

        Args:
            lane: the lane before the step.
            new: its next state (theta set).
            delta: the update that led there.
        """
        state = self.state
        f = None
        if isinstance(delta, CoordinateUpdate) and (state.step + 1) % self.exact_every():
            f = incremental_margins(state.kernel, lane.f, (delta.index, delta.value),
                                    out=fits(lane.spare[0], new.theta, state.kernel))
        if f is None:
            state.refresh(new, lane.spare)
        else:
            new.f, new.cache = f, None
            new.log_loss, new.e, new.inv_s = state.loss.scaled_weights(
                f, out=fits(lane.spare[1], new.theta, state.kernel))

    def commit(self, lane, new):
        """Adopt the lane's new state (adaptive rules: the runs whose step is accepted).

        Args:
            lane: the lane.
            new: its next state from ``lane_step``.

        Returns:
            Adaptive rules: the mask of accepted runs; else None.
        """
        state = self.state
        if state.rule.adaptive:
            return self.accept(lane, new)
        lane.adopt(new)
        for key, value in (new.rule_update or {}).items():
            state.rule_state[key][lane.rows, ...] = value      # lanes own disjoint rows
        return None

    def accept(self, lane, new):
        """Adaptive rules: adopt the runs whose step is finite and lowers the loss; their mask."""
        xp = namespace(new.theta, lane.theta)
        ok = xp.isfinite(new.log_loss) & xp.all(xp.isfinite(new.theta), axis=1) & (new.log_loss < lane.log_loss)
        if bool(xp.all(ok)):
            lane.adopt(new)
        elif bool(xp.any(ok)):
            lane.theta = xp.where(ok[:, None], new.theta, lane.theta)
            self.state.refresh(lane)
        return ok


class FusedStepper:
    """Fused lanes advanced ``n`` steps each without synchronizing, one Python-level step at a time.

    Args:
        state: the training state (fused lanes).
        max_chunk: the most steps between synchronizations (records, saves, interrupts).
    """

    def __init__(self, state: TrainingState, max_chunk: int = MAX_STEPS_PER_SYNC):
        self.state, self.max_chunk = state, int(max_chunk)

    def advance(self, n: int, pool=None) -> None:
        """``n`` steps of every lane; with ``pool`` the lanes run in its threads.

        An interrupt lets every lane finish its ``n`` steps (a consistent state); a lane that failed
        mid-way marks the state unsaveable.

        Args:
            n: the steps.
            pool: a thread pool, or None (one lane).
        """
        state = self.state
        if pool is None:
            self.lane_steps(state.lanes[0], state.step, n)
            state.step += n
            return
        jobs = [pool.submit(self.lane_steps, lane, state.step, n) for lane in state.lanes]
        try:
            for job in jobs:
                job.result()
        except BaseException:
            wait(jobs)                      # an interrupt lets every lane finish its n steps: a consistent state
            if any(job.exception() for job in jobs):
                state.unsaveable = True                   # a lane failed mid-way: nothing to save
            else:
                state.step += n
            raise
        state.step += n

    def lane_steps(self, lane, start: int, n: int) -> None:
        """Steps ``start`` .. ``start + n - 1`` of one lane, one at a time.

        Args:
            lane: a fused lane.
            start: the step number of its first step.
            n: the steps.
        """
        for step in range(start, start + n):
            self.lane_step(lane, step)

    def lane_step(self, lane, step: int) -> None:
        """One step of a fused lane (``DivergenceError`` first if a run is not finite)."""
        state = self.state
        rule_state = state.lane_rule_state(lane)
        log_loss = lane.log_loss
        if not np.isfinite(log_loss).all():
            state.raise_divergence(~np.isfinite(log_loss), lane, rule_state, step)
        if state.rule.geometry is not None:
            fused_step(lane, state.rule.geometry, state.rule.multiplier(rule_state, log_loss))
        else:
            lane.advance(state.rule.multiplier(rule_state, log_loss))

    def check_chunk(self) -> None:
        """After a chunk of fused steps: a run whose last step overflowed is caught here, before its
        state is recorded or saved (the fused loops check each run only before stepping from it)."""
        state = self.state
        for lane in state.lanes:
            bad = lane.nonfinite_runs()
            if bad.any():
                state.raise_divergence(bad, lane, state.lane_rule_state(lane), state.step, when="by")


class CompiledStepper(FusedStepper):
    """Fused lanes whose compiled kernel (``lane.compiled``) runs whole chunks of ``Constant`` / ``Normalized``
    steps in its own loop (``lane.run``), plain or in a geometry (``geometry.compiled_geometry``); other lanes
    and rules take ``FusedStepper``'s loop."""

    def compiled_rule(self, lane):
        """(eta per run, loss-scaled?, geometry) for the compiled kernel's own step loop: the rule's
        ``compiled_form`` and, for ``Steepest`` rules, ``geometry.compiled_geometry``; None for rules it cannot run or
        lanes without one.

        Args:
            lane: a fused lane.
        """
        rule = self.state.rule
        if not lane.compiled:
            return None
        form = rule.compiled_form(self.state.lane_rule_state(lane))
        if form is None:
            return None
        if rule.geometry is None:
            return (*form, (geometry.GEO_L2, 0.0))
        geo = geometry.compiled_geometry(rule)           # Steepest(geometry, Constant | Normalized), or None
        return None if geo is None else (*form, geo)

    def lane_steps(self, lane, start: int, n: int) -> None:
        """``n`` steps of one lane in its compiled loop (``DivergenceError`` at a run that diverged)."""
        c_rule = self.compiled_rule(lane)
        if c_rule is None:
            super().lane_steps(lane, start, n)
            return
        done, diverged = lane.run(n, *c_rule)
        if diverged:
            state = self.state
            state.raise_divergence(~np.isfinite(lane.log_loss), lane, state.lane_rule_state(lane), start + done)


def fused_stepper(state: TrainingState, max_chunk: int = MAX_STEPS_PER_SYNC) -> FusedStepper:
    """The stepper of fused lanes: ``CompiledStepper`` (each lane's compiled loop where it has one).

    Args:
        state: the training state (fused lanes).
        max_chunk: the most steps between synchronizations.

    Returns:
        The stepper.
    """
    return CompiledStepper(state, max_chunk)


__all__ = ["MAX_STEPS_PER_SYNC", "CompiledStepper", "FusedStepper", "GenericStepper", "Stepper",
           "fused_stepper", "rows_per_sample", "sample_minibatches"]
