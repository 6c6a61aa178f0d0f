"""Pyomo interop: write lexmargin problems as Pyomo models, and solve and certify Pyomo models with IPOPT
via CasADi.

No ``ipopt`` executable is needed (Pyomo's ``SolverFactory('ipopt')`` is not used): the IPOPT
bundled in the casadi wheel solves the problem after the Pyomo expression trees are translated
into CasADi, in the spirit of ``pyomo.dae.Simulator``'s CasADi substitution map.

* ``to_pyomo(model, data)``: the max-margin problem ``min ||theta||^2 s.t. f_n(theta) >= 1`` with
  one Pyomo variable ``theta[i]`` per parameter (lexmargin's flat order, see ``Model.unflatten``),
  objective ``objective``, constraints ``margin[n]`` and an import Suffix ``dual``.
* ``solve_pyomo(pyomo_model, options=None, **overrides)``: any continuous Pyomo NLP (scalar or indexed
  Vars with bounds, one active Objective, Constraints with lower/upper/equality bounds, expressions
  built from + - * / ** exp log sqrt, trigonometric and hyperbolic functions, abs, max, min and
  Expr_if) goes through the shared pipeline: an ``NLP`` (each constraint's finite bounds as rows
  g - lb >= 0, ub - g >= 0 or g - v = 0), IPOPT, the exact finish and ``certify``, whose numbers are
  recomputed with Pyomo's own differentiation (independent of the CasADi translation).  Values are
  written back into the Vars, duals into the Suffix ``dual`` with Pyomo's sign convention
  (dual = d objective* / d bound: >= 0 for an active lower bound of a minimization).

Pyomo is imported only when these functions are called (``pip install lexmargin[pyomo]``).
"""

from __future__ import annotations

from dataclasses import dataclass

import casadi as ca
import numpy as np

from ..errors import ModelError, SolverError
from ..modeling.data import Dataset
from ..modeling.model import Model
from ..nlp.certificate import Certificate, Diagnostics, SolverInfo, assemble
from ..nlp.finish import Finished, finish_or_keep
from ..nlp.ipopt import IpoptSolver
from ..nlp.nlp import NLP, Point, Rows
from ..nlp.options import SolveOptions
from ..nlp.status import Status, decide

_UNARY = {
    "exp": ca.exp, "log": ca.log, "log10": ca.log10, "sqrt": ca.sqrt, "abs": ca.fabs,
    "sin": ca.sin, "cos": ca.cos, "tan": ca.tan, "asin": ca.asin, "acos": ca.acos, "atan": ca.atan,
    "sinh": ca.sinh, "cosh": ca.cosh, "tanh": ca.tanh, "asinh": ca.asinh, "acosh": ca.acosh,
    "atanh": ca.atanh, "ceil": ca.ceil, "floor": ca.floor,
}
# the certificate's status as a Pyomo TerminationCondition name (mapped once)
PYOMO_TERMINATION = {Status.OPTIMAL: "optimal", Status.INACCURATE: "other", Status.INFEASIBLE: "infeasible",
                     Status.MAX_ITERATIONS: "maxIterations", Status.MAX_TIME: "maxTimeLimit",
                     Status.FAILED: "error"}


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
    ``model.random_params(seed)``), ``objective``, ``margin`` (Constraint indexed by sample) and
    ``dual`` (import Suffix).  The margins are traced through ``lexmargin.ops``' Pyomo backend.
    """
    pyo = _pyomo()
    data = model._check_data(data)
    start = model.random_params(seed) if init is None else np.asarray(init, dtype=float).reshape(-1)
    if start.shape != (model.n_params,):
        raise ModelError(f"init must have {model.n_params} entries for model {model.name!r}; got {start.shape}")
    m = pyo.ConcreteModel(name=f"max_margin_{model.name}")
    m.theta = pyo.Var(range(model.n_params), initialize=dict(enumerate(start.tolist())))
    params = model.layout.split(_object_array([m.theta[i] for i in range(model.n_params)]))
    margins = [_scalar(model.margin_of(params, data.X[n], float(data.y[n])), f"margin of sample {n}")
               for n in range(data.n_samples)]
    m.objective = pyo.Objective(expr=sum(m.theta[i] ** 2 for i in range(model.n_params)), sense=pyo.minimize)
    m.margin = pyo.Constraint(range(data.n_samples), rule=lambda _, n: margins[n] >= 1)
    m.dual = pyo.Suffix(direction=pyo.Suffix.IMPORT)
    return m


def _object_array(items) -> np.ndarray:
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out


def theta_of(pyomo_model) -> np.ndarray:
    """The flat parameter vector stored in a model made by ``to_pyomo``."""
    theta = pyomo_model.theta
    return np.array([np.nan if theta[i].value is None else theta[i].value for i in sorted(theta)], dtype=float)


def margin_duals(pyomo_model) -> np.ndarray:
    """Duals of the ``margin[n]`` constraints of a model made by ``to_pyomo`` (after ``solve_pyomo``)."""
    margin, dual = pyomo_model.margin, pyomo_model.dual
    return np.array([dual.get(margin[n], np.nan) for n in sorted(margin)], dtype=float)


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
            self.memo = {}

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


def _translate(pyomo_model) -> _Problem:
    pyo = _pyomo()
    objectives = list(pyomo_model.component_data_objects(pyo.Objective, active=True, descend_into=True))
    if len(objectives) != 1:
        raise ModelError(f"solve_pyomo needs exactly one active Objective; found {len(objectives)}")
    constraints = list(pyomo_model.component_data_objects(pyo.Constraint, active=True, descend_into=True))
    variables = _free_variables(objectives[0], constraints)
    if not variables:
        raise ModelError("solve_pyomo: the model has no free (unfixed) variables")
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


@dataclass(frozen=True, eq=False)
class PyomoSolveResult:
    """Outcome of ``solve_pyomo``: the certificate's status (``lexmargin.Status``), the matching Pyomo
    TerminationCondition name, IPOPT's return status, and the certificate itself."""

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

    @property
    def success(self) -> bool:
        return self.status.success

    def to_dict(self) -> dict:
        return {"status": self.status.value, "termination_condition": self.termination_condition,
                "return_status": self.return_status, "objective": self.objective, "iterations": self.iterations,
                "seconds": self.seconds, "n_variables": self.n_variables, "n_constraints": self.n_constraints,
                "loaded": self.loaded, "success": self.success, "certificate": self.certificate.to_dict()}


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
    """Pyomo's duals (d objective* / d bound) from lexmargin's row multipliers: sense * (lambda_lower -
    lambda_upper + mu_equality) per constraint."""
    duals = np.zeros(n_constraints)
    np.add.at(duals, rowmap.constraint, np.where(rowmap.side < 0, -1.0, 1.0) * np.asarray(multipliers, dtype=float))
    return sense * duals


def _load(pyomo_model, problem: _Problem, rowmap: _RowMap, point: Finished) -> None:
    for var, value in zip(problem.variables, point.z):
        var.set_value(float(value), skip_validation=True)
    duals = _suffix(pyomo_model, "dual", create=True)
    if duals is not None:
        for con, dual in zip(problem.constraints, pyomo_duals(rowmap, point.multipliers, len(problem.constraints),
                                                              problem.sense)):
            duals[con] = float(dual)
    reduced_costs = _suffix(pyomo_model, "rc", create=False)
    if reduced_costs is not None:
        for var, lo, up in zip(problem.variables, point.lower_multipliers, point.upper_multipliers):
            reduced_costs[var] = problem.sense * float(lo - up)


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
    status = decide(report.kkt_met(opts.tolerances), result.status)
    objective = problem.sense * nlp.evaluate(point.z).objective
    cert = assemble("pyomo", report, status=status, theta=point.z, objective=objective, norm="", margins=np.zeros(0),
                    normalized_margin=None, n_samples=0,
                    solver=SolverInfo("ipopt", result.status, result.return_status, result.iterations, result.seconds),
                    finish=point.info, tolerances=opts.tolerances, constraints=f"{len(problem.constraints)} Pyomo "
                    "constraints", diagnostics=PyomoDiagnostics(str(pyomo_model.name),
                                                                tuple(v.name for v in problem.variables),
                                                                tuple(c.name for c in problem.constraints),
                                                                problem.sense, casadi_derivatives))
    if opts.raise_on_failure and not cert.success:
        raise SolverError(f"solve_pyomo({pyomo_model.name}) ended {status.value} (IPOPT {result.return_status} "
                          f"after {result.iterations} iterations); nothing loaded", status=status.value,
                          certificate=cert)
    loaded = bool(load_solutions and cert.success)
    if loaded:
        _load(pyomo_model, problem, rowmap, point)
    return PyomoSolveResult(
        status=status, termination_condition=PYOMO_TERMINATION.get(status, "error"),
        return_status=result.return_status, objective=objective, iterations=result.iterations,
        seconds=result.seconds, n_variables=len(problem.variables), n_constraints=len(problem.constraints),
        loaded=loaded, certificate=cert)


__all__ = ["PyomoDiagnostics", "PyomoSolveResult", "margin_duals", "pyomo_duals", "solve_pyomo", "theta_of",
           "to_pyomo"]
