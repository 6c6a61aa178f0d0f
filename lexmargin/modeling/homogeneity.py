"""Verification of declared positive-homogeneity degrees, numerically and symbolically (SymPy).

For a product-form model a block k of degree a_k must satisfy f(.., rho*theta_k, ..) = rho^a_k f(theta)
for all rho > 0.  For a sum-of-blocks model each summand g_k must be a_k-homogeneous in its own
block and must not depend on the other blocks.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import casadi as ca
import numpy as np

from .._lazy import lazy_module
from ..errors import HomogeneityError

sp = lazy_module("sympy")   # formulas and symbolic proofs only

_RHOS = (0.5, 2.0, 3.7)
SYMBOLIC_FULL_LIMIT = 40  # at most this many parameters + inputs: fully symbolic proof


@dataclass(frozen=True)
class BlockCheck:
    block: str
    declared: float | None
    estimated: float | None
    numeric_ok: bool | None
    symbolic_ok: bool | None
    symbolic_method: str | None
    message: str

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class HomogeneityReport:
    """Outcome of ``check_homogeneity``: one ``BlockCheck`` per block; ``ok`` when none failed."""

    model: str
    blocks: tuple[BlockCheck, ...]

    @property
    def ok(self) -> bool:
        return all(b.numeric_ok is not False and b.symbolic_ok is not False for b in self.blocks)

    def to_dict(self) -> dict:
        return {"model": self.model, "ok": self.ok, "blocks": [b.to_dict() for b in self.blocks]}


def _block_function(model, block: str) -> ca.Function:
    return model.casadi_summand(block) if model.is_sum_of_blocks else model.casadi_margin


def _numeric_points(model, rng, count=3):
    for _ in range(count):
        theta = rng.standard_normal(model.n_params)
        x = rng.standard_normal(model.input_dim)
        yield theta, x, _label_point(model, rng, float)


def _label_point(model, rng, kind):
    """A label to check homogeneity at: +-1, or for a model with K outputs a contrast e_a - e_b (a != b)."""
    K = getattr(model, "n_outputs", 1)
    if K == 1:
        return kind(1.0 if rng.random() < 0.5 else -1.0) if kind is float else kind(1)
    a, b = rng.choice(K, size=2, replace=False)
    c = np.array([kind(0)] * K, dtype=object if kind is not float else float)
    c[a], c[b] = kind(1), kind(-1)
    return c


def _estimate_degree(fn, model, block, theta, x, y) -> float | None:
    base = float(fn(theta, x, y))
    doubled = float(fn(model.scale_block(theta, block, 2.0), x, y))
    if base == 0 or doubled == 0 or np.sign(base) != np.sign(doubled):
        return None
    return float(np.log(doubled / base) / np.log(2.0))


def _numeric_check(model, block, degree, rng) -> tuple[bool, float | None, str]:
    fn = _block_function(model, block)
    estimate = None
    for theta, x, y in _numeric_points(model, rng):
        base = float(fn(theta, x, y))
        estimate = estimate if estimate is not None else _estimate_degree(fn, model, block, theta, x, y)
        for rho in _RHOS:
            scaled = float(fn(model.scale_block(theta, block, rho), x, y))
            expected = rho ** degree * base
            if abs(scaled - expected) > 1e-8 * (abs(scaled) + abs(expected)) + 1e-12:
                return False, estimate, (f"f(rho*{block}) = {scaled:.6g} but rho^{degree:g} f = {expected:.6g} "
                                         f"at rho = {rho}")
    return True, estimate, "numerically homogeneous"


def _independence_check(model, block) -> str | None:
    """Sum-form models: summand of `block` must not depend on other blocks' parameters."""
    theta, x, y = model.casadi_margin.sx_in()
    expr = model.casadi_summand(block)(theta, x, y)
    inside = np.zeros(model.n_params, dtype=bool)
    inside[model.block_slice(block)] = True
    for i in np.nonzero(~inside)[0]:
        if ca.depends_on(expr, theta[int(i)]):
            return f"summand of block {block!r} depends on parameters outside the block"
    return None


def _sympy_expression(model, block, params, x, y):
    if model.is_sum_of_blocks:
        return sp.sympify(np.asarray(model.summand_of(block, params, x, y)).reshape(-1)[0])
    return model.sympy_margin(params, x, y)


def _rational_array(rng, shape):
    vals = [sp.Rational(int(v), 7) for v in rng.integers(-20, 21, size=int(np.prod(shape)) or 1)]
    arr = np.empty(len(vals), dtype=object)
    arr[:] = vals
    return arr.reshape(shape)


def _scaled_params(model, params, block, rho):
    keys = set(model.block(block).shapes)
    return type(params)({k: (v * rho if k in keys else v) for k, v in params.items()})


def _is_zero(expr) -> bool:
    expr = sp.expand(expr)
    if expr == 0:
        return True
    return sp.simplify(expr) == 0


def _exact(expr):
    """Make float exponents rational: with 0.25, rho**0.5 * rho would not cancel against rho**(3/2)."""
    return expr.replace(lambda e: e.is_Pow and e.exp.is_Float,
                        lambda e: sp.Pow(e.base, sp.nsimplify(e.exp, rational=True)))


def _symbolic_identity_holds(model, block, degree, points) -> bool:
    rho = sp.Symbol("rho", positive=True)
    a = sp.nsimplify(degree)
    for params, x, y in points:
        base = _exact(_sympy_expression(model, block, params, x, y))
        scaled = _exact(_sympy_expression(model, block, _scaled_params(model, params, block, rho), x, y))
        if not _is_zero(scaled - rho ** a * base):
            return False
    return True


def symbolic_check(model, block: str, degree: float, rng=None) -> tuple[bool, str]:
    """Prove f(rho theta_k) - rho^a f(theta) == 0 with SymPy (rho > 0 symbolic).

    Small models are first tried with every parameter and input symbolic.  Where that is too large,
    or SymPy cannot simplify it (e.g. Max(rho*z, 0) with z a sum), the identity is checked exactly in
    rho at random rational points: each is an exact identity in rho, not a floating-point test.
    """
    rng = np.random.default_rng(rng)
    if model.n_params + model.input_dim <= SYMBOLIC_FULL_LIMIT:
        if _symbolic_identity_holds(model, block, degree, [model.sympy_symbols()]):
            return True, "symbolic in all parameters and inputs"
    points = [(model.layout.split(_rational_array(rng, (model.n_params,))),
               _rational_array(rng, (model.input_dim,)), _label_point(model, rng, sp.Integer)) for _ in range(3)]
    return (_symbolic_identity_holds(model, block, degree, points),
            "symbolic in rho at 3 random rational points")


def check_homogeneity(model, *, symbolic: bool = True, seed=0, raise_on_failure: bool = False
                      ) -> HomogeneityReport:
    """Check each block's declared degree; optionally raise HomogeneityError on failure.

    Args:
        model: the Model whose blocks declare homogeneity degrees.
        symbolic: also prove f(rho theta) = rho^k f(theta) with SymPy (numeric check only when False).
        seed: seed of the random points of the numeric check.
        raise_on_failure: raise ``HomogeneityError`` when a declared degree is wrong.

    Returns:
        The HomogeneityReport: per block the numeric (and symbolic) verdict; ``ok`` when every block passes.
    """
    rng = np.random.default_rng(seed)
    checks = []
    for block in model.blocks:
        if block.degree is None:
            checks.append(BlockCheck(block.name, None, None, None, None, None, "no degree declared"))
            continue
        ok, estimate, message = _numeric_check(model, block.name, block.degree, rng)
        if ok and model.is_sum_of_blocks:
            problem = _independence_check(model, block.name)
            ok, message = (False, problem) if problem else (ok, message)
        sym_ok, method = (None, None)
        if ok and symbolic:
            sym_ok, method = symbolic_check(model, block.name, block.degree, rng)
            message = "symbolically and numerically homogeneous" if sym_ok else "SymPy check failed"
        checks.append(BlockCheck(block.name, block.degree, estimate, ok, sym_ok, method, message))
    report = HomogeneityReport(model.name, tuple(checks))
    if raise_on_failure and not report.ok:
        bad = [c for c in report.blocks if c.numeric_ok is False or c.symbolic_ok is False]
        lines = [f"block {c.block!r}: declared degree {c.declared:g}, "
                 f"estimated {'n/a' if c.estimated is None else format(c.estimated, '.4g')} ({c.message})"
                 for c in bad]
        raise HomogeneityError(f"model {model.name!r} is not homogeneous as declared: " + "; ".join(lines))
    return report
