"""Backend-agnostic operations for model declarations.

A model function receives its parameters and sample as arrays.  Depending on the backend these are
numpy float arrays (numeric evaluation), numpy object arrays of CasADi SX scalars (tracing for IPOPT)
or numpy object arrays of SymPy expressions (symbolic checks and formulas).  Arithmetic operators,
``@``, indexing and slicing work on all three; non-polynomial functions must come from this module::

    from lexmargin import ops
    def output(p, x):
        return p["a"] @ ops.relu(p["V"] @ x)
"""

from __future__ import annotations

import casadi as ca
import numpy as np
import sympy as sp

__all__ = [
    "backend_of", "dot", "matmul", "sum", "exp", "log", "sqrt", "tanh", "abs", "square",
    "power", "relu", "squared_relu", "leaky_relu", "softplus", "maximum", "minimum",
]


def _first_scalar(a):
    if isinstance(a, np.ndarray):
        return a.flat[0] if (a.dtype == object and a.size) else None
    return a


def backend_of(*args) -> str:
    """Return ``"casadi"``, ``"sympy"`` or ``"numpy"`` for the given operands."""
    for a in args:
        s = _first_scalar(a)
        if isinstance(s, (ca.SX, ca.MX, ca.DM)):
            return "casadi"
        if isinstance(s, sp.Basic):
            return "sympy"
    return "numpy"


def _elementwise(numpy_fn, casadi_fn, sympy_fn):
    vec = {"casadi": np.frompyfunc(casadi_fn, 1, 1), "sympy": np.frompyfunc(sympy_fn, 1, 1)}

    def apply(a):
        kind = backend_of(a)
        if kind == "numpy":
            return numpy_fn(np.asarray(a, dtype=float) if not np.isscalar(a) else a)
        if isinstance(a, np.ndarray):
            return vec[kind](a)
        return (casadi_fn if kind == "casadi" else sympy_fn)(a)

    return apply


def _leaky(a, slope):
    kind = backend_of(a)
    if kind == "numpy":
        return np.maximum(a, slope * np.asarray(a))
    fn = ca.fmax if kind == "casadi" else sp.Max
    one = np.frompyfunc(lambda v: fn(v, slope * v), 1, 1)
    return one(a) if isinstance(a, np.ndarray) else fn(a, slope * a)


exp = _elementwise(np.exp, ca.exp, sp.exp)
log = _elementwise(np.log, ca.log, sp.log)
sqrt = _elementwise(np.sqrt, ca.sqrt, sp.sqrt)
tanh = _elementwise(np.tanh, ca.tanh, sp.tanh)
abs = _elementwise(np.abs, ca.fabs, sp.Abs)  # noqa: A001 - mirrors numpy's name
relu = _elementwise(lambda a: np.maximum(a, 0.0), lambda v: ca.fmax(v, 0), lambda v: sp.Max(v, 0))
softplus = _elementwise(lambda a: np.logaddexp(0.0, a),
                        lambda v: ca.log1p(ca.exp(v)), lambda v: sp.log(1 + sp.exp(v)))


def square(a):
    return a * a


def power(a, p):
    """Elementwise ``a ** p`` (``p`` a Python number)."""
    return a ** p


def squared_relu(a):
    """``relu(a) ** 2``: a smooth (C^1) positively 2-homogeneous activation."""
    r = relu(a)
    return r * r


def leaky_relu(a, slope: float = 0.1):
    return _leaky(a, slope)


def maximum(a, b):
    kind = backend_of(a, b)
    if kind == "numpy":
        return np.maximum(a, b)
    fn = ca.fmax if kind == "casadi" else sp.Max
    return np.frompyfunc(fn, 2, 1)(a, b)


def minimum(a, b):
    kind = backend_of(a, b)
    if kind == "numpy":
        return np.minimum(a, b)
    fn = ca.fmin if kind == "casadi" else sp.Min
    return np.frompyfunc(fn, 2, 1)(a, b)


def dot(a, b):
    return np.dot(a, b)


def matmul(a, b):
    return np.matmul(a, b) if backend_of(a, b) == "numpy" else np.dot(a, b)


def sum(a):  # noqa: A001 - mirrors numpy's name
    return np.sum(a)
