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

This module is the façade: ``train`` and ``Trainer`` compose the pieces of ``numeric.training`` --
``state`` (lanes, rule state, step, RNG), ``steppers`` (generic, fused and compiled paths), ``recorder``
(schedule, measurements, History), ``checkpoint`` (format, fingerprints, validation, writer lock) and
``interrupts`` (deferred Ctrl-C and SIGTERM) -- and re-exports what it always exported.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, nullcontext
from pathlib import Path

import numpy as np

from ..errors import DataError, LexmarginError
from ..fileio import corrupt
from ..progress import bar, get_logger, inside_solve, verbosity
from .backend import copy, like, namespace
from .compare import Reference
from .fused import KERNELS, kernel_available
from .geometry import EXACT_EVERY, is_incremental
from .history import History
from .losses import ExponentialLoss, get_loss
from .steps import Constant, StepRule, rule_from_dict
from .training.checkpoint import (
    FORMAT_VERSION,
    CheckpointLock,
    check_fused_kernels,
    config_diff,
    data_fingerprint,
    loss_from_dict,
    model_fingerprint,
    read_checkpoint,
    reference_from_dict,
    restore_entries,
    state_entries,
    theta_fingerprint,
    write_checkpoint,
)
from .training.errors import CheckpointMismatchError, DivergenceError
from .training.interrupts import DeferredInterrupts
from .training.recorder import Recorder, checkpoint_schedule
from .training.state import Lane, TrainingState, check_count, split_rows, state_like
from .training.steppers import (
    MAX_STEPS_PER_SYNC,
    GenericStepper,
    Stepper,
    fused_stepper,
    rows_per_sample,
    sample_minibatches,
)

log = get_logger(__name__)

_Lane = Lane          # the name of lexmargin <= this split


def _exact_every() -> int:
    """``EXACT_EVERY`` as this module holds it now (benchmarks and tests set ``trainer.EXACT_EVERY``)."""
    return EXACT_EVERY


class _Forward:
    """An attribute of the façade that lives on one of its parts (``Trainer.step`` is ``Trainer.state.step``)."""

    def __init__(self, part: str, name: str | None = None):
        self.part, self.name = part, name or ""

    def __set_name__(self, owner, attr: str) -> None:
        self.name = self.name or attr

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        return getattr(getattr(obj, self.part), self.name)

    def __set__(self, obj, value) -> None:
        setattr(getattr(obj, self.part), self.name, value)


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

    The parts (``numeric.training``): ``state`` (``TrainingState``: lanes, rule state, step, RNG), ``recorder``
    (``Recorder``: schedule and records) and the stepper of the path taken; the attributes below forward to them.
    """

    # fused lanes in parallel advance this many steps between synchronizations at most
    MAX_STEPS_PER_SYNC = MAX_STEPS_PER_SYNC

    kernel = _Forward("state")
    loss = _Forward("state")
    rule = _Forward("state")
    rule_state = _Forward("state")
    step = _Forward("state")
    rng = _Forward("state")
    lanes = _Forward("state")
    fused = _Forward("state")
    _unsaveable = _Forward("state", "unsaveable")       # the state may be mid-step: never saved, never run again
    schedule = _Forward("recorder")
    records = _Forward("recorder")
    reference = _Forward("recorder")
    store_direction = _Forward("recorder")
    _lock_held = _Forward("_lock", "held")   # the (resolved) checkpoint path whose writer lock this trainer holds
    _interrupt_requested = _Forward("_interrupts", "requested")

    _pool = None

    def __init__(self, kernel, theta0, *, loss="exp", rule=None, n_steps: int = 1000, checkpoints=50,
                 batch_size: int | None = None, path_sgd: bool = False, seed: int = 0,
                 reference: Reference | None = None, store_direction: bool = True, workers: int = 1,
                 fused: bool = True, threads: int = 1):
        self._parts(kernel)
        self.loss = get_loss(loss)
        self.rule = rule if rule is not None else Constant(0.1)   # a steps.StepRule (geometry.Steepest among them)
        if not isinstance(self.rule, StepRule):
            raise TypeError(f"rule must be a step rule (a steps.StepRule: Constant, Normalized, Adaptive, AdaGrad, "
                            f"Momentum, geometry.Steepest); got {rule!r}")
        if int(n_steps) != n_steps or n_steps < 0:
            raise ValueError(f"n_steps must be a non-negative integer; got {n_steps}")
        self.n_steps = int(n_steps)
        self.schedule = checkpoint_schedule(self.n_steps, checkpoints)
        self.batch_size = self._check_batch(batch_size)
        self.path_sgd = bool(path_sgd)
        if self.path_sgd and not hasattr(kernel, "path_scales"):
            raise ValueError(f"Path-SGD needs a layered-net kernel; got {kernel.name!r}")
        if self.path_sgd and (self._geometric or self.rule.preconditioned):
            raise ValueError("Path-SGD has its own geometry: use a step rule without a geometry or preconditioner "
                             "(Constant, Normalized, Adaptive, Momentum)")
        self.seed = int(seed)
        self.reference = self._check_reference(reference)
        self.store_direction = bool(store_direction)
        theta0 = kernel.check_theta(theta0)
        self.fused = bool(fused) and self._can_fuse() and namespace(theta0) is np     # the fused path is numpy's
        self.threads = check_count(threads, "threads")
        self.step = 0
        self.rule_state = state_like(self._init_rule_state(theta0.shape[0]), theta0)
        self.rng = np.random.default_rng(self.seed)
        self._theta0_hash = theta_fingerprint(theta0)
        self._data_hash, self._model_hash = data_fingerprint(kernel), model_fingerprint(kernel)
        self._start(copy(theta0), workers)
        self._record_if_due()

    def _parts(self, kernel) -> None:
        """The façade's parts, empty: the state, the recorder, the writer lock and the interrupt flag."""
        self.state = TrainingState(kernel)
        self.recorder = Recorder(np.zeros(1, dtype=np.int64))
        self._lock = CheckpointLock()
        self._interrupts = DeferredInterrupts()

    def _can_fuse(self) -> bool:
        return (self.kernel.has_fused_lanes and isinstance(self.loss, ExponentialLoss)
                and self.batch_size is None and not self.path_sgd and not self.rule.adaptive
                and self.rule.fusable and (self.kernel.fused_geometry or not self._geometric))

    def _init_rule_state(self, runs: int) -> dict:
        return self.rule.init(runs, self.kernel.n_params)

    @property
    def _geometric(self) -> bool:
        """The rule moves in a geometry of its own (``geometry.Steepest``; on the fused path: ``geometry.fused_step``)."""
        return self.rule.geometry is not None

    @property
    def _incremental(self) -> bool:
        """Coordinate descent on a linear kernel's generic path: margins updated in O(N), stored in checkpoints."""
        return self._geometric and not self.fused and is_incremental(self.kernel, self.rule.geometry)

    def _start(self, theta, workers, shift=None, kernels=None):
        """The lanes and the stepper; ``kernels``: the fused kernel of each lane in the run being resumed (kept
        where it is available here and the lanes are the same, so the run goes on with the same arithmetic)."""
        self.workers = check_count(workers, "workers")
        rows = split_rows(theta.shape[0], self.workers)
        if self.fused:
            if kernels is None or len(kernels) != len(rows):
                kernels = [None] * len(rows)
            self.lanes = [self.kernel.fused_lane(r, theta[r], None if shift is None else shift[r],
                                                 threads=self.threads,
                                                 kernel=k if k is not None and kernel_available(k) else None,
                                                 steps=self.n_steps - self.step)
                          for r, k in zip(rows, kernels)]
            self._stepper: Stepper = fused_stepper(self.state, self.MAX_STEPS_PER_SYNC)
            return
        contiguous = np.ascontiguousarray if namespace(theta) is np else (lambda a: a)
        self.lanes = [Lane(r, contiguous(theta[r, :])) for r in rows]
        for lane in self.lanes:
            self.state.refresh(lane)
        self._stepper = GenericStepper(self.state, batch_size=self.batch_size, path_sgd=self.path_sgd,
                                       exact_every=_exact_every)

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

    # ---- the state ---------------------------------------------------------------------------------
    @property
    def n_runs(self) -> int:
        return self.state.n_runs

    def _gather(self, name) -> np.ndarray:
        return self.state.gather(name)

    @property
    def theta(self) -> np.ndarray:
        """Current parameters (R, P)."""
        return self.state.gather("theta")

    @property
    def margins(self) -> np.ndarray:
        """Current margins (R, N) (a copy)."""
        return self.state.margins()

    @property
    def log_loss(self) -> np.ndarray:
        return self.state.gather("log_loss")

    @property
    def config(self) -> dict:
        return {"format": FORMAT_VERSION, "kernel": self.kernel.describe(), "loss": self.loss.to_dict(),
                "rule": self.rule.to_dict(), "n_steps": self.n_steps, "checkpoints": self.schedule.tolist(),
                "batch_size": self.batch_size, "path_sgd": self.path_sgd, "seed": self.seed,
                "runs": self.n_runs, "theta0_sha1": self._theta0_hash, "store_direction": self.store_direction,
                "fused": self.fused, "data_sha256": self._data_hash, "model_sha256": self._model_hash}

    @property
    def _rows_per_sample(self) -> int:
        """Margin rows per sample that a minibatch keeps together (K - 1 for ``CrossEntropyLoss``, else 1)."""
        return rows_per_sample(self.loss)

    def _sample_minibatches(self):
        """Indices (R, B) of a uniform minibatch without replacement per run (``steppers.sample_minibatches``)."""
        return sample_minibatches(self.rng, self.n_runs, self.kernel.n_samples, self.batch_size,
                                  self._rows_per_sample)

    def _nonfinite_runs(self) -> np.ndarray:
        """Indices of runs whose parameters, loss, fused shift or step-rule state are not finite."""
        return self.state.nonfinite_runs()

    # ---- stepping ---------------------------------------------------------------------------------
    def _steps_to_next_stop(self, until: int, save_every: int | None) -> int:
        """Steps until the next record, save or ``until`` (1 on the generic path)."""
        chunk = self._stepper.max_chunk
        if chunk == 1:
            return 1
        stop = min(until, self.step + chunk)
        later = self.recorder.next_checkpoint(self.step)
        if later is not None:
            stop = min(stop, later)
        if save_every:
            stop = min(stop, (self.step // save_every + 1) * save_every)
        return stop - self.step

    def _advance(self, n: int):
        """n iterations; fused lanes do them without synchronizing (their runs are independent)."""
        self._stepper.advance(n, self._pool)

    # ---- records ----------------------------------------------------------------------------------
    def _record_if_due(self) -> bool:
        return self.recorder.record_if_due(self.state)

    @property
    def fused_kernels(self) -> list[str] | None:
        """The kernel of each fused lane ("c", "numba", "numpy"; ``numeric.fused``), None on the generic path."""
        return [lane.kernel for lane in self.lanes] if self.fused else None

    def history(self) -> History:
        """The records so far as a ``History`` (final theta, configuration, completed steps, fused kernels)."""
        meta = {**self.config, "completed_steps": self.step}
        if self.fused:
            meta["fused_kernels"] = self.fused_kernels
        return self.recorder.history(self.theta, meta)

    # ---- running ----------------------------------------------------------------------------------
    def run(self, until: int | None = None, *, callback=None, checkpoint_path=None,
            save_every: int | None = None) -> Trainer:
        """Advance all runs to step ``until`` (default n_steps).

        With ``checkpoint_path`` the state is saved at every recorded checkpoint, every ``save_every``
        steps, at the end, and when interrupted (KeyboardInterrupt or an exception from ``callback``).
        ``callback(trainer)`` is called after each recorded checkpoint.  Ctrl-C (in the main thread)
        stops at the next step boundary, so the saved state is exact, and so does SIGTERM (then raising
        ``SystemExit(143)``: the process ends as a terminated one would); a second signal stops at once
        and saves nothing (the last checkpoint on disk stays valid).

        The checkpoint's single-writer lock (``fileio.exclusive_writer``) is taken before the first
        step and held to the end: a second run writing the same path, in this process or another,
        fails at once with ``FileInUseError``.  A run that diverges raises ``DivergenceError`` and never
        saves a non-finite state: the last good checkpoint stays on disk on both paths (the generic
        path also saves the last good step).

        Args:
            until: the step to stop at (default ``n_steps``).
            callback: ``callback(trainer)`` after each recorded checkpoint.
            checkpoint_path: the .npz checkpoint to save to, or None.
            save_every: also save every this many steps.

        Returns:
            The trainer itself.
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
                    self._interrupts.raise_if_requested()
                    self._advance(self._steps_to_next_stop(until, save_every if checkpoint_path else None))
                    self._stepper.check_chunk()
                    recorded = self._record_if_due()
                    if checkpoint_path and (recorded or (save_every and self.step % save_every == 0)):
                        self.save(checkpoint_path)
                    if recorded and callback is not None:
                        callback(self)
        except BaseException:
            if checkpoint_path and not self._unsaveable and not self._nonfinite_runs().size:
                if self.recorder.last_step() != self.step:
                    self._record_if_due()         # stopped between a step and its record: keep the record
                self.save(checkpoint_path)
            raise
        if checkpoint_path:
            self.save(checkpoint_path)

    def _writing(self, path):
        """Hold the single-writer lock of checkpoint ``path`` (nothing for None) unless already held."""
        return self._lock.writing(path)

    def _deferred_interrupts(self):
        """SIGINT and SIGTERM set a flag that the run loop turns into their exceptions between steps."""
        return self._interrupts.deferring(on_second=self._mark_unsaveable)

    def _mark_unsaveable(self) -> None:
        self._unsaveable = True

    def _raise_requested_interrupt(self):
        self._interrupts.raise_if_requested()

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

        Args:
            path: the .npz file.

        Returns:
            The path.
        """
        path = Path(path)
        bad = self._nonfinite_runs()
        if bad.size:
            raise DivergenceError(f"runs {bad[:10].tolist()} are not finite at step {self.step}: not saved to "
                                  f"{path} (a checkpoint already there is kept)")
        arrays = state_entries(self.state, self.recorder, incremental=self._incremental)
        meta = {"config": self.config, "rng": self.rng.bit_generator.state,
                "reference": self.reference.to_dict() if self.reference else None}
        if self.fused:
            meta["fused_kernels"] = self.fused_kernels       # resume on the same kernels: bit-identical
        with self._writing(path):
            write_checkpoint(path, arrays, meta)
        return path

    @classmethod
    def load(cls, path, kernel, workers: int = 1, threads: int = 1, like_array=None) -> Trainer:
        """Rebuild a trainer saved with ``save`` (the kernel is passed again; its layout must match).

        ``like_array``: an array of another library (torch, CuPy, ...): the restored state moves to its
        namespace and device and the run goes on there on the generic path (checkpoints are numpy on disk).

        Args:
            path: the .npz checkpoint.
            kernel: the kernel it was written for.
            workers: lanes (use the saved run's value for a bit-identical resume).
            threads: OpenMP threads per fused lane.
            like_array: an array of the library to resume in, or None (numpy).

        Returns:
            The trainer, at the saved step.

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
        threads = check_count(threads, "threads")
        d, meta, config = read_checkpoint(path, kernel)
        self = cls.__new__(cls)
        self._parts(kernel)
        self.threads = threads
        try:
            theta, shift, margins = self._restore(config, meta, d, path)
        except (KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError) as exc:
            if isinstance(exc, DataError):
                raise
            raise corrupt(path, "checkpoint", exc) from None
        kernels = meta.get("fused_kernels")           # absent in older checkpoints: chosen anew
        check_fused_kernels(kernels, path, KERNELS)
        if like_array is not None and namespace(like_array) is not np:
            theta, shift, self.fused = like(theta, like_array), None, False
            self.rule_state = state_like(self.rule_state, like_array)
        self._start(theta, workers, shift, kernels if self.fused else None)
        if margins is not None:                       # coordinate descent's incrementally updated margins
            for lane in self.lanes:
                lane.f = like(np.array(margins[lane.rows]), theta)
                lane.log_loss, lane.e, lane.inv_s = self.loss.scaled_weights(lane.f)
        return self

    def _restore(self, config, meta, d, path):
        """Set the state of a trainer from a checkpoint's entries, checking each; (theta, shift, margins)."""
        kernel = self.kernel

        def need(ok, reason):
            if not ok:
                raise corrupt(path, "checkpoint", reason)

        self.n_steps, runs = config["n_steps"], config["runs"]
        need(self.n_steps >= 0 and runs >= 1, f"n_steps {self.n_steps}, runs {runs}")
        self.schedule = np.asarray(config["checkpoints"], dtype=np.int64)
        need(self.schedule.ndim == 1 and self.schedule.size > 0 and np.all(np.diff(self.schedule) > 0)
             and self.schedule[0] >= 0 and self.schedule[-1] <= self.n_steps, "invalid checkpoint schedule")
        self.loss = loss_from_dict(config["loss"])
        self.rule = rule_from_dict(config["rule"])
        self.batch_size, self.path_sgd, self.seed = config["batch_size"], config["path_sgd"], config["seed"]
        need(self.batch_size is None or 1 <= self.batch_size <= kernel.n_samples, f"batch_size {self.batch_size}")
        self.store_direction = config["store_direction"]
        self.fused = config["fused"] and self._can_fuse()
        self._theta0_hash, self._data_hash, self._model_hash = (
            config["theta0_sha1"], config["data_sha256"], config["model_sha256"])
        ref = meta["reference"]
        need(ref is None or isinstance(ref, dict), "reference is not a mapping")
        self.reference = self._check_reference(reference_from_dict(ref))

        got = restore_entries(d, meta, path, kernel=kernel, runs=runs, n_steps=self.n_steps, schedule=self.schedule,
                              rule_template=self._init_rule_state(runs), saved_fused=config["fused"],
                              fused=self.fused, store_direction=self.store_direction, incremental=self._incremental)
        self.step, self.rule_state, self.records, self.rng = got.step, got.rule_state, got.records, got.rng
        return kernel.check_theta(got.theta), got.shift, got.margins


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
            changed = config_diff(saved.config, trainer.config)
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
