"""Backend-agnostic operations for model declarations.

A model function receives its parameters and sample as arrays.  Depending on the backend these are
numpy float arrays (numeric evaluation), numpy object arrays of CasADi SX scalars (tracing for IPOPT),
numpy object arrays of SymPy expressions (symbolic checks and formulas) or numpy object arrays of
Pyomo variables/expressions (``lexmargin.interop.pyomo``; Pyomo is imported only when used).  Arithmetic operators,
``@``, indexing and slicing work on all three; non-polynomial functions must come from this module::

    from lexmargin import ops
    def output(p, x):
        return p["a"] @ ops.relu(p["V"] @ x)
"""

from __future__ import annotations

import contextlib
import contextvars
import sys

import casadi as ca
import numpy as np

__all__ = [
    "backend_of", "dot", "matmul", "sum", "exp", "log", "sqrt", "tanh", "abs", "square",
    "power", "relu", "squared_relu", "leaky_relu", "softplus", "maximum", "minimum",
]


def _kind_of_scalar(s) -> str | None:
    if isinstance(s, (ca.SX, ca.MX, ca.DM)):
        return "casadi"
    sympy = sys.modules.get("sympy")      # sympy is imported lazily: no sympy object exists before it is
    if sympy is not None and isinstance(s, sympy.Basic):
        return "sympy"
    if hasattr(s, "is_expression_type"):  # Pyomo variables, parameters and expressions
        return "pyomo"
    return None


def _kind_of(a) -> str | None:
    if isinstance(a, np.ndarray):
        if a.dtype != object:
            return None
        # scan: an object array may start with plain numbers (e.g. a constant first entry)
        return next((k for k in map(_kind_of_scalar, a.flat) if k is not None), None)
    return _kind_of_scalar(a)


def backend_of(*args) -> str:
    """Return ``"casadi"``, ``"sympy"``, ``"pyomo"`` or ``"numpy"`` for the given operands."""
    for a in args:
        kind = _kind_of(a)
        if kind is not None:
            return kind
    return "numpy"


def _pyomo_fn(name):
    """Pyomo's intrinsic function ``name`` (exp, log, ...), imported lazily."""
    def apply(v):
        import pyomo.environ as pyo
        return getattr(pyo, name)(v)
    return apply


def _sympy_fn(name):
    """SymPy's function ``name`` (exp, Max, ...), imported lazily (formulas and proofs only)."""
    def apply(*args):
        import sympy
        return getattr(sympy, name)(*args)
    return apply


def _pyomo_max(a, b):
    from pyomo.core.expr.numeric_expr import MaxExpression
    return MaxExpression((a, b))


def _pyomo_min(a, b):
    from pyomo.core.expr.numeric_expr import MinExpression
    return MinExpression((a, b))


_MAX = {"casadi": ca.fmax, "sympy": _sympy_fn("Max"), "pyomo": _pyomo_max}
_MIN = {"casadi": ca.fmin, "sympy": _sympy_fn("Min"), "pyomo": _pyomo_min}


def _elementwise(numpy_fn, casadi_fn, sympy_fn, pyomo_fn):
    scalar = {"casadi": casadi_fn, "sympy": sympy_fn, "pyomo": pyomo_fn}
    vec = {kind: np.frompyfunc(fn, 1, 1) for kind, fn in scalar.items()}

    def apply(a):
        kind = backend_of(a)
        if kind == "numpy":
            return numpy_fn(np.asarray(a, dtype=float) if not np.isscalar(a) else a)
        if isinstance(a, np.ndarray):
            return vec[kind](a)
        return scalar[kind](a)

    return apply


def _leaky(a, slope):
    if not 0 <= slope <= 1:
        raise ValueError(f"leaky_relu slope must be in [0, 1] (max(a, slope*a) form); got {slope}")
    kind = backend_of(a)
    if kind == "numpy":
        return np.maximum(a, slope * np.asarray(a))
    fn = _MAX[kind]
    one = np.frompyfunc(lambda v: fn(v, slope * v), 1, 1)
    return one(a) if isinstance(a, np.ndarray) else fn(a, slope * a)


exp = _elementwise(np.exp, ca.exp, _sympy_fn("exp"), _pyomo_fn("exp"))
log = _elementwise(np.log, ca.log, _sympy_fn("log"), _pyomo_fn("log"))
sqrt = _elementwise(np.sqrt, ca.sqrt, _sympy_fn("sqrt"), _pyomo_fn("sqrt"))
tanh = _elementwise(np.tanh, ca.tanh, _sympy_fn("tanh"), _pyomo_fn("tanh"))
abs = _elementwise(np.abs, ca.fabs, _sympy_fn("Abs"), lambda v: v.__abs__())  # noqa: A001 - mirrors numpy's name
_relu = _elementwise(lambda a: np.maximum(a, 0.0), lambda v: ca.fmax(v, 0), lambda v: _sympy_fn("Max")(v, 0),
                     lambda v: _pyomo_max(v, 0))

# ---- activation regions of piecewise-linear activations (relu, leaky_relu) --------------------------
_ACTIVATION_HOOK = contextvars.ContextVar("lexmargin_activation_hook", default=None)


@contextlib.contextmanager
def activation_hook(hook):
    """Route relu/leaky_relu through ``hook.apply(z, slope)`` (see lexmargin.regions)."""
    token = _ACTIVATION_HOOK.set(hook)
    try:
        yield hook
    finally:
        _ACTIVATION_HOOK.reset(token)


def relu(a):
    """max(a, 0) elementwise (nonsmooth: max_margin restricts it to an activation region)."""
    hook = _ACTIVATION_HOOK.get()
    return hook.apply(a, 0.0) if hook is not None else _relu(a)
softplus = _elementwise(lambda a: np.logaddexp(0.0, a), lambda v: ca.log1p(ca.exp(v)),
                        lambda v: _sympy_fn("log")(1 + _sympy_fn("exp")(v)), lambda v: _pyomo_fn("log")(1 + _pyomo_fn("exp")(v)))


def square(a):
    return a * a


def power(a, p):
    """Elementwise ``a ** p`` (``p`` a Python number)."""
    return a ** p


def squared_relu(a):
    """``relu(a) ** 2``: a C^1 positively 2-homogeneous activation (its second derivative jumps at 0)."""
    calls = _CURVATURE_KINKS.get()
    if calls is not None:
        calls.append("squared_relu")
    r = _relu(a)
    return r * r


# ---- activations whose second derivative jumps (squared_relu) ---------------------------------------
_CURVATURE_KINKS = contextvars.ContextVar("lexmargin_curvature_kinks", default=None)


@contextlib.contextmanager
def record_curvature_kinks():
    """Collect the names of C^1-but-not-C^2 activations called inside the block (a list)."""
    calls = []
    token = _CURVATURE_KINKS.set(calls)
    try:
        yield calls
    finally:
        _CURVATURE_KINKS.reset(token)


def leaky_relu(a, slope: float = 0.1):
    """max(a, slope * a) elementwise, slope in [0, 1]."""
    hook = _ACTIVATION_HOOK.get()
    if hook is not None:
        if not 0 <= slope <= 1:
            raise ValueError(f"leaky_relu slope must be in [0, 1] (max(a, slope*a) form); got {slope}")
        return hook.apply(a, float(slope))
    return _leaky(a, slope)


def maximum(a, b):
    kind = backend_of(a, b)
    if kind == "numpy":
        return np.maximum(a, b)
    return np.frompyfunc(_MAX[kind], 2, 1)(a, b)


def minimum(a, b):
    kind = backend_of(a, b)
    if kind == "numpy":
        return np.minimum(a, b)
    return np.frompyfunc(_MIN[kind], 2, 1)(a, b)


def dot(a, b):
    return np.dot(a, b)


def matmul(a, b):
    return np.matmul(a, b) if backend_of(a, b) == "numpy" else np.dot(a, b)


def sum(a):  # noqa: A001 - mirrors numpy's name
    return np.sum(a)
