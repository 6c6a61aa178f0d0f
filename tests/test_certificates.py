"""Certificates you can trust (issue 9): the reproductions, and properties over scales and degeneracy.

Every status ``optimal`` must come with the certificate's own relative residuals <= tolerance and the
right answer; everything else must be an honest status with the numbers.
"""

import cvxpy as cp
import numpy as np
import pytest
from exact_reference import exact_max_margin
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lexmargin as lm
from lexmargin import Dataset, NoSeparatingPointError, NotSeparableError, SolverError, Status, Tolerances

X0 = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, -0.5], [-0.5, -1.0]])
Y0 = np.array([1.0, 1.0, -1.0, -1.0])
LINEAR2 = lm.load_model("linear", input_dim=2)
PROPERTY = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def linear(d):
    return lm.load_model("linear", input_dim=d)


def assert_certified(cert):
    assert cert.status == Status.OPTIMAL and cert.success
    assert cert.kkt.max <= cert.tolerances.kkt


def direction_error(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.linalg.norm(a / np.linalg.norm(a) - b / np.linalg.norm(b)))


# ---- reproduction 1: scaled data, silent wrong answer ------------------------------------------
@pytest.mark.parametrize("scale", [1e-12, 1e-9, 1e-3, 1e3, 1e5, 1e6, 1e8, 1e12, 1e300])
def test_scaled_data_gives_the_exact_solution(scale):
    cert = lm.max_margin(LINEAR2, Dataset(X0 * scale, Y0))
    assert_certified(cert)
    np.testing.assert_allclose(cert.theta * scale, [1.0, 1.0], rtol=1e-9)
    assert list(cert.support) == [0, 1] and cert.licq.holds


def test_certificate_does_not_depend_on_the_data_scale():
    base = lm.max_margin(LINEAR2, Dataset(X0, Y0))
    for scale in (1e-12, 1e12):
        cert = lm.max_margin(LINEAR2, Dataset(X0 * scale, Y0))
        np.testing.assert_allclose(cert.multipliers * scale ** 2, base.multipliers, rtol=1e-8)
        assert cert.kkt.max <= cert.tolerances.kkt and base.kkt.max <= base.tolerances.kkt
        assert (cert.licq.rank, cert.licq.n_active) == (base.licq.rank, base.licq.n_active)
        assert cert.diagnostics.scale_exponent != base.diagnostics.scale_exponent


# ---- reproduction 2: optimal with large own residuals -----------------------------------------
def test_column_scales_spanning_1e16_give_the_exact_solution():
    cert = lm.max_margin(LINEAR2, Dataset(X0 * np.array([1e8, 1e-8]), Y0))
    assert_certified(cert)
    theta, _ = exact_max_margin(Y0[:, None] * X0 * np.array([1e8, 1e-8]))
    np.testing.assert_allclose(cert.theta, theta, rtol=1e-9)


def test_a_loose_solver_point_is_never_optimal():
    """IPOPT says Solve_Succeeded at tol=1e-3; its point's own residuals (~5e-7) decide: inaccurate."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3))
    data = Dataset(X, np.sign(X @ rng.standard_normal(3)))
    net = lm.load_model("deep_linear", input_dim=3, depth=2, width=3)
    loose = lm.max_margin(net, data, tol=1e-3, finish=False, starts=1, raise_on_failure=False)
    assert loose.solver.status == Status.OPTIMAL and loose.solver.return_status == "Solve_Succeeded"
    assert loose.kkt.max > loose.tolerances.kkt
    assert loose.status == Status.INACCURATE and not loose.success
    with pytest.raises(SolverError, match="inaccurate") as info:
        lm.max_margin(net, data, tol=1e-3, finish=False, starts=1)
    assert info.value.status == "inaccurate" and info.value.certificate.kkt.max > 1e-8
    finished = lm.max_margin(net, data, tol=1e-3, starts=1)   # the exact finish certifies the same start
    assert_certified(finished)
    assert finished.objective <= loose.objective


def test_optimal_needs_the_documented_tolerance():
    data = Dataset(np.random.default_rng(3).standard_normal((30, 3)) + 2.0, np.ones(30))
    strict = Tolerances(kkt=1e-15)
    rough = lm.max_margin(linear(3), data, finish=False, tol=1e-6, tolerances=strict, raise_on_failure=False)
    assert rough.kkt.max > 1e-15 and rough.status != Status.OPTIMAL
    assert rough.tolerances.kkt == 1e-15


# ---- reproduction 3: false NotSeparableError ----------------------------------------------------
def test_nearly_parallel_separable_points_are_not_declared_inseparable():
    data = Dataset([[1.0, 1.0], [1.0, 1.0 + 1e-10]], [1.0, -1.0])
    cert = lm.max_margin(LINEAR2, data, raise_on_failure=False)
    assert cert.status != Status.NOT_SEPARABLE and cert.diagnostics.farkas is None
    if cert.success:            # ||theta|| ~ 3e10: double precision may not certify it, but never wrongly
        theta, _ = exact_max_margin(data.y[:, None] * data.X)
        assert direction_error(cert.theta, theta) < 1e-6
    else:
        with pytest.raises(SolverError) as info:
            lm.max_margin(LINEAR2, data)
        assert not isinstance(info.value, NotSeparableError)


def test_not_separable_comes_with_a_farkas_proof():
    xor = Dataset([[1, 1], [-1, -1], [1, -1], [-1, 1]], [1, 1, -1, -1])
    for scale in (1e-9, 1.0, 1e300):
        cert = lm.max_margin(LINEAR2, Dataset(xor.X * scale, xor.y), raise_on_failure=False)
        assert cert.status == Status.NOT_SEPARABLE
        proof = cert.diagnostics.farkas
        A = xor.y[:, None] * xor.X
        assert np.all(proof.weights >= 0) and np.max(np.abs(A.T @ proof.weights)) <= 1e-15
        assert proof.value > 0


# ---- reproduction 4: degenerate active set --------------------------------------------------------
def test_degenerate_active_set_is_solved_exactly_and_reported():
    X = np.array([[1.0, 0.0], [1.0, 5.0], [-1.0, -3.0], [4.0, 1.0]])
    y = np.array([1.0, 1.0, -1.0, 1.0])
    cert = lm.max_margin(LINEAR2, Dataset(X, y))
    assert_certified(cert)
    np.testing.assert_allclose(cert.theta, [1.0, 0.0], atol=1e-10)
    assert list(cert.active) == [0, 1, 2] and list(cert.support) == [0]
    assert list(cert.degenerate) == [1, 2] and not cert.strictly_complementary
    assert cert.licq.n_active == 3 and cert.licq.rank == 2 and not cert.licq.holds
    assert cert.finish.applied
    np.testing.assert_allclose(cert.multipliers, [2.0, 0.0, 0.0, 0.0], atol=1e-12)


# ---- reproduction 5: depth_sensitive drifts ---------------------------------------------------------
def svm_bias_data(seed=0, n=40, d=3):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) + np.array([2.0] + [0.0] * (d - 1))
    y = np.sign(X @ np.linspace(1.0, -0.5, d) - 1.5)
    return Dataset(X, y)


def cvxpy_svm_with_bias(data):
    w, b = cp.Variable(data.n_features), cp.Variable()
    problem = cp.Problem(cp.Minimize(cp.sum_squares(w)), [cp.multiply(data.y, data.X @ w + b) >= 1])
    problem.solve(solver="CLARABEL", tol_gap_abs=1e-14, tol_gap_rel=1e-14, tol_feas=1e-14, max_iter=500)
    return w.value, float(b.value)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_depth_sensitive_svm_bias_equals_the_svm_with_bias(seed):
    data = svm_bias_data(seed)
    model = lm.load_model("svm_bias", input_dim=data.n_features, sign="both")
    result = lm.depth_sensitive(model, data)
    p = model.unflatten(result.theta)
    w_ref, b_ref = cvxpy_svm_with_bias(data)
    np.testing.assert_allclose(p["w"], w_ref, atol=1e-9)
    assert p["b1"][0] ** 2 - p["b2"][0] ** 2 == pytest.approx(b_ref, abs=1e-9)
    for stage in result.stages:
        assert_certified(stage.certificate)
    # the bias stage held the weights exactly at their stage-1 values
    np.testing.assert_array_equal(p["w"], model.unflatten(result.stages[0].certificate.theta)["w"])


# ---- properties: random separable data at random scales ------------------------------------------
@st.composite
def separable(draw, max_n=8, max_d=3):
    d = draw(st.integers(2, max_d))
    n = draw(st.integers(d, max_n))
    seed = draw(st.integers(0, 2 ** 31 - 1))
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(d)
    X = rng.standard_normal((n, d))
    y = np.where(X @ w >= 0, 1.0, -1.0)
    X = X + 0.2 * y[:, None] * w / np.linalg.norm(w)
    return X, y


@PROPERTY
@given(separable(), st.integers(-12, 12))
def test_property_global_scale(problem, exponent):
    X, y = problem
    scale = 10.0 ** exponent
    cert = lm.max_margin(linear(X.shape[1]), Dataset(X * scale, y), raise_on_failure=False)
    assert cert.status == Status.OPTIMAL
    assert cert.kkt.max <= cert.tolerances.kkt
    theta, _ = exact_max_margin(y[:, None] * X)
    assert direction_error(cert.theta, theta) <= 1e-9
    np.testing.assert_allclose(cert.theta * scale, theta, rtol=1e-8, atol=1e-10 * np.max(np.abs(theta)))


@PROPERTY
@given(separable(max_n=6, max_d=3), st.lists(st.integers(-8, 8), min_size=3, max_size=3))
def test_property_column_scales(problem, exponents):
    X, y = problem
    D = 10.0 ** np.array(exponents[:X.shape[1]], dtype=float)
    cert = lm.max_margin(linear(X.shape[1]), Dataset(X * D, y), raise_on_failure=False)
    theta, _ = exact_max_margin(y[:, None] * X * D)
    if cert.status == Status.OPTIMAL:
        assert cert.kkt.max <= cert.tolerances.kkt
        assert direction_error(cert.theta, theta) <= 1e-9
    else:                                   # honest: never a wrong optimal, never a false proof
        assert cert.status != Status.NOT_SEPARABLE and cert.kkt.max > cert.tolerances.kkt


@st.composite
def degenerate(draw):
    """theta* = e1 exactly: a support row e1, rows (1, k, ...) active with multiplier 0, rows (c, k, ...)
    with c >= 2 inactive; integer entries, so the degeneracy survives rounding."""
    d = draw(st.integers(2, 3))
    ks = draw(st.lists(st.lists(st.integers(-6, 6), min_size=d - 1, max_size=d - 1), min_size=1, max_size=4))
    others = draw(st.lists(st.lists(st.integers(-6, 6), min_size=d - 1, max_size=d - 1), min_size=0, max_size=3))
    rows = [[1.0] + [0.0] * (d - 1)] + [[1.0] + [float(v) for v in k] for k in ks]
    rows += [[float(2 + abs(k[0]))] + [float(v) for v in k] for k in others]
    A = np.unique(np.array(rows), axis=0)
    signs = np.array(draw(st.lists(st.sampled_from([-1.0, 1.0]), min_size=len(A), max_size=len(A))))
    return A * signs[:, None], signs, d


@PROPERTY
@given(degenerate(), st.integers(-12, 12))
def test_property_degenerate_active_sets(problem, exponent):
    X, y, d = problem
    scale = 10.0 ** exponent
    cert = lm.max_margin(linear(d), Dataset(X * scale, y))
    assert_certified(cert)
    expected = np.zeros(d)
    expected[0] = 1.0 / scale
    np.testing.assert_allclose(cert.theta, expected, rtol=1e-10, atol=1e-10 / scale)
    A = y[:, None] * X
    on_margin = np.nonzero(np.isclose(A @ np.eye(d)[0], 1.0))[0]
    assert set(cert.active) == set(on_margin.tolist())
    assert cert.licq.holds == (np.linalg.matrix_rank(A[on_margin]) == on_margin.size)
    assert set(cert.support) <= set(on_margin.tolist())


@PROPERTY
@given(separable(max_n=12, max_d=4), st.integers(-6, 6))
def test_property_matches_clarabel(problem, exponent):
    X, y = problem
    cert = lm.max_margin(linear(X.shape[1]), Dataset(X * 10.0 ** exponent, y))
    w = cp.Variable(X.shape[1])
    cp.Problem(cp.Minimize(cp.sum_squares(w)), [cp.multiply(y, X @ w) >= 1]).solve(
        solver="CLARABEL", tol_gap_abs=1e-10, tol_gap_rel=1e-10, tol_feas=1e-10, max_iter=500)
    assert_certified(cert)
    assert direction_error(cert.theta, w.value) <= 1e-7


# ---- one pipeline: every problem type certifies the same way -------------------------------------
def small_separable(n=20, d=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    w = np.array([1.0, -0.5, 0.25][:d])
    y = np.where(X @ w >= 0, 1.0, -1.0)
    return Dataset(X + 0.3 * y[:, None] * w / np.linalg.norm(w), y)


def every_certificate(data):
    model = linear(data.n_features)
    yield lm.max_margin(model, data)
    yield from (p.certificate for p in lm.margin_path(model, data, [1.0, 4.0]).points)
    yield from (p.certificate for p in lm.constrained_path(model, data, [1.0, 4.0]).points)
    yield from (p.certificate for p in lm.regularization_path(model, data, [1.0, 0.1]).points)
    yield from (s.certificate for s in lm.lexicographic_max_margin(model, data, norm="linf").stages)
    svm = lm.load_model("svm_bias", input_dim=data.n_features)
    yield from (s.certificate for s in lm.depth_sensitive(svm, data).stages)
    yield from (p.certificate for p in lm.depth_gamma_path(svm, data, [1.0, 10.0]).points)


def test_every_problem_type_returns_a_certificate_of_the_pipeline():
    problems = set()
    for cert in every_certificate(small_separable()):
        assert isinstance(cert, lm.Certificate) and isinstance(cert.status, Status)
        assert_certified(cert)
        assert cert.tolerances == Tolerances()
        back = lm.Certificate.from_dict(cert.to_dict())
        assert back.status == cert.status and back.kkt == cert.kkt and back.licq == cert.licq
        assert back.diagnostics == cert.diagnostics or type(back.diagnostics) is type(cert.diagnostics)
        problems.add(cert.problem.split("_stage")[0])
    assert len(problems) >= 6


# one IPOPT iteration and no finish: a failure (the exact finish alone can reach the vertex of these small problems)
@pytest.mark.parametrize("solve", [
    lambda m, d: lm.max_margin(m, d, max_iter=1, finish=False),
    lambda m, d: lm.margin_path(m, d, [1.0], max_iter=1, finish=False),
    lambda m, d: lm.constrained_path(m, d, [1.0], max_iter=1, finish=False),
    lambda m, d: lm.regularization_path(m, d, [1.0], max_iter=1, finish=False),
    lambda m, d: lm.lexicographic_max_margin(m, d, max_iter=1, finish=False),
])
def test_raise_on_failure_is_the_default_of_every_problem(solve):
    data = small_separable()
    with pytest.raises(SolverError) as info:
        solve(linear(3), data)
    assert info.value.status == "max_iterations" and info.value.certificate is not None


@pytest.mark.parametrize("norm", ["l2", "l1", "linf", lm.get_norm("lp", p=3.0)])
def test_every_norm_as_ball_and_as_objective(norm):
    """The margin path's direction at rho = 1 of a linear model is the max-margin solution normalized in the
    same norm: the ball form and the objective form of one Norm class agree."""
    data = small_separable(15, 3, seed=2)
    model = linear(3)
    mm = lm.max_margin(model, data, norm=norm)
    mp_point = lm.margin_path(model, data, [1.0], norm=norm).points[0]
    assert_certified(mm)
    assert_certified(mp_point.certificate)
    target = mm.theta / lm.get_norm(norm).value(mm.theta)
    np.testing.assert_allclose(mp_point.theta, target, atol=1e-7)


def test_nonconvex_failures_have_their_own_status_and_count_the_starts():
    model = lm.Model("square_net", [lm.Block("V", {"V": (3, 3)}, 2), lm.Block("a", {"a": (3,)}, 1)], input_dim=3,
                     output=lambda p, x: p.a @ lm.ops.square(p.V @ x))
    rng = np.random.default_rng(1)
    X = rng.standard_normal((30, 3))
    data = Dataset(X, np.sign(X[:, 0] + 1e-12))          # odd labels: an even model cannot separate them
    cert = lm.max_margin(model, data, starts=3, raise_on_failure=False)
    assert cert.status == Status.NO_SEPARATING_POINT and len(cert.diagnostics.starts) == 3
    with pytest.raises(NoSeparatingPointError, match="from 3 start"):
        lm.max_margin(model, data, starts=3)


def test_multipliers_are_twice_sklearns_dual_coef():
    """Objective ||w||^2 (no 1/2): lambda_n = 2 |dual_coef_| of scikit-learn's SVC (hard margin, C large)."""
    from sklearn.svm import SVC
    data = svm_bias_data(0, n=40, d=3)
    _, _, result = lm.svm_with_bias(data)
    svc = SVC(kernel="linear", C=1e10, tol=1e-12).fit(data.X, data.y)
    alpha = np.zeros(data.n_samples)
    alpha[svc.support_] = np.abs(svc.dual_coef_[0])
    lam = result.stages[0].certificate.multipliers
    np.testing.assert_allclose(lam, 2 * alpha, atol=1e-5 * lam.max())     # SVC's own tolerance


def test_time_limit_gives_an_honest_status():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 5))
    data = Dataset(X, np.sign(X @ rng.standard_normal(5)))
    net = lm.load_model("deep_linear", input_dim=5, depth=3, width=5)
    cert = lm.max_margin(net, data, time_limit=1e-3, starts=1, raise_on_failure=False)
    assert cert.status == Status.MAX_TIME and cert.solver.return_status == "Maximum_WallTime_Exceeded"
    with pytest.raises(SolverError) as info:
        lm.max_margin(net, data, time_limit=1e-3, starts=1)
    assert info.value.status == "max_time"


def test_certificates_saved_by_lexmargin_0_1_still_load(tmp_path):
    """Nothing a user saved is lost: a 0.1 cert.json (status 'acceptable', an open 'extras' dict) loads."""
    import json
    from pathlib import Path

    from lexmargin.report import load_certificate
    old = Path(__file__).parent / "data" / "certificate_v0_1.json"
    cert = load_certificate(old)
    assert cert.status == Status.INACCURATE and cert.solver.status == Status.INACCURATE
    assert cert.diagnostics.to_dict()["kind"] == "legacy_extras"
    assert cert.diagnostics.to_dict()["objective"] == json.loads(old.read_text())["extras"]["objective"]
    np.testing.assert_allclose(cert.theta, json.loads(old.read_text())["theta"])
    again = tmp_path / "again.json"
    again.write_text(cert.to_json())
    assert load_certificate(again).diagnostics.to_dict() == cert.diagnostics.to_dict()


# ---- the margin path on features in different units (a fresh-seed hunt's defect, 2026-12-01) -------------------------
def _exact_min_margin(A, theta):
    from fractions import Fraction
    t = [Fraction(float(v)) for v in theta]
    return float(min(sum(Fraction(float(a)) * v for a, v in zip(row, t)) for row in A))


def _clarabel_point_in_ball(A, norm: str):
    """Clarabel's max_{||theta|| <= 1} min_n A_n theta, pulled strictly into the ball (a feasible competitor)."""
    theta, t = cp.Variable(A.shape[1]), cp.Variable()
    ball = {"l2": cp.norm(theta, 2), "l1": cp.norm1(theta), "linf": cp.norm_inf(theta)}[norm]
    cp.Problem(cp.Maximize(t), [A @ theta >= t, ball <= 1]).solve(
        solver="CLARABEL", tol_gap_abs=1e-12, tol_gap_rel=1e-12, tol_feas=1e-12, max_iter=500)
    if theta.value is None:
        return None
    value = np.asarray(theta.value, dtype=float)
    size = float(np.linalg.norm(value, {"l2": 2, "l1": 1, "linf": np.inf}[norm]))
    return value / max(size, 1.0) * (1 - 1e-12)


@PROPERTY
@given(separable(max_n=10, max_d=3), st.lists(st.integers(-6, 6), min_size=3, max_size=3),
       st.sampled_from(["l2", "l1", "linf"]), st.sampled_from([0.1, 1.0, 7.0]))
def test_property_margin_path_on_column_scales_is_never_beaten(problem, exponents, norm, rho):
    """An `optimal` margin-path point is not beaten by any point of the ball (Clarabel's, pulled inside), beyond what
    the certificate resolves: 1e-7 of the margin, or tol LEVEL_FLOOR (1e-14) of the rows' common scale."""
    X, y = problem
    Xs = X * 10.0 ** np.array(exponents[:X.shape[1]], dtype=float)
    A = y[:, None] * Xs
    point = lm.margin_path(linear(X.shape[1]), Dataset(Xs, y), [rho], norm=norm,
                           raise_on_failure=False).points[0]
    cert = point.certificate
    if cert.status != Status.OPTIMAL:
        assert cert.kkt.max > cert.tolerances.kkt or not cert.success
        return
    competitor = _clarabel_point_in_ball(A, norm)
    if competitor is None:
        return
    ours, theirs = _exact_min_margin(A, point.theta), _exact_min_margin(A, competitor)
    common = float(np.max(np.linalg.norm(A, axis=1)))
    assert ours >= theirs - 1e-7 * abs(theirs) - 1e-14 * common
