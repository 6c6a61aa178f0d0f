"""Pyomo interop: write lexmargin problems as Pyomo models, and solve Pyomo models with IPOPT via CasADi.

No ``ipopt`` executable is needed (Pyomo's ``SolverFactory('ipopt')`` is not used): the IPOPT
bundled in the casadi wheel solves the problem after the Pyomo expression trees are translated
into CasADi, in the spirit of ``pyomo.dae.Simulator``'s CasADi substitution map.

* ``to_pyomo(model, data)``: the max-margin problem ``min ||theta||^2 s.t. f_n(theta) >= 1`` with
  one Pyomo variable ``theta[i]`` per parameter (lexmargin's flat order, see ``Model.unflatten``),
  objective ``objective``, constraints ``margin[n]`` and an import Suffix ``dual``.
* ``solve_pyomo(pyomo_model, **ipopt_options)``: any continuous Pyomo NLP (scalar or indexed
  Vars with bounds, one active Objective, Constraints with lower/upper/equality bounds, expressions
  built from + - * / ** exp log sqrt, trigonometric and hyperbolic functions, abs, max, min and
  Expr_if).  Values are written back into the Vars, duals into the Suffix ``dual`` with Pyomo's
  sign convention (dual = d objective* / d bound: >= 0 for an active lower bound of a minimization).

Pyomo is imported only when these functions are called (``pip install lexmargin[pyomo]``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import casadi as ca
import numpy as np

from .modeling.data import Dataset
from .errors import ModelError, SolverError
from .ipopt import solve_nlp
from .modeling.model import Model

_UNARY = {
    "exp": ca.exp, "log": ca.log, "log10": ca.log10, "sqrt": ca.sqrt, "abs": ca.fabs,
    "sin": ca.sin, "cos": ca.cos, "tan": ca.tan, "asin": ca.asin, "acos": ca.acos, "atan": ca.atan,
    "sinh": ca.sinh, "cosh": ca.cosh, "tanh": ca.tanh, "asinh": ca.asinh, "acosh": ca.acosh,
    "atanh": ca.atanh, "ceil": ca.ceil, "floor": ca.floor,
}
_PYOMO_TERMINATION = {"optimal": "optimal", "acceptable": "locallyOptimal", "infeasible": "infeasible",
                      "max_iterations": "maxIterations", "max_time": "maxTimeLimit", "failed": "error"}


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


def to_pyomo(model: Model, data: Dataset, *, theta0=None, seed=0):
    """The max-margin problem ``min ||theta||^2 s.t. f_n(theta) >= 1`` as a Pyomo ConcreteModel.

    Components: ``theta`` (Var indexed 0..P-1, lexmargin's flat order, initialized with ``theta0`` or
    ``model.random_params(seed)``), ``objective``, ``margin`` (Constraint indexed by sample) and
    ``dual`` (import Suffix).  The margins are traced through ``lexmargin.ops``' Pyomo backend.
    """
    pyo = _pyomo()
    data = model._check_data(data)
    start = model.random_params(seed) if theta0 is None else np.asarray(theta0, dtype=float).reshape(-1)
    if start.shape != (model.n_params,):
        raise ModelError(f"theta0 must have {model.n_params} entries for model {model.name!r}; got {start.shape}")
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
    return _Problem(variables, constraints, x, f, g, sense)


@dataclass(frozen=True)
class PyomoSolveResult:
    """Outcome of ``solve_pyomo``.  ``status`` as ``lexmargin.ipopt`` (optimal, acceptable, infeasible,
    max_iterations, max_time, failed); ``termination_condition`` is the matching Pyomo name."""

    status: str
    termination_condition: str
    return_status: str
    objective: float
    iterations: int
    seconds: float
    n_variables: int
    n_constraints: int
    loaded: bool

    @property
    def success(self) -> bool:
        return self.status in ("optimal", "acceptable")

    def to_dict(self) -> dict:
        return {**asdict(self), "success": self.success}


# IPOPT relaxes every bound by 1e-8 (relative) by default, which moves optimal values and objectives by
# ~1e-8 * dual; lexmargin solves to be exact, so bounds are kept exact unless the caller says otherwise.
EXACT_BOUNDS = {"ipopt.bound_relax_factor": 0.0}


def _ipopt_options(options: dict) -> dict:
    return {**EXACT_BOUNDS, **{(k if "." in k else f"ipopt.{k}"): v for k, v in options.items()}}


def _initial_point(variables) -> np.ndarray:
    x0 = np.array([0.0 if v.value is None else float(v.value) for v in variables])
    lb = np.array([_bound(v.lb, -np.inf) for v in variables])
    ub = np.array([_bound(v.ub, np.inf) for v in variables])
    return np.clip(x0, lb, ub), lb, ub


def _constraint_bounds(constraints) -> tuple[np.ndarray, np.ndarray]:
    lbg = np.array([_bound(c.lb, -np.inf) for c in constraints])
    ubg = np.array([_bound(c.ub, np.inf) for c in constraints])
    return lbg, ubg


def _suffix(pyomo_model, name: str, create: bool):
    pyo = _pyomo()
    suffix = pyomo_model.component(name)
    if suffix is None and create:
        suffix = pyo.Suffix(direction=pyo.Suffix.IMPORT)
        pyomo_model.add_component(name, suffix)
    if suffix is None or not isinstance(suffix, pyo.Suffix) or not suffix.import_enabled():
        return None
    return suffix


def _load(pyomo_model, problem: _Problem, result) -> None:
    for var, value in zip(problem.variables, result.x):
        var.set_value(float(value), skip_validation=True)
    duals = _suffix(pyomo_model, "dual", create=True)
    if duals is not None:
        for con, lam in zip(problem.constraints, result.lam_g):
            duals[con] = -problem.sense * float(lam)
    reduced_costs = _suffix(pyomo_model, "rc", create=False)
    if reduced_costs is not None:
        for var, lam in zip(problem.variables, result.lam_x):
            reduced_costs[var] = -problem.sense * float(lam)


def solve_pyomo(pyomo_model, *, load_solutions: bool = True, raise_on_failure: bool = False,
                **ipopt_options) -> PyomoSolveResult:
    """Solve a continuous Pyomo model with IPOPT (through CasADi) and load the solution back.

    ``ipopt_options`` are IPOPT option names (``tol=1e-9, max_iter=200``); names containing a dot
    are passed to CasADi's nlpsol as they are (``**{"ipopt.print_level": 5}``).  Bounds are kept exact
    (``bound_relax_factor=0``; pass ``bound_relax_factor=1e-8`` for IPOPT's default).  On success
    (optimal/acceptable) and with ``load_solutions`` the Vars get their values, the Suffix ``dual``
    (created if absent) gets constraint duals d objective*/d bound (Pyomo's convention: >= 0 for an
    active lower bound of a minimization, <= 0 for an active upper bound; signs flip for a
    maximization), and an import Suffix ``rc``, if declared, gets the bound multipliers.
    Unsuccessful solves return their status (or raise SolverError with ``raise_on_failure``); nothing
    is loaded then.
    """
    problem = _translate(pyomo_model)
    x0, lbx, ubx = _initial_point(problem.variables)
    lbg, ubg = _constraint_bounds(problem.constraints)
    result = solve_nlp(problem.x, problem.f, problem.g, x0=x0, lbg=lbg, ubg=ubg, lbx=lbx, ubx=ubx,
                       options=_ipopt_options(ipopt_options))
    if raise_on_failure and not result.success:
        raise SolverError(f"solve_pyomo({pyomo_model.name}): IPOPT stopped with {result.return_status} after "
                          f"{result.iterations} iterations; nothing loaded", status=result.status)
    loaded = bool(load_solutions and result.success)
    if loaded:
        _load(pyomo_model, problem, result)
    return PyomoSolveResult(
        status=result.status, termination_condition=_PYOMO_TERMINATION.get(result.status, "error"),
        return_status=result.return_status, objective=problem.sense * result.f, iterations=result.iterations,
        seconds=result.seconds, n_variables=len(problem.variables), n_constraints=len(problem.constraints),
        loaded=loaded)


__all__ = ["PyomoSolveResult", "margin_duals", "solve_pyomo", "theta_of", "to_pyomo"]
