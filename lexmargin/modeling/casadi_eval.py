"""Numeric evaluation of CasADi Functions straight into numpy arrays.

Calling a ``casadi.Function`` on numpy inputs returns ``DM`` objects; turning a DM into a numpy array goes
through a Python list of its elements (``DM.full``), which costs far more than the evaluation for large
outputs (measured: 0.08 s for a 3 x 10^5 output whose evaluation takes under 1 ms).  ``outputs`` instead
binds the inputs and preallocated outputs to the Function's buffer (``Function.buffer``, no copies) and
reshapes each output from CasADi's column-major nonzeros; a sparse output's nonzeros are scattered into a
dense array by its sparsity pattern (a Hessian of a two-layer net on 64 inputs with 16 units: 2 10^3
nonzeros of 10^6 entries).  A buffer costs as much as an evaluation to create for large Functions (86 ms
for a Hessian map at P = 1040), so each thread keeps the buffers of its last ``BUFFERS_KEPT`` Functions.
Inputs whose size does not match take the plain call.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import casadi as ca
import numpy as np

BUFFERS_KEPT = 32
_local = threading.local()


def _dense_input(value, fn: ca.Function, i: int) -> np.ndarray | None:
    """The i-th argument as a contiguous column-major float64 vector, or None when it does not fit."""
    arr = np.asarray(value, dtype=float)
    rows, cols = fn.size_in(i)
    if fn.nnz_in(i) != rows * cols or arr.size != rows * cols:
        return None
    if arr.ndim == 2 and arr.shape == (rows, cols):
        return np.ascontiguousarray(arr.ravel(order="F"))
    if arr.ndim <= 1 or min(rows, cols) == 1:
        return np.ascontiguousarray(arr.reshape(-1))
    return None


class _Bound:
    """A Function's buffer and, per output, where its nonzeros go in the dense column-major array."""

    def __init__(self, fn: ca.Function):
        self.fn = fn                     # kept alive with its buffer
        self.buffer, self.run = fn.buffer()
        self.places = []
        for i in range(fn.n_out()):
            sp = fn.sparsity_out(i)
            dense = sp.nnz() == sp.numel()
            self.places.append(None if dense else np.asarray(sp.find(), dtype=np.intp))


def _bound(fn: ca.Function) -> _Bound:
    cache = getattr(_local, "bound", None)
    if cache is None:
        cache = _local.bound = OrderedDict()
    key = id(fn)
    entry = cache.get(key)
    if entry is None or entry.fn is not fn:
        entry = cache[key] = _Bound(fn)
        while len(cache) > BUFFERS_KEPT:
            cache.popitem(last=False)
    cache.move_to_end(key)
    return entry


def outputs(fn: ca.Function, *args) -> list[np.ndarray]:
    """Every output of ``fn(*args)`` as a dense numpy array of the output's shape.

    Args:
        fn: a CasADi Function.
        *args: numpy arrays (or scalars) of the inputs' shapes; vectors may be 1-D.

    Returns:
        The outputs as float64 arrays of shapes ``fn.size_out(i)``.
    """
    fitted = [_dense_input(a, fn, i) for i, a in enumerate(args)]
    inputs = [x for x in fitted if x is not None]
    if len(args) != fn.n_in() or len(inputs) < len(fitted):
        out = fn(*args)
        return [np.array(o, dtype=float) for o in (out if isinstance(out, (list, tuple)) else [out])]
    bound = _bound(fn)
    for i, x in enumerate(inputs):         # the binding takes the buffer's size from the memoryview
        bound.buffer.set_arg(i, x.data)  # type: ignore[call-arg]
    flat = [np.empty(fn.nnz_out(i)) for i in range(fn.n_out())]
    for i, r in enumerate(flat):
        bound.buffer.set_res(i, r.data)  # type: ignore[call-arg]
    bound.run()
    results = []
    for i, (r, place) in enumerate(zip(flat, bound.places)):
        shape = fn.size_out(i)
        if place is not None:
            dense = np.zeros(shape[0] * shape[1])
            dense[place] = r
            r = dense
        results.append(r.reshape(shape, order="F"))
    return results


def evaluate(fn: ca.Function, *args) -> np.ndarray:
    """The one output of ``fn(*args)`` as a numpy array (``outputs`` for Functions with several).

    Args:
        fn: a CasADi Function with one output.
        *args: its inputs (see ``outputs``).

    Returns:
        The output as a float64 array of shape ``fn.size_out(0)``.
    """
    if fn.n_out() != 1:
        raise ValueError(f"{fn.name()} has {fn.n_out()} outputs; use outputs()")
    return outputs(fn, *args)[0]
