"""Checkpoints of training: the file format, its validation, fingerprints and the single-writer lock.

A checkpoint is an .npz written atomically through ``lexmargin.fileio`` (a unique temporary, fsynced,
renamed over the file): ``theta``, ``step``, the step rule's state ``rule_<name>``, the records ``rec_*``
and a strict-JSON ``meta`` entry (the configuration, the RNG state, the reference, the fused kernels);
the fused path adds each run's ``shift`` and coordinate descent its incrementally updated ``margins``.
The configuration records SHA-256 hashes of the data (X, y) and of the model structure: a checkpoint
resumed with other data or another model raises ``CheckpointMismatchError``; a damaged or foreign file,
or one of the older format 1, ``DataError``.  ``CheckpointLock`` holds ``fileio.exclusive_writer`` for
a run, so that a second writer of the same path fails at once (``FileInUseError``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import DataError
from ...fileio import corrupt, dumps_strict, exclusive_writer, json_from_array, read_npz, savez_atomic
from ..backend import to_numpy
from ..compare import Reference
from ..history import SERIES
from ..losses import get_loss
from .errors import CheckpointMismatchError
from .recorder import Recorder

# 2: the configuration records data_sha256 and model_sha256 (format 1 had neither: it cannot be checked)
FORMAT_VERSION = 2

CONFIG_TYPES = {"kernel": dict, "loss": dict, "rule": dict, "n_steps": int, "checkpoints": list,
                "batch_size": (int, type(None)), "path_sgd": bool, "seed": int, "runs": int, "theta0_sha1": str,
                "store_direction": bool, "fused": bool, "data_sha256": str, "model_sha256": str}

# how the steps are computed, not what they compute: a resumed run keeps its checkpoint's choice
IMPLEMENTATION_KEYS = {"fused"}

REQUIRED = ("meta", "theta", "step", "rec_step")


# ---- fingerprints -----------------------------------------------------------------------------------------
def theta_fingerprint(theta0) -> str:
    """SHA-1 of the starting points' bytes (the configuration's ``theta0_sha1``)."""
    return hashlib.sha1(np.ascontiguousarray(to_numpy(theta0)).tobytes()).hexdigest()


def data_fingerprint(kernel) -> str:
    """SHA-256 of the kernel's data: the dtype, shape and bytes of X and of y.

    Args:
        kernel: a kernel (its ``data``: X, y).

    Returns:
        The hex digest.
    """
    digest = hashlib.sha256()
    data = getattr(kernel, "data", None)
    for name in ("X", "y"):
        array = np.ascontiguousarray(getattr(data, name, np.zeros(0)))
        digest.update(f"{name}:{array.dtype.str}:{array.shape};".encode())
        digest.update(array.reshape(-1).view(np.uint8).data)
    return digest.hexdigest()


def structure(kernel) -> dict:
    """What defines the model besides its data: the kernel's description, the leaky slope of a layered net,
    the declared model of a CasADi kernel, and the parts of a sum."""
    out = dict(kernel.describe())
    if hasattr(kernel, "slope"):
        out["slope"] = float(kernel.slope)
    model = getattr(kernel, "model", None)
    if model is not None and hasattr(model, "describe"):
        out["model_structure"] = model.describe()
    if getattr(kernel, "kernels", None):
        out["parts"] = [structure(k) for k in kernel.kernels]
    return out


def model_fingerprint(kernel) -> str:
    """SHA-256 of the model structure (``structure``) as canonical JSON.

    Args:
        kernel: a kernel.

    Returns:
        The hex digest.
    """
    return hashlib.sha256(dumps_strict(structure(kernel), sort_keys=True, default=str).encode()).hexdigest()


def canonical(obj):
    """``obj`` as its strict-JSON round trip (what a checkpoint holds)."""
    return json.loads(dumps_strict(obj))


# ---- the configuration ----------------------------------------------------------------------------------
def loss_from_dict(spec: dict):
    """The loss a checkpoint recorded (its ``to_dict``): a named loss, or ``CrossEntropyLoss(n_classes)``."""
    if spec.get("name") == "cross_entropy":
        from ..multiclass import CrossEntropyLoss
        return CrossEntropyLoss(spec["n_classes"])
    return get_loss(spec["name"])


def reference_from_dict(ref) -> Reference | None:
    """The ``Reference`` a checkpoint recorded (``Reference.to_dict``), None for none."""
    if not ref:
        return None
    return Reference(np.asarray(ref["direction"], dtype=float), float(ref["normalized_margin"]),
                     ref.get("norm", "l2"), ref.get("p"))


def checked_config(meta, path) -> dict:
    """The configuration of a checkpoint's meta entry, with its format and the types of its fields checked.

    Args:
        meta: the decoded meta entry.
        path: the file (for messages).

    Returns:
        The configuration.

    Raises:
        DataError: format 1, an unknown format, a missing or mistyped entry.
    """
    if not (isinstance(meta, dict) and isinstance(meta.get("config"), dict) and {"rng", "reference"} <= set(meta)):
        raise corrupt(path, "checkpoint", "its meta entry lacks config, rng or reference")
    config = meta["config"]
    version = config.get("format")
    if version == 1:
        raise DataError(f"{path} is a checkpoint of format 1 (an older lexmargin), which records no hash of its "
                        "data and model and so cannot be resumed safely; delete it or use another path")
    if version != FORMAT_VERSION:
        raise corrupt(path, "checkpoint", f"unsupported checkpoint format {version!r}")
    for key, types in CONFIG_TYPES.items():
        value, types = config.get(key), types if isinstance(types, tuple) else (types,)
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise corrupt(path, "checkpoint", f"config entry {key!r} is {value!r}")
    return config


def check_identity(config: dict, kernel, path) -> None:
    """The checkpoint was written for this kernel, model structure and data, else CheckpointMismatchError.

    Args:
        config: a checked configuration.
        kernel: the kernel it is to be resumed with.
        path: the file (for messages).
    """
    if config["kernel"] != canonical(kernel.describe()):
        raise CheckpointMismatchError(f"{path} was written for kernel {config['kernel']}, not {kernel.describe()}")
    if config["model_sha256"] != model_fingerprint(kernel):
        raise CheckpointMismatchError(f"checkpoint {path} was written for another model structure (its SHA-256 "
                                      "differs): delete it or use another path")
    if config["data_sha256"] != data_fingerprint(kernel):
        raise CheckpointMismatchError(f"checkpoint {path} was written for other data: the data changed since it "
                                      "was saved (the SHA-256 of X and y differs); delete it or use another path")


def config_diff(a: dict, b: dict) -> list[str]:
    """The configuration entries in which ``a`` and ``b`` differ (implementation choices aside), sorted."""
    return sorted(k for k in (set(a) | set(b)) - IMPLEMENTATION_KEYS
                  if dumps_strict(a.get(k)) != dumps_strict(b.get(k)))


def check_fused_kernels(kernels, path, known) -> None:
    """A checkpoint's ``fused_kernels`` entry is None or a list of names in ``known``, else ``DataError``."""
    if kernels is not None and not (isinstance(kernels, list) and all(k in known for k in kernels)):
        raise corrupt(path, "checkpoint", f"fused_kernels is {kernels!r}")


# ---- reading and writing ------------------------------------------------------------------------------------
def read_checkpoint(path, kernel) -> tuple[dict, dict, dict]:
    """A checkpoint's arrays, meta and configuration, checked against ``kernel``.

    Args:
        path: the .npz file.
        kernel: the kernel it is to be resumed with.

    Returns:
        (arrays, meta, config).

    Raises:
        FileNotFoundError: there is no file at ``path``.
        DataError: a damaged or foreign file, or format 1.
        CheckpointMismatchError: written for another kernel, model structure or data.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    d = read_npz(path, "checkpoint", required=REQUIRED)
    meta = json_from_array(d["meta"], path, "checkpoint")
    config = checked_config(meta, path)
    check_identity(config, kernel, path)
    return d, meta, config


def write_checkpoint(path, arrays: dict, meta: dict) -> Path:
    """Write ``arrays`` and ``meta`` (strict JSON, as the entry "meta") atomically to ``path``.

    Args:
        path: the .npz file.
        arrays: name -> numpy array.
        meta: the meta entry (config, rng, reference, ...).

    Returns:
        The path.
    """
    path = Path(path)
    savez_atomic(path, **arrays, meta=np.array(dumps_strict(meta)))
    return path


def known_entries(rule_names, incremental: bool) -> set:
    """The entries a valid checkpoint may hold."""
    return ({"meta", "theta", "step", "shift", "rec_step"} | ({"margins"} if incremental else set())
            | {f"rule_{k}" for k in rule_names} | {f"rec_{name}" for name in SERIES})


# ---- a training's entries ---------------------------------------------------------------------------------
def state_entries(state, recorder, *, incremental: bool) -> dict:
    """The arrays of a checkpoint of ``state`` (a ``TrainingState``) and ``recorder`` (numpy, as on disk).

    Args:
        state: the training state (finite: checked by the caller).
        recorder: its ``Recorder``.
        incremental: coordinate descent's margins are stored (they are updated in O(N) per step).

    Returns:
        name -> array, in the order they are written.
    """
    arrays = {"theta": to_numpy(state.gather("theta")), "step": np.array(state.step, dtype=np.int64)}
    if state.fused:
        arrays["shift"] = state.gather("shift")          # the fused weights' shift: exact resume
    if incremental:
        arrays["margins"] = to_numpy(state.gather("f"))  # updated in O(N) per step: exact resume
    arrays.update({f"rule_{k}": to_numpy(v) for k, v in state.rule_state.items()})
    arrays.update(recorder.arrays())
    return arrays


@dataclass
class Restored:
    """A checkpoint's validated state entries (``restore_entries``)."""

    step: int
    theta: np.ndarray
    rule_state: dict
    shift: np.ndarray | None
    margins: np.ndarray | None
    records: list
    rng: np.random.Generator


def restore_entries(d: dict, meta: dict, path, *, kernel, runs: int, n_steps: int, schedule: np.ndarray,
                    rule_template: dict, saved_fused: bool, fused: bool, store_direction: bool,
                    incremental: bool) -> Restored:
    """Check each state entry of a checkpoint (``DataError`` at the first that is wrong) and return them.

    Args:
        d: the checkpoint's arrays.
        meta: its meta entry (the RNG state).
        path: the file (for messages).
        kernel: the kernel it is resumed with (shapes, dtype).
        runs: R of the configuration.
        n_steps: the configuration's steps.
        schedule: the checkpoint schedule.
        rule_template: the step rule's initial state for R runs (names and shapes).
        saved_fused: the checkpoint was written on the fused path (it holds ``shift``).
        fused: the resumed run takes the fused path (the shift is kept).
        store_direction: the records hold directions.
        incremental: coordinate descent's margins are expected.

    Returns:
        The ``Restored`` entries.
    """
    def need(ok, reason):
        if not ok:
            raise corrupt(path, "checkpoint", reason)

    step = d["step"]
    need(step.shape == () and step.dtype.kind in "iu", f"step has shape {step.shape} and dtype {step.dtype}")
    step = int(step)
    need(0 <= step <= n_steps, f"step {step} lies outside [0, {n_steps}]")
    theta = d["theta"]
    need(theta.shape == (runs, kernel.n_params) and theta.dtype == kernel.dtype,
         f"theta has shape {theta.shape} and dtype {theta.dtype}; expected ({runs}, {kernel.n_params}) "
         f"{kernel.dtype}")
    need(np.isfinite(theta).all(), "it holds non-finite parameters")

    names = {k[5:] for k in d if k.startswith("rule_")}
    need(names == set(rule_template), f"step-rule state {sorted(names)}; expected {sorted(rule_template)}")
    rule_state = {}
    for k, template in rule_template.items():
        value = d[f"rule_{k}"]
        need(value.shape == template.shape and value.dtype.kind == "f" and np.isfinite(value).all(),
             f"step-rule state {k!r} has shape {value.shape} and dtype {value.dtype}")
        rule_state[k] = value
    shift = None
    if saved_fused:
        shift = d.get("shift")
        need(shift is not None and shift.shape == (runs,) and shift.dtype == kernel.dtype
             and np.isfinite(shift).all(), "the fused path's shift is missing or invalid")
        shift = shift if fused else None

    rec_step = d["rec_step"]
    need(rec_step.ndim == 1 and rec_step.dtype.kind in "iu", f"rec_step has shape {rec_step.shape}")
    K = rec_step.size
    need(np.all(np.diff(rec_step) > 0) and np.isin(rec_step, schedule).all()
         and (K == 0 or rec_step[-1] <= step), "recorded steps are not checkpoints reached")
    P = kernel.n_params if store_direction else 0
    for name, kind in SERIES.items():
        value = d.get(f"rec_{name}")
        if value is None:
            raise corrupt(path, "checkpoint", f"record {name!r} is missing")
        shape = (K, runs) if kind == "R" else (K, runs, P)
        need(value.shape == shape if K else value.size == 0, f"record {name!r} has shape {value.shape}; "
             f"expected {shape}")
        need(value.dtype.kind == "f" or value.size == 0, f"record {name!r} has dtype {value.dtype}")
    margins = d.get("margins")
    if incremental:
        need(margins is not None and margins.shape == (runs, kernel.n_samples) and margins.dtype == kernel.dtype
             and np.isfinite(margins).all(), "coordinate descent's margins are missing or invalid")
    known = known_entries(rule_template, incremental)
    need(set(d) <= known, f"unexpected entries {sorted(set(d) - known)}")
    records = Recorder.records_from(d)
    rng = np.random.default_rng()
    need(isinstance(meta["rng"], dict), "the random generator state is not a mapping")
    rng.bit_generator.state = meta["rng"]
    return Restored(step, theta, rule_state, shift, margins if incremental else None, records, rng)


class CheckpointLock:
    """The single-writer lock of one checkpoint path, held by one training (re-entrant for that training)."""

    def __init__(self):
        self.held: Path | None = None          # the (resolved) checkpoint path whose writer lock is held

    @contextmanager
    def writing(self, path) -> Iterator[Path | None]:
        """Hold the single-writer lock of checkpoint ``path`` (nothing for None) unless already held.

        Args:
            path: the checkpoint, or None.

        Yields:
            The resolved path (None for None).
        """
        if not path:
            yield None
            return
        resolved = Path(path).resolve()
        if self.held == resolved:
            yield resolved
            return
        with exclusive_writer(resolved, "checkpoint"):
            self.held = resolved
            try:
                yield resolved
            finally:
                self.held = None


__all__ = [
    "FORMAT_VERSION",
    "CheckpointLock",
    "Restored",
    "check_identity",
    "checked_config",
    "config_diff",
    "data_fingerprint",
    "model_fingerprint",
    "read_checkpoint",
    "restore_entries",
    "state_entries",
    "write_checkpoint",
]
