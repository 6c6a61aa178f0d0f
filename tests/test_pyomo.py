"""Pyomo interop: hand-written Pyomo models solved via CasADi/IPOPT, and the max-margin round trip."""

import math

import numpy as np
import pytest

from lexmargin import Block, DataError, Dataset, Model, ModelError, SolverError, load_model, ops

pyo = pytest.importorskip("pyomo.environ")
from pyomo.core.expr.numeric_expr import MaxExpression, MinExpression, UnaryFunctionExpression

from lexmargin.interop.pyomo import margin_duals, solve_pyomo, theta_of, to_pyomo


# ---- hand-written models with analytic solutions ------------------------------------------------
def _qp():
    """min x0^2 + x1^2 + (z-1)^2 + w^2 + (t-3)^2 + (u-5)^2 with
    x0 + x1 >= 2 (dual 2), z == 3 (dual 4), t <= 1 (dual -4), 0 <= u <= 2 (dual -6), x0 <= 5 (inactive),
    bound w >= 2 (reduced cost 4).  Solution x = (1, 1), z = 3, w = 2, t = 1, u = 2, objective 23."""
    m = pyo.ConcreteModel(name="qp")
    m.x = pyo.Var([0, 1], initialize=0.0)
    m.z, m.t, m.u = pyo.Var(), pyo.Var(), pyo.Var()
    m.w = pyo.Var(bounds=(2, None), initialize=5.0)
    m.shift = pyo.Expression(expr=(m.z - 1) ** 2)
    m.obj = pyo.Objective(expr=m.x[0] ** 2 + m.x[1] ** 2 + m.shift + m.w ** 2 + (m.t - 3) ** 2 + (m.u - 5) ** 2)
    m.ge = pyo.Constraint(expr=m.x[0] + m.x[1] >= 2)
    m.eq = pyo.Constraint(expr=m.z == 3)
    m.le = pyo.Constraint(expr=m.t <= 1)
    m.ranged = pyo.Constraint(expr=pyo.inequality(0, m.u, 2))
    m.inactive = pyo.Constraint(expr=m.x[0] <= 5)
    m.dual = pyo.Suffix(direction=pyo.Suffix.IMPORT)
    m.rc = pyo.Suffix(direction=pyo.Suffix.IMPORT)
    return m


def test_qp_solution_and_duals_follow_pyomo_sign_convention():
    m = _qp()
    result = solve_pyomo(m)
    assert result.success and result.status == "optimal" and result.loaded
    assert result.termination_condition == "optimal"
    assert (result.n_variables, result.n_constraints) == (6, 5)
    assert result.objective == pytest.approx(23.0, abs=1e-8)
    values = [pyo.value(v) for v in (m.x[0], m.x[1], m.z, m.w, m.t, m.u)]
    np.testing.assert_allclose(values, [1, 1, 3, 2, 1, 2], atol=1e-8)
    duals = {c.name: m.dual[c] for c in (m.ge, m.eq, m.le, m.ranged, m.inactive)}
    expected = {"ge": 2.0, "eq": 4.0, "le": -4.0, "ranged": -6.0, "inactive": 0.0}
    for name, value in expected.items():
        assert duals[name] == pytest.approx(value, abs=1e-6), name
    assert m.rc[m.w] == pytest.approx(4.0, abs=1e-6)
    assert result.to_dict()["success"] is True


def test_maximization_flips_objective_and_duals():
    m = pyo.ConcreteModel()
    m.x = pyo.Var(initialize=3.0)
    m.obj = pyo.Objective(expr=-m.x ** 2, sense=pyo.maximize)
    m.c = pyo.Constraint(expr=m.x >= 1)
    result = solve_pyomo(m)
    assert result.objective == pytest.approx(-1.0, abs=1e-8)
    assert pyo.value(m.x) == pytest.approx(1.0, abs=1e-8)
    assert m.dual[m.c] == pytest.approx(-2.0, abs=1e-6)  # d(max)/d(bound) = -2 b


def test_dual_suffix_is_created_when_missing():
    m = pyo.ConcreteModel()
    m.x = pyo.Var()
    m.obj = pyo.Objective(expr=m.x ** 2)
    m.c = pyo.Constraint(expr=m.x >= 1)
    solve_pyomo(m)
    assert isinstance(m.dual, pyo.Suffix) and m.dual[m.c] == pytest.approx(2.0, abs=1e-6)


def test_nonlinear_functions_translate():
    """Separable problem, each term with a closed-form minimizer."""
    m = pyo.ConcreteModel()
    m.v = pyo.Var(range(9), initialize=0.5)
    m.d = pyo.Var(bounds=(0.1, None), initialize=3.0)
    m.b = pyo.Var(bounds=(1e-3, None), initialize=2.0)
    m.p = pyo.Param(initialize=0.75, mutable=True)
    v = m.v
    m.obj = pyo.Objective(expr=(
        pyo.exp(v[0]) - 2 * v[0]                               # log 2
        + m.b - pyo.log(m.b)                                   # 1
        + pyo.sqrt(v[1] ** 2 + 1) - v[1] / 2                   # 1/sqrt(3)
        + m.d + 1 / m.d                                        # 1
        + (pyo.tanh(v[2]) - 0.5) ** 2                          # atanh(0.5)
        + (abs(v[3]) - 3) ** 2                                 # 3 (from 0.5)
        + (MaxExpression((v[4], 0)) - 2) ** 2                  # 2
        + (MinExpression((v[5], 10)) - 4) ** 2                 # 4
        + (pyo.Expr_if(IF=v[6] >= 0, THEN=v[6], ELSE=-v[6]) - 1) ** 2  # 1 (from 0.5)
        + (v[7] - m.p) ** 2                                    # 0.75 (parameter)
        + (pyo.sin(v[8]) - 0.5) ** 2))                         # pi / 6
    result = solve_pyomo(m, tol=1e-12)
    assert result.success
    got = [pyo.value(v[0]), pyo.value(m.b), pyo.value(v[1]), pyo.value(m.d), pyo.value(v[2]), pyo.value(v[3]),
           pyo.value(v[4]), pyo.value(v[5]), pyo.value(v[6]), pyo.value(v[7]), pyo.value(v[8])]
    expected = [math.log(2), 1, 1 / math.sqrt(3), 1, math.atanh(0.5), 3, 2, 4, 1, 0.75, math.pi / 6]
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_fixed_variables_are_constants():
    m = pyo.ConcreteModel()
    m.x, m.y = pyo.Var(initialize=0.0), pyo.Var(initialize=2.5)
    m.y.fix()
    m.obj = pyo.Objective(expr=(m.x - m.y) ** 2)
    result = solve_pyomo(m)
    assert result.n_variables == 1
    assert pyo.value(m.x) == pytest.approx(2.5, abs=1e-8) and pyo.value(m.y) == 2.5


def test_unsuccessful_solves_load_nothing():
    m = pyo.ConcreteModel()
    m.x = pyo.Var(initialize=0.3)
    m.obj = pyo.Objective(expr=m.x ** 2)
    m.a = pyo.Constraint(expr=m.x >= 1)
    m.b = pyo.Constraint(expr=m.x <= 0)
    result = solve_pyomo(m, raise_on_failure=False)
    assert result.status == "infeasible" and result.termination_condition == "infeasible"
    assert not result.success and not result.loaded and pyo.value(m.x) == 0.3
    with pytest.raises(SolverError, match="nothing loaded") as info:
        solve_pyomo(m)                                  # raise_on_failure=True: the default of every solve
    assert info.value.status == "infeasible" and info.value.certificate.status == "infeasible"


def test_iteration_limit_status_and_option_passing():
    m = pyo.ConcreteModel()
    m.x = pyo.Var(range(3), initialize=3.0)
    m.obj = pyo.Objective(expr=sum(pyo.exp(m.x[i]) - (i + 1) * m.x[i] for i in range(3)))
    limited = solve_pyomo(m, max_iter=1, raise_on_failure=False)
    assert limited.status == "max_iterations" and limited.termination_condition == "maxIterations"
    assert not limited.loaded and pyo.value(m.x[0]) == 3.0
    assert solve_pyomo(m, ipopt={"ipopt.max_iter": 100}).success
    np.testing.assert_allclose([pyo.value(m.x[i]) for i in range(3)], np.log([1, 2, 3]), atol=1e-7)


def test_translation_errors():
    m = pyo.ConcreteModel()
    m.x = pyo.Var(initialize=1.0)
    with pytest.raises(ModelError, match="exactly one active Objective"):
        solve_pyomo(m)
    m.o1 = pyo.Objective(expr=UnaryFunctionExpression((m.x,), "erf", math.erf))
    with pytest.raises(ModelError, match="unsupported function 'erf'"):
        solve_pyomo(m)
    m.o2 = pyo.Objective(expr=m.x ** 2)
    with pytest.raises(ModelError, match="found 2"):
        solve_pyomo(m)
    m.o1.deactivate()
    m.n = pyo.Var(domain=pyo.Integers)
    m.c = pyo.Constraint(expr=m.x + m.n >= 1)
    with pytest.raises(ModelError, match="discrete"):
        solve_pyomo(m)
    m.c.deactivate()
    m.x.fix()
    with pytest.raises(ModelError, match="no free"):
        solve_pyomo(m)


# ---- lexmargin models written as Pyomo models ---------------------------------------------------
def _separable(n=16, seed=3):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((4 * n, 3))
    score = X @ np.array([1.0, -2.0, 0.5])
    keep = np.abs(score) > 0.8
    return Dataset(X[keep][:n], np.sign(score[keep][:n]))


DATA = _separable()


@pytest.mark.parametrize("name, options", [
    ("linear", {}), ("two_layer", {"activation": "relu", "width": 2}), ("ensemble", {"widths": 2}),
    ("svm_bias", {"sign": "both"}), ("log_predictor", {"eps": 0.5}),
])
def test_to_pyomo_constraints_are_the_model_margins(name, options):
    model = load_model(name, input_dim=3, **options)
    theta0 = np.abs(model.random_params(1)) if name == "log_predictor" else model.random_params(1)
    data = DATA if name != "log_predictor" else Dataset(np.abs(DATA.X) * DATA.y[:, None], DATA.y)
    pm = to_pyomo(model, data, init=theta0)
    assert len(pm.theta) == model.n_params and len(pm.margin) == data.n_samples
    np.testing.assert_array_equal(theta_of(pm), theta0)
    bodies = np.array([pyo.value(pm.margin[n].body) for n in range(data.n_samples)])
    np.testing.assert_allclose(bodies, model.margins(theta0, data), rtol=1e-12, atol=1e-12)
    assert all(pm.margin[n].lb == 1 and pm.margin[n].ub is None for n in range(data.n_samples))
    assert pyo.value(pm.objective) == pytest.approx(float(theta0 @ theta0))


def _cvxpy_max_margin(data):
    cp = pytest.importorskip("cvxpy")
    w = cp.Variable(data.n_features)
    constraint = cp.multiply(data.y, data.X @ w) >= 1
    cp.Problem(cp.Minimize(cp.sum_squares(w)), [constraint]).solve(
        solver=cp.CLARABEL, tol_gap_abs=1e-12, tol_gap_rel=1e-12, tol_feas=1e-12)
    return w.value, constraint.dual_value


def test_linear_round_trip_matches_cvxpy():
    model = load_model("linear", input_dim=3)
    pm = to_pyomo(model, DATA)
    result = solve_pyomo(pm)
    assert result.success
    w, lam = _cvxpy_max_margin(DATA)
    np.testing.assert_allclose(theta_of(pm), w, atol=1e-6)
    np.testing.assert_allclose(margin_duals(pm), lam, atol=1e-6)
    assert np.count_nonzero(lam > 1e-6) >= 1
    assert result.objective == pytest.approx(float(w @ w), rel=1e-8)


def test_linear_round_trip_matches_max_margin_certificate():
    maxmargin = pytest.importorskip("lexmargin.problems.maxmargin")
    model = load_model("linear", input_dim=3)
    cert = maxmargin.max_margin(model, DATA)
    assert cert.success
    pm = to_pyomo(model, DATA)
    solve_pyomo(pm)
    np.testing.assert_allclose(theta_of(pm), cert.theta, atol=1e-6)
    np.testing.assert_allclose(margin_duals(pm), cert.multipliers, atol=1e-6)


def test_to_pyomo_errors():
    model = load_model("linear", input_dim=3)
    with pytest.raises(ModelError, match="init must have 3 entries"):
        to_pyomo(model, DATA, init=np.ones(2))
    with pytest.raises(DataError, match="expects 2 features"):
        to_pyomo(load_model("linear", input_dim=2), DATA)
    constant = Model("constant", [Block.array("w", 3)], input_dim=3, margin=lambda p, x, y: 0.0 * y + 2.0)
    with pytest.raises(ModelError, match="does not depend on the parameters"):
        to_pyomo(constant, DATA)


def test_ops_pyomo_backend_inside_a_declared_model():
    model = Model("softplus", [Block.array("w", 3)], input_dim=3,
                  margin=lambda p, x, y: ops.log(ops.softplus(ops.dot(p["w"], y * x))))
    theta0 = np.array([0.2, -0.1, 0.4])
    pm = to_pyomo(model, DATA, init=theta0)
    bodies = [pyo.value(pm.margin[n].body) for n in range(DATA.n_samples)]
    np.testing.assert_allclose(bodies, model.margins(theta0, DATA), rtol=1e-12)


def test_bounds_exact_by_default_and_ipopt_relaxation_on_request():
    exact, relaxed = _qp(), _qp()
    solve_pyomo(exact)
    solve_pyomo(relaxed, ipopt={"bound_relax_factor": 1e-8}, finish=False)  # IPOPT's own point, as is
    assert pyo.value(exact.t) == pytest.approx(1.0, abs=1e-10)
    assert abs(pyo.value(relaxed.t) - 1.0) > 1e-9  # IPOPT's relaxed bound t <= 1 + 1e-8


def test_linear_terms_with_parameters_fixed_variables_and_shared_subexpressions():
    m = pyo.ConcreteModel()
    m.x, m.y, m.s = pyo.Var(initialize=0.0), pyo.Var(initialize=1.0), pyo.Var(initialize=0.5)
    m.y.fix()
    m.p = pyo.Param(initialize=2.0, mutable=True)
    linear = m.p * m.x + 2 * m.y + 3  # 2 x + 5
    shared = m.s + 1
    m.obj = pyo.Objective(expr=(linear - 10) ** 2 + (shared * shared - 4) ** 2)
    assert solve_pyomo(m, tol=1e-12).success
    assert pyo.value(m.x) == pytest.approx(2.5, abs=1e-7)
    assert pyo.value(m.s) == pytest.approx(1.0, abs=1e-7)
    m.p = 4.0  # mutable parameters are read at translation time
    solve_pyomo(m, tol=1e-12)
    assert pyo.value(m.x) == pytest.approx(1.25, abs=1e-7)


def test_result_carries_the_point_in_pyomo_conventions_loaded_or_not():
    """values, duals and reduced costs on the result are what loading writes (and are there without loading)."""
    m = _qp()
    result = solve_pyomo(m, load_solutions=False)
    assert result.success and not result.loaded and len(m.dual) == 0
    cons, variables = result.certificate.diagnostics.constraints, result.certificate.diagnostics.variables
    assert dict(zip(cons, result.duals)) == pytest.approx({"ge": 2.0, "eq": 4.0, "le": -4.0, "ranged": -6.0,
                                                           "inactive": 0.0}, abs=1e-6)
    assert dict(zip(variables, result.reduced_costs))["w"] == pytest.approx(4.0, abs=1e-6)
    loaded = solve_pyomo(m)
    assert [m.dual[c] for c in (m.ge, m.eq, m.le, m.ranged, m.inactive)] == loaded.duals.tolist()
    assert [pyo.value(v) for v in (m.x[0], m.x[1], m.z, m.w, m.t, m.u)] == [
        dict(zip(variables, loaded.values))[n] for n in ("x[0]", "x[1]", "z", "w", "t", "u")]
    assert [m.rc[v] for v in (m.w, m.t)] == [dict(zip(variables, loaded.reduced_costs))[n] for n in ("w", "t")]
    d = loaded.to_dict()
    assert d["duals"] == loaded.duals.tolist() and d["values"] == loaded.values.tolist()
    assert d["certificate"]["diagnostics"]["multipliers"] == "solver"
