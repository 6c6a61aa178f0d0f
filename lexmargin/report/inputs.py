"""Inputs of a stationarity report: parameter vectors, checkpoint histories, certificates, models.

Accepted parameter sources:

* a 1-D array theta (P,);
* a 2-D array of checkpoints (K, P) (the last row is the reported point);
* a History of the numeric module, a Path of ``lexmargin.problems.paths`` (points rho * theta along rho), or
  anything with ``thetas``/``iterations`` arrays or ``checkpoints`` whose items carry ``theta`` and
  ``iteration``/``step``;
* an ``.npz`` file with ``theta`` (P,) and/or ``thetas`` (K, P) with optional ``iterations`` (K,),
  and optionally the data ``X`` (N, D), ``y`` (N,).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError, ModelError
from ..fileio import corrupt, read_npz
from ..modeling.data import Dataset, _as_float64
from ..nlp.certificate import Certificate


@dataclass(frozen=True, eq=False)
class ThetaSource:
    """The reported point, its checkpoint trajectory (optional) and data shipped alongside."""

    theta: np.ndarray
    thetas: np.ndarray | None = None
    iterations: np.ndarray | None = None
    data: Dataset | None = None
    origin: str = "array"
    axis: str = "iteration"


def _float_array(value, what: str) -> np.ndarray:
    arr = _as_float64(value, what)   # refuses ragged, text, object and complex input and inexact float128
    if not np.all(np.isfinite(arr)):
        raise DataError(f"{what} contains non-finite values (NaN or inf)")
    return arr


def _default_iterations(iterations, count: int) -> np.ndarray:
    if iterations is None:
        return np.arange(1, count + 1, dtype=float)
    it = _float_array(iterations, "iterations").reshape(-1)
    if it.shape != (count,):
        raise DataError(f"iterations must have one entry per checkpoint ({count}); got shape {it.shape}")
    return it


def from_checkpoints(thetas, iterations=None, origin: str = "checkpoints", run: int = 0) -> ThetaSource:
    thetas = _float_array(thetas, "checkpoints")
    if thetas.ndim == 3:  # batched runs (K, B, P): pick one run
        if not 0 <= run < thetas.shape[1]:
            raise DataError(f"run {run} is out of range: the checkpoints hold {thetas.shape[1]} runs")
        thetas = thetas[:, run, :]
    elif run != 0:
        raise DataError(f"run {run} was given but the checkpoints ({origin}, shape {thetas.shape}) hold one run")
    if thetas.ndim != 2 or thetas.shape[0] == 0:
        raise DataError(f"checkpoints must be a (K, P) array; got shape {thetas.shape}")
    return ThetaSource(thetas[-1], thetas, _default_iterations(iterations, thetas.shape[0]), origin=origin)


def _numeric_history_arrays(history, run: int):
    """lexmargin.numeric History: unit ``direction`` (K, R, P) times ``norm`` (K, R) at ``steps``."""
    direction = np.asarray(history.direction, dtype=float)
    theta = np.asarray(history.theta, dtype=float)
    theta = theta[run] if theta.ndim == 2 else theta
    if direction.ndim != 3 or direction.shape[0] == 0:
        return theta[None, :], None
    # the direction of a zero vector (e.g. GD started at 0) is stored as NaN: that checkpoint is theta = 0
    thetas = np.nan_to_num(direction[:, run, :]) * np.asarray(history.norm, dtype=float)[:, run, None]
    return np.concatenate([thetas[:-1], theta[None, :]]), np.asarray(history.steps, dtype=float)


def _path_arrays(path):
    """A lexmargin.problems.paths Path: margin/constrained points are rho * theta (theta on the unit ball)."""
    thetas = np.asarray(path.thetas, dtype=float)
    parameters = np.asarray(path.parameters, dtype=float)
    if path.parameter_name == "rho":
        thetas = thetas * parameters[:, None]
    return thetas, parameters


def _history_arrays(history):
    if all(hasattr(history, k) for k in ("thetas", "parameters", "parameter_name")):
        return _path_arrays(history)
    if hasattr(history, "thetas"):
        return history.thetas, getattr(history, "iterations", getattr(history, "steps", None))
    items = list(history.checkpoints)
    thetas = [c.theta for c in items]
    its = [getattr(c, "iteration", getattr(c, "step", k + 1)) for k, c in enumerate(items)]
    return thetas, its


def from_history(history, run: int = 0) -> ThetaSource:
    """A numeric-module History, a ``lexmargin.problems.paths`` Path (the schedule parameter takes the place of
    the iteration), or any object with ``thetas`` (+ ``iterations``) or ``checkpoints``."""
    if _is_numeric_history(history):
        thetas, iterations = _numeric_history_arrays(history, _check_run(history, run))
        return from_checkpoints(thetas, iterations, origin="numeric History")
    if not (hasattr(history, "thetas") or hasattr(history, "checkpoints")):
        raise DataError(f"{type(history).__name__} is not a History: it has neither thetas nor checkpoints")
    thetas, iterations = _history_arrays(history)
    src = from_checkpoints(thetas, iterations, origin=type(history).__name__, run=run)
    axis = getattr(history, "parameter_name", "iteration")
    return ThetaSource(src.theta, src.thetas, src.iterations, origin=src.origin, axis=str(axis))


def _is_numeric_history(history) -> bool:
    return all(hasattr(history, k) for k in ("direction", "norm", "steps", "theta"))


def _check_run(history, run: int) -> int:
    n_runs = np.asarray(history.theta).shape[0] if np.ndim(history.theta) == 2 else 1
    if not 0 <= run < n_runs:
        raise DataError(f"run {run} is out of range: the History holds {n_runs} runs")
    return run


@dataclass(frozen=True)
class _NpzHistory:
    direction: np.ndarray
    norm: np.ndarray
    steps: np.ndarray
    theta: np.ndarray


def _npz_data(arrays: dict, path) -> Dataset | None:
    present = {"X", "y"} & set(arrays)
    if not present:
        return None
    if present != {"X", "y"}:
        raise DataError(f"{path} has {sorted(present)} but data needs both X and y")
    classes = arrays.get("n_classes")           # K-class data (integer labels 0..K-1), as Dataset.save writes it
    n_classes = None if classes is None else int(np.asarray(classes).reshape(-1)[0])
    try:
        return Dataset(arrays["X"], arrays["y"], n_classes)
    except DataError as exc:
        raise type(exc)(f"{path}: {exc}") from None


HISTORY_ARRAYS = ("direction", "norm", "steps", "theta")


def load_theta_npz(path, run: int | None = None) -> ThetaSource:
    """Read ``theta`` / ``thetas`` (+ ``iterations``, ``X``, ``y``) from an .npz file.

    ``run`` picks one run of a batched file (a numeric History or ``thetas`` of shape (K, R, P));
    None means run 0.  A run other than 0 for a file that holds a single run is an error, not ignored.

    Args:
        path: the .npz file.
        run: the run of a batched file.

    Returns:
        The ThetaSource.

    Raises:
        DataError: missing, corrupt or foreign files and malformed arrays, naming the file.
    """
    path = Path(path)
    if path.suffix != ".npz":
        if not path.exists():
            raise DataError(f"parameter file not found: {path}")
        raise DataError(f"parameter file must be an .npz with an array 'theta'; got {path.name}")
    if run is not None and (isinstance(run, bool) or not isinstance(run, (int, np.integer)) or run < 0):
        raise DataError(f"run must be a run index >= 0; got {run!r}")
    arrays = read_npz(path, "parameter")
    try:
        src = _theta_source_from_arrays(arrays, path, run)
        data = _npz_data(arrays, path)
    except DataError as exc:
        message = str(exc)
        raise DataError(message if str(path) in message else f"{path}: {message}") from None
    except (ValueError, TypeError, IndexError) as exc:   # arrays of inconsistent shapes or kinds
        raise corrupt(path, "parameter", exc) from None
    return ThetaSource(src.theta, src.thetas, src.iterations, data, src.origin)


def _theta_source_from_arrays(arrays: dict, path: Path, run: int | None) -> ThetaSource:
    if set(HISTORY_ARRAYS) <= set(arrays):  # a numeric History saved as .npz
        history = _NpzHistory(*(arrays[k] for k in HISTORY_ARRAYS))
        src = from_history(history, run=0 if run is None else run)
        return ThetaSource(src.theta, src.thetas, src.iterations, origin=f"{path} (numeric History)")
    if "thetas" in arrays:
        thetas = arrays["thetas"]
        if run not in (None, 0) and np.ndim(thetas) != 3:
            raise DataError(f"run {run} was given (--run) but {path} holds a single run "
                            f"(thetas of shape {np.shape(thetas)}, not (K, runs, P))")
        return from_checkpoints(thetas, arrays.get("iterations"), origin=str(path),
                                run=0 if run is None else run)
    if "theta" in arrays:
        if run not in (None, 0):
            raise DataError(f"run {run} was given (--run) but {path} holds a single parameter vector "
                            "'theta', not a batched History")
        return ThetaSource(_float_array(arrays["theta"], "theta").reshape(-1), origin=str(path))
    raise DataError(f"{path} has no array 'theta' (or 'thetas'); it has {sorted(arrays)}")


def as_theta_source(theta, run: int | None = None) -> ThetaSource:
    """Normalize any accepted parameter source (see module docstring).

    ``run`` picks one run of a batched source (None: run 0); a run other than 0 for a source holding one
    run is an error.

    Args:
        theta: a vector (P,), checkpoints (K, P), a numeric History, or an .npz path.
        run: the run of a batched source.

    Returns:
        The ThetaSource: the final theta, the checkpoints and their iterations when there are any, and
        the data an .npz carried.
    """
    if run is not None and (isinstance(run, bool) or not isinstance(run, (int, np.integer)) or run < 0):
        raise DataError(f"run must be a run index >= 0; got {run!r}")
    if isinstance(theta, (str, Path)):
        return load_theta_npz(theta, run=run)
    index = 0 if run is None else int(run)
    if isinstance(theta, ThetaSource):
        _single_run(index, "a ThetaSource")
        return theta
    if hasattr(theta, "thetas") or hasattr(theta, "checkpoints") or _is_numeric_history(theta):
        return from_history(theta, run=index)
    arr = _float_array(theta, "theta")
    if arr.ndim == 1:
        _single_run(index, "a single parameter vector theta")
        return ThetaSource(arr)
    return from_checkpoints(arr, run=index)


def _single_run(run: int, what: str) -> None:
    if run != 0:
        raise DataError(f"run {run} was given but the parameters are {what}, which holds one run")


def resolve_model(model, data: Dataset | None, options: dict | None = None):
    """A Model, or a bundled name/file built with ``input_dim`` from the data unless given."""
    from ..modeling.loading import load_model
    from ..modeling.model import Model

    if isinstance(model, Model):
        if options:
            raise ModelError("options apply to a model name or file, not to a built Model")
        return model
    opts = dict(options or {})
    if "input_dim" not in opts:
        if data is None:
            raise ModelError("input_dim is needed to build the model: pass data or the input_dim option")
        opts["input_dim"] = data.n_features
    return load_model(model, **opts)


def check_theta(model, theta) -> None:
    if theta.shape != (model.n_params,):
        raise ModelError(f"theta has {theta.size} entries but model {model.name!r} has {model.n_params} "
                         f"parameters (blocks: {[b.name for b in model.blocks]})")
    if not np.any(theta):
        raise DataError("theta is zero: margins, normalization and alignment are undefined there")


def certificate_from_dict(d: dict, origin=None) -> Certificate:
    """Rebuild a Certificate from ``Certificate.to_dict()`` output (e.g. a cert.json file).

    Args:
        d: the dict.
        origin: the file it came from, named in the error.

    Returns:
        The Certificate (``DataError`` when the dict is not one).
    """
    where = f"{origin} is " if origin is not None else ""
    if not isinstance(d, dict):
        raise DataError(f"{where}not a lexmargin certificate (a JSON object is needed; got {type(d).__name__})")
    try:
        return Certificate.from_dict(d)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError, RecursionError) as exc:
        detail = (str(exc).splitlines() or [type(exc).__name__])[0]
        what = f"missing field {exc}" if isinstance(exc, KeyError) else f"bad field: {detail}"
        raise DataError(f"{where}not a lexmargin certificate ({what})") from None


def load_certificate(path) -> Certificate:
    """Read a certificate JSON file (``lexmargin solve --out``; files of lexmargin 0.1 load too).

    Args:
        path: the JSON file.

    Returns:
        The Certificate.

    Raises:
        DataError: missing, corrupt, not JSON, or not a certificate, naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"certificate file not found: {path}" if not path.exists()
                        else f"{path} is not a certificate file (it is a folder or a device)")
    try:
        d = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise corrupt(path, "certificate", f"it is not valid JSON: not UTF-8 text ({exc.reason})") from None
    except (ValueError, RecursionError) as exc:
        raise corrupt(path, "certificate", f"it is not valid JSON: {exc}") from None
    except OSError as exc:
        raise DataError(f"cannot read certificate file {path}: {exc.strerror or exc}") from None
    if not isinstance(d, dict):
        raise corrupt(path, "certificate", f"it holds a JSON {type(d).__name__}, not a certificate object")
    return certificate_from_dict(d, origin=path)
