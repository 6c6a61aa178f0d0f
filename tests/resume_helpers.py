"""Shared by the trainer tests: linearly separable data, interrupt a checkpointed run, then resume it with the same
call; and the
child process of the fault tests (``python tests/resume_helpers.py SPEC``), killed with SIGKILL at a chosen
file operation of its checkpoint saves, or holding its checkpoint while another writer tries it."""

import json
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np

if __name__ == "__main__":                        # the child: the repository's lexmargin, not an installed one
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lexmargin import fileio
from lexmargin.numeric import Adaptive, LayeredNetKernel, LinearKernel, Normalized, Trainer, train


def separable(n=40, d=3, seed=0):
    """(X, y): n Gaussian points in R^d labelled by the hyperplane with normal (1, 2, ..., d) through the origin."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = np.where(X @ np.arange(1.0, d + 1) > 0, 1.0, -1.0)
    return X, y


def raise_keyboard_interrupt(trainer):
    raise KeyboardInterrupt


def interrupted_then_resumed(kernel, theta, path, at_step, interrupt=raise_keyboard_interrupt, **kw):
    """History of a run stopped by ``interrupt(trainer)`` at the first record at or after ``at_step`` (it must
    raise KeyboardInterrupt, or make the trainer raise it), checked to be saved mid-way, then resumed."""
    import pytest

    def callback(trainer):
        if trainer.step >= at_step:
            interrupt(trainer)

    with pytest.raises(KeyboardInterrupt):
        train(kernel, theta, checkpoint_path=path, callback=callback, **kw)
    assert at_step <= Trainer.load(path, kernel, workers=kw.get("workers", 1)).step < kw["n_steps"]
    return train(kernel, theta, checkpoint_path=path, **kw)


# ---- fault tests: the problems ----------------------------------------------------------------------------
FAULT_PATHS = ("c", "numba", "numpy", "generic", "sgd")   # fused (C, numba, numpy kernels), generic GD, SGD


def fault_env(kind: str) -> dict:
    """The environment variables that make the fused path of ``fault_problem`` take kernel ``kind``."""
    return {"c": {"LEXMARGIN_FUSED_KERNEL": "c"}, "numba": {"LEXMARGIN_FUSED_KERNEL": "numba"},
            "numpy": {"LEXMARGIN_NUMPY_ONLY": "1"}}.get(kind, {})


def fault_problem(kind: str):
    """(kernel, theta0, train options) of the fault tests; ``kind`` picks the path (with ``fault_env(kind)``
    set, and the kernel available for "c" and "numba")."""
    X, y = separable(60, 4)
    if kind == "sgd":
        kernel = LayeredNetKernel(X, y, hidden=(3,))
        kw = {"rule": Adaptive(0.3), "batch_size": 16, "seed": 5}
    else:
        kernel = LinearKernel(X, y)
        kw = {"rule": Normalized(0.3), "fused": kind != "generic"}
    theta = kernel.random_theta(range(4), [0.5, 1.0, 2.0, 4.0])
    return kernel, theta, dict(n_steps=300, checkpoints=10, **kw)


# ---- fault tests: killing a save at its k-th file operation --------------------------------------------------
class Killer:
    """Counts the file operations of saves (writes to the temporary, fsyncs, the rename) and SIGKILLs this
    process at the ``kill_at``-th (0: never); at a write it first writes part of the data."""

    def __init__(self, kill_at: int = 0):
        self.kill_at, self.count = int(kill_at), 0

    def due(self) -> bool:
        self.count += 1
        return self.count == self.kill_at

    def event(self):
        if self.due():
            die()


def die():
    os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(60)                                                # never reached


class _HookedFile:
    def __init__(self, fh, killer):
        self._fh, self._killer = fh, killer

    def __getattr__(self, name):
        return getattr(self._fh, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self._fh.__exit__(*exc)

    def write(self, data):
        if self._killer.due():
            data = memoryview(data).cast("B")
            self._fh.write(data[: len(data) // 2])
            self._fh.flush()
            die()
        return self._fh.write(data)


class HookedOs:
    """Stands in for ``os`` inside lexmargin.fileio: every file operation of a save is an event of ``killer``."""

    def __init__(self, killer):
        self._killer = killer

    def __getattr__(self, name):
        return getattr(os, name)

    def fdopen(self, *args, **kwargs):
        return _HookedFile(os.fdopen(*args, **kwargs), self._killer)

    def fsync(self, fd):
        self._killer.event()
        os.fsync(fd)

    def replace(self, src, dst):
        self._killer.event()
        os.replace(src, dst)
        self._killer.event()


def child_command(spec: dict) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), json.dumps(spec)]


def _child(spec: dict) -> int:
    kernel, theta, kw = fault_problem(spec["kind"])
    path = Path(spec["path"])
    if spec["mode"] == "kill":
        fileio.os = HookedOs(Killer(spec["kill_at"]))
        train(kernel, theta, checkpoint_path=path, save_every=spec["save_every"], **kw)
        return 0                                                  # finished: kill_at was past the last event

    ready, go = path.with_name("ready"), path.with_name("go")     # mode "hold": wait at the first record

    def hold(trainer):
        if not ready.exists():
            ready.touch()
            deadline = time.monotonic() + 60
            while not go.exists():
                if time.monotonic() > deadline:
                    sys.exit(3)
                time.sleep(0.01)

    train(kernel, theta, checkpoint_path=path, callback=hold, **kw)
    return 0


if __name__ == "__main__":
    sys.exit(_child(json.loads(sys.argv[1])))
