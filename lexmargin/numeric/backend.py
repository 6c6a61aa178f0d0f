"""Array backends of the generic path: the namespace ``xp`` is taken from the arrays, numpy by default.

The generic (non-fused) path -- kernels' margins and vector-Jacobian products, losses, step rules,
geometries, Path-SGD and the trainer's stepping -- is written against the Python array API standard
(https://data-apis.org/array-api/): every operation is ``xp.f(...)`` with ``xp = namespace(theta, ...)``.

* numpy arrays (and Python scalars, lists, ``None``) give ``xp = numpy`` itself, the module: numpy >= 2 follows
  the standard in its main namespace, so the numpy path calls exactly the numpy functions it called before (no
  wrapper, no conversion), and numpy-only fast paths (``out=`` buffers, in-place flushes) stay where they were.
* any other array (``array_api_strict``, torch, CuPy, ...) gives ``array_api_compat.array_namespace(...)``
  (imported lazily: numpy-only users never import it).
* arrays of two namespaces in one call raise ``BackendMismatchError`` (a ``TypeError``), one line naming them.

Constants of a kernel (the data X, y, A = (y X)^T, ...) are numpy arrays; ``constants(kernel, like)`` copies them
once per (namespace, device) to where ``like`` lives and caches them on the kernel.  State that leaves the
generic path -- records of a ``History``, checkpoints, fingerprints, error messages -- is converted to numpy by
``to_numpy`` at that boundary (a device-to-host copy on a GPU).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np

from ..errors import LexmarginError

# inputs that are numpy's (or plain Python's): they never decide the namespace
_HOST = (np.ndarray, np.generic, float, int, bool, complex, list, tuple)


class BackendMismatchError(LexmarginError, TypeError):
    """Arrays of two array libraries (e.g. a numpy array and a torch tensor) met in one computation."""


def namespace(*arrays) -> Any:
    """The array namespace ``xp`` of ``arrays``: numpy for numpy arrays and Python values, else array_api_compat's.

    Args:
        *arrays: arrays, Python scalars or None (scalars and None do not count).

    Returns:
        The ``numpy`` module when every argument is numpy's or plain Python, else the common namespace of the others
        (``array_api_compat.array_namespace``).

    Raises:
        BackendMismatchError: the arrays come from more than one library.
    """
    for a in arrays:
        if a is not None and type(a) is not np.ndarray and not isinstance(a, _HOST):
            return _foreign_namespace(arrays)
    return np


def _foreign_namespace(arrays) -> Any:
    import array_api_compat

    candidates = [a for a in arrays if a is not None and not isinstance(a, (float, int, bool, complex, list, tuple))]
    try:
        return array_api_compat.array_namespace(*candidates)
    except TypeError as exc:
        kinds = sorted({f"{type(a).__module__}.{type(a).__name__}" for a in candidates})
        raise BackendMismatchError(f"arrays of different libraries in one computation ({', '.join(kinds)}): "
                                   "convert them to one (theta, data and cotangents alike)") from exc


def device(x):
    """The device of array ``x`` (``"cpu"`` for numpy)."""
    if isinstance(x, np.ndarray):
        return "cpu"
    import array_api_compat

    return array_api_compat.device(x)


def to_numpy(x) -> np.ndarray:
    """``x`` as a numpy array (a device-to-host copy for GPU arrays; numpy arrays are returned as they are).

    Args:
        x: an array of any supported library, or a numpy array / Python value.

    Returns:
        The numpy array.
    """
    if isinstance(x, np.ndarray):
        return x
    if isinstance(x, _HOST):
        return np.asarray(x)
    import array_api_compat

    if array_api_compat.is_torch_array(x):
        return x.detach().cpu().numpy()
    if array_api_compat.is_cupy_array(x):
        return x.get()
    try:
        return np.asarray(x)
    except (TypeError, ValueError, RuntimeError):
        return np.from_dlpack(x)


def like(value, reference):
    """``value`` (numpy or Python) as an array of ``reference``'s namespace and device (``value`` for numpy).

    Args:
        value: the numpy array (or Python value) to move.
        reference: an array whose library and device the result takes.

    Returns:
        The converted array (numpy arrays stay as they are when ``reference`` is numpy's).
    """
    xp = namespace(reference)
    if xp is np:
        return value
    return xp.asarray(np.array(value, order="C"), device=device(reference))   # a writable copy (torch)


def astype(x, dtype):
    """``x`` cast to ``dtype`` (a numpy dtype or the namespace's); numpy arrays through ``ndarray.astype``."""
    if isinstance(x, np.ndarray):
        return x.astype(dtype)
    xp = namespace(x)
    return xp.astype(x, xp_dtype(xp, dtype))


def xp_dtype(xp, dtype):
    """The namespace's dtype of the same name as ``dtype`` (float32 / float64 / int64 ...)."""
    if xp is np or not isinstance(dtype, (np.dtype, type, str)):
        return dtype
    return getattr(xp, np.dtype(dtype).name)


def copy(x):
    """A copy of array ``x`` in its own namespace."""
    if isinstance(x, np.ndarray):
        return x.copy()
    return namespace(x).asarray(x, copy=True)


def constants(owner, names, reference) -> Any:
    """The numpy arrays ``owner.<name>`` for ``names``, moved once to ``reference``'s namespace and device.

    Args:
        owner: an object holding numpy arrays (a kernel); the copies are cached on it per (namespace, device).
        names: the attribute names.
        reference: an array of the target namespace and device.

    Returns:
        ``owner`` itself for numpy, else a namespace object with the converted arrays as attributes.
    """
    xp = namespace(reference)
    if xp is np:
        return owner
    key = (getattr(xp, "__name__", repr(xp)), str(device(reference)), tuple(names))
    cache = owner.__dict__.setdefault("_backend_constants", {})
    if key not in cache:
        cache[key] = SimpleNamespace(**{n: like(getattr(owner, n), reference) for n in names})
    return cache[key]


__all__ = ["BackendMismatchError", "astype", "constants", "copy", "device", "like", "namespace", "to_numpy",
           "xp_dtype"]
