"""Max-margin (lexmargin.problems.maxmargin): the NLP the certificate evaluates is the NLP IPOPT solves, a
working set is accepted only when no sample is violated (not even by 1e-6), multipliers come back in the
user's units for every norm, and statuses are decided by the certificates of the starts."""

import casadi as ca
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from verify_helpers import PROPERTY, three_class_points

import lexmargin as lm
from lexmargin.modeling.regions import RegionMargins
from lexmargin.nlp.norms import OBJECTIVE, get_norm
from lexmargin.sweep import relu_teacher_data
from lexmargin.nlp.options import SolveOptions, Tolerances
from lexmargin.nlp.status import Status
from lexmargin.problems import maxmargin as M
from lexmargin.problems.margins import LinearMargins, ModelMargins

LINEAR2 = lm.load_model("linear", input_dim=2)
DEEP = lm.load_model("deep_linear", input_dim=2, depth=2, width=2)
RELU = lm.load_model("two_layer", input_dim=2, activation="relu", width=2)
X4 = np.array([[1.0, 0.2], [-1.0, 0.1], [0.8, -0.3], [-0.9, -0.2]])
Y4 = np.array([1.0, -1.0, 1.0, -1.0])
DATA4 = lm.Dataset(X4, Y4)


def casadi_reference(nlp, z, lam):
    """Objective, gradient, rows, Jacobian and Hessian of the Lagrangian from the NLP's CasADi expressions."""
    zs = nlp.symbol.sym("z", nlp.n)
    ls = nlp.symbol.sym("l", nlp.m)
    f, g = nlp.expressions(zs, None)
    out = [f, ca.gradient(f, zs), g, ca.jacobian(g, zs), ca.hessian(f - ca.dot(ls, g), zs)[0]]
    values = ca.Function("ref", [zs, ls], [ca.densify(e) for e in out])(z, lam)
    return [np.array(v) for v in values]


def check_nlp(nlp, z, lam):
    f, grad, g, jac, hess = casadi_reference(nlp, z, lam)
    point = nlp.evaluate(z)
    assert point.objective == pytest.approx(f.item(), rel=1e-12, abs=1e-14)
    np.testing.assert_allclose(point.gradient, grad.reshape(-1), rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(point.values, g.reshape(-1), rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(point.jacobian, jac, rtol=1e-11, atol=1e-13)
    H = nlp.hessian(z, None, lam)
    H = np.diag(H) if nlp.hessian_diagonal else H
    np.testing.assert_allclose(H, hess, rtol=1e-10, atol=1e-12)
    return point


@pytest.mark.parametrize("norm,p", [("l2", None), ("l1", None), ("linf", None), ("lp", 3.0)])
def test_margin_nlp_evaluation_matches_its_expressions_linear(norm, p):
    rng = np.random.default_rng(0)
    data = lm.Dataset(rng.standard_normal((5, 2)) * 8.0, np.array([1.0, -1, 1, -1, 1]))
    source = LinearMargins(LINEAR2, data)
    lift = get_norm(norm, p).lift(OBJECTIVE, 2)
    index = np.array([3, 0, 4])
    nlp = M.margin_nlp(source, lift, index, name="mm")
    assert nlp.name == "mm" and nlp.n == lift.n and nlp.hessian_diagonal and nlp.symbol is source.symbol
    assert nlp.rows[0].kind == "margin" and nlp.rows[0].samples.tolist() == [3, 0, 4]
    assert [r.kind for r in nlp.rows] == ["margin"] + (["norm"] if lift.n_rows else [])
    assert nlp.m == 3 + lift.n_rows
    assert np.array_equal(nlp.lower, lift.bounds()[0]) and np.array_equal(nlp.upper, lift.bounds()[1])
    z = np.abs(rng.standard_normal(lift.n)) + 0.5
    point = check_nlp(nlp, z, rng.standard_normal(nlp.m))
    np.testing.assert_allclose(point.values[:3], source.values(lift.theta(z), index) - 1.0)
    np.testing.assert_allclose(point.levels, np.concatenate([np.ones(3), lift.row_levels(z)]))
    assert np.array_equal(nlp.theta(z), lift.theta(z))


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_margin_nlp_evaluation_matches_its_expressions_nonlinear(norm):
    rng = np.random.default_rng(1)
    source = ModelMargins(DEEP, DATA4)
    lift = get_norm(norm).lift(OBJECTIVE, DEEP.n_params)
    nlp = M.margin_nlp(source, lift, np.arange(4))
    assert not nlp.hessian_diagonal and nlp.x_scale is None
    z = rng.standard_normal(lift.n)
    if norm == "linf":
        z[-1] = 3.0
    check_nlp(nlp, z, rng.standard_normal(nlp.m))


def test_margin_nlp_with_region_rows():
    anchor = np.array([1.0, 0.0, -1.0, 0.0, 1.0, -1.0])
    region = RegionMargins(RELU, DATA4, anchor)
    lift = get_norm("l2").lift(OBJECTIVE, RELU.n_params)
    nlp = M.margin_nlp(region, lift, np.arange(4))
    assert [r.kind for r in nlp.rows] == ["margin", region.extra_kind] and nlp.m == 4 + region.n_extra
    rng = np.random.default_rng(2)
    z = anchor + 0.1 * rng.standard_normal(6)
    point = check_nlp(nlp, z, rng.standard_normal(nlp.m))
    np.testing.assert_allclose(point.levels[4:], region.extra_levels(z))
    without = M.margin_nlp(region, lift, np.arange(4), extra=False)
    assert [r.kind for r in without.rows] == ["margin"] and without.m == 4
    check_nlp(without, z, rng.standard_normal(4))


def test_margin_nlp_scales_columns_of_the_lift():
    data = lm.Dataset(np.array([[1e6, 1e-6], [-1e6, 3e-6], [2e6, -1e-6]]), np.array([1.0, -1.0, 1.0]))
    source = LinearMargins(LINEAR2, data)
    assert source.column_scale is not None
    nlp = M.margin_nlp(source, get_norm("l2").lift(OBJECTIVE, 2), np.arange(3))
    np.testing.assert_array_equal(nlp.x_scale, source.column_scale)


# ---- working set --------------------------------------------------------------------------------------
# x3 sits 1e-6 inside the max-margin solution (1, 1) of x1, x2; x4 is far
WS_X = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5 - 1e-6], [5.0, 0.1]])
WS = M.WorkingSetOptions(enabled=True, initial=1, batch=1, seeding="margins")


def test_working_set_adds_a_sample_violated_by_1e_minus_6():
    """Rounds: {x2} -> add x1 -> the solution (1, 1) violates x3 by 1e-6: it must join before acceptance."""
    cert = lm.max_margin(LINEAR2, lm.Dataset(WS_X, np.ones(4)), working_set=WS)
    assert cert.status == Status.OPTIMAL and cert.margins.min() >= 1 - 1e-9
    assert cert.diagnostics.working_set_rounds == 3 and cert.diagnostics.working_set_size == 3
    assert cert.kkt.primal_feasibility <= 1e-9
    assert cert.multipliers[3] == 0.0 and cert.multipliers[2] > 0
    assert "3 working-set round(s) on 3 constraints" in cert.solver.message


def test_working_set_stopped_early_is_not_optimal():
    ws = M.WorkingSetOptions(enabled=True, initial=1, batch=1, seeding="margins", max_rounds=2)
    cert = lm.max_margin(LINEAR2, lm.Dataset(WS_X, np.ones(4)), working_set=ws, raise_on_failure=False)
    assert cert.status == Status.INACCURATE and not cert.success
    assert cert.kkt.primal_feasibility == pytest.approx(1e-6, rel=1e-3)
    assert cert.diagnostics.working_set_rounds == 2 and cert.diagnostics.working_set_size == 2
    assert cert.multipliers[2:].tolist() == [0.0, 0.0]        # outside the working set


def test_working_set_batches_the_most_violated_first():
    ws = M.WorkingSetOptions(enabled=True, initial=1, batch=2, seeding="margins")
    cert = lm.max_margin(LINEAR2, lm.Dataset(WS_X, np.ones(4)), working_set=ws)
    # round 1 {x2}; round 2 adds x1 and x4 (the two most violated); round 3 adds x3 (violated by 1e-6)
    assert cert.success and cert.diagnostics.working_set_size == 4 and cert.diagnostics.working_set_rounds == 3


def test_working_set_with_norm_rows_places_their_multipliers():
    """linf: the norm's rows come after the N margin rows in the full NLP."""
    cert = lm.max_margin(LINEAR2, lm.Dataset(WS_X, np.ones(4)), norm="linf", working_set=WS)
    assert cert.success and cert.kkt.max <= 1e-8 and cert.margins.min() >= 1 - 1e-9
    assert cert.diagnostics.working_set_size < 4


def test_working_set_when_ipopt_stops():
    cert = lm.max_margin(LINEAR2, lm.Dataset(WS_X, np.ones(4)), working_set=WS, max_iter=0, raise_on_failure=False)
    assert cert.status == Status.MAX_ITERATIONS and cert.diagnostics.working_set_rounds == 1
    # the interior point IPOPT stopped at is finished all the same (a diagonal NLP), on the working set's rows: the
    # certificate on every row still says the solver stopped
    assert cert.finish.applied and not cert.kkt.max <= cert.tolerances.kkt


# ---- units, statuses, starts ------------------------------------------------------------------------------
@pytest.mark.parametrize("norm,p", [("l2", None), ("l1", None), ("linf", None), ("lp", 3.0), ("lp", 1.5)])
def test_multipliers_and_theta_in_the_users_units(norm, p):
    """Data scaled by s (internally by a power of two): theta / s, objective s^-k, multipliers s^-k."""
    base = lm.max_margin(LINEAR2, DATA4, norm=norm, p=p)
    for s in (2.0 ** 20, 1e-7, 3e5):
        cert = lm.max_margin(LINEAR2, lm.Dataset(X4 * s, Y4), norm=norm, p=p)
        k = get_norm(norm, p).objective_degree
        assert cert.diagnostics.scale_exponent != base.diagnostics.scale_exponent
        np.testing.assert_allclose(cert.theta * s, base.theta, rtol=1e-7, atol=1e-9)
        np.testing.assert_allclose(cert.multipliers * s ** k, base.multipliers, rtol=1e-6, atol=1e-9)
        assert cert.objective * s ** k == pytest.approx(base.objective, rel=1e-8)
        np.testing.assert_allclose(cert.margins, base.margins, atol=1e-8)
        assert cert.normalized_margin == pytest.approx(base.normalized_margin * s, rel=1e-7)


def test_certificate_fields_of_a_solve():
    cert = lm.max_margin(LINEAR2, DATA4, route="ipopt")       # the dual route: tests/test_linear_fast.py
    d = cert.diagnostics
    assert (d.model, d.objective_label, d.linear_in_params) == ("linear", "||theta||_2^2", True)
    assert d.working_set_rounds == 1 and d.working_set_size == 4 and d.region is None and d.farkas is None
    assert [s.status for s in d.starts] == [Status.OPTIMAL] and d.starts[0].kkt_max == cert.kkt.max
    assert d.starts[0].objective == pytest.approx(cert.objective) and d.starts[0].iterations == cert.solver.iterations
    assert cert.constraints == "f_n(theta) >= 1" and cert.norm == "l2" and cert.problem == "max_margin"
    assert cert.solver.name == "ipopt" and cert.solver.message.startswith("IPOPT Solve_Succeeded after ")
    np.testing.assert_allclose(cert.margins, LINEAR2.margins(cert.theta, DATA4))
    assert cert.objective == pytest.approx(float(cert.theta @ cert.theta))
    assert cert.normalized_margin == pytest.approx(cert.margins.min() / np.linalg.norm(cert.theta))


def test_normalized_margin():
    problem = M.MaxMarginProblem(DEEP, DATA4)
    assert problem._normalized_margin(np.ones(DEEP.n_params), np.array([3.0, 2.0])) == \
        pytest.approx(2.0 / np.sqrt(DEEP.n_params) ** DEEP.degree)
    assert problem._normalized_margin(np.zeros(DEEP.n_params), np.array([1.0])) is None
    log = lm.load_model("log_predictor", input_dim=2, eps=0.5)
    assert M.MaxMarginProblem(log, lm.Dataset(np.abs(X4), np.ones(4)))._normalized_margin(np.ones(log.n_params),
                                                                                            np.ones(4)) is None


class _Report:
    def __init__(self, residual):
        self.residuals = type("R", (), {"max": residual})()


def test_rank_orders_starts():
    order = [(Status.OPTIMAL, 5.0, 1e-3), (Status.OPTIMAL, 6.0, 0.0), (Status.REGION_BOUNDARY, 1.0, 0.0),
             (Status.INACCURATE, 0.5, 0.0), (Status.MAX_ITERATIONS, 0.1, 1e-4), (Status.FAILED, 0.1, 1e-3),
             (Status.INFEASIBLE, 0.0, 1e-2)]
    ranks = [M._rank(s, _Report(r), obj) for s, obj, r in order]
    assert ranks == sorted(ranks)
    assert M._rank(Status.OPTIMAL, _Report(9.0), 2.0) == (0, 2.0)
    assert M._rank(Status.FAILED, _Report(9.0), 2.0) == (3, 9.0)


def test_infeasibility_status():
    X = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]])
    linear = M.MaxMarginProblem(LINEAR2, lm.Dataset(X, np.ones(3)))       # x and -x with the same label
    for status in (Status.INFEASIBLE, Status.FAILED, Status.INACCURATE):
        got, proof = linear._infeasibility_status(status, [status])
        assert got == Status.NOT_SEPARABLE and proof is not None
        assert proof.weights[:2].tolist() == pytest.approx([0.5, 0.5]) and proof.weights[2] == 0.0
    assert linear._infeasibility_status(Status.MAX_ITERATIONS, [Status.MAX_ITERATIONS]) == (Status.MAX_ITERATIONS,
                                                                                          None)
    separable = M.MaxMarginProblem(LINEAR2, DATA4)
    assert separable._infeasibility_status(Status.INFEASIBLE, [Status.INFEASIBLE]) == (Status.INFEASIBLE, None)
    deep = M.MaxMarginProblem(DEEP, DATA4)
    assert deep._infeasibility_status(Status.INFEASIBLE, [Status.INFEASIBLE] * 2) == (Status.NO_SEPARATING_POINT,
                                                                                      None)
    assert deep._infeasibility_status(Status.INFEASIBLE, [Status.INFEASIBLE, Status.FAILED]) == (Status.INFEASIBLE,
                                                                                                 None)
    assert deep._infeasibility_status(Status.FAILED, [Status.FAILED]) == (Status.FAILED, None)


@pytest.mark.parametrize("bias", [False, True])
def test_the_farkas_lp_runs_once_per_problem(monkeypatch, bias):
    """The dual route asks for a proof when its rows look inconsistent, and the verdict after IPOPT asks again about
    the same rows: one LP per problem, its answer (a proof or None) kept.  Without a proof the dual route hands over
    (None) and the verdict is the status."""
    from lexmargin.problems import dual as D
    from lexmargin.problems import svm_bias as S

    calls = []

    def counted(A, c):
        calls.append(A.shape)
        return None

    monkeypatch.setattr(M, "farkas_proof", counted)
    X = np.array([[1.0, 1.0], [-1.0, -1.0], [1.0, -1.0], [-1.0, 1.0]])      # XOR: no line separates it
    y = np.array([1.0, 1.0, -1.0, -1.0])
    problem = S.SVMBiasQP(lm.Dataset(X, y), positive=True) if bias else M.MaxMarginProblem(LINEAR2, lm.Dataset(X, y))
    opts = SolveOptions.resolve(None)
    assert D.dual_certificate(problem, opts, 0.0) is None and len(calls) == 1
    for status in (Status.INFEASIBLE, Status.FAILED):
        assert problem._infeasibility_status(status, [status]) == (status, None)
    assert calls == [(5, 3) if bias else (4, 2)]          # the bias QP's rows: the margins and b >= 0


def test_not_separable_linear_data_gets_a_proof():
    X = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]])
    cert = lm.max_margin(LINEAR2, lm.Dataset(X, np.ones(3)), raise_on_failure=False)
    assert cert.status == Status.NOT_SEPARABLE and cert.diagnostics.farkas is not None
    assert cert.diagnostics.farkas.weights[2] == 0.0


def test_best_of_several_starts():
    cert = lm.max_margin(DEEP, DATA4, starts=3, seed=0)
    starts = cert.diagnostics.starts
    assert len(starts) == 3 and cert.success
    best = min(s.objective for s in starts if s.status == Status.OPTIMAL)
    assert cert.objective == pytest.approx(best, rel=1e-12)
    assert cert.solver.iterations == sum(s.iterations for s in starts)


# ---- ReLU activation regions -----------------------------------------------------------------------------
def test_relu_statuses_from_the_region_certificates(monkeypatch):
    """Seeds found by exploration: start 0 reaches an interior point of its region (optimal), start 2 a point
    on its region's boundary that the Clarke check does not certify (region_boundary, without the walk),
    starts 1 and 3 no separating point (GD cannot revive a sample no unit is active on: infeasible).  The
    regions are solved by IPOPT here (route="ipopt"; the convex form's walk: test_verify_relu_convex.py)."""
    monkeypatch.setattr(M, "WALK_MAX_STEPS", 1)
    outcomes = {seed: lm.max_margin(RELU, DATA4, starts=1, seed=seed, raise_on_failure=False, route="ipopt")
                for seed in range(4)}
    optimal, boundary = outcomes[0], outcomes[2]
    assert optimal.status == Status.OPTIMAL and optimal.kkt.max <= 1e-8
    region = optimal.diagnostics.region
    assert region.interior and region.tight_sign_constraints == 0 and region.sign_row_weight <= 1e-9
    assert region.restricted_kkt.max <= 1e-8 and region.n_sign_constraints == 8 and region.n_units == 8
    assert "activation region" in optimal.constraints
    assert boundary.status == Status.REGION_BOUNDARY and boundary.kkt.max > 1e-8
    b = boundary.diagnostics.region
    assert b.tight_sign_constraints >= 1 and b.sign_row_weight > 0 and b.restricted_kkt.max <= 1e-8
    assert b.clarke["kinks"] >= 1 and b.clarke["residuals"]["stationarity"] > 1e-8
    assert [w.status for w in b.walk] == [Status.REGION_BOUNDARY] and b.walk[0].binding_sign_rows >= 1
    for seed in (1, 3):
        assert outcomes[seed].status == Status.NO_SEPARATING_POINT
        assert [s.status for s in outcomes[seed].diagnostics.starts] == [Status.INFEASIBLE]
    monkeypatch.setattr(M, "WALK_MAX_STEPS", 25)
    walked = lm.max_margin(RELU, DATA4, starts=1, seed=2, route="ipopt")
    steps = walked.diagnostics.region.walk
    assert [w.status for w in steps] == [Status.REGION_BOUNDARY, Status.OPTIMAL]
    assert steps[1].objective < steps[0].objective == pytest.approx(boundary.objective)
    assert walked.objective == pytest.approx(optimal.objective, rel=1e-9)
    best = lm.max_margin(RELU, DATA4, starts=4, seed=0)
    assert best.status == Status.OPTIMAL and len(best.diagnostics.starts) == 4
    assert best.objective == pytest.approx(min(s.objective for s in best.diagnostics.starts
                                               if s.status == Status.OPTIMAL))


@settings(PROPERTY, max_examples=8)
@given(seed=st.integers(0, 10 ** 6), exponent=st.integers(-30, 30))
def test_linear_max_margin_certificate_at_any_data_scale(seed, exponent):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((6, 2))
    w = rng.standard_normal(2)
    y = np.where(X @ w >= 0, 1.0, -1.0)
    X = X + 0.2 * y[:, None] * w / np.linalg.norm(w)
    s = 10.0 ** exponent
    cert = lm.max_margin(LINEAR2, lm.Dataset(X * s, y))
    ref = lm.max_margin(LINEAR2, lm.Dataset(X, y))
    assert cert.success and cert.kkt.max <= 1e-8 and cert.margins.min() >= 1 - 1e-9
    np.testing.assert_allclose(cert.theta * s, ref.theta, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(cert.multipliers * s ** 2, ref.multipliers, rtol=1e-6, atol=1e-9)


# ---- more: the best start wins, solver accounting, tolerances reach every certificate --------------------
def _random_labels(seed, draws):
    """The draws-th (X, y) of a generator (how the examples below were found by exploration)."""
    rng = np.random.default_rng(seed)
    for _ in range(draws):
        X, y = rng.standard_normal((6, 2)), np.where(rng.random(6) < 0.5, 1.0, -1.0)
    return lm.Dataset(X, y)


def test_the_certificate_of_the_best_start_is_returned():
    """Starts reaching different local optima (found by exploration): the certified one with the smallest
    objective wins, not the first."""
    net = lm.load_model("two_layer", input_dim=2, activation="squared_relu", width=3)
    cert = lm.max_margin(net, _random_labels(2, 4), starts=3, seed=3)
    objectives = [s.objective for s in cert.diagnostics.starts]
    assert all(s.status == Status.OPTIMAL for s in cert.diagnostics.starts)
    assert objectives[0] > min(objectives) + 1.0
    assert cert.objective == pytest.approx(min(objectives), rel=1e-12) and cert.success
    assert all(isinstance(s.kkt_max, float) and s.kkt_max <= 1e-8 for s in cert.diagnostics.starts)
    relu = lm.load_model("two_layer", input_dim=2, activation="relu", width=3)
    cert = lm.max_margin(relu, _random_labels(1, 21), starts=4, seed=20)
    objectives = [s.objective for s in cert.diagnostics.starts]
    # starts reach different points (the first is the normalized-GD start); the smallest objective wins
    assert max(objectives) > min(objectives) + 0.1 and cert.objective == pytest.approx(min(objectives), rel=1e-12)
    assert all(isinstance(s.kkt_max, float) for s in cert.diagnostics.starts)
    assert cert.diagnostics.region.restricted_kkt.max <= 1e-8


def test_limited_memory_start_is_solved_again_with_the_exact_hessian():
    net = lm.load_model("two_layer", input_dim=2, activation="squared_relu", width=2)
    failed = lm.max_margin(net, DATA4, starts=1, max_iter=3, finish=False, raise_on_failure=False)
    assert failed.status == Status.MAX_ITERATIONS and failed.solver.iterations == 6


def test_solver_account_in_the_certificate():
    import time
    started = time.perf_counter()
    cert = lm.max_margin(LINEAR2, DATA4, route="ipopt")       # the dual route: tests/test_linear_fast.py
    elapsed = time.perf_counter() - started
    assert cert.solver.status == Status.OPTIMAL and cert.solver.return_status == "Solve_Succeeded"
    assert 0 < cert.solver.seconds <= elapsed and cert.solver.iterations > 0
    stopped = lm.max_margin(LINEAR2, DATA4, max_iter=0, raise_on_failure=False)
    assert stopped.solver.iterations == 0 and stopped.solver.status == Status.MAX_ITERATIONS
    ws = lm.max_margin(LINEAR2, lm.Dataset(WS_X, np.ones(4)), working_set=WS)
    assert ws.solver.iterations >= 3 and ws.diagnostics.starts[0].iterations == ws.solver.iterations


def test_tolerances_reach_the_certificate():
    """A sample at margin 1 + 1e-4 is active only under a looser active-set tolerance."""
    X = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5 + 1e-4]])
    tight = lm.max_margin(LINEAR2, lm.Dataset(X, np.ones(3)))
    assert tight.active.tolist() == [0, 1] and tight.tolerances == lm.Tolerances()
    loose = lm.max_margin(LINEAR2, lm.Dataset(X, np.ones(3)), tolerances=lm.Tolerances(active=1e-3))
    assert loose.active.tolist() == [0, 1, 2] and loose.tolerances.active == 1e-3
    assert loose.degenerate.tolist() == [2]
    relu = lm.max_margin(RELU, DATA4, starts=1, seed=0, tolerances=lm.Tolerances(active=0.5))
    assert relu.tolerances.active == 0.5 and relu.active.size > lm.max_margin(RELU, DATA4, starts=1,
                                                                              seed=0).active.size


def test_nonconvex_model_without_a_separating_point():
    X = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]])
    cert = lm.max_margin(DEEP, lm.Dataset(X, np.ones(3)), starts=2, raise_on_failure=False)
    assert cert.status == Status.NO_SEPARATING_POINT and cert.diagnostics.farkas is None
    assert [s.status for s in cert.diagnostics.starts] == [Status.INFEASIBLE] * 2


def test_region_certificate_details():
    cert = lm.max_margin(RELU, DATA4, starts=1, seed=0)
    region = cert.diagnostics.region
    assert cert.constraints == ("f_n(theta) >= 1 (solved within the activation region of the start: sign rows "
                                "on pre-activations)")
    assert isinstance(region.n_active_units, int) and 0 < region.n_active_units <= region.n_units
    d = region.to_dict()
    assert d["interior"] is True and d["restricted_kkt"]["max"] == region.restricted_kkt.max


def test_region_with_a_single_sign_row():
    net = lm.load_model("two_layer", input_dim=1, activation="relu", width=1)
    data = lm.Dataset(np.array([[2.0]]), np.array([1.0]))
    region = RegionMargins(net, data, np.ones(net.n_params))
    assert region.n_extra == 1
    nlp = M.margin_nlp(region, get_norm("l2").lift(OBJECTIVE, net.n_params), np.arange(1))
    assert [r.kind for r in nlp.rows] == ["margin", region.extra_kind]


def test_margin_nlp_hessian_of_deeper_sign_rows():
    """Second-layer pre-activations are bilinear in the parameters: their rows have a Hessian."""
    from lexmargin import Block, Model
    from lexmargin.modeling import ops
    deep = Model("relu3", [Block.array("W1", (2, 2), 1), Block.array("W2", (2, 2), 1), Block.array("a", 2, 1)],
                 input_dim=2, output=lambda p, x: ops.dot(p["a"], ops.relu(p["W2"] @ ops.relu(p["W1"] @ x))))
    rng = np.random.default_rng(4)
    anchor = rng.standard_normal(deep.n_params)
    region = RegionMargins(deep, DATA4, anchor)
    nlp = M.margin_nlp(region, get_norm("l2").lift(OBJECTIVE, deep.n_params), np.arange(4))
    three = RegionMargins(deep, lm.Dataset(X4[:3], Y4[:3]), anchor)      # 12 sign rows, not 16
    lam = rng.standard_normal(nlp.m)
    check_nlp(nlp, anchor + 0.1 * rng.standard_normal(deep.n_params), lam)
    assert np.abs(region.extra_hessian(anchor, lam[4:])).max() > 0
    # with the linf norm's rows between the margin and the sign rows (their multipliers come after both)
    lift = get_norm("linf").lift(OBJECTIVE, deep.n_params)
    for source, k in ((region, 4), (three, 3)):
        nlp = M.margin_nlp(source, lift, np.arange(k))
        check_nlp(nlp, np.append(anchor, 3.0), rng.standard_normal(nlp.m))


def test_region_view_with_some_sign_rows_is_the_selection_of_the_whole():
    """``with_sign_rows``: values, Jacobian, levels, Hessian and CasADi expressions of the chosen rows only (the
    deep net's sign rows are bilinear), kinks always over the whole region."""
    from lexmargin import Block, Model
    from lexmargin.modeling import ops
    deep = Model("relu3", [Block.array("W1", (2, 2), 1), Block.array("W2", (2, 2), 1), Block.array("a", 2, 1)],
                 input_dim=2, output=lambda p, x: ops.dot(p["a"], ops.relu(p["W2"] @ ops.relu(p["W1"] @ x))))
    rng = np.random.default_rng(5)
    anchor = rng.standard_normal(deep.n_params)
    region = RegionMargins(deep, DATA4, anchor)
    rows = np.array([6, 1, 13, 6])
    view = region.with_sign_rows(rows)
    chosen = np.array([1, 6, 13])
    assert view.n_extra == 3 and view.whole is region and region.sign_rows is None
    np.testing.assert_array_equal(view.sign_samples, region.sign_samples[chosen])
    theta = anchor + 0.1 * rng.standard_normal(deep.n_params)
    np.testing.assert_array_equal(view.extra_values(theta), region.extra_values(theta)[chosen])
    np.testing.assert_array_equal(view.extra_jacobian(theta), region.extra_jacobian(theta)[chosen])
    np.testing.assert_array_equal(view.extra_levels(theta), region.extra_levels(theta)[chosen])
    np.testing.assert_array_equal(view.unit_relative_slacks(theta), region.unit_relative_slacks(theta)[chosen])
    w = rng.standard_normal(3)
    full = np.zeros(region.n_extra)
    full[chosen] = w
    np.testing.assert_allclose(view.extra_hessian(theta, w), region.extra_hessian(theta, full), rtol=1e-13, atol=1e-14)
    nlp = M.margin_nlp(view, get_norm("l2").lift(OBJECTIVE, deep.n_params), np.arange(4))
    assert nlp.m == 4 + 3
    check_nlp(nlp, theta, rng.standard_normal(nlp.m))
    kinked = anchor.copy()
    assert view.kinks(kinked, 1e-8) == region.kinks(kinked, 1e-8)
    slack = region.unit_relative_slacks(theta)
    assert np.all(np.abs(slack) <= 1.0 + 1e-15) and np.any(np.abs(slack) == 1.0)


@pytest.mark.parametrize("near", [M.SIGN_ROWS_NEAR, -1.0])
def test_sign_row_working_set_solves_the_whole_region(monkeypatch, near):
    """A region solved on a working set of its sign rows (starting near the kinks, or from none: every row then
    joins when violated) has the point of the solve on all of them; its multipliers sit on every row, zero off
    the set, and the whole region's certificate accepts it."""
    monkeypatch.setattr(M, "SIGN_ROWS_NEAR", near)
    data = relu_teacher_data(40, d=3, width=4, seed=1, draws=2)
    net = lm.load_model("two_layer", input_dim=3, activation="relu", width=4)
    problem = M.MaxMarginProblem(net, data)
    theta0 = M.gd_start(net, data, seed=0)
    region = RegionMargins(net, data, theta0, family=problem._region_family)
    theta0 = problem._feasible_scaling(region, theta0)
    opts = SolveOptions.resolve(None)
    rounds = []
    solve = problem._attempt
    monkeypatch.setattr(problem, "_attempt", lambda source, *a: rounds.append(source.n_extra) or solve(source, *a))
    every = problem._attempt_in_region(region, theta0, opts, M.WorkingSetOptions(enabled=False), False)
    assert rounds == [region.n_extra]
    some = problem._attempt_in_region(region, theta0, opts, M.WorkingSetOptions(enabled=True, batch=1), True)
    assert all(k < region.n_extra for k in rounds[1:]) and (near > 0 or len(rounds) > 2)
    assert some.multipliers.size == every.multipliers.size == data.n_samples + region.n_extra
    np.testing.assert_allclose(problem.lift.theta(some.z), problem.lift.theta(every.z), rtol=1e-6)
    signs = some.multipliers[data.n_samples:]
    assert np.count_nonzero(signs) <= rounds[-1] and np.any(signs > 0)
    for attempt in (every, some):
        assert problem._certify(region, attempt, opts).kkt_met(opts.tolerances)


def test_time_limit_stops_launching_starts():
    """Past the time limit no further start is walked (the first always is); the certificate lists the walked
    starts only."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((30, 2))
    data = lm.Dataset(X, np.where(np.abs(X[:, 0]) > np.abs(X[:, 1]), 1.0, -1.0))
    net = lm.load_model("two_layer", input_dim=2, activation="relu", width=3)
    cert = lm.max_margin(net, data, starts=4, seed=0, time_limit=1e-3, raise_on_failure=False)
    assert len(cert.diagnostics.starts) == 1
    assert len(lm.max_margin(net, data, starts=4, seed=0, raise_on_failure=False).diagnostics.starts) == 4


def test_default_nlp_name():
    assert M.margin_nlp(LinearMargins(LINEAR2, DATA4), get_norm("l2").lift(OBJECTIVE, 2), np.arange(4)).name == \
        "max_margin"


def test_working_set_certificates_with_bounds_and_tolerances():
    """l1 (bounds u, v >= 0 on the lift) with a working set: the full certificate gets the bound multipliers
    and the caller's tolerances."""
    data = lm.Dataset(WS_X, np.ones(4))
    cert = lm.max_margin(LINEAR2, data, norm="l1", working_set=WS)
    assert cert.success and cert.kkt.max <= 1e-8 and cert.diagnostics.working_set_size < 4
    near = lm.Dataset(np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5 + 1e-4], [5.0, 0.1]]), np.ones(4))
    loose = lm.max_margin(LINEAR2, near, working_set=WS, tolerances=lm.Tolerances(active=1e-3))
    tight = lm.max_margin(LINEAR2, near, working_set=WS)
    assert loose.diagnostics.working_set_size < 4
    assert loose.active.tolist() == [0, 1, 2] and tight.active.tolist() == [0, 1]


def test_relu_regions_with_bounds_and_a_working_set():
    # l1: the original problem's certificate needs the lower-bound multipliers of u, v >= 0
    l1 = lm.max_margin(RELU, DATA4, norm="l1", starts=1, seed=0)
    assert l1.status == Status.OPTIMAL and l1.kkt.max <= 1e-8
    assert {r.kind: r.support for r in l1.rows}["lower_bound"] > 0
    # IPOPT's margin-row working set (route="ipopt": the convex form of the regions has its own row sets)
    ws = M.WorkingSetOptions(enabled=True, initial=2, batch=1, seeding="margins")
    cert = lm.max_margin(RELU, DATA4, starts=1, seed=0, working_set=ws, route="ipopt")
    free = lm.max_margin(RELU, DATA4, starts=1, seed=0)
    assert cert.success and cert.objective == pytest.approx(free.objective, rel=1e-8)
    # from a point near the solution the working set stays at 2 of the 4 margin rows
    near = free.theta * 1.5 + 0.1 * np.random.default_rng(0).standard_normal(free.theta.size)
    cert = lm.max_margin(RELU, DATA4, init=near, working_set=ws, route="ipopt")
    assert cert.success and cert.diagnostics.working_set_size == 2
    assert cert.objective == pytest.approx(free.objective, rel=1e-8)


@pytest.mark.parametrize("route", ["ipopt", "auto"])
def test_region_diagnostics_do_not_depend_on_the_data_scale(monkeypatch, route):
    """The sign rows' weight in the stationarity balance is scale-free (a plain multiplier ratio is not:
    sign rows and margin rows have different units); so are the Clarke check's residuals.  Both region solvers
    (IPOPT, and the convex form of route "auto")."""
    monkeypatch.setattr(M, "WALK_MAX_STEPS", 1)
    monkeypatch.setattr(M, "WALK_MAX_STEPS_CONVEX", 1)
    base = lm.max_margin(RELU, DATA4, starts=1, seed=2, raise_on_failure=False, route=route)
    assert base.status == Status.REGION_BOUNDARY and base.diagnostics.region.sign_row_weight > 1e-3
    for factor in (0.01, 10.0):
        scaled = lm.max_margin(RELU, lm.Dataset(DATA4.X * factor, DATA4.y), starts=1, seed=2,
                               raise_on_failure=False, route=route)
        assert scaled.status == base.status
        assert scaled.diagnostics.region.sign_row_weight == pytest.approx(base.diagnostics.region.sign_row_weight,
                                                                          rel=1e-6)
        assert scaled.kkt.max == pytest.approx(base.kkt.max, rel=1e-6)


def test_activation_regions_only_when_asked_or_automatic():
    """activation_region=False solves a ReLU net without regions (no walk; the point is judged by the Clarke check
    in its own region, docs/certificates.md); None: automatic."""
    off = lm.max_margin(RELU, DATA4, starts=1, seed=0, activation_region=False, max_iter=50, raise_on_failure=False)
    assert off.diagnostics.region.walk == () and "activation region" not in off.constraints
    assert off.status != Status.OPTIMAL or off.diagnostics.region.clarke["residuals"]["max"] <= 1e-8
    on = lm.max_margin(RELU, DATA4, starts=1, seed=0, raise_on_failure=False)
    assert on.diagnostics.region is not None


def test_a_multiclass_certificate_names_each_rows_sample_and_class():
    """K = 3 classes on separable points: one multiplier per (n, j != y_n), in the order of margin_rows; a
    binary certificate has none."""
    model, data, X, y, pairs = three_class_points()
    cert = lm.max_margin(model, data)
    assert cert.status == Status.OPTIMAL
    assert cert.margin_rows.tolist() == pairs and cert.multipliers.size == len(pairs)
    W = cert.theta.reshape(3, 2)
    np.testing.assert_allclose(cert.margins, [(W[y[n]] - W[j]) @ X[n] for n, j in pairs], rtol=1e-12, atol=1e-12)
    binary = lm.max_margin(lm.load_model("linear", input_dim=2), lm.Dataset(X[:2], np.array([1.0, -1.0])))
    assert binary.margin_rows is None


def test_an_ipopt_point_off_in_objective_is_not_certified_on_column_scaled_data():
    """Multi-class max-margin (300 samples, 50 features in units 10^U(-6, 6), 5 classes; seed 0 of the hunt) where
    IPOPT stopped at its time limit: its point met stationarity (2.6e-9 of each component's terms), feasibility,
    dual feasibility and complementarity, so it was certified ``optimal``, yet its objective is 8e-7 above the exact
    optimum (5.554742570215883e9: the KKT system on its support solved in 50-digit arithmetic, every multiplier
    positive and every row feasible).  The terms of the large-unit features (~1e15) cancel to ~1e6: the decrement,
    the Newton gain of the Lagrangian in objective units, is 247 and fails it."""
    from pathlib import Path

    from lexmargin.nlp.certify import certify, residuals
    D = np.load(Path(__file__).resolve().parent.parent / "data" / "column_scaled_multiclass_ipopt_point.npz")
    data = lm.Dataset(D["X"], D["y"], n_classes=5)
    problem = lm.MaxMarginProblem(lm.load_model("multiclass_linear", input_dim=50, n_classes=5), data)
    nlp = M.margin_nlp(problem.source, problem.lift, np.arange(problem.data.n_samples))
    report = certify(nlp, D["z"], D["multipliers"], D["lower"], D["upper"])
    # measured as before 2026-12-02 (no decrement) the point passed; the decrement (247) alone fails it
    before = residuals(report.extended, report.multipliers)
    assert before.max <= 1e-8 and before.decrement == 0.0
    r = report.residuals
    assert max(r.stationarity, r.primal_feasibility, r.dual_feasibility, r.complementarity) <= 1e-8
    assert r.decrement > 1.0 and not report.kkt_met(Tolerances())
    theta = problem.source.to_user(problem.lift.theta(D["z"]))
    assert (theta @ theta) / 5.554742570215883e9 - 1.0 > 5e-7


def test_representable_fails_a_solution_that_overflows_in_the_data_units():
    ok = np.array([1.0, -2e307])
    assert M.representable(ok, Status.OPTIMAL, -3) == (Status.OPTIMAL, "")
    for theta in (np.array([np.inf, 1.0]), np.array([1.0, -np.inf]), np.array([np.nan])):
        status, note = M.representable(theta, Status.OPTIMAL, 1030)
        assert status == Status.FAILED and "overflows" in note and "2^1030" in note
    assert M.representable(np.array([np.inf]), Status.INACCURATE, 0)[0] == Status.FAILED


@pytest.mark.parametrize("tiny", [1e-310, 1e-320])
def test_a_solution_beyond_the_largest_double_is_never_optimal(tiny):
    """Data at 1e-310: theta ~ 1e310 is certified on the prescaled problem but overflows in the data's units: the
    certificate is failed (its theta is not the certified point) and raise_on_failure raises SolverError; with a bias
    the QP route's column scale of the features would overflow too (IPOPT's bounds NaN): a typed error."""
    X = X4 * tiny
    cert = lm.max_margin(LINEAR2, lm.Dataset(X, Y4), raise_on_failure=False)
    assert cert.status == Status.FAILED and not np.all(np.isfinite(cert.theta))
    assert "overflows double precision" in cert.solver.message
    assert f"theta' = 2^{cert.diagnostics.scale_exponent} theta" in cert.solver.message
    dual = lm.max_margin(LINEAR2, lm.Dataset(X, Y4), route="dual", raise_on_failure=False)
    assert dual.solver.name == "dual_active_set" and dual.status == Status.FAILED
    assert f"theta' = 2^{dual.diagnostics.scale_exponent} theta" in dual.solver.message
    with pytest.raises(lm.SolverError, match="failed"):
        lm.max_margin(LINEAR2, lm.Dataset(X, Y4))
    with pytest.raises(lm.LexmarginError):
        lm.svm_with_bias(lm.Dataset(X, Y4))
    result = lm.svm_with_bias(lm.Dataset(X, Y4), raise_on_failure=False)[2]
    assert not result.success and not result.qp.success
