"""Pyomo interop (lexmargin.interop.pyomo): every kind of constraint bound becomes the right row, and the duals
written back follow Pyomo's convention, dual = d objective* / d bound, checked by finite differences of the
optimal value for minimization and maximization, lower, upper, equality and ranged constraints and variable
bounds (reduced costs)."""

from types import SimpleNamespace

import numpy as np
import pytest

pyo = pytest.importorskip("pyomo.environ")

from lexmargin.errors import ModelError  # noqa: E402
from lexmargin.interop import pyomo as P  # noqa: E402
from lexmargin.nlp.status import Status  # noqa: E402

DELTA = 1e-3


def build(sense, shift=None, rc=True):
    """Separable problem, each constraint active with a nonzero dual:

        opt  s * [(a - 0)^2 + (b - 3)^2 + c^2 + d^2 + (e - 5)^2 + f^2 + h^2 + (x - 2)^2 + y^2 + g^2]
        a >= 1,  b <= 1,  c == 2,  1 <= d <= 2 (lower active),  1 <= e <= 2 (upper active),
        f >= 2, h <= -1 (variable bounds),  x^2 + y^2 <= 1 (nonlinear),  g <= 10 (inactive),  e + a <= 100 (inactive)

    with s = 1 for minimize and -1 for maximize (the optimal points are the same)."""
    shift = shift or {}
    s = 1.0 if sense == "min" else -1.0
    m = pyo.ConcreteModel(name=f"duals_{sense}")
    m.a, m.b, m.c, m.d, m.e = (pyo.Var(initialize=0.5) for _ in range(5))
    m.f = pyo.Var(bounds=(2.0 + shift.get("f", 0.0), None), initialize=3.0)
    m.h = pyo.Var(bounds=(None, -1.0 + shift.get("h", 0.0)), initialize=-3.0)
    m.x, m.y, m.g = pyo.Var(initialize=0.5), pyo.Var(initialize=0.1), pyo.Var(initialize=0.0)
    m.obj = pyo.Objective(expr=s * (m.a ** 2 + (m.b - 3) ** 2 + m.c ** 2 + m.d ** 2 + (m.e - 5) ** 2 + m.f ** 2
                                    + m.h ** 2 + (m.x - 2) ** 2 + m.y ** 2 + m.g ** 2),
                          sense=pyo.minimize if sense == "min" else pyo.maximize)
    m.lower = pyo.Constraint(expr=m.a >= 1 + shift.get("lower", 0.0))
    m.upper = pyo.Constraint(expr=m.b <= 1 + shift.get("upper", 0.0))
    m.equal = pyo.Constraint(expr=m.c == 2 + shift.get("equal", 0.0))
    m.ranged_low = pyo.Constraint(expr=pyo.inequality(1 + shift.get("ranged_low", 0.0), m.d, 2))
    m.ranged_up = pyo.Constraint(expr=pyo.inequality(1, m.e, 2 + shift.get("ranged_up", 0.0)))
    m.disk = pyo.Constraint(expr=m.x ** 2 + m.y ** 2 <= 1 + shift.get("disk", 0.0))
    m.slack = pyo.Constraint(expr=m.g <= 10)
    m.slack2 = pyo.Constraint(expr=m.e + m.a <= 100)
    m.dual = pyo.Suffix(direction=pyo.Suffix.IMPORT)
    if rc:
        m.rc = pyo.Suffix(direction=pyo.Suffix.IMPORT)
    return m


NAMES = ["lower", "upper", "equal", "ranged_low", "ranged_up", "disk"]
EXPECTED_MIN = {"lower": 2.0, "upper": -4.0, "equal": 4.0, "ranged_low": 2.0, "ranged_up": -6.0, "disk": -1.0,
                "slack": 0.0, "slack2": 0.0}


@pytest.fixture(params=["min", "max"])      # not module-scoped: see test_verify_stages
def solved(request):
    m = build(request.param)
    result = P.solve_pyomo(m)
    return request.param, m, result


def test_solution_status_and_certificate(solved):
    sense, m, result = solved
    assert result.status == Status.OPTIMAL and result.termination_condition == "optimal" and result.loaded
    assert (result.n_variables, result.n_constraints) == (10, 8)
    s = 1 if sense == "min" else -1
    assert result.objective == pytest.approx(s * (1 + 4 + 4 + 1 + 9 + 4 + 1 + 1), abs=1e-8)
    values = [pyo.value(v) for v in (m.a, m.b, m.c, m.d, m.e, m.f, m.h, m.x, m.y, m.g)]
    np.testing.assert_allclose(values, [1, 1, 2, 1, 2, 2, -1, 1, 0, 0], atol=1e-8)
    cert = result.certificate
    assert cert.kkt.max <= 1e-8 and cert.licq.holds and cert.second_order.strict is True
    assert cert.diagnostics.sense == s and cert.diagnostics.variables[0] == "a"
    assert cert.diagnostics.constraints == ("lower", "upper", "equal", "ranged_low", "ranged_up", "disk", "slack",
                                            "slack2")
    assert cert.objective == pytest.approx(result.objective)
    assert result.to_dict()["success"] is True and result.to_dict()["status"] == "optimal"


def test_duals_follow_the_sign_convention(solved):
    sense, m, _ = solved
    s = 1.0 if sense == "min" else -1.0
    for name, value in EXPECTED_MIN.items():
        assert m.dual[getattr(m, name)] == pytest.approx(s * value, abs=1e-7), name
    assert m.rc[m.f] == pytest.approx(s * 4.0, abs=1e-7)
    assert m.rc[m.h] == pytest.approx(s * -2.0, abs=1e-7)          # an active upper bound: d obj* / d ub
    for v in (m.a, m.b, m.c, m.x):
        assert m.rc[v] == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("sense", ["min", "max"])
def test_duals_are_derivatives_of_the_optimal_value(sense):
    """dual = d objective* / d bound, by central differences of re-solved problems."""
    base = build(sense)
    P.solve_pyomo(base)
    for name in NAMES + ["f", "h"]:
        values = []
        for sign in (1.0, -1.0):
            values.append(P.solve_pyomo(build(sense, {name: sign * DELTA}, rc=False)).objective)
        derivative = (values[0] - values[1]) / (2 * DELTA)
        dual = base.rc[getattr(base, name)] if name in ("f", "h") else base.dual[getattr(base, name)]
        assert dual == pytest.approx(derivative, abs=1e-6), name


def test_no_rc_suffix_unless_declared_and_dual_suffix_created():
    m = build("min", rc=False)
    m.del_component("dual")
    P.solve_pyomo(m)
    assert isinstance(m.dual, pyo.Suffix) and m.dual[m.lower] == pytest.approx(2.0, abs=1e-7)
    assert m.component("rc") is None
    # an export-only suffix named dual is left alone
    m = build("min")
    m.del_component("dual")
    m.dual = pyo.Suffix(direction=pyo.Suffix.EXPORT)
    P.solve_pyomo(m)
    assert len(m.dual) == 0 and m.rc[m.f] == pytest.approx(4.0, abs=1e-7)


def test_nothing_loaded_without_success_or_on_request():
    m = build("min")
    result = P.solve_pyomo(m, load_solutions=False)
    assert result.success and not result.loaded and pyo.value(m.a) == 0.5 and len(m.dual) == 0
    result = P.solve_pyomo(m, max_iter=2, raise_on_failure=False)
    assert result.status == Status.MAX_ITERATIONS and not result.loaded and pyo.value(m.a) == 0.5
    assert result.certificate.finish.reason.startswith("IPOPT did not converge")
    assert result.termination_condition == "maxIterations"
    unfinished = P.solve_pyomo(m, finish=False)
    assert unfinished.certificate.finish.reason == "not requested" and not unfinished.certificate.finish.applied


# ---- rows, signs and the NLP ---------------------------------------------------------------------------
def con(lb=None, ub=None, equality=False):
    return SimpleNamespace(lb=lb, ub=ub, equality=equality)


def test_rowmap_rows_per_finite_bound():
    rows = P._RowMap.of([con(lb=1.0), con(ub=2.0), con(lb=3.0, ub=3.0), con(lb=-1.0, ub=4.0),
                         con(lb=5.0, ub=5.0, equality=True), con()])
    # inequalities first (in order), then equalities
    assert rows.constraint.tolist() == [0, 1, 3, 3, 2, 4]
    assert rows.side.tolist() == [1, -1, 1, -1, 0, 0]
    assert rows.bound.tolist() == [1.0, 2.0, -1.0, 4.0, 3.0, 5.0]
    assert rows.constraint.dtype.kind == "i" and rows.side.dtype.kind == "i"
    g = np.array([1.5, 1.5, 3.25, 0.0, 5.0, 7.0])
    assert rows.values(g).tolist() == [0.5, 0.5, 1.0, 4.0, 0.25, 0.0]
    assert rows.values(list(g)).tolist() == [0.5, 0.5, 1.0, 4.0, 0.25, 0.0]
    assert rows.sign().tolist() == [1.0, -1.0, 1.0, -1.0, 1.0, 1.0]
    empty = P._RowMap.of([con()])
    assert empty.side.shape == (0,) and empty.constraint.shape == (0,) and empty.bound.shape == (0,)


def test_pyomo_duals_from_row_multipliers():
    rows = P._RowMap.of([con(lb=1.0), con(ub=2.0), con(lb=-1.0, ub=4.0), con(lb=3.0, ub=3.0)])
    lam = np.array([2.0, 3.0, 0.5, 1.5, -4.0])     # rows: c0 lower, c1 upper, c2 lower, c2 upper, c3 equality
    assert P.pyomo_duals(rows, lam, 4, 1).tolist() == [2.0, -3.0, 0.5 - 1.5, -4.0]
    assert P.pyomo_duals(rows, lam, 4, -1).tolist() == [-2.0, 3.0, 1.0, 4.0]
    assert P.pyomo_duals(rows, list(lam), 5, 1).tolist() == [2.0, -3.0, -1.0, -4.0, 0.0]


def test_bound_and_initial_point():
    assert P._bound(None, -np.inf) == -np.inf and P._bound(2, 0.0) == 2.0 and isinstance(P._bound(2, 0.0), float)
    m = pyo.ConcreteModel()
    m.x = pyo.Var([0, 1, 2], bounds=(0.0, 1.0))
    m.x[1].set_value(5.0, skip_validation=True)
    m.x[2].set_value(-0.5, skip_validation=True)
    m.y = pyo.Var()
    assert P._initial_point([m.x[0], m.x[1], m.x[2], m.y]).tolist() == [0.0, 1.0, 0.0, 0.0]
    m.z = pyo.Var(bounds=(2.0, None))
    assert P._initial_point([m.z]).tolist() == [2.0]


def test_nlp_evaluation_uses_pyomo_derivatives_and_restores_values():
    m = pyo.ConcreteModel()
    m.x = pyo.Var(initialize=0.5)
    m.y = pyo.Var(initialize=2.0, bounds=(-3.0, None))
    m.obj = pyo.Objective(expr=m.x ** 2 * m.y + pyo.exp(m.y), sense=pyo.maximize)
    m.c1 = pyo.Constraint(expr=pyo.inequality(-1.0, m.x * m.y, 4.0))
    m.c2 = pyo.Constraint(expr=m.x + m.y ** 2 == 3.0)
    problem = P._translate(m)
    assert problem.sense == -1 and [v.name for v in problem.variables] == ["x", "y"]
    rows = P._RowMap.of(problem.constraints)
    nlp, casadi_derivatives = P.pyomo_nlp(problem, rows)
    assert casadi_derivatives == ()
    assert [r.kind for r in nlp.rows] == ["pyomo_inequality", "pyomo_equality"] and nlp.m == 3
    assert nlp.rows[1].equality and nlp.lower.tolist() == [-np.inf, -3.0] and nlp.upper.tolist() == [np.inf] * 2
    z = np.array([1.5, -0.5])
    point = nlp.evaluate(z)
    x, y = z
    assert point.objective == pytest.approx(-(x * x * y + np.exp(y)))
    np.testing.assert_allclose(point.gradient, -np.array([2 * x * y, x * x + np.exp(y)]))
    # rows: x y + 1 >= 0, 4 - x y >= 0, x + y^2 - 3 = 0
    np.testing.assert_allclose(point.values, [x * y + 1, 4 - x * y, x + y * y - 3])
    np.testing.assert_allclose(point.jacobian, [[y, x], [-y, -x], [1.0, 2 * y]])
    # levels: max(|bound|, |g|, 1)
    np.testing.assert_allclose(point.levels, [1.0, 4.0, 3.0])
    big = nlp.evaluate(np.array([10.0, 1.0]))
    np.testing.assert_allclose(big.levels, [10.0, 10.0, 11.0])
    # g~: |Hessian of the (sense-signed) objective| times the size of the variables
    H = np.abs(-np.array([[2 * y, 2 * x], [2 * x, np.exp(y)]]))
    np.testing.assert_allclose(point.gradient_scale, H @ np.full(2, 1.5))
    np.testing.assert_allclose(nlp.evaluate(np.array([0.0, 0.0])).gradient_scale, np.abs([[0, 0], [0, 1]]) @ [1, 1])
    assert pyo.value(m.x) == 0.5 and pyo.value(m.y) == 2.0            # the model's values are untouched
    lam = np.array([0.5, 0.25, 2.0])
    expected = -np.array([[2 * y, 2 * x], [2 * x, np.exp(y)]]) - 0.5 * np.array([[0, 1], [1, 0]]) \
        + 0.25 * np.array([[0, 1], [1, 0]]) - 2.0 * np.array([[0, 0], [0, 2]])
    np.testing.assert_allclose(nlp.hessian(z, None, lam), expected)
    import casadi as ca
    zs = ca.SX.sym("z", 2)
    f, g = ca.Function("fg", [zs], list(nlp.expressions(zs, None)))(z)
    assert float(f) == pytest.approx(point.objective) and np.allclose(np.array(g).reshape(-1), point.values)


def test_nlp_falls_back_to_casadi_derivatives_where_pyomo_has_none():
    m = pyo.ConcreteModel()
    m.x = pyo.Var(initialize=0.5)
    m.y = pyo.Var(initialize=0.5)
    m.obj = pyo.Objective(expr=(pyo.Expr_if(IF=m.x >= 0, THEN=m.x, ELSE=-m.x) - 1) ** 2 + m.y ** 2)
    m.c = pyo.Constraint(expr=m.x + 2 * m.y >= 0.5)
    m.e = pyo.Constraint(expr=pyo.Expr_if(IF=m.y >= 0, THEN=m.y, ELSE=0.0) + m.x <= 4)
    problem = P._translate(m)
    nlp, casadi_derivatives = P.pyomo_nlp(problem, P._RowMap.of(problem.constraints))
    assert casadi_derivatives == ("objective", "e")
    point = nlp.evaluate(np.array([2.0, 0.5]))
    np.testing.assert_allclose(point.gradient, [2.0, 1.0])
    np.testing.assert_allclose(point.jacobian, [[1.0, 2.0], [-1.0, -1.0]])
    result = P.solve_pyomo(m)
    assert result.success and result.certificate.diagnostics.casadi_derivatives == ("objective", "e")
    assert pyo.value(m.x) == pytest.approx(1.0, abs=1e-7)


def test_differentiable():
    m = pyo.ConcreteModel()
    m.x = pyo.Var(initialize=1.0)
    assert P._differentiable(m.x ** 2 + pyo.log(m.x), [m.x])
    assert not P._differentiable(pyo.Expr_if(IF=m.x >= 0, THEN=m.x, ELSE=-m.x), [m.x])
    m.x.set_value(0.0)
    assert not P._differentiable(pyo.log(m.x), [m.x])          # not at this point


def test_translate_errors_and_sense():
    m = pyo.ConcreteModel()
    m.x = pyo.Var(initialize=1.0)
    with pytest.raises(ModelError, match="^solve_pyomo needs exactly one active Objective; found 0$"):
        P._translate(m)
    m.o = pyo.Objective(expr=m.x ** 2 + 1)
    problem = P._translate(m)
    assert problem.sense == 1 and problem.constraints == [] and problem.g.shape == (0, 1)
    m.x.fix()
    with pytest.raises(ModelError, match="^solve_pyomo: the model has no free"):
        P._translate(m)


def test_rows_expressions_match_the_row_values():
    import casadi as ca
    g = ca.SX.sym("g", 3)
    rows = P._RowMap.of([con(lb=1.0, ub=4.0), con(ub=2.0), con(lb=3.0, ub=3.0)])
    f = ca.Function("r", [g], [P._rows_expr(g, rows)])
    values = np.array([2.0, 5.0, 3.5])
    assert np.array(f(values)).reshape(-1).tolist() == rows.values(values).tolist()
    assert P._rows_expr(g, P._RowMap.of([con()])).shape == (0, 1)


def test_margin_duals_of_a_to_pyomo_model():
    import lexmargin as lm
    data = lm.Dataset(np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]]), np.array([1.0, 1.0, -1.0]))
    pm = P.to_pyomo(lm.load_model("linear", input_dim=2), data)
    assert np.isnan(P.margin_duals(pm)).all()
    P.solve_pyomo(pm)
    np.testing.assert_allclose(P.margin_duals(pm), [2.0, 2.0, 0.0], atol=1e-7)   # 2 theta = sum lambda_n y_n x_n
    np.testing.assert_allclose(P.theta_of(pm), [1.0, 1.0], atol=1e-8)


def test_certificate_and_result_fields():
    from lexmargin.nlp.options import SolveOptions, Tolerances
    m = build("min")
    tol = Tolerances(kkt=1e-7)
    result = P.solve_pyomo(m, options=SolveOptions(tolerances=tol))
    cert = result.certificate
    assert cert.problem == "pyomo" and cert.norm == "" and cert.tolerances == tol
    assert cert.constraints == "8 Pyomo constraints" and cert.diagnostics.model == "duals_min"
    assert cert.margins.shape == (0,) and cert.multipliers.shape == (0,) and cert.normalized_margin is None
    assert cert.solver.name == "ipopt" and cert.solver.return_status == "Solve_Succeeded"
    assert cert.solver.status == Status.OPTIMAL and cert.solver.iterations > 0 and cert.solver.seconds > 0
    assert result.return_status == "Solve_Succeeded" and result.iterations == cert.solver.iterations
    assert result.seconds == cert.solver.seconds
    assert result.termination_condition == "optimal"


def test_options_object_and_failures_carry_the_certificate():
    from lexmargin.errors import SolverError
    from lexmargin.nlp.options import SolveOptions
    m = build("min")
    stopped = P.solve_pyomo(m, options=SolveOptions(max_iter=2, raise_on_failure=False))
    assert stopped.status == Status.MAX_ITERATIONS and not stopped.loaded
    with pytest.raises(SolverError, match=r"^solve_pyomo\(duals_min\) ended max_iterations \(IPOPT "
                                          r"Maximum_Iterations_Exceeded after 2 iterations\); nothing loaded$") as info:
        P.solve_pyomo(m, options=SolveOptions(max_iter=2))
    assert info.value.status == "max_iterations" and info.value.certificate.status == Status.MAX_ITERATIONS


def test_a_single_constraint_and_inactive_or_nested_components():
    m = pyo.ConcreteModel()
    m.x = pyo.Var(initialize=3.0)
    m.obj = pyo.Objective(expr=m.x ** 2)
    m.c = pyo.Constraint(expr=m.x >= 1)
    assert P.solve_pyomo(m).success and pyo.value(m.x) == pytest.approx(1.0, abs=1e-9)
    assert m.dual[m.c] == pytest.approx(2.0, abs=1e-7)
    m.off = pyo.Objective(expr=-m.x)                 # a deactivated objective and constraint are ignored
    m.off.deactivate()
    m.never = pyo.Constraint(expr=m.x >= 5)
    m.never.deactivate()
    m.sub = pyo.Block()
    m.sub.c = pyo.Constraint(expr=m.x >= 2)          # constraints in sub-blocks count
    result = P.solve_pyomo(m)
    assert result.n_constraints == 2 and pyo.value(m.x) == pytest.approx(2.0, abs=1e-9)
    assert m.dual[m.sub.c] == pytest.approx(4.0, abs=1e-7) and m.dual[m.c] == pytest.approx(0.0, abs=1e-9)
    m2 = pyo.ConcreteModel()
    m2.x = pyo.Var(initialize=1.0)
    m2.sub = pyo.Block()
    m2.sub.obj = pyo.Objective(expr=(m2.x - 4) ** 2)  # an objective in a sub-block
    assert P.solve_pyomo(m2).success and pyo.value(m2.x) == pytest.approx(4.0, abs=1e-8)


def test_evaluation_outside_the_domains_is_quiet(caplog):
    """The certificate may evaluate points outside the variables' domains (infeasible iterates): no Pyomo
    warnings, and the model's values are restored."""
    m = pyo.ConcreteModel()
    m.x = pyo.Var(domain=pyo.NonNegativeReals, initialize=1.0)
    m.obj = pyo.Objective(expr=(m.x - 2) ** 2)
    m.c = pyo.Constraint(expr=m.x <= 5)
    problem = P._translate(m)
    nlp, _ = P.pyomo_nlp(problem, P._RowMap.of(problem.constraints))
    with caplog.at_level("WARNING"):
        point = nlp.evaluate(np.array([-3.0]))
    assert point.objective == 25.0 and point.values.tolist() == [8.0]
    assert not [r for r in caplog.records if r.levelname == "WARNING"] and pyo.value(m.x) == 1.0


def kinked_model(k=8.0, x0=0.0, ub=5.0):
    """(x - 1)^2 + k (max(0, x) - max(0, max(0, x))): exactly (x - 1)^2 (the bracket is 0 for every x), yet the
    derivative conventions at x = 0 (1/2 per max at a tie) make it read stationary there (hunt of 2026-12-02)."""
    from pyomo.core.expr import MaxExpression

    m = pyo.ConcreteModel()
    m.x = pyo.Var(initialize=x0, bounds=(-5, ub))
    relu = lambda e: MaxExpression([0, e])      # noqa: E731
    m.obj = pyo.Objective(expr=(m.x - 1) ** 2 + k * (relu(m.x) - relu(relu(m.x))))
    return m


def test_a_point_at_a_kink_is_never_optimal():
    cert = P.certify_pyomo(kinked_model())
    assert cert.kkt.max == 0.0 and cert.status == Status.REGION_BOUNDARY
    # max(0, x) twice (two nodes) and the outer max(0, max(0, x))
    assert len(cert.diagnostics.kinks) == 3 and all(k.startswith("objective: max(") for k in cert.diagnostics.kinks)
    solved = P.solve_pyomo(kinked_model(), raise_on_failure=False, load_solutions=False)
    assert solved.status == Status.REGION_BOUNDARY and not solved.success
    # started elsewhere IPOPT reaches x = 1, away from every kink: optimal, no kinks
    away = P.solve_pyomo(kinked_model(x0=0.3))
    assert away.status == Status.OPTIMAL and away.values[0] == pytest.approx(1.0, abs=1e-9)
    assert away.certificate.diagnostics.kinks == ()
    back = type(cert.diagnostics).from_dict(cert.diagnostics.to_dict())
    assert tuple(back.kinks) == cert.diagnostics.kinks


def switch_model(kind, a0, b0=0.0):
    """One node of each kind with its switching quantity set by x (and y): min of it plus a smooth term."""
    m = pyo.ConcreteModel()
    m.x = pyo.Var(initialize=a0)
    m.y = pyo.Var(initialize=b0)
    from pyomo.core.expr import Expr_if, MaxExpression, MinExpression
    node = {"abs": abs(m.x - m.y), "max": MaxExpression([m.x, m.y, m.y - 10]), "min": MinExpression([m.x, m.y]),
            "if": Expr_if(IF=m.x <= m.y, THEN=m.x, ELSE=m.y)}[kind]
    m.obj = pyo.Objective(expr=node + (m.x - 3) ** 2 + (m.y - 3) ** 2)
    return m


@pytest.mark.parametrize("kind", ["abs", "max", "min", "if"])
def test_kinks_are_found_at_their_switch_relative_to_the_first_order_terms(kind):
    """x - y is the switching quantity; ||z|| = 1e6 with |grad|_1 = 2: a switch up to 2e6 tol.active away counts."""
    def found(a, b, tol=1e-8, w=None):
        m = switch_model(kind, a, b)
        variables = [m.x, m.y]
        if w is None:
            return P.kinks([m.obj.expr], ["objective"], variables, np.array([a, b]), tol)
        m.w = pyo.Var(initialize=w)             # ||z||_inf = |w|, outside the node
        return P.kinks([m.obj.expr], ["objective"], variables + [m.w], np.array([a, b, w]), tol)

    assert found(1e6, 1e6) and found(1e6 + 1e-3, 1e6) and found(1e6, 1e6 + 1e-3)
    assert not found(1e6 + 1.0, 1e6) and not found(1e6, 1e6 - 1.0)
    assert not found(2.0, 1.0) and found(1.0, 1.0) and found(0.0, 0.0)
    # the first-order terms of both sides (|grad|_1 = 1 + 1, times ||z||_inf = 1e6) decide where the values are small
    assert found(1.5e-2, 0.0, w=1e6) and not found(2.5e-2, 0.0, w=1e6)
    # ||z||_inf below 1 counts as itself: 1e-9 apart at size 0.01 is 5e-8 of the first-order terms, not a kink
    assert not found(0.01 + 1e-9, 0.01) and found(0.01 + 1e-10, 0.01)
    # the tolerance scales it
    assert found(1e6 + 1.0, 1e6, tol=1e-6) and not found(1e6 + 1.0, 1e6, tol=1e-7)
    # the variables keep their values
    m = switch_model(kind, 5.0, 7.0)
    P.kinks([m.obj.expr], ["objective"], [m.x, m.y], np.array([1.0, 1.0]), 1e-8)
    assert (m.x.value, m.y.value) == (5.0, 7.0)


def test_kinks_of_constants_and_of_inactive_constraints():
    from pyomo.core.expr import MaxExpression
    m = pyo.ConcreteModel()
    m.x = pyo.Var(initialize=2.0)
    m.c = pyo.Constraint(expr=MaxExpression([0, m.x - 5]) <= 10)          # at x = 2 inactive, though max(0, -3)
    m.d = pyo.Constraint(expr=MaxExpression([0, m.x - 2]) >= 0)           # active (0 >= 0) and at its kink
    m.obj = pyo.Objective(expr=(m.x - 2) ** 2)
    cert = P.certify_pyomo(m)
    assert cert.status == Status.REGION_BOUNDARY and cert.diagnostics.kinks == ("d: max(0, x - 2)",)
    m.d.deactivate()
    cert = P.certify_pyomo(m)
    assert cert.status == Status.OPTIMAL and cert.diagnostics.kinks == ()
    # a max of constants never switches with the variables
    assert P.kinks([MaxExpression([0.0, 0.0]) + m.x], ["e"], [m.x], np.array([1.0]), 1e-8) == ()



def test_kinks_of_every_expression_each_node_once_and_named_in_80_characters():
    from pyomo.core.expr import Expr_if, MaxExpression, MinExpression
    m = pyo.ConcreteModel()
    m.x = pyo.Var(initialize=0.0)
    m.y = pyo.Var(initialize=0.0)
    z = np.array([2.0, 2.0])
    e = abs(m.x - m.y)
    # one entry per expression with a kink; a node shared by two terms once
    assert P.kinks([e + 2 * e, MinExpression([m.x, m.y])], ["a", "b"], [m.x, m.y], z, 1e-8) == \
        ("a: abs(x - y)", "b: min(x, y)")
    long = abs(sum(m.x * k for k in range(1, 14)) - 91 * m.y)
    (entry,) = P.kinks([long], ["c"], [m.x, m.y], z, 1e-8)
    assert len(str(long)) > 80 and entry == "c: " + str(long)[:80]
    # min compares its two smallest arguments, max its two largest (here 3 arguments each)
    assert P.kinks([MinExpression([m.x, m.y, m.y + 10])], ["d"], [m.x, m.y], z, 1e-8) == ("d: min(x, y, y + 10)",)
    assert P.kinks([MaxExpression([m.x, m.y, m.y + 10])], ["d"], [m.x, m.y], z, 1e-8) == ()
    # nodes that cannot switch: a max of one argument, an Expr_if with a constant condition
    assert P.kinks([MaxExpression([m.x]), Expr_if(IF=True, THEN=m.x, ELSE=m.y)], ["e", "f"], [m.x, m.y], z,
                   1e-8) == ()


def test_kinks_count_no_first_order_size_for_constants_or_what_pyomo_cannot_differentiate():
    """max(0, x) at x = 5e-9 (||z||_inf = 5e-9) is |x| away from its switch, all of the first-order size: no kink; the
    constant 0 adds nothing to it, and neither does the inner max of max(max(x, 0), y) (Pyomo cannot differentiate
    it), which then has its values' size 5e-9 alone."""
    from pyomo.core.expr import MaxExpression
    m = pyo.ConcreteModel()
    m.x = pyo.Var(initialize=0.0)
    m.y = pyo.Var(initialize=0.0)
    z = np.array([5e-9, 0.0])
    assert P.kinks([MaxExpression([0, m.x])], ["a"], [m.x, m.y], z, 1e-8) == ()
    assert P.kinks([MaxExpression([MaxExpression([m.x, 0]), m.y])], ["b"], [m.x, m.y], z, 1e-8) == ()
    # with ||z||_inf = 1 (y) the same 5e-9 is within 1e-8 of the first-order size: a kink
    assert P.kinks([MaxExpression([0, m.x])], ["a"], [m.x, m.y], np.array([5e-9, 1.0]), 1e-8) == ("a: max(0, x)",)


def test_kinks_set_and_restore_values_outside_the_domain_silently(caplog):
    """A solver's point may lie just outside a variable's domain (z = -2e-12 for x >= 0), and so may the values loaded
    before (-1e-12): kinks evaluates there and puts them back without Pyomo's domain warning."""
    m = pyo.ConcreteModel()
    m.x = pyo.Var(domain=pyo.NonNegativeReals, initialize=1.0)
    m.x.set_value(-1e-12, skip_validation=True)
    with caplog.at_level("WARNING"):
        assert P.kinks([abs(m.x)], ["a"], [m.x], np.array([-2e-12]), 1e-8) == ()
    assert m.x.value == -1e-12
    assert not [r for r in caplog.records if "not in domain" in r.getMessage()]
def test_an_interior_point_near_a_degenerate_row_is_finished():
    """Hard-margin SVM with bias in Pyomo, 5 integer samples in R^4 (hunt of 2026-12-02): sample 1 is active with
    multiplier 0 at the optimum (w* = (-1/5, 2/5, 1/5, -2/5), b* = 3/5, checked in rationals); IPOPT left it at slack
    1.1e-5 with multiplier 4.9e-6 (residuals 4.5e-11, w off by 8e-6) and the finish was skipped as not needed."""
    X = np.array([[2.0, -2.0, 2.0, 2.0], [-1.0, -2.0, 1.0, -2.0], [2.0, -2.0, -2.0, 0.0], [1.0, -1.0, 1.0, -2.0],
                  [1.0, 1.0, 1.0, 0.0]])
    y = np.array([-1.0, 1.0, -1.0, 1.0, 1.0])
    m = pyo.ConcreteModel()
    m.w = pyo.Var(range(4), initialize=0.0)
    m.b = pyo.Var(initialize=0.0)
    m.obj = pyo.Objective(expr=sum(m.w[j] ** 2 for j in range(4)))
    m.c = pyo.Constraint(range(5), rule=lambda m, n: float(y[n]) * (sum(float(X[n, j]) * m.w[j] for j in range(4))
                                                                     + m.b) >= 1)
    solved = P.solve_pyomo(m)
    assert solved.status == Status.OPTIMAL and solved.certificate.finish.applied
    np.testing.assert_allclose(solved.values, [-0.2, 0.4, 0.2, -0.4, 0.6], rtol=0, atol=1e-14)
