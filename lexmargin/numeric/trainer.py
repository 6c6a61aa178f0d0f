"""Batched training of R runs at once, recorded at log-spaced checkpoints, with exact resume.

One iteration does one forward pass (margins) and one vector-Jacobian product per run::

    v = sum_n w_n grad f_n = -grad log L          (w from the loss in log space)
    theta <- theta + s * v        (s from the step rule; Path-SGD divides v by kappa first)

The state of a run is (step, theta, step-rule state, RNG state); everything else is recomputed from
it, so a run saved to disk and resumed gives bit-identical results to an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import threading
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import LexmarginError
from .compare import Reference, angle, margin_ratio
from .fused import LinearExpLane
from .history import SERIES, History, log_checkpoints
from .losses import ExponentialLoss, get_loss
from .pathsgd import path_sgd_direction
from .steps import Constant, Normalized, rule_from_dict

FORMAT_VERSION = 1


class DivergenceError(LexmarginError, FloatingPointError):
    """A run produced non-finite parameters or loss (usually: the step size is too large)."""


def _fingerprint(theta0) -> str:
    return hashlib.sha1(np.ascontiguousarray(theta0).tobytes()).hexdigest()


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

    def adopt(self, new: _Lane):
        """Take the state of ``new``; the replaced margin/weight arrays become the spare buffers."""
        self.spare = (self.f, self.e)
        self.theta, self.f, self.cache, self.log_loss, self.e, self.inv_s = (
            new.theta, new.f, new.cache, new.log_loss, new.e, new.inv_s)


def _fits(buffer, theta, kernel):
    """``buffer`` if it can hold the (R, N) margins of theta, else None."""
    shape = (theta.shape[0], kernel.n_samples)
    ok = buffer is not None and buffer.shape == shape and buffer.dtype == theta.dtype and buffer.flags.c_contiguous
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

    Full-batch exponential-loss runs of a fixed step rule on a linear kernel take the fused path
    (``numeric.fused``: one pass of the compiled kernel per step, or two matrix products and two
    elementwise passes in numpy); ``fused=False`` forces the generic path, which agrees with it to
    rounding.  ``threads > 1`` splits each lane's samples over that many OpenMP threads in the compiled
    kernel (deterministic for a given ``threads``; resume with the same value).
    """

    def __init__(self, kernel, theta0, *, loss="exp", rule=None, n_steps: int = 1000, checkpoints=50,
                 batch_size: int | None = None, path_sgd: bool = False, seed: int = 0,
                 reference: Reference | None = None, store_direction: bool = True, workers: int = 1,
                 fused: bool = True, threads: int = 1):
        self.kernel = kernel
        self.loss = get_loss(loss)
        self.rule = rule if rule is not None else Constant(0.1)
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
        self.seed = int(seed)
        self.reference = self._check_reference(reference)
        self.store_direction = bool(store_direction)
        self.fused = bool(fused) and self._can_fuse()
        theta0 = kernel.check_theta(theta0)
        self.threads = _check_threads(threads)
        self.step = 0
        self.rule_state = self.rule.init(theta0.shape[0])
        self.rng = np.random.default_rng(self.seed)
        self.records: list[dict] = []
        self._theta0_hash = _fingerprint(theta0)
        self._start(theta0.copy(), workers)
        self._record_if_due()

    def _can_fuse(self) -> bool:
        return (self.kernel.augmented_margin_matrix is not None and isinstance(self.loss, ExponentialLoss)
                and self.batch_size is None and not self.path_sgd and not self.rule.adaptive)

    def _start(self, theta, workers, shift=None):
        if int(workers) != workers or workers < 1:
            raise ValueError(f"workers must be a positive integer; got {workers}")
        self.workers = int(workers)
        rows = _split_rows(len(theta), self.workers)
        if self.fused:
            B = self.kernel.augmented_margin_matrix
            self.lanes = [LinearExpLane(r, theta[r], B, None if shift is None else shift[r], threads=self.threads)
                          for r in rows]
            return
        self.lanes = [_Lane(r, np.ascontiguousarray(theta[r])) for r in rows]
        for lane in self.lanes:
            self._refresh(lane)

    # ---- checks ---------------------------------------------------------------------------------
    def _check_batch(self, batch_size):
        if batch_size is None:
            return None
        if int(batch_size) != batch_size or not 1 <= batch_size <= self.kernel.n_samples:
            raise ValueError(f"batch_size must be an integer in [1, {self.kernel.n_samples}]; got {batch_size}")
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
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    @property
    def theta(self) -> np.ndarray:
        """Current parameters (R, P)."""
        return self._gather("theta")

    @property
    def margins(self) -> np.ndarray:
        """Current margins (R, N) (a copy)."""
        return self._gather("f").copy()

    @property
    def log_loss(self) -> np.ndarray:
        return self._gather("log_loss")

    @property
    def config(self) -> dict:
        return {"format": FORMAT_VERSION, "kernel": self.kernel.describe(), "loss": self.loss.to_dict(),
                "rule": self.rule.to_dict(), "n_steps": self.n_steps, "checkpoints": self.schedule.tolist(),
                "batch_size": self.batch_size, "path_sgd": self.path_sgd, "seed": self.seed,
                "runs": self.n_runs, "theta0_sha1": self._theta0_hash, "store_direction": self.store_direction,
                "fused": self.fused}

    # ---- one iteration ----------------------------------------------------------------------------
    def _refresh(self, lane, buffers=(None, None)):
        f_buf, e_buf = buffers
        lane.f, lane.cache = self.kernel.forward(lane.theta, out=_fits(f_buf, lane.theta, self.kernel))
        lane.log_loss, lane.e, lane.inv_s = self.loss.scaled_weights(lane.f, out=_fits(e_buf, lane.theta, self.kernel))

    def _sample_minibatches(self):
        """Indices (R, B) of a uniform minibatch without replacement per run."""
        R, N, B = self.n_runs, self.kernel.n_samples, self.batch_size
        return np.argpartition(self.rng.random((R, N)), B - 1, axis=1)[:, :B]

    def _minibatch(self, lane, idx):
        """Minibatch loss (N/B) sum_{n in B_r} l(f_n) and its weights scattered to (R, N)."""
        N, B = self.kernel.n_samples, self.batch_size
        log_loss, eb, inv_s = self.loss.scaled_weights(np.take_along_axis(lane.f, idx, axis=1))
        e = np.zeros_like(lane.f)
        np.put_along_axis(e, idx, eb, axis=1)
        return log_loss + np.log(N / B), e, inv_s

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
        c_rule = self._compiled_rule(lane) if lane.use_c else None
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
            accepted = [self._lane_step(*job) for job in jobs]
        else:
            accepted = list(self._pool.map(lambda job: self._lane_step(*job), jobs))
        if self.rule.adaptive:
            self.rule_state = self.rule.update(self.rule_state, np.concatenate(accepted))
        self.step += 1

    def _lane_step(self, lane, idx):
        log_loss, e, inv_s = self._minibatch(lane, idx) if idx is not None else (lane.log_loss, lane.e, lane.inv_s)
        v = self.kernel.vjp(lane.theta, lane.cache, e)          # = -grad log L / inv_s
        if self.path_sgd:
            v = path_sgd_direction(self.kernel, lane.theta, v)
        state = self._lane_rule_state(lane)
        s = (self.rule.multiplier(state, log_loss) * inv_s).astype(lane.theta.dtype)
        new = _Lane(lane.rows, lane.theta + s[:, None] * v)
        self._refresh(new, lane.spare)
        if self.rule.adaptive:
            return self._accept(lane, new)
        self._check_finite(new, state)
        lane.adopt(new)
        return None

    def _lane_rule_state(self, lane) -> dict:
        """The step rule's state (per-run arrays) for the runs of one lane."""
        return {k: val[lane.rows] for k, val in self.rule_state.items()}

    def _fused_step(self, lane, step: int):
        state = self._lane_rule_state(lane)
        log_loss = lane.log_loss
        if not np.isfinite(log_loss).all():
            self._raise_divergence(~np.isfinite(log_loss), lane, state, step)
        lane.advance(self.rule.multiplier(state, log_loss))

    def _accept(self, lane, new):
        ok = np.isfinite(new.log_loss) & np.all(np.isfinite(new.theta), axis=1) & (new.log_loss < lane.log_loss)
        if ok.all():
            lane.adopt(new)
        elif ok.any():
            lane.theta = np.where(ok[:, None], new.theta, lane.theta)
            self._refresh(lane)
        return ok

    def _check_finite(self, lane, state):
        if np.isfinite(lane.theta.sum()) and np.isfinite(lane.log_loss).all():
            return                                   # fast path: one reduction
        bad = ~(np.all(np.isfinite(lane.theta), axis=1) & np.isfinite(lane.log_loss))
        if bad.any():
            self._raise_divergence(bad, lane, state, self.step + 1)

    def _raise_divergence(self, bad, lane, state, step):
        self._unsaveable = self.fused         # the diverged state is not worth a checkpoint
        bad = np.nonzero(bad)[0]
        raise DivergenceError(f"runs {(bad[:10] + lane.rows.start).tolist()} diverged at step {step} "
                              f"(step sizes {np.asarray(state['eta'])[bad][:5].tolist()}): reduce the step size")

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
        raw, f = self.theta, self._gather("f")
        theta = raw.astype(float)
        norm = np.linalg.norm(theta, axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            direction = theta / norm[:, None]
        nm = np.asarray(self.kernel.normalized_margins(raw, f), dtype=float)
        rec = {"step": self.step, "log_loss": self.log_loss.astype(float), "norm": norm,
               "min_margin": np.min(f, axis=1).astype(float), "normalized_margin": nm,
               "eta": np.asarray(self.rule_state["eta"], dtype=float).copy(),
               "direction": direction if self.store_direction else np.zeros((self.n_runs, 0)),
               "angle": np.full(self.n_runs, np.nan), "margin_ratio": np.full(self.n_runs, np.nan)}
        if self.reference is not None and np.all(norm > 0):
            rec["angle"] = angle(theta, self.reference.direction)
            rec["margin_ratio"] = margin_ratio(nm, self.reference.normalized_margin)
        return rec

    def history(self) -> History:
        recs = self.records
        arrays = {name: np.array([r[name] for r in recs]) for name in SERIES}
        return History(steps=np.array([r["step"] for r in recs], dtype=np.int64), theta=self.theta.copy(),
                       meta={**self.config, "completed_steps": self.step}, **arrays)

    # ---- running ----------------------------------------------------------------------------------
    def run(self, until: int | None = None, *, callback=None, checkpoint_path=None,
            save_every: int | None = None) -> Trainer:
        """Advance all runs to step ``until`` (default n_steps).

        With ``checkpoint_path`` the state is saved at every recorded checkpoint, every ``save_every``
        steps, at the end, and when interrupted (KeyboardInterrupt or an exception from ``callback``).
        ``callback(trainer)`` is called after each recorded checkpoint.  Ctrl-C (in the main thread)
        stops at the next step boundary, so the saved state is exact; a second Ctrl-C stops at once
        and saves nothing (the last checkpoint on disk stays valid).
        """
        if self._unsaveable:
            raise LexmarginError("this trainer stopped mid-step (a second Ctrl-C, or a lane that diverged): "
                                 "load its last checkpoint to go on")
        until = self.n_steps if until is None else int(until)
        if not self.step <= until <= self.n_steps:
            raise ValueError(f"until must lie in [{self.step}, {self.n_steps}]; got {until}")
        if save_every is not None and (int(save_every) != save_every or save_every < 1):
            raise ValueError(f"save_every must be a positive integer; got {save_every}")
        try:
            with self._parallel(), self._deferred_interrupts():
                while self.step < until:
                    self._raise_requested_interrupt()
                    self._advance(self._steps_to_next_stop(until, save_every if checkpoint_path else None))
                    recorded = self._record_if_due()
                    if checkpoint_path and (recorded or (save_every and self.step % save_every == 0)):
                        self.save(checkpoint_path)
                    if recorded and callback is not None:
                        callback(self)
        except BaseException:
            if checkpoint_path and not self._unsaveable:
                self.save(checkpoint_path)
            raise
        if checkpoint_path:
            self.save(checkpoint_path)
        return self

    _pool = None
    _unsaveable = False               # the state may be mid-step: never saved, never run again
    _interrupt_requested = False

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
        """Write the complete state atomically to ``path`` (.npz)."""
        path = Path(path)
        arrays = {"theta": self.theta, "step": np.array(self.step)}
        if self.fused:
            arrays["shift"] = self._gather("shift")          # the fused weights' shift: exact resume
        arrays.update({f"rule_{k}": v for k, v in self.rule_state.items()})
        for name in SERIES:
            arrays[f"rec_{name}"] = np.array([r[name] for r in self.records])
        arrays["rec_step"] = np.array([r["step"] for r in self.records], dtype=np.int64)
        meta = {"config": self.config, "rng": self.rng.bit_generator.state,
                "reference": self.reference.to_dict() if self.reference else None}
        arrays["meta"] = np.array(json.dumps(meta))
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path, kernel, workers: int = 1, threads: int = 1) -> Trainer:
        """Rebuild a trainer saved with ``save`` (the kernel is passed again; its layout must match)."""
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"checkpoint not found: {path}")
        with np.load(path) as f:
            d = {k: f[k] for k in f.files}
        meta = json.loads(str(d["meta"]))
        config = meta["config"]
        if config.get("format") != FORMAT_VERSION:
            raise ValueError(f"{path}: unsupported checkpoint format {config.get('format')}")
        if config["kernel"] != json.loads(json.dumps(kernel.describe())):
            raise ValueError(f"{path} was written for kernel {config['kernel']}, not {kernel.describe()}")
        self = cls.__new__(cls)
        self.kernel = kernel
        self.loss = get_loss(config["loss"]["name"])
        self.rule = rule_from_dict(config["rule"])
        self.n_steps, self.schedule = config["n_steps"], np.asarray(config["checkpoints"], dtype=np.int64)
        self.batch_size, self.path_sgd, self.seed = config["batch_size"], config["path_sgd"], config["seed"]
        self.store_direction = config["store_direction"]
        self.fused = bool(config.get("fused", False)) and self._can_fuse()
        self.threads = _check_threads(threads)
        ref = meta["reference"]
        self.reference = Reference(np.asarray(ref["direction"]), ref["normalized_margin"]) if ref else None
        self._theta0_hash = config["theta0_sha1"]
        self.step = int(d["step"])
        self.rule_state = {k[5:]: d[k] for k in d if k.startswith("rule_")}
        self.rng = np.random.default_rng()
        self.rng.bit_generator.state = meta["rng"]
        self.records = [{"step": int(s), **{name: d[f"rec_{name}"][i] for name in SERIES}}
                        for i, s in enumerate(d["rec_step"])]
        shift = d.get("shift") if self.fused else None
        self._start(kernel.check_theta(d["theta"]), workers, shift)
        return self


# how the steps are computed, not what they compute: a resumed run keeps its checkpoint's choice
_IMPLEMENTATION_KEYS = {"fused"}


def _diff(a: dict, b: dict) -> list[str]:
    return sorted(k for k in (set(a) | set(b)) - _IMPLEMENTATION_KEYS if json.dumps(a.get(k)) != json.dumps(b.get(k)))


def train(kernel, theta0, *, loss="exp", rule=None, n_steps: int = 1000, checkpoints=50,
          batch_size: int | None = None, path_sgd: bool = False, seed: int = 0,
          reference: Reference | None = None, store_direction: bool = True, checkpoint_path=None,
          save_every: int | None = None, callback=None, workers: int = 1, fused: bool = True,
          threads: int = 1) -> History:
    """Train R runs (rows of theta0) and return their History.

    With ``checkpoint_path``, an existing checkpoint of the same configuration is resumed (an
    interrupted run continues where it stopped, bit-identically, on the fused or generic path it was
    started on); a checkpoint of a different configuration raises ValueError.
    """
    trainer = Trainer(kernel, theta0, loss=loss, rule=rule, n_steps=n_steps, checkpoints=checkpoints,
                      batch_size=batch_size, path_sgd=path_sgd, seed=seed, reference=reference,
                      store_direction=store_direction, workers=workers, fused=fused, threads=threads)
    if checkpoint_path and Path(checkpoint_path).exists():
        saved = Trainer.load(checkpoint_path, kernel, workers=workers, threads=threads)
        changed = _diff(saved.config, trainer.config)
        if changed:
            raise ValueError(f"checkpoint {checkpoint_path} has a different configuration ({', '.join(changed)});"
                             " delete it or use another path")
        saved.reference = trainer.reference
        trainer = saved
    trainer.run(callback=callback, checkpoint_path=checkpoint_path, save_every=save_every)
    return trainer.history()


__all__ = ["DivergenceError", "Trainer", "train"]
