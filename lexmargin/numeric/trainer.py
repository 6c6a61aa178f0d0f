"""Batched training of R runs at once, recorded at log-spaced checkpoints, with exact resume.

One iteration does one forward pass (margins) and one vector-Jacobian product per run::

    v = sum_n w_n grad f_n = -grad log L          (w from the loss in log space)
    theta <- theta + s * v        (s from the step rule; Path-SGD divides v by kappa first)

The state of a run is (step, theta, step-rule state, RNG state); everything else is recomputed from
it, so a run saved to disk and resumed gives bit-identical results to an uninterrupted one.

Checkpoints (``Trainer.save``/``Trainer.load``, ``train(checkpoint_path=...)``) are written atomically
through ``lexmargin.fileio`` (a unique temporary, fsynced, renamed over the file; stale temporaries of an
interrupted save are removed by the next one), never hold a non-finite state (a diverged run keeps its
last good checkpoint), are written by one run at a time (``FileInUseError`` at the start for a second
writer) and record SHA-256 hashes of the data (X, y) and of the model structure: resuming one with other
data or another model raises ``CheckpointMismatchError``.  A damaged or foreign file raises ``DataError``.

Backends: theta0 of another array library (torch, CuPy, ``array_api_strict``; ``numeric.backend``) runs the generic
path in that library, on theta0's device: margins, weights, directions, the step rule's state (moved there at the
start) and minibatch gathers never leave it.  Only what leaves the run is converted to numpy: the records of a
``History`` (at each checkpoint), ``History.theta``, checkpoints on disk, fingerprints and error messages.  A
checkpoint resumed by ``train`` moves back to theta0's library and device.  The fused path is numpy only.
"""

from __future__ import annotations

import hashlib
import json
import signal
import threading
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError, LexmarginError
from ..fileio import corrupt, dumps_strict, exclusive_writer, json_from_array, read_npz, savez_atomic
from ..progress import bar, get_logger, inside_solve, verbosity
from .backend import astype, copy, like, namespace, to_numpy
from .compare import Reference, angle, margin_ratio
from .fused import KERNELS, kernel_available
from .geometry import EXACT_EVERY, fused_step, incremental_margins, is_incremental
from .history import SERIES, History, log_checkpoints
from .losses import ExponentialLoss, get_loss
from .pathsgd import path_sgd_direction
from .steps import Constant, Normalized, rule_from_dict

log = get_logger(__name__)

# 2: the configuration records data_sha256 and model_sha256 (format 1 had neither: it cannot be checked)
FORMAT_VERSION = 2


class DivergenceError(LexmarginError, FloatingPointError):
    """A run produced non-finite parameters or loss (usually: the step size is too large)."""


class CheckpointMismatchError(DataError):
    """A checkpoint belongs to another training: other data, another model or another configuration
    (a ``DataError``, hence a ``ValueError``)."""


def _fingerprint(theta0) -> str:
    return hashlib.sha1(np.ascontiguousarray(to_numpy(theta0)).tobytes()).hexdigest()


def _state_like(state: dict, reference) -> dict:
    """A step rule's state (numpy arrays) moved to the namespace and device of ``reference`` (theta)."""
    if namespace(reference) is np:
        return state
    return {k: like(np.asarray(v), reference) for k, v in state.items()}


def data_fingerprint(kernel) -> str:
    """SHA-256 of the kernel's data: the dtype, shape and bytes of X and of y."""
    digest = hashlib.sha256()
    data = getattr(kernel, "data", None)
    for name in ("X", "y"):
        array = np.ascontiguousarray(getattr(data, name, np.zeros(0)))
        digest.update(f"{name}:{array.dtype.str}:{array.shape};".encode())
        digest.update(array.reshape(-1).view(np.uint8))
    return digest.hexdigest()


def _structure(kernel) -> dict:
    """What defines the model besides its data: the kernel's description, the leaky slope of a layered net,
    the declared model of a CasADi kernel, and the parts of a sum."""
    out = dict(kernel.describe())
    if hasattr(kernel, "slope"):
        out["slope"] = float(kernel.slope)
    model = getattr(kernel, "model", None)
    if model is not None and hasattr(model, "describe"):
        out["model_structure"] = model.describe()
    if getattr(kernel, "kernels", None):
        out["parts"] = [_structure(k) for k in kernel.kernels]
    return out


def model_fingerprint(kernel) -> str:
    """SHA-256 of the model structure (``_structure``) as canonical JSON."""
    return hashlib.sha256(dumps_strict(_structure(kernel), sort_keys=True, default=str).encode()).hexdigest()


def _canonical(obj):
    """``obj`` as its strict-JSON round trip (what a checkpoint holds)."""
    return json.loads(dumps_strict(obj))


def _schedule(n_steps, checkpoints) -> np.ndarray:
    if np.ndim(checkpoints) == 0:
        return log_checkpoints(n_steps, int(checkpoints))
    steps = np.unique(np.asarray(checkpoints, dtype=np.int64))
    if steps.size == 0 or steps[0] < 0 or steps[-1] > n_steps:
        raise ValueError(f"checkpoints must lie in [0, {n_steps}]; got {checkpoints!r}")
    return steps


@dataclass
class _Lane:
    """The state of a contiguous group of runs (rows) advanced by one worker."""

    rows: slice
    theta: np.ndarray
    f: np.ndarray = None
    cache: object = None
    log_loss: np.ndarray = None
    e: np.ndarray = None          # unnormalized loss weights; weights = e * inv_s
    inv_s: np.ndarray = None
    spare: tuple = (None, None)   # reusable (f, e) buffers for the next step (no page faults)
    rule_update: dict | None = None   # per-coordinate rules: the lane's new rule state, stored when it is adopted

    def adopt(self, new: _Lane):
        """Take the state of ``new``; the replaced margin/weight arrays become the spare buffers."""
        self.spare = (self.f, self.e)
        self.theta, self.f, self.cache, self.log_loss, self.e, self.inv_s = (
            new.theta, new.f, new.cache, new.log_loss, new.e, new.inv_s)


def _fits(buffer, theta, kernel):
    """``buffer`` if it can hold the (R, N) margins of theta, else None."""
    shape = (theta.shape[0], kernel.n_samples)
    ok = (isinstance(buffer, np.ndarray) and buffer.shape == shape and buffer.dtype == theta.dtype
          and buffer.flags.c_contiguous)
    return buffer if ok else None


def _check_threads(threads) -> int:
    if int(threads) != threads or threads < 1:
        raise ValueError(f"threads must be a positive integer; got {threads}")
    return int(threads)


def _split_rows(runs: int, lanes: int) -> list[slice]:
    bounds = np.linspace(0, runs, min(lanes, runs) + 1).round().astype(int)
    return [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]


class Trainer:
    """R runs of gradient descent (or SGD / Path-SGD) on one kernel, advanced in lockstep.

    ``workers > 1`` splits the runs into that many groups advanced in parallel threads (numpy and
    BLAS release the GIL), with BLAS limited to one thread each when ``threadpoolctl`` is installed.
    Results are deterministic for a given ``workers``; resume with the same value for bit-identical runs.

    Full-batch exponential-loss runs of a fixed step rule on a kernel with fused lanes (``Kernel.fused_lane``:
    the linear kernel, ``numeric.fused``; the multi-class linear kernel, ``numeric.fused_multiclass``) take the
    fused path (per lane the C kernel, the numba kernel or numpy, whichever is fastest there; ``fused_kernels``);
    ``fused=False`` forces the generic path, which agrees with it to rounding.
    Checkpoints record each lane's kernel and a resumed run keeps it where it is available.
    ``threads > 1`` splits each lane's samples over that many OpenMP threads in the C kernel
    (deterministic for a given ``threads``; resume with the same value).
    """

    def __init__(self, kernel, theta0, *, loss="exp", rule=None, n_steps: int = 1000, checkpoints=50,
                 batch_size: int | None = None, path_sgd: bool = False, seed: int = 0,
                 reference: Reference | None = None, store_direction: bool = True, workers: int = 1,
                 fused: bool = True, threads: int = 1):
        self.kernel = kernel
        self.loss = get_loss(loss)
        self.rule: Any = rule if rule is not None else Constant(0.1)   # a StepSizeRule or a geometry.Steepest
        if not hasattr(self.rule, "multiplier"):
            raise TypeError(f"rule must be a step rule (Constant, Normalized, Adaptive); got {rule!r}")
        if int(n_steps) != n_steps or n_steps < 0:
            raise ValueError(f"n_steps must be a non-negative integer; got {n_steps}")
        self.n_steps = int(n_steps)
        self.schedule = _schedule(self.n_steps, checkpoints)
        self.batch_size = self._check_batch(batch_size)
        self.path_sgd = bool(path_sgd)
        if self.path_sgd and not hasattr(kernel, "path_scales"):
            raise ValueError(f"Path-SGD needs a layered-net kernel; got {kernel.name!r}")
        if self.path_sgd and (self._geometric or self._per_coordinate):
            raise ValueError("Path-SGD has its own geometry: use a plain step rule (Constant, Normalized, Adaptive)")
        self.seed = int(seed)
        self.reference = self._check_reference(reference)
        self.store_direction = bool(store_direction)
        theta0 = kernel.check_theta(theta0)
        self.fused = bool(fused) and self._can_fuse() and namespace(theta0) is np     # the fused path is numpy's
        self.threads = _check_threads(threads)
        self.step = 0
        self.rule_state = _state_like(self._init_rule_state(theta0.shape[0]), theta0)
        self.rng = np.random.default_rng(self.seed)
        self.records: list[dict] = []
        self._theta0_hash = _fingerprint(theta0)
        self._data_hash, self._model_hash = data_fingerprint(kernel), model_fingerprint(kernel)
        self._start(copy(theta0), workers)
        self._record_if_due()

    def _can_fuse(self) -> bool:
        return (self.kernel.has_fused_lanes and isinstance(self.loss, ExponentialLoss)
                and self.batch_size is None and not self.path_sgd and not self.rule.adaptive
                and not self._per_coordinate and (self.kernel.fused_geometry or not self._geometric))

    @property
    def _per_coordinate(self) -> bool:
        """The rule scales each coordinate itself (``steps.AdaGrad``: state (R, P), ``precondition``)."""
        return bool(getattr(self.rule, "per_coordinate", False))

    def _init_rule_state(self, runs: int) -> dict:
        if self._per_coordinate:
            return self.rule.init(runs, self.kernel.n_params)
        return self.rule.init(runs)

    @property
    def _geometric(self) -> bool:
        """The rule moves in a geometry of its own (``geometry.Steepest``; on the fused path: ``geometry.fused_step``)."""
        return hasattr(self.rule, "apply")

    @property
    def _incremental(self) -> bool:
        """Coordinate descent on a linear kernel's generic path: margins updated in O(N), stored in checkpoints."""
        return self._geometric and not self.fused and is_incremental(self.kernel, self.rule.geometry)

    def _start(self, theta, workers, shift=None, kernels=None):
        """The lanes; ``kernels``: the fused kernel of each lane in the run being resumed (kept where it is
        available here and the lanes are the same, so the run goes on with the same arithmetic)."""
        if int(workers) != workers or workers < 1:
            raise ValueError(f"workers must be a positive integer; got {workers}")
        self.workers = int(workers)
        rows = _split_rows(theta.shape[0], self.workers)
        if self.fused:
            if kernels is None or len(kernels) != len(rows):
                kernels = [None] * len(rows)
            self.lanes = [self.kernel.fused_lane(r, theta[r], None if shift is None else shift[r],
                                                 threads=self.threads,
                                                 kernel=k if k is not None and kernel_available(k) else None,
                                                 steps=self.n_steps - self.step)
                          for r, k in zip(rows, kernels)]
            return
        contiguous = np.ascontiguousarray if namespace(theta) is np else (lambda a: a)
        self.lanes = [_Lane(r, contiguous(theta[r, :])) for r in rows]
        for lane in self.lanes:
            self._refresh(lane)

    # ---- checks ---------------------------------------------------------------------------------
    def _check_batch(self, batch_size):
        if batch_size is None:
            return None
        n = self.kernel.n_samples // self._rows_per_sample
        if int(batch_size) != batch_size or not 1 <= batch_size <= n:
            raise ValueError(f"batch_size must be an integer in [1, {n}]; got {batch_size}")
        return int(batch_size)

    def _check_reference(self, reference):
        if reference is None:
            return None
        if not isinstance(reference, Reference):
            raise TypeError("reference must be a numeric.Reference (direction, normalized_margin)")
        if reference.direction.size != self.kernel.n_params:
            raise ValueError(f"reference direction has {reference.direction.size} entries; "
                             f"the kernel has {self.kernel.n_params} parameters")
        return reference

    @property
    def n_runs(self) -> int:
        return self.lanes[-1].rows.stop

    def _gather(self, name) -> np.ndarray:
        parts = [getattr(lane, name) for lane in self.lanes]
        return parts[0] if len(parts) == 1 else namespace(*parts).concat(parts)

    @property
    def theta(self) -> np.ndarray:
        """Current parameters (R, P)."""
        return self._gather("theta")

    @property
    def margins(self) -> np.ndarray:
        """Current margins (R, N) (a copy)."""
        return copy(self._gather("f"))

    @property
    def log_loss(self) -> np.ndarray:
        return self._gather("log_loss")

    @property
    def config(self) -> dict:
        return {"format": FORMAT_VERSION, "kernel": self.kernel.describe(), "loss": self.loss.to_dict(),
                "rule": self.rule.to_dict(), "n_steps": self.n_steps, "checkpoints": self.schedule.tolist(),
                "batch_size": self.batch_size, "path_sgd": self.path_sgd, "seed": self.seed,
                "runs": self.n_runs, "theta0_sha1": self._theta0_hash, "store_direction": self.store_direction,
                "fused": self.fused, "data_sha256": self._data_hash, "model_sha256": self._model_hash}

    # ---- one iteration ----------------------------------------------------------------------------
    def _refresh(self, lane, buffers=(None, None)):
        f_buf, e_buf = buffers
        lane.f, lane.cache = self.kernel.forward(lane.theta, out=_fits(f_buf, lane.theta, self.kernel))
        lane.log_loss, lane.e, lane.inv_s = self.loss.scaled_weights(lane.f, out=_fits(e_buf, lane.theta, self.kernel))

    @property
    def _rows_per_sample(self) -> int:
        """Margin rows per sample that a minibatch keeps together (K - 1 for ``CrossEntropyLoss``, else 1)."""
        return int(getattr(self.loss, "rows_per_sample", 1))

    def _sample_minibatches(self):
        """Indices (R, B) of a uniform minibatch without replacement per run.

        With a loss over whole samples (``CrossEntropyLoss``: K - 1 rows each) ``batch_size`` counts samples: B
        samples are drawn and all their rows taken (R, B (K - 1)), in increasing order within each sample.
        """
        g = self._rows_per_sample
        R, N, B = self.n_runs, self.kernel.n_samples // g, self.batch_size
        idx = np.argpartition(self.rng.random((R, N)), B - 1, axis=1)[:, :B]
        if g == 1:
            return idx
        return (idx[:, :, None] * g + np.arange(g)).reshape(R, B * g)

    def _minibatch(self, lane, idx):
        """Minibatch loss (N/B) sum_{n in B_r} l(f_n) and its weights scattered to (R, N)."""
        N, B = self.kernel.n_samples // self._rows_per_sample, self.batch_size
        xp = namespace(lane.f)
        if xp is not np:
            return self._minibatch_xp(xp, lane, idx, float(np.log(N / B)))
        log_loss, eb, inv_s = self.loss.scaled_weights(np.take_along_axis(lane.f, idx, axis=1))
        e = np.zeros_like(lane.f)
        np.put_along_axis(e, idx, eb, axis=1)
        return log_loss + np.log(N / B), e, inv_s

    def _minibatch_xp(self, xp, lane, idx, log_ratio: float):
        """``_minibatch`` off numpy: a gather of the minibatch's margins and a gather back through the positions
        of the rows in the minibatch (the others read an appended zero column), both ``take_along_axis``."""
        R, rows = lane.f.shape
        position = np.full((R, rows), idx.shape[1], dtype=np.int64)
        np.put_along_axis(position, idx, np.arange(idx.shape[1])[None, :], axis=1)
        log_loss, eb, inv_s = self.loss.scaled_weights(xp.take_along_axis(lane.f, like(idx.astype(np.int64), lane.f),
                                                                          axis=1))
        padded = xp.concat([eb, xp.zeros_like(eb[:, :1])], axis=1)
        return log_loss + log_ratio, xp.take_along_axis(padded, like(position, lane.f), axis=1), inv_s

    # fused lanes in parallel advance this many steps between synchronizations at most
    MAX_STEPS_PER_SYNC = 256

    def _steps_to_next_stop(self, until: int, save_every: int | None) -> int:
        """Steps until the next record, save or ``until`` (1 on the generic path)."""
        if not self.fused:
            return 1
        stop = min(until, self.step + self.MAX_STEPS_PER_SYNC)
        later = self.schedule[np.searchsorted(self.schedule, self.step, side="right"):]
        if later.size:
            stop = min(stop, int(later[0]))
        if save_every:
            stop = min(stop, (self.step // save_every + 1) * save_every)
        return stop - self.step

    def _advance(self, n: int):
        """n iterations; fused lanes do them without synchronizing (their runs are independent)."""
        if not self.fused:
            return self._iterate()
        if self._pool is None:
            self._fused_steps(self.lanes[0], self.step, n)
            self.step += n
            return None
        jobs = [self._pool.submit(self._fused_steps, lane, self.step, n) for lane in self.lanes]
        try:
            for job in jobs:
                job.result()
        except BaseException:
            wait(jobs)                      # an interrupt lets every lane finish its n steps: a consistent state
            if any(job.exception() for job in jobs):
                self._unsaveable = True                   # a lane failed mid-way: nothing to save
            else:
                self.step += n
            raise
        self.step += n

    def _fused_steps(self, lane, start: int, n: int):
        c_rule = self._compiled_rule(lane) if lane.compiled else None
        if c_rule is None:
            for step in range(start, start + n):
                self._fused_step(lane, step)
            return
        done, diverged = lane.run(n, *c_rule)
        if diverged:
            state = self._lane_rule_state(lane)
            self._raise_divergence(~np.isfinite(lane.log_loss), lane, state, start + done)

    def _compiled_rule(self, lane):
        """(eta per run, constant?) for the compiled kernel's own step loop; None for other rules."""
        if type(self.rule) not in (Constant, Normalized):
            return None
        return self.rule_state["eta"][lane.rows], isinstance(self.rule, Constant)

    def _iterate(self):
        idx = self._sample_minibatches() if self.batch_size else None
        jobs = [(lane, None if idx is None else idx[lane.rows]) for lane in self.lanes]
        if self._pool is None:
            news = [self._lane_step(*job) for job in jobs]
            accepted = [self._commit(lane, new) for lane, new in zip(self.lanes, news)]
        else:
            # every lane computes its step before any adopts it: a lane that diverges leaves all lanes
            # at the same (last good) step, a state that can be saved and resumed
            futures = [self._pool.submit(self._lane_step, *job) for job in jobs]
            wait(futures)
            news = [future.result() for future in futures]
            accepted = list(self._pool.map(self._commit, self.lanes, news))
        if self.rule.adaptive:
            self.rule_state = self.rule.update(self.rule_state, namespace(*accepted).concat(accepted))
        self.step += 1

    def _lane_step(self, lane, idx):
        log_loss, e, inv_s = self._minibatch(lane, idx) if idx is not None else (lane.log_loss, lane.e, lane.inv_s)
        v = self.kernel.vjp(lane.theta, lane.cache, e)          # = -grad log L / inv_s
        if self.path_sgd:
            v = path_sgd_direction(self.kernel, lane.theta, v)
        state = self._lane_rule_state(lane)
        if self._geometric:
            new = self._geometry_step(lane, v, inv_s, self.rule.multiplier(state, log_loss))
        elif self._per_coordinate:
            d = astype(self.rule.multiplier(state, log_loss) * inv_s, lane.theta.dtype)[:, None] * v   # -grad L
            step, sum_sq = self.rule.precondition(state, d)
            new = _Lane(lane.rows, lane.theta + astype(step, lane.theta.dtype))
            self._refresh(new, lane.spare)
            self._check_finite(new, state)
            new.rule_update = {"sum_sq": sum_sq}     # stored in _commit, once every lane's step is finite
            return new
        else:
            s = astype(self.rule.multiplier(state, log_loss) * inv_s, lane.theta.dtype)
            new = _Lane(lane.rows, lane.theta + s[:, None] * v)
            self._refresh(new, lane.spare)
        if not self.rule.adaptive:
            self._check_finite(new, state)
        return new

    def _geometry_step(self, lane, v, inv_s, m):
        """A ``geometry.Steepest`` rule's step theta' = geometry.step(theta, d, m), d = -grad log L = v inv_s.

        A one-coordinate step on a linear kernel updates the margins in O(N) per run, recomputed exactly
        at every step divisible by ``geometry.EXACT_EVERY`` (by step number: a resumed run does the same).
        """
        dtype = lane.theta.dtype
        theta, change = self.rule.apply(lane.theta, v * astype(inv_s[:, None], dtype), astype(m, dtype))
        new = _Lane(lane.rows, theta)
        f = None
        if (self.step + 1) % EXACT_EVERY:
            f = incremental_margins(self.kernel, lane.f, change, out=_fits(lane.spare[0], theta, self.kernel))
        if f is None:
            self._refresh(new, lane.spare)
        else:
            new.f, new.cache = f, None
            new.log_loss, new.e, new.inv_s = self.loss.scaled_weights(f, out=_fits(lane.spare[1], theta, self.kernel))
        return new

    def _commit(self, lane, new):
        """Adopt the lane's new state (adaptive rules: the runs whose step is accepted)."""
        if self.rule.adaptive:
            return self._accept(lane, new)
        lane.adopt(new)
        for key, value in (new.rule_update or {}).items():
            self.rule_state[key][lane.rows, ...] = value      # lanes own disjoint rows
        return None

    def _lane_rule_state(self, lane) -> dict:
        """The step rule's state (per-run arrays) for the runs of one lane."""
        return {k: val[lane.rows, ...] for k, val in self.rule_state.items()}

    def _fused_step(self, lane, step: int):
        state = self._lane_rule_state(lane)
        log_loss = lane.log_loss
        if not np.isfinite(log_loss).all():
            self._raise_divergence(~np.isfinite(log_loss), lane, state, step)
        if self._geometric:
            fused_step(lane, self.rule.geometry, self.rule.multiplier(state, log_loss))
        else:
            lane.advance(self.rule.multiplier(state, log_loss))

    def _accept(self, lane, new):
        xp = namespace(new.theta, lane.theta)
        ok = xp.isfinite(new.log_loss) & xp.all(xp.isfinite(new.theta), axis=1) & (new.log_loss < lane.log_loss)
        if bool(xp.all(ok)):
            lane.adopt(new)
        elif bool(xp.any(ok)):
            lane.theta = xp.where(ok[:, None], new.theta, lane.theta)
            self._refresh(lane)
        return ok

    def _check_finite(self, lane, state):
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
            self._raise_divergence(bad, lane, state, self.step + 1)

    def _raise_divergence(self, bad, lane, state, step, when="at"):
        self._unsaveable = self.fused         # the diverged state is not worth a checkpoint
        bad = np.nonzero(to_numpy(bad))[0]
        raise DivergenceError(f"runs {(bad[:10] + lane.rows.start).tolist()} diverged {when} step {step} "
                              f"(step sizes {to_numpy(state['eta'])[bad][:5].tolist()}): reduce the step size")

    def _check_fused_finite(self):
        """After a chunk of fused steps: a run whose last step overflowed is caught here, before its
        state is recorded or saved (the fused loops check each run only before stepping from it)."""
        for lane in self.lanes:
            bad = lane.nonfinite_runs()
            if bad.any():
                self._raise_divergence(bad, lane, self._lane_rule_state(lane), self.step, when="by")

    def _nonfinite_runs(self) -> np.ndarray:
        """Indices of runs whose parameters, loss, fused shift or step-rule state are not finite."""
        bad = ~(np.all(np.isfinite(to_numpy(self.theta)), axis=1) & np.isfinite(to_numpy(self.log_loss)))
        if self.fused:
            bad |= ~np.isfinite(self._gather("shift"))
        for value in self.rule_state.values():
            finite = np.isfinite(np.asarray(to_numpy(value), dtype=float))
            bad |= ~(finite.reshape(finite.shape[0], -1).all(axis=1) if finite.ndim > 1 else finite)
        return np.nonzero(bad)[0]

    # ---- records ----------------------------------------------------------------------------------
    def _record_if_due(self):
        if self.step in self._due:
            self.records.append(self._measure())
            return True
        return False

    @property
    def _due(self) -> set:
        cached = getattr(self, "_due_set", None)
        if cached is None:
            cached = self._due_set = set(self.schedule.tolist())
        return cached

    def _measure(self) -> dict:
        raw, f = to_numpy(self.theta), to_numpy(self._gather("f"))       # the records are numpy (the boundary)
        theta = raw.astype(float)
        norm = np.linalg.norm(theta, axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            direction = theta / norm[:, None]
        nm = np.asarray(self.kernel.normalized_margins(raw, f), dtype=float)
        rec = {"step": self.step, "log_loss": to_numpy(self.log_loss).astype(float), "norm": norm,
               "min_margin": np.min(f, axis=1).astype(float), "normalized_margin": nm,
               "eta": np.asarray(to_numpy(self.rule_state["eta"]), dtype=float).copy(),
               "direction": direction if self.store_direction else np.zeros((self.n_runs, 0)),
               "angle": np.full(self.n_runs, np.nan), "margin_ratio": np.full(self.n_runs, np.nan)}
        if self.reference is not None and np.all(norm > 0):
            rec["angle"] = angle(theta, self.reference.direction)
            ref_nm = nm if self.reference.norm == "l2" else self.reference.normalized_margins(
                theta, f, self.kernel.degree)
            rec["margin_ratio"] = margin_ratio(ref_nm, self.reference.normalized_margin)
        return rec

    @property
    def fused_kernels(self) -> list[str] | None:
        """The kernel of each fused lane ("c", "numba", "numpy"; ``numeric.fused``), None on the generic path."""
        return [lane.kernel for lane in self.lanes] if self.fused else None

    def history(self) -> History:
        recs = self.records
        arrays = {name: np.array([r[name] for r in recs]) for name in SERIES}
        meta = {**self.config, "completed_steps": self.step}
        if self.fused:
            meta["fused_kernels"] = self.fused_kernels
        return History(steps=np.array([r["step"] for r in recs], dtype=np.int64), theta=to_numpy(self.theta).copy(),
                       meta=meta, **arrays)

    # ---- running ----------------------------------------------------------------------------------
    def run(self, until: int | None = None, *, callback=None, checkpoint_path=None,
            save_every: int | None = None) -> Trainer:
        """Advance all runs to step ``until`` (default n_steps).

        With ``checkpoint_path`` the state is saved at every recorded checkpoint, every ``save_every``
        steps, at the end, and when interrupted (KeyboardInterrupt or an exception from ``callback``).
        ``callback(trainer)`` is called after each recorded checkpoint.  Ctrl-C (in the main thread)
        stops at the next step boundary, so the saved state is exact; a second Ctrl-C stops at once
        and saves nothing (the last checkpoint on disk stays valid).

        The checkpoint's single-writer lock (``fileio.exclusive_writer``) is taken before the first
        step and held to the end: a second run writing the same path, in this process or another,
        fails at once with ``FileInUseError``.  A run that diverges raises ``DivergenceError`` and never
        saves a non-finite state: the last good checkpoint stays on disk on both paths (the generic
        path also saves the last good step).
        """
        if self._unsaveable:
            raise LexmarginError("this trainer stopped mid-step (a second Ctrl-C, or a lane that diverged): "
                                 "load its last checkpoint to go on")
        until = self.n_steps if until is None else int(until)
        if not self.step <= until <= self.n_steps:
            raise ValueError(f"until must lie in [{self.step}, {self.n_steps}]; got {until}")
        if save_every is not None and (int(save_every) != save_every or save_every < 1):
            raise ValueError(f"save_every must be a positive integer; got {save_every}")
        with self._writing(checkpoint_path):
            self._run(until, callback, checkpoint_path, save_every)
        return self

    def _run(self, until, callback, checkpoint_path, save_every):
        try:
            with self._parallel(), self._deferred_interrupts():
                while self.step < until:
                    self._raise_requested_interrupt()
                    self._advance(self._steps_to_next_stop(until, save_every if checkpoint_path else None))
                    if self.fused:
                        self._check_fused_finite()
                    recorded = self._record_if_due()
                    if checkpoint_path and (recorded or (save_every and self.step % save_every == 0)):
                        self.save(checkpoint_path)
                    if recorded and callback is not None:
                        callback(self)
        except BaseException:
            if checkpoint_path and not self._unsaveable and not self._nonfinite_runs().size:
                if not self.records or self.records[-1]["step"] != self.step:
                    self._record_if_due()         # stopped between a step and its record: keep the record
                self.save(checkpoint_path)
            raise
        if checkpoint_path:
            self.save(checkpoint_path)

    _pool = None
    _unsaveable = False               # the state may be mid-step: never saved, never run again
    _interrupt_requested = False
    _lock_held = None                 # the (resolved) checkpoint path whose writer lock this trainer holds

    @contextmanager
    def _writing(self, path):
        """Hold the single-writer lock of checkpoint ``path`` (nothing for None) unless already held."""
        if not path:
            yield None
            return
        resolved = Path(path).resolve()
        if self._lock_held == resolved:
            yield resolved
            return
        with exclusive_writer(resolved, "checkpoint"):
            self._lock_held = resolved
            try:
                yield resolved
            finally:
                self._lock_held = None

    @contextmanager
    def _deferred_interrupts(self):
        """SIGINT sets a flag that the run loop turns into KeyboardInterrupt between steps."""
        previous = signal.getsignal(signal.SIGINT)
        if threading.current_thread() is not threading.main_thread() or previous is not signal.default_int_handler:
            yield
            return

        def request(signum, frame):
            if self._interrupt_requested:                # the second Ctrl-C: at once, mid-step
                self._unsaveable = True
                previous(signum, frame)
            self._interrupt_requested = True

        signal.signal(signal.SIGINT, request)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    def _raise_requested_interrupt(self):
        if self._interrupt_requested:
            self._interrupt_requested = False
            raise KeyboardInterrupt

    def _parallel(self):
        """Thread pool for the lanes (and one BLAS thread each, via threadpoolctl when installed)."""
        if len(self.lanes) == 1:
            return nullcontext()
        stack = ExitStack()
        try:
            from threadpoolctl import threadpool_limits
            stack.enter_context(threadpool_limits(1, user_api="blas"))
        except ImportError:
            pass
        self._pool = stack.enter_context(ThreadPoolExecutor(len(self.lanes)))
        stack.callback(setattr, self, "_pool", None)
        return stack

    @property
    def done(self) -> bool:
        return self.step >= self.n_steps

    # ---- persistence ------------------------------------------------------------------------------
    def save(self, path) -> Path:
        """Write the complete state atomically to ``path`` (.npz).

        The file is written through ``fileio.savez_atomic``: a uniquely named temporary in the same
        folder, fsynced and renamed over ``path``, so a kill at any moment leaves the previous file
        intact; temporaries left by an interrupted save (and the fixed ``path.tmp`` of lexmargin <= 0.2)
        are removed.  A state with non-finite numbers is never written: ``DivergenceError``, and the
        file on disk stays as it was.  Outside a run that holds the checkpoint's writer lock, the lock
        is taken for the write (``FileInUseError`` while another run writes ``path``).
        """
        path = Path(path)
        bad = self._nonfinite_runs()
        if bad.size:
            raise DivergenceError(f"runs {bad[:10].tolist()} are not finite at step {self.step}: not saved to "
                                  f"{path} (a checkpoint already there is kept)")
        arrays = {"theta": to_numpy(self.theta), "step": np.array(self.step, dtype=np.int64)}   # numpy on disk
        if self.fused:
            arrays["shift"] = self._gather("shift")          # the fused weights' shift: exact resume
        if self._incremental:
            arrays["margins"] = to_numpy(self._gather("f"))  # updated in O(N) per step: exact resume
        arrays.update({f"rule_{k}": to_numpy(v) for k, v in self.rule_state.items()})
        for name in SERIES:
            arrays[f"rec_{name}"] = np.array([r[name] for r in self.records])
        arrays["rec_step"] = np.array([r["step"] for r in self.records], dtype=np.int64)
        meta = {"config": self.config, "rng": self.rng.bit_generator.state,
                "reference": self.reference.to_dict() if self.reference else None}
        if self.fused:
            meta["fused_kernels"] = self.fused_kernels       # resume on the same kernels: bit-identical
        arrays["meta"] = np.array(dumps_strict(meta))
        with self._writing(path):
            savez_atomic(path, **arrays)
        return path

    @classmethod
    def load(cls, path, kernel, workers: int = 1, threads: int = 1, like_array=None) -> Trainer:
        """Rebuild a trainer saved with ``save`` (the kernel is passed again; its layout must match).

        ``like_array``: an array of another library (torch, CuPy, ...): the restored state moves to its
        namespace and device and the run goes on there on the generic path (checkpoints are numpy on disk).

        Raises:
            FileNotFoundError: there is no file at ``path``.
            DataError: the file is truncated, damaged, of another kind (a data file, a History, random
                bytes), of the older format 1, or its contents are inconsistent (shapes, a step outside
                [0, n_steps], non-finite parameters, missing entries).
            CheckpointMismatchError: it was written for another kernel, model structure or data (X, y).
        """
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"checkpoint not found: {path}")
        threads = _check_threads(threads)
        d = read_npz(path, "checkpoint", required=("meta", "theta", "step", "rec_step"))
        meta = json_from_array(d["meta"], path, "checkpoint")
        config = _checked_config(meta, path)
        _check_identity(config, kernel, path)
        self = cls.__new__(cls)
        self.kernel, self.threads = kernel, threads
        try:
            theta, shift, margins = self._restore(config, meta, d, path)
        except (KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError) as exc:
            if isinstance(exc, DataError):
                raise
            raise corrupt(path, "checkpoint", exc) from None
        kernels = meta.get("fused_kernels")           # absent in older checkpoints: chosen anew
        if kernels is not None and not (isinstance(kernels, list) and all(k in KERNELS for k in kernels)):
            raise corrupt(path, "checkpoint", f"fused_kernels is {kernels!r}")
        if like_array is not None and namespace(like_array) is not np:
            theta, shift, self.fused = like(theta, like_array), None, False
            self.rule_state = _state_like(self.rule_state, like_array)
        self._start(theta, workers, shift, kernels if self.fused else None)
        if margins is not None:                       # coordinate descent's incrementally updated margins
            for lane in self.lanes:
                lane.f = like(np.array(margins[lane.rows]), theta)
                lane.log_loss, lane.e, lane.inv_s = self.loss.scaled_weights(lane.f)
        return self

    def _restore(self, config, meta, d, path):
        """Set the state of a trainer from a checkpoint's entries, checking each; (theta, shift)."""
        kernel = self.kernel

        def need(ok, reason):
            if not ok:
                raise corrupt(path, "checkpoint", reason)

        self.n_steps, runs = config["n_steps"], config["runs"]
        need(self.n_steps >= 0 and runs >= 1, f"n_steps {self.n_steps}, runs {runs}")
        self.schedule = np.asarray(config["checkpoints"], dtype=np.int64)
        need(self.schedule.ndim == 1 and self.schedule.size > 0 and np.all(np.diff(self.schedule) > 0)
             and self.schedule[0] >= 0 and self.schedule[-1] <= self.n_steps, "invalid checkpoint schedule")
        self.loss = _loss_from_dict(config["loss"])
        self.rule = rule_from_dict(config["rule"])
        self.batch_size, self.path_sgd, self.seed = config["batch_size"], config["path_sgd"], config["seed"]
        need(self.batch_size is None or 1 <= self.batch_size <= kernel.n_samples, f"batch_size {self.batch_size}")
        self.store_direction = config["store_direction"]
        self.fused = config["fused"] and self._can_fuse()
        self._theta0_hash, self._data_hash, self._model_hash = (
            config["theta0_sha1"], config["data_sha256"], config["model_sha256"])
        ref = meta["reference"]
        need(ref is None or isinstance(ref, dict), "reference is not a mapping")
        self.reference = self._check_reference(
            Reference(np.asarray(ref["direction"], dtype=float), float(ref["normalized_margin"]),
                      ref.get("norm", "l2"), ref.get("p")) if ref else None)

        step = d["step"]
        need(step.shape == () and step.dtype.kind in "iu", f"step has shape {step.shape} and dtype {step.dtype}")
        self.step = int(step)
        need(0 <= self.step <= self.n_steps, f"step {self.step} lies outside [0, {self.n_steps}]")
        theta = d["theta"]
        need(theta.shape == (runs, kernel.n_params) and theta.dtype == kernel.dtype,
             f"theta has shape {theta.shape} and dtype {theta.dtype}; expected ({runs}, {kernel.n_params}) "
             f"{kernel.dtype}")
        need(np.isfinite(theta).all(), "it holds non-finite parameters")

        expected = self._init_rule_state(runs)
        names = {k[5:] for k in d if k.startswith("rule_")}
        need(names == set(expected), f"step-rule state {sorted(names)}; expected {sorted(expected)}")
        self.rule_state = {}
        for k, template in expected.items():
            value = d[f"rule_{k}"]
            need(value.shape == template.shape and value.dtype.kind == "f" and np.isfinite(value).all(),
                 f"step-rule state {k!r} has shape {value.shape} and dtype {value.dtype}")
            self.rule_state[k] = value
        shift = None
        if config["fused"]:
            shift = d.get("shift")
            need(shift is not None and shift.shape == (runs,) and shift.dtype == kernel.dtype
                 and np.isfinite(shift).all(), "the fused path's shift is missing or invalid")
            shift = shift if self.fused else None

        rec_step = d["rec_step"]
        need(rec_step.ndim == 1 and rec_step.dtype.kind in "iu", f"rec_step has shape {rec_step.shape}")
        K = rec_step.size
        need(np.all(np.diff(rec_step) > 0) and np.isin(rec_step, self.schedule).all()
             and (K == 0 or rec_step[-1] <= self.step), "recorded steps are not checkpoints reached")
        P = kernel.n_params if self.store_direction else 0
        for name, kind in SERIES.items():
            value = d.get(f"rec_{name}")
            need(value is not None, f"record {name!r} is missing")
            shape = (K, runs) if kind == "R" else (K, runs, P)
            need(value.shape == shape if K else value.size == 0, f"record {name!r} has shape {value.shape}; "
                 f"expected {shape}")
            need(value.dtype.kind == "f" or value.size == 0, f"record {name!r} has dtype {value.dtype}")
        margins = d.get("margins")
        if self._incremental:
            need(margins is not None and margins.shape == (runs, kernel.n_samples) and margins.dtype == kernel.dtype
                 and np.isfinite(margins).all(), "coordinate descent's margins are missing or invalid")
        known = {"meta", "theta", "step", "shift", "rec_step"} | ({"margins"} if self._incremental else set()) | {f"rule_{k}" for k in expected} | {
            f"rec_{name}" for name in SERIES}
        need(set(d) <= known, f"unexpected entries {sorted(set(d) - known)}")
        self.records = [{"step": int(s), **{name: d[f"rec_{name}"][i] for name in SERIES}}
                        for i, s in enumerate(rec_step)]
        self.rng = np.random.default_rng()
        need(isinstance(meta["rng"], dict), "the random generator state is not a mapping")
        self.rng.bit_generator.state = meta["rng"]
        return kernel.check_theta(theta), shift, margins if self._incremental else None


_CONFIG_TYPES = {"kernel": dict, "loss": dict, "rule": dict, "n_steps": int, "checkpoints": list,
                 "batch_size": (int, type(None)), "path_sgd": bool, "seed": int, "runs": int, "theta0_sha1": str,
                 "store_direction": bool, "fused": bool, "data_sha256": str, "model_sha256": str}


def _loss_from_dict(spec: dict):
    """The loss a checkpoint recorded (its ``to_dict``): a named loss, or ``CrossEntropyLoss(n_classes)``."""
    if spec.get("name") == "cross_entropy":
        from .multiclass import CrossEntropyLoss
        return CrossEntropyLoss(spec["n_classes"])
    return get_loss(spec["name"])


def _checked_config(meta, path) -> dict:
    """The configuration of a checkpoint's meta entry, with its format and the types of its fields checked."""
    if not (isinstance(meta, dict) and isinstance(meta.get("config"), dict) and {"rng", "reference"} <= set(meta)):
        raise corrupt(path, "checkpoint", "its meta entry lacks config, rng or reference")
    config = meta["config"]
    version = config.get("format")
    if version == 1:
        raise DataError(f"{path} is a checkpoint of format 1 (an older lexmargin), which records no hash of its "
                        "data and model and so cannot be resumed safely; delete it or use another path")
    if version != FORMAT_VERSION:
        raise corrupt(path, "checkpoint", f"unsupported checkpoint format {version!r}")
    for key, types in _CONFIG_TYPES.items():
        value, types = config.get(key), types if isinstance(types, tuple) else (types,)
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise corrupt(path, "checkpoint", f"config entry {key!r} is {value!r}")
    return config


def _check_identity(config, kernel, path) -> None:
    """The checkpoint was written for this kernel, model structure and data, else CheckpointMismatchError."""
    if config["kernel"] != _canonical(kernel.describe()):
        raise CheckpointMismatchError(f"{path} was written for kernel {config['kernel']}, not {kernel.describe()}")
    if config["model_sha256"] != model_fingerprint(kernel):
        raise CheckpointMismatchError(f"checkpoint {path} was written for another model structure (its SHA-256 "
                                      "differs): delete it or use another path")
    if config["data_sha256"] != data_fingerprint(kernel):
        raise CheckpointMismatchError(f"checkpoint {path} was written for other data: the data changed since it "
                                      "was saved (the SHA-256 of X and y differs); delete it or use another path")


# how the steps are computed, not what they compute: a resumed run keeps its checkpoint's choice
_IMPLEMENTATION_KEYS = {"fused"}


def _diff(a: dict, b: dict) -> list[str]:
    return sorted(k for k in (set(a) | set(b)) - _IMPLEMENTATION_KEYS
                  if dumps_strict(a.get(k)) != dumps_strict(b.get(k)))


def train(kernel, theta0, *, loss="exp", rule=None, n_steps: int = 1000, checkpoints=50,
          batch_size: int | None = None, path_sgd: bool = False, seed: int = 0,
          reference: Reference | None = None, store_direction: bool = True, checkpoint_path=None,
          save_every: int | None = None, callback=None, workers: int = 1, fused: bool = True,
          threads: int = 1, verbose: bool | int = False) -> History:
    """Train R runs (rows of theta0) and return their History.

    With ``checkpoint_path``, the checkpoint's writer lock is taken first (``FileInUseError`` at once if
    another run writes it), then an existing checkpoint of the same configuration is resumed (an
    interrupted run continues where it stopped, bit-identically, on the fused or generic path it was
    started on).  A checkpoint of a different configuration, or written for other data (X, y) or another
    model, raises ``CheckpointMismatchError`` (a ValueError); a damaged or foreign file ``DataError``.

    ``verbose`` (True / 1: INFO, 2: DEBUG; ``lexmargin.progress``) logs every recorded checkpoint (step,
    log-loss and normalized margin, the median over the runs) on the ``lexmargin.numeric.trainer``
    logger, shown on stderr for the call when the application configured no logging, and draws a
    progress bar over the steps when stderr is a terminal.  It changes no number of the run.

    Args:
        kernel: the batched kernel (``kernel_for(model, data)``).
        theta0: the R starting points (R, P).
        loss: "exp", "logistic" or a loss object.
        rule: the step rule (``Constant``, ``Normalized``, ``Adaptive``; default ``Constant(0.1)``), or one of
            them in a geometry (``geometry.Steepest``: steepest descent in l1 / linf / lp, mirror descent).
        n_steps: how many steps.
        checkpoints: how many log-spaced checkpoints to record, or the step numbers.
        batch_size: minibatch SGD with this many samples per step (None: full batch).
        path_sgd: Path-SGD (p = 2) directions (layered nets).
        seed: seed of the minibatches.
        reference: a Reference (max-margin direction and margin) to record angles and margin ratios against.
        store_direction: record the normalized theta at each checkpoint.
        checkpoint_path: an .npz checkpoint to save to and resume from.
        save_every: also save the checkpoint every this many steps (it is saved at every recorded checkpoint,
            at the end and when interrupted).
        callback: ``callback(trainer)``, called after each recorded checkpoint.
        workers: split the runs into this many lanes advanced in threads.
        fused: take the fused path where it applies (full-batch exponential-loss GD on a linear kernel).
        threads: OpenMP threads per lane of the C kernel (fused path).
        verbose: logging and a progress bar (above).

    Returns:
        The History of the R runs (recorded checkpoints, final theta, configuration).
    """
    trainer = Trainer(kernel, theta0, loss=loss, rule=rule, n_steps=n_steps, checkpoints=checkpoints,
                      batch_size=batch_size, path_sgd=path_sgd, seed=seed, reference=reference,
                      store_direction=store_direction, workers=workers, fused=fused, threads=threads)
    with trainer._writing(checkpoint_path) as held:
        if checkpoint_path and Path(checkpoint_path).exists():
            saved = Trainer.load(checkpoint_path, kernel, workers=workers, threads=threads,
                                 like_array=trainer.lanes[0].theta)
            changed = _diff(saved.config, trainer.config)
            if changed:
                raise CheckpointMismatchError(f"checkpoint {checkpoint_path} has a different configuration "
                                              f"({', '.join(changed)}); delete it or use another path")
            saved.reference = trainer.reference
            trainer = saved
        trainer._lock_held = held
        try:
            with verbosity(verbose):
                trainer.run(callback=_progress_callback(trainer, callback), checkpoint_path=checkpoint_path,
                            save_every=save_every)
        finally:
            trainer._lock_held = None
    return trainer.history()


def _progress_callback(trainer: Trainer, callback):
    """``callback`` preceded by one record per checkpoint -- INFO, or DEBUG for a run inside a solve (the GD
    starts of ``max_margin``) -- and a progress bar over the steps (when ``progress.active()``, i.e.
    ``verbose``, and not inside a solve); ``callback`` itself when no record would show."""
    nested = inside_solve()
    level = 10 if nested else 20      # logging.DEBUG / logging.INFO
    if not log.isEnabledFor(level):   # nothing would show: keep the run exactly as before
        return callback
    progress = bar(total=trainer.n_steps, wanted=False if nested else None, desc="train", unit="step")
    progress.update(trainer.step)
    shown = [trainer.step]

    def report(current: Trainer):
        rec = current.records[-1]
        log.log(level, "train: step %d/%d log-loss %.6g normalized margin %.6g (median of %d runs)", current.step,
                 current.n_steps, float(np.median(rec["log_loss"])), float(np.median(rec["normalized_margin"])),
                 len(rec["log_loss"]))
        progress.update(current.step - shown[0])
        shown[0] = current.step
        if current.step >= current.n_steps:
            progress.close()
        if callback is not None:
            callback(current)

    return report


__all__ = ["CheckpointMismatchError", "DivergenceError", "Trainer", "data_fingerprint", "model_fingerprint", "train"]
