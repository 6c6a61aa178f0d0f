"""Pyomo interop: write lexmargin problems as Pyomo models, and solve and certify Pyomo models with IPOPT
via CasADi.

No ``ipopt`` executable is needed (Pyomo's ``SolverFactory('ipopt')`` is not used): the IPOPT
bundled in the casadi wheel solves the problem after the Pyomo expression trees are translated
into CasADi, in the spirit of ``pyomo.dae.Simulator``'s CasADi substitution map.

* ``to_pyomo(model, data)``: the max-margin problem ``min ||theta||^2 s.t. f_n(theta) >= 1`` with
  one Pyomo variable ``theta[i]`` per parameter (lexmargin's flat order, see ``Model.unflatten``),
  objective ``objective``, constraints ``margin[n]`` and an import Suffix ``dual``.  A K-output model on
  K-class data has one constraint ``margin[n, j]`` per margin row f_{n,j} = g_{y_n} - g_j >= 1, j != y_n
  (docs/multiclass.md), and its duals are one per (n, j).
* ``solve_pyomo(pyomo_model, options=None, **overrides)``: any continuous Pyomo NLP (scalar or indexed
  Vars with bounds, one active Objective, Constraints with lower/upper/equality bounds, expressions
  built from + - * / ** exp log sqrt, trigonometric and hyperbolic functions, abs, max, min and
  Expr_if) goes through the shared pipeline: an ``NLP`` (each constraint's finite bounds as rows
  g - lb >= 0, ub - g >= 0 or g - v = 0), IPOPT, the exact finish and ``certify``, whose numbers are
  recomputed with Pyomo's own differentiation (independent of the CasADi translation).  Values are
  written back into the Vars, duals into the Suffix ``dual`` with Pyomo's sign convention
  (dual = d objective* / d bound: >= 0 for an active lower bound of a minimization).
* ``certify_pyomo(pyomo_model)``: the same certificate for the model's current values, with the
  multipliers read from its ``dual`` (and ``rc``) Suffix when they are there, fitted otherwise.
* ``LexmarginSolver``, which is ``SolverFactory('lexmargin')`` after ``import lexmargin`` (registered by
  ``interop.pyomo_plugin`` without importing Pyomo): ``solve_pyomo`` behind Pyomo's solver interface
  (``SolverResults``, ``tee``, ``options``, ``load_solutions``); ``STATUS_MAP`` is its one map from
  ``Status`` to Pyomo's TerminationCondition, SolverStatus and SolutionStatus (docs/pyomo.md).

Pyomo is imported only when these functions are called (``pip install lexmargin[pyomo]``).
"""

from __future__ import annotations

import contextlib
import io
import logging
import sys
from dataclasses import dataclass, field, replace

import casadi as ca
import numpy as np

from ..errors import ModelError, SolverError
from ..modeling.data import Dataset
from ..modeling.model import Model
from ..nlp.certificate import Certificate, Diagnostics, SolverInfo, assemble
from ..nlp.certify import KKTReport, active_rows, certify
from ..nlp.finish import FinishInfo, finish_or_keep, fit_multipliers
from ..nlp.ipopt import IpoptSolver, bound_multipliers
from ..nlp.nlp import NLP, Point, Rows, extend, split_extended_multipliers
from ..nlp.options import SolveOptions, Tolerances
from ..nlp.status import Status, decide
from .pyomo_plugin import NAME

_UNARY = {
    "exp": ca.exp, "log": ca.log, "log10": ca.log10, "sqrt": ca.sqrt, "abs": ca.fabs,
    "sin": ca.sin, "cos": ca.cos, "tan": ca.tan, "asin": ca.asin, "acos": ca.acos, "atan": ca.atan,
    "sinh": ca.sinh, "cosh": ca.cosh, "tanh": ca.tanh, "asinh": ca.asinh, "acosh": ca.acosh,
    "atanh": ca.atanh, "ceil": ca.ceil, "floor": ca.floor,
}
# The certificate's status in Pyomo's words, mapped once: (TerminationCondition, SolverStatus, SolutionStatus)
# values (strings: Pyomo is not imported here).  Only a certified status is "optimal"; a solver that claims
# convergence the certificate overrules is "other" with a warning.  Pyomo solves produce the first six and
# region_boundary (a kink, ``at_kinks``); not_separable and no_separating_point (max-margin statuses) are mapped so
# that the map is total.
STATUS_MAP = {
    Status.OPTIMAL: ("optimal", "ok", "optimal"),
    Status.INACCURATE: ("other", "warning", "other"),
    Status.INFEASIBLE: ("infeasible", "warning", "infeasible"),
    Status.MAX_ITERATIONS: ("maxIterations", "warning", "stoppedByLimit"),
    Status.MAX_TIME: ("maxTimeLimit", "warning", "stoppedByLimit"),
    Status.FAILED: ("error", "error", "error"),
    Status.NOT_SEPARABLE: ("infeasible", "warning", "infeasible"),
    Status.NO_SEPARATING_POINT: ("noSolution", "warning", "unknown"),
    Status.REGION_BOUNDARY: ("other", "warning", "other"),
}
# the TerminationCondition name alone
PYOMO_TERMINATION = {status: names[0] for status, names in STATUS_MAP.items()}


def _pyomo():
    try:
        import pyomo.environ as pyo
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("Pyomo interop needs pyomo: pip install 'lexmargin[pyomo]'") from exc
    return pyo


# ---- lexmargin -> Pyomo ---------------------------------------------------------------------------
def _scalar(value, what: str):
    if isinstance(value, np.ndarray):
        if value.size != 1:
            raise ModelError(f"{what}: the model must return a scalar per sample; got shape {value.shape}")
        value = value.reshape(-1)[0]
    if not hasattr(value, "is_expression_type"):
        raise ModelError(f"{what} does not depend on the parameters (value {value!r})")
    return value


def to_pyomo(model: Model, data: Dataset, *, init=None, seed=0):
    """The max-margin problem ``min ||theta||^2 s.t. f_n(theta) >= 1`` as a Pyomo ConcreteModel.

    Components: ``theta`` (Var indexed 0..P-1, lexmargin's flat order, initialized with ``init`` or
    ``model.random_params(seed)``), ``objective``, ``margin`` (Constraint indexed by sample n; for a K-output
    model on K-class data indexed by the margin rows (n, j), j != y_n, in lexmargin's sample-major order) and
    ``dual`` (import Suffix).  The margins are traced through ``lexmargin.ops``' Pyomo backend.

    Args:
        model: the Model (one output, or K outputs with ``Dataset(X, y, n_classes=K)``).
        data: the Dataset.
        init: the start theta (P,).
        seed: seed of the random start when ``init`` is None.

    Returns:
        The Pyomo ConcreteModel.
    """
    pyo = _pyomo()
    rows = model._check_data(data)      # the Dataset, or for K outputs its margin rows (ClassCountError if they differ)
    start = model.random_params(seed) if init is None else np.asarray(init, dtype=float).reshape(-1)
    if start.shape != (model.n_params,):
        raise ModelError(f"init must have {model.n_params} entries for model {model.name!r}; got {start.shape}")
    m = pyo.ConcreteModel(name=f"max_margin_{model.name}")
    m.theta = pyo.Var(range(model.n_params), initialize=dict(enumerate(start.tolist())))
    params = model.layout.split(_object_array([m.theta[i] for i in range(model.n_params)]))
    index, margins = _margin_rows(model, params, rows)
    m.objective = pyo.Objective(expr=sum(m.theta[i] ** 2 for i in range(model.n_params)), sense=pyo.minimize)
    m.margin = pyo.Constraint(index, rule=lambda _, *key: margins[key[0] if len(key) == 1 else key] >= 1)
    m.dual = pyo.Suffix(direction=pyo.Suffix.IMPORT)
    return m


def _margin_rows(model: Model, params, rows) -> tuple[list, dict]:
    """The constraint index (samples n, or pairs (n, j) of K-class rows) and each key's margin expression."""
    keys: list[int] | list[tuple[int, int]]
    labels: list
    if isinstance(rows, Dataset):
        keys = list(range(rows.n_samples))
        labels = [float(v) for v in rows.y]
    else:
        keys = [(int(n), int(j)) for n, j in rows.pairs]
        labels = list(rows.y)                          # the contrasts e_{y_n} - e_j
    margins = {key: _scalar(model.margin_of(params, rows.X[r], labels[r]), f"margin of {_row_name(key)}")
               for r, key in enumerate(keys)}
    return keys, margins


def _row_name(key) -> str:
    return f"sample {key}" if isinstance(key, int) else f"row (n, j) = {key}"


def _object_array(items) -> np.ndarray:
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out


def theta_of(pyomo_model) -> np.ndarray:
    """The flat parameter vector stored in a model made by ``to_pyomo``.

    Args:
        pyomo_model: the ConcreteModel from ``to_pyomo``.

    Returns:
        theta (P,), in lexmargin's flat order.
    """
    theta = pyomo_model.theta
    return np.array([np.nan if theta[i].value is None else theta[i].value for i in sorted(theta)], dtype=float)


def margin_duals(pyomo_model) -> np.ndarray:
    """Duals of the ``margin`` constraints of a model made by ``to_pyomo`` (after ``solve_pyomo``).

    Args:
        pyomo_model: the ConcreteModel from ``to_pyomo``, solved.

    Returns:
        One dual per sample (N,), or for a K-class model one per margin row (n, j) in sample-major order
        (``margin_pairs``), read from its ``dual`` Suffix (d objective* / d bound: lexmargin's multiplier
        lambda_{n,j} >= 0 of the row).
    """
    margin, dual = pyomo_model.margin, pyomo_model.dual
    return np.array([dual.get(margin[n], np.nan) for n in sorted(margin)], dtype=float)


def margin_pairs(pyomo_model) -> np.ndarray | None:
    """The (n, j) of each ``margin`` constraint of a K-class model made by ``to_pyomo``, in the order of
    ``margin_duals`` (the certificate's ``margin_rows``); None for a binary model (indexed by sample).

    Args:
        pyomo_model: the ConcreteModel from ``to_pyomo``.

    Returns:
        (R, 2) integers, or None.
    """
    keys = sorted(pyomo_model.margin)
    if not keys or not isinstance(keys[0], tuple):
        return None
    return np.array(keys, dtype=np.int64).reshape(-1, 2)


# ---- Pyomo -> CasADi ------------------------------------------------------------------------------
def _visitor_class():
    from pyomo.core.expr.visitor import StreamBasedExpressionVisitor

    class ToCasadi(StreamBasedExpressionVisitor):
        """Translate Pyomo expressions into CasADi SX, given SX symbols for the free variables.

        Sub-expressions shared between (or within) expressions are translated once (memo by node), so
        they stay shared in the CasADi graph; linear sums become one dot product.
        """

        def __init__(self, symbols: dict):
            super().__init__()
            self.symbols = symbols
            self.memo: dict = {}

        def initializeWalker(self, expr):
            done, value = self._known(expr)
            return (False, value) if done else (True, None)

        def beforeChild(self, node, child, child_idx):
            done, value = self._known(child)
            return (False, value) if done else (True, None)

        def exitNode(self, node, args):
            value = _combine(node, args)
            self.memo[id(node)] = (node, value)  # keep node alive: its id stays unique
            return value

        def _known(self, node):
            """(True, SX) for leaves, memoized nodes and linear sums; (False, None) to descend."""
            if not hasattr(node, "is_expression_type"):  # native number
                return True, ca.SX(float(node))
            if id(node) in self.memo:
                return True, self.memo[id(node)][1]
            if node.is_variable_type():
                return True, (ca.SX(_var_value(node)) if node.fixed else self.symbols[id(node)])
            if node.is_named_expression_type():
                return False, None
            if not node.is_potentially_variable():  # parameters, constants, NPV expressions
                return True, ca.SX(float(_pyomo().value(node)))
            linear = self._linear(node)
            return (False, None) if linear is None else (True, linear)

        def _linear(self, node):
            """sum_i c_i v_i + c_0 as one CasADi dot product, or None if ``node`` is not of that form."""
            from pyomo.core.expr.numeric_expr import LinearExpression, MonomialTermExpression

            if not isinstance(node, LinearExpression):
                return None
            coefs, terms, constant = [], [], 0.0
            for arg in node.args:
                if not hasattr(arg, "is_expression_type") or not arg.is_potentially_variable():
                    constant += float(_pyomo().value(arg))
                    continue
                coef, var = (arg.args if isinstance(arg, MonomialTermExpression) else (1.0, arg))
                if not var.is_variable_type() or hasattr(coef, "is_potentially_variable") and \
                        coef.is_potentially_variable():
                    return None
                if var.fixed:
                    constant += float(_pyomo().value(coef)) * _var_value(var)
                else:
                    coefs.append(float(_pyomo().value(coef)))
                    terms.append(self.symbols[id(var)])
            value = ca.dot(ca.DM(coefs), ca.vertcat(*terms)) + constant if terms else ca.SX(constant)
            self.memo[id(node)] = (node, value)
            return value

    return ToCasadi


def _var_value(var) -> float:
    if var.value is None:
        raise ModelError(f"fixed variable {var.name} has no value")
    return float(var.value)


def _fold(fn, args):
    out = args[0]
    for a in args[1:]:
        out = fn(out, a)
    return out


def _unary(node, args):
    if node.getname() not in _UNARY:
        raise ModelError(f"solve_pyomo: unsupported function {node.getname()!r}")
    return _UNARY[node.getname()](args[0])


def _handlers() -> list:
    """(Pyomo expression class, translation) pairs; subclasses first."""
    from pyomo.core.expr import numeric_expr as ne
    from pyomo.core.expr import relational_expr as re

    return [
        (ne.SumExpression, lambda node, args: ca.sum1(ca.vertcat(*args))),
        (ne.ProductExpression, lambda node, args: args[0] * args[1]),
        (ne.DivisionExpression, lambda node, args: args[0] / args[1]),
        (ne.PowExpression, lambda node, args: args[0] ** args[1]),
        (ne.NegationExpression, lambda node, args: -args[0]),
        (ne.UnaryFunctionExpression, _unary),
        (ne.MaxExpression, lambda node, args: _fold(ca.fmax, args)),
        (ne.MinExpression, lambda node, args: _fold(ca.fmin, args)),
        (ne.Expr_ifExpression, lambda node, args: ca.if_else(args[0], args[1], args[2])),
        (re.RangedExpression, lambda node, args: ca.logic_and(args[0] <= args[1], args[1] <= args[2])),
        (re.InequalityExpression, lambda node, args: args[0] < args[1] if node.strict else args[0] <= args[1]),
        (re.EqualityExpression, lambda node, args: args[0] == args[1]),
    ]


_DISPATCH: dict = {}


def _combine(node, args):
    if node.is_named_expression_type():
        return args[0]
    kind = type(node)
    if kind not in _DISPATCH:
        _DISPATCH[kind] = next((fn for cls, fn in _handlers() if isinstance(node, cls)), None)
    if _DISPATCH[kind] is None:
        raise ModelError(f"solve_pyomo: unsupported Pyomo expression type {kind.__name__}: {node}")
    return _DISPATCH[kind](node, args)


def _free_variables(objective, constraints) -> list:
    from pyomo.core.expr.visitor import identify_variables

    seen, out = set(), []
    for expr in [objective.expr] + [c.body for c in constraints]:
        for var in identify_variables(expr, include_fixed=False):
            if id(var) not in seen:
                seen.add(id(var))
                out.append(var)
    return out


def _check_continuous(var):
    if var.is_integer() or var.is_binary():
        raise ModelError(f"solve_pyomo: variable {var.name} is discrete; IPOPT solves continuous problems only")


def _bound(value, default: float) -> float:
    return default if value is None else float(value)


@dataclass(frozen=True)
class _Problem:
    variables: list
    constraints: list
    objective: object      # the Pyomo objective expression
    x: ca.SX
    f: ca.SX
    g: ca.SX
    sense: int


def _translate(pyomo_model, caller: str = "solve_pyomo") -> _Problem:
    pyo = _pyomo()
    objectives = list(pyomo_model.component_data_objects(pyo.Objective, active=True, descend_into=True))
    if len(objectives) != 1:
        raise ModelError(f"{caller} needs exactly one active Objective; found {len(objectives)}")
    constraints = list(pyomo_model.component_data_objects(pyo.Constraint, active=True, descend_into=True))
    variables = _free_variables(objectives[0], constraints)
    if not variables:
        raise ModelError(f"{caller}: the model has no free (unfixed) variables")
    for var in variables:
        _check_continuous(var)
    x = ca.SX.sym("x", len(variables))
    walker = _visitor_class()({id(v): x[i] for i, v in enumerate(variables)})
    sense = 1 if objectives[0].sense == pyo.minimize else -1
    f = sense * walker.walk_expression(objectives[0].expr)
    g = ca.vertcat(*[walker.walk_expression(c.body) for c in constraints]) if constraints else ca.SX(0, 1)
    return _Problem(variables, constraints, objectives[0].expr, x, f, g, sense)


# ---- the NLP: rows in lexmargin's form, evaluated with Pyomo's own differentiation ------------------
@dataclass(frozen=True)
class _RowMap:
    """Which constraint each row comes from and how: +1 (g - lb >= 0), -1 (ub - g >= 0), 0 (g - v = 0)."""

    constraint: np.ndarray
    side: np.ndarray
    bound: np.ndarray

    @classmethod
    def of(cls, constraints) -> _RowMap:
        """Rows of every constraint's finite bounds: inequalities first, then equalities."""
        rows = []
        for i, con in enumerate(constraints):
            lb, ub = _bound(con.lb, -np.inf), _bound(con.ub, np.inf)
            if con.equality or (np.isfinite(lb) and lb == ub):
                rows.append((i, 0, lb))
                continue
            if np.isfinite(lb):
                rows.append((i, 1, lb))
            if np.isfinite(ub):
                rows.append((i, -1, ub))
        arr = np.array(sorted(rows, key=lambda r: r[1] == 0), dtype=float).reshape(-1, 3)
        return cls(arr[:, 0].astype(int), arr[:, 1].astype(int), arr[:, 2])

    def values(self, g) -> np.ndarray:
        g = np.asarray(g, dtype=float)[self.constraint]
        return np.where(self.side == 0, g - self.bound, np.where(self.side > 0, g - self.bound, self.bound - g))

    def sign(self) -> np.ndarray:
        return np.where(self.side < 0, -1.0, 1.0)


def _differentiable(expr, variables) -> bool:
    """Whether Pyomo's own differentiation supports every node of expr (Expr_if is not)."""
    from pyomo.core.expr.calculus.derivatives import Modes, differentiate
    from pyomo.core.expr.calculus.diff_with_pyomo import DifferentiationException

    try:
        differentiate(expr, wrt_list=variables, mode=Modes.reverse_numeric)
        return True
    except (DifferentiationException, ValueError, ZeroDivisionError, OverflowError):
        return False


def _pyomo_derivatives(exprs, variables, z, own):
    """Values and gradients at z: Pyomo's reverse-mode differentiation for expressions with ``own`` True
    (None elsewhere); the variables' values are restored afterwards."""
    pyo = _pyomo()
    from pyomo.core.expr.calculus.derivatives import Modes, differentiate

    saved = [v.value for v in variables]
    try:
        for v, value in zip(variables, z):
            v.set_value(float(value), skip_validation=True)
        values = np.array([float(pyo.value(e)) for e in exprs])
        grads = np.full((len(exprs), len(variables)), np.nan)
        for i, e in enumerate(exprs):
            if own[i]:
                grads[i] = differentiate(e, wrt_list=variables, mode=Modes.reverse_numeric)
    finally:
        for v, value in zip(variables, saved):
            v.set_value(value, skip_validation=True)
    return values, grads


# ---- kinks: nonsmooth nodes at their switching point -------------------------------------------------
def kinks(exprs, names, variables, z, tol: float) -> tuple[str, ...]:
    """Where a nonsmooth node of ``exprs`` (abs, max, min, Expr_if) is at its switching point at z: abs(a) with
    |a| <= tol (|grad a|_1 ||z||_inf), max / min whose two extreme arguments a, b differ by at most
    tol max(|a|, |b|, (|grad a|_1 + |grad b|_1) ||z||_inf), an Expr_if whose condition's two sides differ that little
    (the rule of ReLU kinks, |z| <= tol ||grad z|| ||theta||, in these nodes' terms).  There the derivative the
    certificate uses is one side's or a tie's convention (max(0, x) at x = 0: 1/2 from CasADi, and a stacked
    max(0, max(0, x)) 1/4), not an element of the Clarke subdifferential: a KKT point there is not certified.
    Returns one "name: node" entry per kink (``names``: the expressions' names)."""
    pyo = _pyomo()
    saved = [v.value for v in variables]
    size = float(np.max(np.abs(z), initial=0.0))
    found = []
    try:
        for v, value in zip(variables, z):
            v.set_value(float(value), skip_validation=True)
        for expr, name in zip(exprs, names):
            found += [f"{name}: {str(node)[:80]}" for node in _nonsmooth_nodes(expr)
                      if _at_switch(node, variables, size, tol, pyo)]
    finally:
        for v, value in zip(variables, saved):
            v.set_value(value, skip_validation=True)
    return tuple(found)


def _nonsmooth_nodes(expr):
    """The abs / max / min / Expr_if nodes of a Pyomo expression that depend on a variable (each once)."""
    from pyomo.core.expr import numeric_expr as ne

    stack, seen = [expr], set()
    while stack:
        node = stack.pop()
        if not hasattr(node, "is_expression_type") or not node.is_expression_type() or not _variable(node) or \
                id(node) in seen:                              # constants never switch with the variables
            continue
        seen.add(id(node))
        if (isinstance(node, (ne.MaxExpression, ne.MinExpression, ne.Expr_ifExpression)) or
                isinstance(node, ne.UnaryFunctionExpression) and node.getname() == "abs") and \
                any(_variable(a) for a in node.args):
            yield node
        stack.extend(node.args)


def _variable(node) -> bool:
    """A node that may depend on a variable (a Var, or an expression of one)."""
    return hasattr(node, "is_potentially_variable") and node.is_potentially_variable()


def _at_switch(node, variables, size: float, tol: float, pyo) -> bool:
    """``kinks``' test of one node at the variables' current values."""
    from pyomo.core.expr import numeric_expr as ne

    if isinstance(node, ne.UnaryFunctionExpression):                 # abs(a)
        a = node.args[0]
        return abs(float(pyo.value(a))) <= tol * _first_order_size(a, variables, size)
    if isinstance(node, ne.Expr_ifExpression):                      # the condition's two sides
        sides = list(node.args[0].args) if hasattr(node.args[0], "args") else []
        pairs = list(zip(sides, sides[1:]))
    else:
        values = np.array([float(pyo.value(a)) for a in node.args])
        order = np.argsort(-values if isinstance(node, ne.MaxExpression) else values)
        pairs = [(node.args[order[0]], node.args[order[1]])] if len(order) > 1 else []
    for a, b in pairs:
        va, vb = float(pyo.value(a)), float(pyo.value(b))
        scale = max(abs(va), abs(vb), _first_order_size(a, variables, size) + _first_order_size(b, variables, size))
        if abs(va - vb) <= tol * scale:
            return True
    return False


def _first_order_size(expr, variables, size: float) -> float:
    """|grad expr|_1 ||z||_inf: how much expr moves over the variables' size, by Pyomo's differentiation (0 for
    constants, and where Pyomo cannot differentiate expr: then the values' own size alone decides a tie)."""
    from pyomo.core.expr.calculus.derivatives import Modes, differentiate
    from pyomo.core.expr.calculus.diff_with_pyomo import DifferentiationException

    if not hasattr(expr, "is_potentially_variable") or not expr.is_potentially_variable():
        return 0.0
    try:
        gradient = differentiate(expr, wrt_list=variables, mode=Modes.reverse_numeric)
    except (DifferentiationException, ValueError, ZeroDivisionError, OverflowError):
        return 0.0
    return float(np.sum(np.abs(np.asarray(gradient, dtype=float)))) * size


def pyomo_nlp(problem: _Problem, rowmap: _RowMap) -> NLP:
    """The Pyomo model as an NLP: CasADi expressions for IPOPT; for the certificate, values by Pyomo and
    gradients by Pyomo's own differentiation (CasADi's only where Pyomo cannot differentiate, see
    ``casadi_derivatives``)."""
    variables, constraints, sense = problem.variables, problem.constraints, problem.sense
    rows_expr = _rows_expr(problem.g, rowmap)
    lam = ca.SX.sym("lam", rowmap.side.size)
    lagrangian = ca.Function("lagrangian_hessian", [problem.x, lam],
                             [ca.densify(ca.hessian(problem.f - ca.dot(lam, rows_expr), problem.x)[0])])
    objective_hessian = ca.Function("objective_hessian", [problem.x], [ca.densify(ca.hessian(problem.f, problem.x)[0])])
    raw = ca.vertcat(sense * problem.f, problem.g)
    raw_jacobian = ca.Function("raw_jacobian", [problem.x], [ca.densify(ca.jacobian(raw, problem.x))])
    exprs = [problem.objective] + [c.body for c in constraints]
    z0 = _initial_point(variables)
    saved = [v.value for v in variables]
    for v, value in zip(variables, z0):
        v.set_value(float(value), skip_validation=True)
    own = [_differentiable(e, variables) for e in exprs]
    for v, value in zip(variables, saved):
        v.set_value(value, skip_validation=True)

    def expressions(z, p):
        return ca.substitute(problem.f, problem.x, z), ca.substitute(rows_expr, problem.x, z)

    def evaluate(z, p=None) -> Point:
        values, grads = _pyomo_derivatives(exprs, variables, z, own)
        if not all(own):
            fallback = np.array(raw_jacobian(z))
            grads[~np.array(own)] = fallback[~np.array(own)]
        g, dg = values[1:][rowmap.constraint], grads[1:][rowmap.constraint]
        levels = np.maximum(np.maximum(np.abs(rowmap.bound), np.abs(g)), 1.0)
        # a Pyomo objective carries no term structure: its gradient is judged against the gradient that a
        # displacement of the variables' size produces (|Hessian| ||z||), e.g. at an unconstrained optimum
        curvature = np.abs(np.array(objective_hessian(z))) @ np.full(len(variables), np.max(np.abs(z), initial=1.0))
        return Point(sense * values[0], sense * grads[0], rowmap.values(values[1:]), dg * rowmap.sign()[:, None],
                     levels, curvature)

    def hessian(z, p, multipliers):
        return np.array(lagrangian(z, multipliers))

    lower = np.array([_bound(v.lb, -np.inf) for v in variables])
    upper = np.array([_bound(v.ub, np.inf) for v in variables])
    blocks = (Rows("pyomo_inequality", int(np.sum(rowmap.side != 0))),
              Rows("pyomo_equality", int(np.sum(rowmap.side == 0)), equality=True))
    nlp = NLP("pyomo", len(variables), tuple(r for r in blocks if r.size), lower, upper, expressions, evaluate,
              theta=lambda z: z, hessian=hessian)
    names = ["objective"] + [c.name for c in constraints]
    return nlp, tuple(n for n, ok in zip(names, own) if not ok)


def _rows_expr(g, rowmap: _RowMap):
    if rowmap.side.size == 0:
        return ca.SX(0, 1)
    return ca.vertcat(*[g[int(i)] - bound if side >= 0 else bound - g[int(i)]
                        for i, side, bound in zip(rowmap.constraint, rowmap.side, rowmap.bound)])


@dataclass(frozen=True)
class PyomoDiagnostics(Diagnostics):
    kind = "pyomo"

    model: str
    variables: tuple[str, ...]
    constraints: tuple[str, ...]
    sense: int
    casadi_derivatives: tuple[str, ...] = ()   # expressions Pyomo cannot differentiate (e.g. Expr_if)
    # where the multipliers come from: "solver" (IPOPT's, after the exact finish: solve_pyomo), "suffix" (the
    # model's dual / rc Suffix: certify_pyomo) or "fitted" (certify_pyomo: NNLS on the active rows; bound
    # multipliers from the stationarity residual the constraint multipliers leave)
    multipliers: str = "solver"
    bound_multipliers: str = "solver"
    # nonsmooth nodes (abs, max, min, Expr_if) of the objective and the active constraints at their switching point
    # (``kinks``): a KKT point there is region_boundary, not optimal
    kinks: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class PyomoSolveResult:
    """Outcome of ``solve_pyomo``: the certificate's status (``lexmargin.Status``), the matching Pyomo
    TerminationCondition name, IPOPT's return status, the certificate itself, and the point in Pyomo's
    conventions whether or not it was loaded: ``values`` (one per free variable, in the order of
    ``certificate.diagnostics.variables``), ``duals`` (one per active constraint, ``diagnostics.constraints``)
    and ``reduced_costs`` (one per free variable)."""

    status: Status
    termination_condition: str
    return_status: str
    objective: float
    iterations: int
    seconds: float
    n_variables: int
    n_constraints: int
    loaded: bool
    certificate: Certificate
    values: np.ndarray = field(default_factory=lambda: np.zeros(0))
    duals: np.ndarray = field(default_factory=lambda: np.zeros(0))
    reduced_costs: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def success(self) -> bool:
        """True when the certificate's status is ``optimal``."""
        return self.status.success

    def to_dict(self) -> dict:
        """JSON-ready form: status, termination condition, objective, counts, values and the certificate."""
        return {"status": self.status.value, "termination_condition": self.termination_condition,
                "return_status": self.return_status, "objective": self.objective, "iterations": self.iterations,
                "seconds": self.seconds, "n_variables": self.n_variables, "n_constraints": self.n_constraints,
                "loaded": self.loaded, "success": self.success, "values": self.values.tolist(),
                "duals": self.duals.tolist(), "reduced_costs": self.reduced_costs.tolist(),
                "certificate": self.certificate.to_dict()}


def _initial_point(variables) -> np.ndarray:
    x0 = np.array([0.0 if v.value is None else float(v.value) for v in variables])
    lb = np.array([_bound(v.lb, -np.inf) for v in variables])
    ub = np.array([_bound(v.ub, np.inf) for v in variables])
    return np.clip(x0, lb, ub)


def _suffix(pyomo_model, name: str, create: bool):
    pyo = _pyomo()
    suffix = pyomo_model.component(name)
    if suffix is None and create:
        suffix = pyo.Suffix(direction=pyo.Suffix.IMPORT)
        pyomo_model.add_component(name, suffix)
    if suffix is None or not isinstance(suffix, pyo.Suffix) or not suffix.import_enabled():
        return None
    return suffix


def pyomo_duals(rowmap: _RowMap, multipliers, n_constraints: int, sense: int) -> np.ndarray:
    """Pyomo's duals (d objective* / d bound) from lexmargin's row multipliers.

    sense * (lambda_lower - lambda_upper + mu_equality) per constraint.

    Args:
        rowmap: which NLP rows belong to which Pyomo constraint.
        multipliers: lexmargin's row multipliers.
        n_constraints: the number of Pyomo constraints.
        sense: 1 to minimize, -1 to maximize.

    Returns:
        One dual per constraint.
    """
    duals = np.zeros(n_constraints)
    np.add.at(duals, rowmap.constraint, np.where(rowmap.side < 0, -1.0, 1.0) * np.asarray(multipliers, dtype=float))
    return sense * duals


def multipliers_from_duals(rowmap: _RowMap, duals, sense: int) -> np.ndarray:
    """lexmargin's row multipliers from Pyomo's duals, the inverse of ``pyomo_duals``.

    Args:
        rowmap: the rows of the constraints.
        duals: one Pyomo dual per constraint (d objective* / d bound).
        sense: 1 for a minimization, -1 for a maximization.
    Returns:
        One multiplier per row: sense * dual on a lower-bound or equality row, -sense * dual on an upper-bound
        row; a ranged constraint's dual goes to the row its sign points to (lower if sense * dual > 0, else
        upper), the other row gets 0.  A wrong-signed dual of a one-sided constraint stays negative (the
        certificate's dual feasibility reports it).
    """
    per_row = sense * np.asarray(duals, dtype=float)[rowmap.constraint] * rowmap.sign()
    ranged = np.bincount(rowmap.constraint)[rowmap.constraint] > 1      # constraints with two rows
    return np.where(ranged, np.maximum(per_row, 0.0), per_row)


def reduced_costs(lower_multipliers, upper_multipliers, sense: int) -> np.ndarray:
    """Pyomo's reduced costs (d objective* / d variable bound): sense * (lower - upper) per variable.

    Args:
        lower_multipliers: lexmargin's lower-bound multipliers, one per variable.
        upper_multipliers: lexmargin's upper-bound multipliers, one per variable.
        sense: 1 to minimize, -1 to maximize.

    Returns:
        One reduced cost per variable.
    """
    return sense * (np.asarray(lower_multipliers, dtype=float) - np.asarray(upper_multipliers, dtype=float))


def _load(pyomo_model, problem: _Problem, values, duals, reduced) -> None:
    """Values into the Vars, ``duals`` into the Suffix ``dual`` (created if absent), ``reduced`` into ``rc``
    (if declared)."""
    for var, value in zip(problem.variables, values):
        var.set_value(float(value), skip_validation=True)
    dual_suffix = _suffix(pyomo_model, "dual", create=True)
    if dual_suffix is not None:
        for con, dual in zip(problem.constraints, duals):
            dual_suffix[con] = float(dual)
    reduced_costs = _suffix(pyomo_model, "rc", create=False)
    if reduced_costs is not None:
        for var, rc in zip(problem.variables, reduced):
            reduced_costs[var] = float(rc)


def at_kinks(problem: _Problem, rowmap: _RowMap, report: KKTReport, z, status: Status, tol: Tolerances
             ) -> tuple[Status, tuple[str, ...]]:
    """(status, kinks): the objective's and the active constraints' nonsmooth nodes at their switching point
    (``kinks``, tolerance ``tol.active``); a KKT point there is ``region_boundary``, not ``optimal`` (its derivative
    was a convention's)."""
    active = np.unique(rowmap.constraint[report.active[:rowmap.constraint.size]])
    exprs = [problem.objective] + [problem.constraints[i].body for i in active]
    names = ["objective"] + [problem.constraints[i].name for i in active]
    found = kinks(exprs, names, problem.variables, z, tol.active)
    return (Status.REGION_BOUNDARY if found and status == Status.OPTIMAL else status), found


def _certificate(pyomo_model, problem: _Problem, report: KKTReport, *, status: Status, z, objective: float,
                 solver: SolverInfo, finish: FinishInfo, tolerances: Tolerances, casadi_derivatives,
                 kinked=()) -> Certificate:
    """The certificate of a Pyomo model (its diagnostics say the multipliers are the solver's; certify_pyomo
    replaces that)."""
    diagnostics = PyomoDiagnostics(str(pyomo_model.name), tuple(v.name for v in problem.variables),
                                   tuple(c.name for c in problem.constraints), problem.sense,
                                   tuple(casadi_derivatives), kinks=tuple(kinked))
    return assemble("pyomo", report, status=status, theta=z, objective=objective, norm="", margins=np.zeros(0),
                    normalized_margin=None, n_samples=0, solver=solver, finish=finish, tolerances=tolerances,
                    constraints=f"{len(problem.constraints)} Pyomo constraints", diagnostics=diagnostics)


def solve_pyomo(pyomo_model, *, load_solutions: bool = True, options: SolveOptions | None = None,
                **overrides) -> PyomoSolveResult:
    """Solve a continuous Pyomo model with IPOPT (through CasADi), certify it and load the solution back.

    Args:
        pyomo_model: a Pyomo ConcreteModel (one active Objective).
        load_solutions: write values, the Suffix ``dual`` (created if absent: d objective*/d bound, >= 0 for an
            active lower bound of a minimization, <= 0 for an active upper bound; signs flip for a
            maximization) and, if declared, an import Suffix ``rc`` (bound multipliers) when the status is a
            success.
        options: SolveOptions (tol, max_iter, time_limit, finish, raise_on_failure, ipopt={...} for any other
            IPOPT option, tolerances), or keyword overrides of its fields.
    Returns:
        PyomoSolveResult with the certificate; raises SolverError on failure when ``raise_on_failure``
        (nothing is loaded then).
    """
    opts = SolveOptions.resolve(options, **overrides)
    problem = _translate(pyomo_model)
    rowmap = _RowMap.of(problem.constraints)
    nlp, casadi_derivatives = pyomo_nlp(problem, rowmap)
    result = IpoptSolver(nlp, opts.ipopt_options()).solve(_initial_point(problem.variables))
    point, report = finish_or_keep(nlp, result, opts)
    assert report is not None           # want_report: finish_or_keep always certifies here
    status, kinked = at_kinks(problem, rowmap, report, point.z, decide(report.kkt_met(opts.tolerances), result.status),
                              opts.tolerances)
    objective = problem.sense * nlp.evaluate(point.z).objective
    cert = _certificate(pyomo_model, problem, report, status=status, z=point.z, objective=objective,
                        solver=SolverInfo("ipopt", result.status, result.return_status, result.iterations,
                                          result.seconds),
                        finish=point.info, tolerances=opts.tolerances, casadi_derivatives=casadi_derivatives,
                        kinked=kinked)
    if opts.raise_on_failure and not cert.success:
        raise SolverError(f"solve_pyomo({pyomo_model.name}) ended {status.value} (IPOPT {result.return_status} "
                          f"after {result.iterations} iterations); nothing loaded", status=status.value,
                          certificate=cert)
    solved = PyomoSolveResult(
        status=status, termination_condition=PYOMO_TERMINATION.get(status, "error"),
        return_status=result.return_status, objective=objective, iterations=result.iterations,
        seconds=result.seconds, n_variables=len(problem.variables), n_constraints=len(problem.constraints),
        loaded=bool(load_solutions and cert.success), certificate=cert, values=np.array(point.z, dtype=float),
        duals=pyomo_duals(rowmap, point.multipliers, len(problem.constraints), problem.sense),
        reduced_costs=reduced_costs(point.lower_multipliers, point.upper_multipliers, problem.sense))
    if solved.loaded:       # what is loaded is what the result reports
        _load(pyomo_model, problem, solved.values, solved.duals, solved.reduced_costs)
    return solved


# ---- certify a Pyomo model at its current values --------------------------------------------------
MULTIPLIER_SOURCES = ("auto", "suffix", "fitted")


def _current_point(variables) -> np.ndarray:
    missing = [v.name for v in variables if v.value is None]
    if missing:
        raise ModelError(f"certify_pyomo: variable(s) without a value: {', '.join(missing[:5])}"
                         + (" ..." if len(missing) > 5 else ""))
    return np.array([float(v.value) for v in variables])


def _suffix_values(pyomo_model, name: str, components):
    """The values of an import Suffix ``name`` for every component, or None (no such Suffix, or one missing)."""
    suffix = _suffix(pyomo_model, name, create=False)
    if suffix is None:
        return None
    values = [suffix.get(c) for c in components]
    if any(v is None for v in values):
        return None
    return np.array([float(v) for v in values])


def fitted_bound_multipliers(nlp: NLP, point: Point, z, multipliers, tolerances: Tolerances):
    """Bound multipliers that balance what the row multipliers leave of the stationarity residual.

    Args:
        nlp: the NLP.
        point: its evaluation at z.
        z: the point.
        multipliers: one per NLP row (lexmargin's convention).
        tolerances: ``active`` decides which bounds are active.
    Returns:
        (lower, upper), one per variable: with r = grad phi - J^T lambda, lower_j = max(r_j, 0) at an active
        lower bound, upper_j = max(-r_j, 0) at an active upper bound, 0 elsewhere (bound rows are unit rows,
        so this is the NNLS fit on the active bounds).
    """
    ext = extend(nlp, point, z)
    residual = point.gradient - point.jacobian.T @ np.asarray(multipliers, dtype=float)
    active = active_rows(ext.values, ext.levels, ext.equality, tolerances.active)[nlp.m:]
    lo, up = nlp.bound_rows()
    lower, upper = np.zeros(nlp.n), np.zeros(nlp.n)
    at_lower, at_upper = lo[active[:lo.size]], up[active[lo.size:]]
    lower[at_lower] = np.maximum(residual[at_lower], 0.0)
    upper[at_upper] = np.maximum(-residual[at_upper], 0.0)
    return lower, upper



def certify_pyomo(pyomo_model, *, multipliers: str = "auto", tolerances: Tolerances | None = None) -> Certificate:
    """The certificate of a Pyomo model at its current values, without solving (e.g. after another solver).

    The model is translated as by ``solve_pyomo`` (same rows, same Pyomo differentiation) and ``certify``
    recomputes the relative KKT residuals, the active set, the support, LICQ and the second-order check at
    the Vars' current values.

    Args:
        pyomo_model: a Pyomo model (one active Objective); every free variable needs a value.
        multipliers: "auto" (default): the import Suffix ``dual`` when it holds a value for every active
            constraint, read in Pyomo's documented convention, dual = d objective* / d bound (as
            ``SolverFactory('lexmargin')`` and ``solve_pyomo`` write it; a solver interface that reports the
            opposite sign fails dual feasibility here), with the bound multipliers from an import Suffix ``rc``
            holding a value for every free variable, else fitted to the stationarity residual; without such a
            ``dual`` Suffix, multipliers fitted by NNLS on the active rows.  "suffix": the ``dual`` Suffix or
            ModelError.  "fitted": fitted, Suffixes ignored.
        tolerances: the certificate's tolerances (default Tolerances()).
    Returns:
        A Certificate: status ``optimal`` iff every recomputed residual is within ``tolerances.kkt`` and no
        nonsmooth node of the objective or an active constraint is at its switch (then ``region_boundary``,
        ``diagnostics.kinks``), else ``inaccurate``; ``diagnostics.multipliers`` / ``diagnostics.bound_multipliers``
        say where the multipliers came from ("suffix" or "fitted"); ``solver.name`` is "none".
    """
    if multipliers not in MULTIPLIER_SOURCES:
        raise ValueError(f"certify_pyomo: multipliers must be one of {MULTIPLIER_SOURCES}; got {multipliers!r}")
    tol = tolerances or Tolerances()
    problem = _translate(pyomo_model, "certify_pyomo")
    rowmap = _RowMap.of(problem.constraints)
    nlp, casadi_derivatives = pyomo_nlp(problem, rowmap)
    z = _current_point(problem.variables)
    point = nlp.evaluate(z)
    duals = None if multipliers == "fitted" else _suffix_values(pyomo_model, "dual", problem.constraints)
    if multipliers == "suffix" and duals is None:
        raise ModelError("certify_pyomo(multipliers='suffix'): the model has no import Suffix 'dual' with a value "
                         "for every active constraint")
    if duals is None:
        rows, lower, upper = split_extended_multipliers(nlp, fit_multipliers(nlp, z, tolerances=tol))
        sources = ("fitted", "fitted")
    else:
        rows = multipliers_from_duals(rowmap, duals, problem.sense)
        rcs = _suffix_values(pyomo_model, "rc", problem.variables)
        if rcs is None:
            lower, upper = fitted_bound_multipliers(nlp, point, z, rows, tol)
            sources = ("suffix", "fitted")
        else:   # rc = sense * (lower - upper): IPOPT's lam_x convention is -sense * rc
            lower, upper = bound_multipliers(-problem.sense * rcs, nlp.lower, nlp.upper)
            sources = ("suffix", "suffix")
    report = certify(nlp, z, rows, lower, upper, tolerances=tol, point=point)
    status, kinked = at_kinks(problem, rowmap, report, z, decide(report.kkt_met(tol), Status.OPTIMAL), tol)
    cert = _certificate(pyomo_model, problem, report, status=status, z=z, objective=problem.sense * point.objective,
                        solver=SolverInfo("none", status, "not run: the model's current values", 0, 0.0,
                                          f"multipliers: {sources[0]}; bound multipliers: {sources[1]}"),
                        finish=FinishInfo(False, "not run: certify_pyomo judges the model's values as they are"),
                        tolerances=tol, casadi_derivatives=casadi_derivatives, kinked=kinked)
    return replace(cert, diagnostics=replace(cert.diagnostics, multipliers=sources[0],
                                             bound_multipliers=sources[1]))


# ---- SolverFactory('lexmargin'): Pyomo's solver interface ----------------------------------------
# SolveOptions fields a Pyomo solve uses; every other option is passed to IPOPT
SOLVE_OPTION_FIELDS = frozenset({"tol", "max_iter", "time_limit", "finish", "raise_on_failure", "tolerances",
                                 "ipopt"})
# SolveOptions fields with no meaning for one Pyomo solve (refused rather than passed to IPOPT)
UNUSED_FIELDS = frozenset({"starts", "seed", "init"})
# solve() keywords of Pyomo's solver interface that have nothing to do here (no files are written; the start
# is always the model's current values; the Suffixes the model declares are loaded, see ``_load_results``)
IGNORED_KEYWORDS = frozenset({"symbolic_solver_labels", "keepfiles", "warmstart", "report_timing", "suffixes"})
TEE_PRINT_LEVEL = 5   # IPOPT's own default print level, shown with tee=True or written to logfile


class _Options(dict):
    """Persistent options (``opt.options['max_iter'] = 50`` or ``opt.options.max_iter = 50``)."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name, value):
        self[name] = value

    def __delattr__(self, name):
        del self[name]


def _parse_value(text: str):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_options_string(text: str | None) -> dict:
    """Pyomo's ``options_string`` ("max_iter=50 tol=1e-8 mu_strategy=adaptive") as a dict (numbers converted).

    Args:
        text: space-separated ``name=value`` pairs, or None.
    Returns:
        {name: value}; ValueError for a word without ``=``.
    """
    out = {}
    for word in (text or "").split():
        name, sep, value = word.partition("=")
        if not sep or not name:
            raise ValueError(f"SolverFactory('lexmargin'): options_string entries are name=value; got {word!r}")
        out[name] = _parse_value(value)
    return out


def solve_options(options: dict, *, tee: bool = False, log: bool = False):
    """The ``SolveOptions`` of one Pyomo solve from its merged options.

    Args:
        options: {name: value}: the SolveOptions fields tol, max_iter, time_limit, finish, raise_on_failure,
            tolerances (a ``Tolerances`` or a dict of its fields) and ipopt (a dict of IPOPT options); any other
            name is an IPOPT option (``mu_init``, ``linear_solver``, ``print_level``, ``max_cpu_time``, ...; the
            ``ipopt.`` prefix is optional).  starts, seed and init are refused (not used by one solve).
        tee: IPOPT's output is shown: its print level defaults to 5 instead of 0.
        log: IPOPT's output is written to a log file: same default.
    Returns:
        SolveOptions with ``raise_on_failure`` False unless given (a Pyomo solver reports, it does not raise).
    """
    unused = sorted(UNUSED_FIELDS & set(options))
    if unused:
        raise ValueError(f"SolverFactory('lexmargin'): option(s) {unused} have no meaning for a Pyomo solve")
    fields = {k: v for k, v in options.items() if k in SOLVE_OPTION_FIELDS}
    ipopt = {**dict(fields.pop("ipopt", None) or {}),
             **{k: v for k, v in options.items() if k not in SOLVE_OPTION_FIELDS}}
    if isinstance(fields.get("tolerances"), dict):
        fields["tolerances"] = Tolerances(**fields["tolerances"])
    if (tee or log) and not {"print_level", "ipopt.print_level"} & set(ipopt):
        ipopt["print_level"] = TEE_PRINT_LEVEL
    return SolveOptions(**{"raise_on_failure": False, **fields, "ipopt": ipopt})


class _Tee:
    """A text stream writing to several streams (IPOPT's output: the screen and/or a log buffer)."""

    def __init__(self, streams):
        self.streams = list(streams)

    def write(self, text):
        for stream in self.streams:
            stream.write(text)
        return len(text)

    def flush(self):
        for stream in self.streams:
            if hasattr(stream, "flush"):
                stream.flush()


def _streams(tee) -> list:
    """tee as a list of streams: False/None -> none, True -> sys.stdout, a stream or a list of streams as given."""
    if tee is None or tee is False:
        return []
    if tee is True:
        return [sys.stdout]
    if hasattr(tee, "write"):
        return [tee]
    return list(tee)


class LexmarginSolver:
    """Pyomo solver interface (``SolverFactory('lexmargin')``) to ``lexmargin.interop.pyomo.solve_pyomo``.

    ``options`` persist across solves (``opt.options['max_iter'] = 100``); ``solve(..., options=...)`` and
    ``options_string`` override them for one solve.  ``last_result`` is the last solve's ``PyomoSolveResult``
    (status, certificate, values, duals and reduced costs whether or not they were loaded).
    """

    name = NAME
    type = NAME

    def __init__(self, options=None, **kwds):
        """Args:
            options: persistent options (see ``solve``).
            kwds: ``type``/``name``/``doc`` as Pyomo's OptSolver takes them; anything else is an error.
        """
        unknown = sorted(set(kwds) - {"type", "name", "doc"})
        if unknown:
            raise ValueError(f"SolverFactory('lexmargin') got unknown argument(s) {unknown}")
        self.options = _Options(options or {})
        self.last_result = None

    # -- what Pyomo asks of a solver --
    @classmethod
    def api_version(cls):
        """Pyomo's solver API this class implements (V1: ``solve`` returns ``SolverResults``)."""
        from pyomo.common.enums import SolverAPIVersion

        return SolverAPIVersion.V1

    def available(self, exception_flag: bool = True) -> bool:
        """Whether CasADi's bundled IPOPT can be loaded.

        Args:
            exception_flag: raise (RuntimeError) instead of returning False.
        Returns:
            True when a solve can run.
        """
        try:
            ok = bool(ca.has_nlpsol("ipopt"))
        except RuntimeError:
            ok = False
        if not ok and exception_flag:
            raise RuntimeError("SolverFactory('lexmargin'): casadi has no IPOPT plugin")
        return ok

    def license_is_valid(self) -> bool:
        """Always True (open-source solvers)."""
        return True

    def version(self) -> tuple:
        """lexmargin's version as a tuple of ints (IPOPT's is in ``lexmargin.environment``)."""
        from .. import __version__

        return tuple(int(p) for p in __version__.split(".") if p.isdigit())

    def warm_start_capable(self) -> bool:
        """False: IPOPT always starts from the model's current values (clipped into the bounds), no multipliers."""
        return False

    def set_options(self, istr) -> None:
        """Persistent options from a dict or an options string ("max_iter=50 tol=1e-8")."""
        self.options.update(istr if isinstance(istr, dict) else parse_options_string(istr))

    def reset(self) -> None:
        """Nothing to reset (no files, no state between solves except ``options``)."""

    def __enter__(self):
        return self

    def __exit__(self, t, v, traceback):
        return None

    def __bool__(self) -> bool:
        return True

    # -- solving --
    def solve(self, model, *, tee=False, load_solutions: bool = True, options=None, options_string=None,
              logfile=None, **kwds):
        """Solve a continuous Pyomo model with IPOPT (via CasADi) and return Pyomo ``SolverResults``.

        Args:
            model: a Pyomo model with one active Objective (scalar/indexed Vars, Constraints with any bounds,
                smooth functions, ``abs``, ``MaxExpression``/``MinExpression``, ``Expr_if``).
            tee: show IPOPT's output (True: on sys.stdout; or a stream, or a list of streams); IPOPT's
                print level is 5 unless set in the options.  A summary line of the certificate follows.
            load_solutions: load values and the import Suffixes ``dual`` and ``rc`` (only those the model
                declares) when the certificate's status is optimal.  Otherwise nothing is loaded and the point
                is in ``results.solution`` (``model.solutions.load_from(results)`` loads it).
            options: IPOPT options and SolveOptions fields for this solve, over ``self.options``
                (see ``solve_options``); ``options_string`` the same as "name=value" words.
            logfile: a path the IPOPT output is written to.
            kwds: Pyomo's symbolic_solver_labels, keepfiles, warmstart, report_timing and suffixes are accepted
                and ignored; anything else is a ValueError, as in Pyomo.
        Returns:
            ``pyomo.opt.SolverResults``: ``solver.termination_condition`` / ``solver.status`` from the
            certificate's status (``interop.pyomo.STATUS_MAP``: ``optimal`` only when the recomputed KKT
            residuals are within tolerance), ``solver.message``, ``solver.wallclock_time``,
            ``solver.iterations``, ``problem`` sizes, sense and (when optimal) the objective as the bound on the
            feasible side.
        """
        unknown = sorted(set(kwds) - IGNORED_KEYWORDS)
        if unknown:
            raise ValueError(f"Solver={NAME} passed unrecognized keywords: {unknown}")
        merged = {**self.options, **parse_options_string(options_string), **dict(options or {})}
        streams = _streams(tee)
        opts = solve_options(merged, tee=bool(streams), log=logfile is not None)
        log = io.StringIO()
        with contextlib.redirect_stdout(_Tee(streams + ([log] if logfile is not None else []))):
            result = solve_pyomo(model, load_solutions=False, options=opts)
            if streams:
                print(f"lexmargin: {result.certificate.summary()}")
        if logfile is not None:
            with open(logfile, "w") as f:
                f.write(log.getvalue())
        self.last_result = result
        results = to_solver_results(model, result)
        if load_solutions:
            _load_results(model, results, result)
        return results


def to_solver_results(model, result):
    """``SolverResults`` for a ``PyomoSolveResult``, the point stored as a solution (names as keys).

    Args:
        model: the solved Pyomo model.
        result: ``solve_pyomo``'s result (values, duals and reduced costs in Pyomo's conventions).
    Returns:
        SolverResults with problem, solver and one solution (variables' Value and Rc, constraints' Dual,
        the objective's Value).
    """
    from pyomo.opt import ProblemSense, SolutionStatus, SolverResults, SolverStatus, TerminationCondition

    termination, solver_status, solution_status = STATUS_MAP[result.status]
    cert = result.certificate
    diag = cert.diagnostics
    results = SolverResults()
    problem = results.problem
    problem.name = str(model.name)
    problem.number_of_objectives = 1
    problem.number_of_variables = result.n_variables
    problem.number_of_constraints = result.n_constraints
    problem.sense = ProblemSense.minimize if diag.sense == 1 else ProblemSense.maximize
    if result.success:      # a certified (feasible) point bounds the optimum from the feasible side
        if diag.sense == 1:
            problem.upper_bound = float(result.objective)
        else:
            problem.lower_bound = float(result.objective)
    solver = results.solver
    solver.name = NAME
    solver.status = SolverStatus(solver_status)
    solver.termination_condition = TerminationCondition(termination)
    solver.message = (f"lexmargin {result.status.value}: IPOPT {result.return_status} after {result.iterations} "
                      f"iterations; relative KKT residual {cert.kkt.max:.3g} (tolerance {cert.tolerances.kkt:.0e})")
    solver.termination_message = solver.message
    solver.wallclock_time = result.seconds
    solver.iterations = result.iterations
    solution = results.solution.add()
    solution._cuid = False      # keyed by component name (Pyomo's ModelSolutions.add_solution reads this)
    solution.status = SolutionStatus(solution_status)
    solution.message = solver.message
    solution.objective[_objective_name(model)] = {"Value": result.objective}
    for name, value, rc in zip(diag.variables, result.values, result.reduced_costs):
        solution.variable[name] = {"Value": float(value), "Rc": float(rc)}
    for name, dual in zip(diag.constraints, result.duals):
        solution.constraint[name] = {"Dual": float(dual)}
    return results


def _objective_name(model) -> str:
    return next(model.component_data_objects(_pyomo().Objective, active=True, descend_into=True)).name


def _load_results(model, results, result) -> None:
    """Load a certified point through Pyomo's own machinery (``model.solutions.load_from``: values, stale flags,
    the declared import Suffixes cleared then filled) and empty ``results.solution``, as Pyomo's solvers do;
    a Block (no ``solutions``) gets the values and its own declared Suffixes written directly.  An uncertified
    point is not loaded (a warning says so)."""
    if not result.success:
        logging.getLogger(__name__).warning(
            "SolverFactory('lexmargin'): not loading the point of model %r: status %s (%s); it is in "
            "results.solution", str(model.name), result.status.value, results.solver.message)
        return
    if hasattr(model, "solutions"):
        model.solutions.load_from(results)
    else:
        Suffix = _pyomo().Suffix
        problem = {c.name: c for c in model.model().component_data_objects(descend_into=True)}
        diag = result.certificate.diagnostics
        for name, value in zip(diag.variables, result.values):
            problem[name].set_value(float(value), skip_validation=True)
        for suffix_name, names, values in (("dual", diag.constraints, result.duals),
                                           ("rc", diag.variables, result.reduced_costs)):
            suffix = model.component(suffix_name)
            if isinstance(suffix, Suffix) and suffix.import_enabled():
                for name, value in zip(names, values):
                    suffix[problem[name]] = float(value)
    results.solution.clear()


__all__ = ["STATUS_MAP", "LexmarginSolver", "PyomoDiagnostics", "PyomoSolveResult", "certify_pyomo",
           "fitted_bound_multipliers", "margin_duals", "margin_pairs", "multipliers_from_duals", "parse_options_string", "pyomo_duals",
           "reduced_costs", "solve_options", "solve_pyomo", "theta_of", "to_pyomo", "to_solver_results"]
