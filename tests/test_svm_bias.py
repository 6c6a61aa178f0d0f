"""The SVM with an unregularized bias as a convex QP (``lexmargin.problems.svm_bias``): the fast path of
``svm_with_bias``, checked against cvxpy + Clarabel at tight tolerances, against the general depth-sensitive
route, and for honest certificates (Farkas proofs, the bias row's multiplier, fallbacks)."""

import json
from dataclasses import replace

import casadi as ca
import cvxpy as cp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lexmargin as lm
from lexmargin import Dataset, NotSeparableError, SolverError, Status
from lexmargin.errors import LexmarginError, ModelError
from lexmargin.nlp.norms import BALL, L2, OBJECTIVE, PartialL2
from lexmargin.nlp.options import SolveOptions
from lexmargin.problems import svm_bias as S
from lexmargin.problems.depth import DepthResult, stage_nlp, svm_with_bias
from lexmargin.problems.maxmargin import WorkingSetOptions
from lexmargin.problems.separability import exact_residual

PROPERTY = settings(max_examples=25, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def offset_data(seed=3, n=80, d=4, flip=False):
    """Separable through the origin (so b >= 0 is always feasible), off-centre: the best bias is b* != 0
    (b* < 0 for these seeds; ``flip`` negates the labels and with them (w*, b*))."""
    rng = np.random.default_rng(seed)
    u = rng.standard_normal(d)
    u /= np.linalg.norm(u)
    X = rng.standard_normal((n, d)) + np.eye(1, d, 0)[0] + 0.5 * np.eye(1, d, 1)[0]
    y = np.where(X @ u >= 0, 1.0, -1.0)
    X = X + 0.3 * y[:, None] * u
    return Dataset(X, -y if flip else y)


def clarabel(X, y, positive=False):
    """cvxpy + Clarabel at gap and feasibility tolerances 1e-14 (1e-12, 1e-10 where it stops short of them)."""
    w, b = cp.Variable(X.shape[1]), cp.Variable()
    constraints = [cp.multiply(y, X @ w + b) >= 1] + ([b >= 0] if positive else [])
    problem = cp.Problem(cp.Minimize(cp.sum_squares(w)), constraints)
    for tol in (1e-14, 1e-12, 1e-10):
        try:
            problem.solve(solver="CLARABEL", tol_gap_abs=tol, tol_gap_rel=tol, tol_feas=tol, max_iter=500)
            return np.asarray(w.value), float(b.value)
        except cp.error.SolverError:
            continue
    raise AssertionError("Clarabel failed")


def assert_optimal(cert):
    assert cert.status == Status.OPTIMAL and cert.kkt.max <= cert.tolerances.kkt


def assert_fast_and_certified(result):
    assert isinstance(result, S.SVMBiasResult) and isinstance(result, DepthResult)
    assert result.route == "qp" and result.success
    assert_optimal(result.qp)
    for stage in result.stages:
        assert_optimal(stage.certificate)


# ---- against Clarabel ---------------------------------------------------------------------------
@pytest.mark.parametrize("scale", [1.0, 1e-6, 1e6])
@pytest.mark.parametrize("sign,flip", [("both", False), ("both", True), ("positive", True), ("positive", False)])
def test_matches_clarabel_at_any_scale(sign, flip, scale):
    base = offset_data(flip=flip)
    w_ref, b_ref = clarabel(base.X, base.y, positive=sign == "positive")   # unscaled: w scales as 1/scale
    w, b, result = svm_with_bias(Dataset(base.X * scale, base.y), sign=sign)
    assert_fast_and_certified(result)
    np.testing.assert_allclose(w * scale, w_ref, rtol=0, atol=1e-8 * np.max(np.abs(w_ref)))
    assert b == pytest.approx(b_ref, abs=1e-8)
    if sign == "positive" and not flip:               # b* < 0 without the bound: on the boundary exactly
        assert b == 0.0 and b_ref == pytest.approx(0.0, abs=1e-9)
    np.testing.assert_array_equal(result.qp.theta[:-1], w)


@st.composite
def separable(draw, max_n=12, max_d=4):
    d = draw(st.integers(1, max_d))
    n = draw(st.integers(2, max_n))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 31 - 1)))
    u = rng.standard_normal(d)
    X = rng.standard_normal((n, d)) + rng.standard_normal(d)
    y = np.where(X @ u >= 0, 1.0, -1.0)
    return X + 0.2 * y[:, None] * u / np.linalg.norm(u), y


@PROPERTY
@given(separable(), st.integers(-6, 6), st.sampled_from(["both", "positive"]))
def test_property_matches_clarabel(problem, exponent, sign):
    X, y = problem
    scale = 10.0 ** exponent
    w, b, result = svm_with_bias(Dataset(X * scale, y), sign=sign)
    assert_fast_and_certified(result)
    w_ref, b_ref = clarabel(X, y, positive=sign == "positive")
    if np.all(y == y[0]) and (sign == "both" or y[0] > 0):
        b_ref = y[0]        # one class: w = 0, every b with y b >= 1 is optimal, the bias stage picks the smallest
    size = max(float(np.max(np.abs(w_ref))), abs(b_ref), 1.0)
    np.testing.assert_allclose(w * scale, w_ref, rtol=0, atol=1e-7 * size)
    assert b == pytest.approx(b_ref, abs=1e-7 * size)
    assert np.min(y * (X @ (w * scale) + b)) >= 1 - 1e-9


# ---- the QP's certificate: stationarity in w and in b ------------------------------------------------
def test_qp_certificate_is_the_kkt_of_the_qp_in_w_and_b():
    data = offset_data()
    cert = S.SVMBiasQP(data).solve()
    assert_optimal(cert)
    assert cert.problem == "svm_with_bias_qp" and cert.theta.size == data.n_features + 1
    w, lam = cert.theta[:-1], cert.multipliers
    # stationarity in w (objective ||w||^2, no 1/2) and in the free bias
    np.testing.assert_allclose(2 * w, (lam * data.y) @ data.X, atol=1e-12 * np.max(np.abs(w)))
    assert abs(lam @ data.y) <= 1e-12 * lam.sum()
    assert cert.objective == pytest.approx(w @ w) and cert.norm == "l2 without theta[4]"
    assert cert.normalized_margin == pytest.approx(np.min(cert.margins) / np.linalg.norm(w))   # geometric margin
    assert [r.kind for r in cert.rows] == ["margin"]


def test_positive_bias_row_multiplier_has_the_right_sign():
    """b* < 0 without the bound: the row b >= 0 binds with mu = -sum lambda_n y_n > 0, and w is the
    max-margin solution through the origin."""
    data = offset_data()
    cert = S.SVMBiasQP(data, positive=True).solve()
    assert_optimal(cert)
    assert cert.theta[-1] == pytest.approx(0.0, abs=1e-15)
    row = next(r for r in cert.rows if r.kind == S.BIAS_ROW)
    assert (row.size, row.active, row.support) == (1, 1, 1)
    mu = -(cert.multipliers @ data.y)
    assert mu > 1e-3 * cert.multipliers.sum()
    origin = lm.max_margin(lm.load_model("linear", input_dim=data.n_features), data)
    np.testing.assert_allclose(cert.theta[:-1], origin.theta, atol=1e-10 * np.max(np.abs(origin.theta)))
    # with b* > 0 the row is inactive, whatever the data's scale (its level is the bias in margin units)
    flipped = offset_data(flip=True)
    for scale in (1.0, 1e-9, 1e9):
        cert = S.SVMBiasQP(Dataset(flipped.X * scale, flipped.y), positive=True).solve()
        assert_optimal(cert)
        row = next(r for r in cert.rows if r.kind == S.BIAS_ROW)
        assert (row.active, row.support) == (0, 0) and cert.theta[-1] > 0.1


def test_multipliers_scale_with_the_data():
    data = offset_data()
    base = S.SVMBiasQP(data).solve()
    for scale in (1e-6, 1e6):
        cert = S.SVMBiasQP(Dataset(data.X * scale, data.y)).solve()
        np.testing.assert_allclose(cert.multipliers * scale ** 2, base.multipliers, rtol=1e-8,
                                   atol=1e-10 * base.multipliers.max())
        assert list(cert.support) == list(base.support)


def test_a_wrong_point_is_not_certified():
    """The certificate recomputes its residuals: IPOPT stopped early without the finish is not optimal,
    and route="qp" then raises (with the certificate) instead of falling back."""
    data = offset_data()
    cert = S.SVMBiasQP(data).solve(SolveOptions(max_iter=2, finish=False, raise_on_failure=False), route="ipopt")
    assert cert.status != Status.OPTIMAL and cert.kkt.max > cert.tolerances.kkt
    with pytest.raises(SolverError) as info:
        svm_with_bias(data, route="qp", max_iter=2, finish=False)
    assert info.value.certificate.problem == "svm_with_bias_qp"
    _, _, result = svm_with_bias(data, route="qp", max_iter=2, finish=False, raise_on_failure=False)
    assert result.route == "qp" and not result.success and len(result.stages) == 1


def test_falls_back_to_the_general_route_when_the_qp_is_not_certified(monkeypatch):
    data = offset_data(n=20, d=2)
    solve = S.SVMBiasQP.solve

    def inaccurate(self, *args, **kwargs):
        return replace(solve(self, *args, **kwargs), status=Status.INACCURATE)

    monkeypatch.setattr(S.SVMBiasQP, "solve", inaccurate)
    w, b, result = svm_with_bias(data)
    assert result.route == "depth_sensitive" and result.qp.status == Status.INACCURATE and result.success
    w_ref, b_ref = clarabel(data.X, data.y)
    np.testing.assert_allclose(w, w_ref, atol=1e-8)
    assert b == pytest.approx(b_ref, abs=1e-8)


# ---- the depth-sensitive stages at the mapped point -----------------------------------------------
@pytest.mark.parametrize("sign,flip", [("both", False), ("both", True), ("positive", True), ("positive", False)])
def test_equals_the_general_route(sign, flip):
    data = offset_data(seed=0, n=24, d=2, flip=flip)        # b* = -0.23 unflipped
    w, b, fast = svm_with_bias(data, sign=sign)
    w_gen, b_gen, general = svm_with_bias(data, sign=sign, route="depth_sensitive")
    assert_fast_and_certified(fast)
    assert general.route == "depth_sensitive" and general.qp is None and general.success
    np.testing.assert_allclose(w, w_gen, atol=1e-9)           # the general route's accuracy (measured ~1e-11)
    assert b == pytest.approx(b_gen, abs=1e-9)
    assert [s.blocks for s in fast.stages] == [s.blocks for s in general.stages] == [("w",), ("b",)]
    for f, g in zip(fast.stages, general.stages):
        assert f.certificate.problem == g.certificate.problem
        assert f.certificate.diagnostics == g.certificate.diagnostics
        assert f.degree == g.degree and f.discarded == g.discarded
        assert f.value == pytest.approx(g.value, rel=1e-6, abs=1e-9)


def test_stage_certificates_are_the_models_stages():
    data = offset_data(flip=True)
    w, b, result = svm_with_bias(data)
    first, second = result.stages
    theta = result.theta
    assert theta.tolist() == second.certificate.theta.tolist()
    np.testing.assert_array_equal(theta[:-2], w)
    assert (theta[-2], theta[-1]) == (np.sqrt(b), 0.0) and b > 0          # the smallest parametrization
    np.testing.assert_array_equal(first.certificate.theta[:-2], second.certificate.theta[:-2])
    assert first.certificate.theta[-2] ** 2 == pytest.approx(result.qp.theta[-1], rel=1e-15)
    assert first.certificate.solver.name == "ipopt" and "convex QP" in first.certificate.solver.message
    assert second.certificate.solver.name == "closed_form" and second.certificate.finish.reason.startswith("closed")
    np.testing.assert_array_equal(first.certificate.multipliers, result.qp.multipliers)
    assert first.value == pytest.approx(w @ w) and second.value == pytest.approx(abs(b))
    assert result.block_squared_norms == pytest.approx((w @ w, abs(b)))
    assert second.certificate.second_order.strict


def test_numpy_model_functions_equal_the_bundled_models():
    rng = np.random.default_rng(0)
    data = Dataset(rng.standard_normal((7, 3)), np.array([1.0, -1, 1, 1, -1, -1, 1]))
    for sign in ("both", "positive"):
        model = lm.load_model("svm_bias", input_dim=3, sign=sign)
        fns = S.BiasModelFunctions(data, sign)
        assert fns.n_params == model.n_params
        for _ in range(3):
            theta, lam = rng.standard_normal(model.n_params), rng.random(7)
            np.testing.assert_allclose(fns.margins(theta, data), model.margins(theta, data), rtol=1e-13)
            np.testing.assert_allclose(fns.margin_jacobian(theta, data), model.margin_jacobian(theta, data),
                                       rtol=1e-13, atol=1e-14)
            np.testing.assert_allclose(fns.weighted_hessian(theta, data, lam),
                                       model.weighted_hessian(theta, data, lam), rtol=1e-13, atol=1e-14)
            # the stage NLPs evaluate to the same numbers with either
            free, idx = np.arange(3, model.n_params), np.arange(3, model.n_params)
            a = stage_nlp(fns, data, free, idx, theta).evaluate(theta[free], None)
            b = stage_nlp(model, data, free, idx, theta).evaluate(theta[free], None)
            np.testing.assert_allclose(a.values, b.values, rtol=1e-13)
            np.testing.assert_allclose(a.jacobian, b.jacobian, rtol=1e-13, atol=1e-14)
    with pytest.raises(ValueError, match="dataset it was built for"):
        fns.margins(np.zeros(4), Dataset(data.X, data.y))


def test_closed_form_bias():
    """w fixed: positives need b >= 1 - x.w (lo), negatives b <= -1 - x.w (hi); the smallest |b| in [lo, hi]."""
    y = np.array([1.0, -1.0])

    def bias(X, w, positive=False):
        return S.closed_form_bias(y[:, None] * np.asarray(X, dtype=float), y, np.asarray(w, dtype=float), positive)

    assert bias([[-1.0], [-6.0]], [1.0]) == 2.0                       # [2, 5]
    assert bias([[3.0], [-2.0]], [1.0]) == 0.0                        # [-2, 1] holds 0
    assert bias([[5.0], [2.0]], [1.0]) == -3.0                        # [-4, -3]
    assert bias([[5.0], [2.0]], [1.0], positive=True) == -1.5        # [0, -3] is empty: midpoint
    assert bias([[1.0], [2.0]], [1.0]) == -1.5                        # [0, -3] is empty: midpoint
    assert bias([[-4.0], [-6.0]], [1.0], positive=True) == 5.0        # [5, 5]
    assert S.closed_form_bias(np.array([[2.0]]), np.array([1.0]), np.zeros(1), False) == 1.0   # one class
    assert S.bias_parameters(-4.0, "both").tolist() == [0.0, 2.0]
    assert S.bias_parameters(9.0, "both").tolist() == [3.0, 0.0] and S.bias_parameters(9.0, "positive").tolist() == [3.0]


def test_symmetric_data_discards_the_bias_exactly():
    X = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    w, b, result = svm_with_bias(Dataset(X, np.array([1.0, -1.0, 1.0, -1.0])))
    assert_fast_and_certified(result)
    assert b == 0.0 and result.discarded == ("b",) and np.all(result.theta[-2:] == 0.0)
    np.testing.assert_allclose(w, [1.0, 1.0], atol=1e-12)


@pytest.mark.parametrize("label", [1.0, -1.0])
def test_one_class_only(label):
    X = np.random.default_rng(0).standard_normal((10, 2)) * 1e-6
    w, b, result = svm_with_bias(Dataset(X, np.full(10, label)))
    assert_fast_and_certified(result)
    assert w.tolist() == [0.0, 0.0] and b == label and result.discarded == ("w",)
    assert result.qp.solver.name == "closed_form"
    if label > 0:
        w, b, result = svm_with_bias(Dataset(X, np.full(10, label)), sign="positive")
        assert_fast_and_certified(result)
        assert b == 1.0
    else:
        with pytest.raises(NotSeparableError, match="bias b >= 0"):
            svm_with_bias(Dataset(X, np.full(10, label)), sign="positive")


# ---- not separable: Farkas proofs ---------------------------------------------------------------
def check_proof(proof, rows):
    y = proof.weights
    assert np.all(y >= 0) and y.sum() == pytest.approx(1.0) and proof.value > 0
    assert np.max(np.abs(exact_residual(rows, y))) <= 1e-14


def test_not_separable_with_any_bias_is_proved():
    X = np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [1.0, 3.0]])
    y = np.array([1.0, -1.0, 1.0, -1.0])
    for sign in ("both", "positive"):
        with pytest.raises(NotSeparableError, match="Farkas") as info:
            svm_with_bias(Dataset(X, y), sign=sign)
        cert = info.value.certificate
        assert cert.status == Status.NOT_SEPARABLE and cert.problem == "svm_with_bias_qp"
        rows = np.hstack([y[:, None] * X, y[:, None]])
        if sign == "positive":
            rows = np.vstack([rows, [0.0, 0.0, 1.0]])
        check_proof(cert.diagnostics.farkas, rows)
    _, _, result = svm_with_bias(Dataset(X, y), raise_on_failure=False)
    assert not result.success and result.qp.status == Status.NOT_SEPARABLE and result.route == "qp"
    assert json.loads(json.dumps(result.to_dict()))["qp"]["status"] == "not_separable"


def test_positive_bias_infeasible_but_separable():
    """A negative sample at the origin needs b <= -1: separable with a bias, not with b >= 0 (a proof that
    uses the row b >= 0)."""
    X = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 1.5]])
    y = np.array([-1.0, 1.0, 1.0])
    _, b, result = svm_with_bias(Dataset(X, y))
    assert_fast_and_certified(result)
    assert b == pytest.approx(-1.0)
    with pytest.raises(NotSeparableError, match="b >= 0") as info:
        svm_with_bias(Dataset(X, y), sign="positive")
    proof = info.value.certificate.diagnostics.farkas
    assert proof.weights.size == 4 and proof.weights[-1] > 0
    check_proof(proof, np.vstack([np.hstack([y[:, None] * X, y[:, None]]), [0.0, 0.0, 1.0]]))


# ---- working set ----------------------------------------------------------------------------------
def test_working_set_is_seeded_by_the_hull_points():
    rng = np.random.default_rng(5)
    X = rng.standard_normal((1500, 6)) + 1.0
    u = rng.standard_normal(6)
    y = np.where(X @ u >= 0.5, 1.0, -1.0)
    data = Dataset(X + 0.1 * y[:, None] * u / np.linalg.norm(u), y)
    w, b, result = svm_with_bias(data)              # the dual route
    assert_fast_and_certified(result)
    assert result.qp.solver.name == "dual_active_set"
    qp = S.SVMBiasQP(data).solve(route="ipopt")     # IPOPT's working set, seeded by the hull points
    assert_optimal(qp)
    assert qp.diagnostics.working_set_rounds == 1 and qp.diagnostics.working_set_size < 100
    assert set(qp.support) <= set(S.hull_seed(S.BiasMargins(data).A, data.y, 100, 20).tolist())
    w_ref, b_ref = clarabel(data.X, data.y)
    for w_, b_ in ((w, b), (qp.theta[:-1], qp.theta[-1])):
        np.testing.assert_allclose(w_, w_ref, atol=1e-8 * np.max(np.abs(w_ref)))
        assert b_ == pytest.approx(b_ref, abs=1e-8)
    # other seedings and no working set reach the same certified point
    for ws in (WorkingSetOptions(seeding="margins"), WorkingSetOptions(enabled=False)):
        cert = S.SVMBiasQP(data).solve(working_set=ws, route="ipopt")
        assert_optimal(cert)
        np.testing.assert_allclose(cert.theta, qp.theta, atol=1e-9 * np.max(np.abs(qp.theta)))


# ---- PartialL2 -----------------------------------------------------------------------------------
def test_partial_l2_leaves_the_free_coordinates_out():
    norm = PartialL2(free=(2,))
    assert norm.name == "l2" and norm != L2() and norm.label == "l2 without theta[2]"
    lift = norm.lift(OBJECTIVE, 4)
    z = np.array([1.0, -2.0, 5.0, 3.0])
    assert lift.objective_value(z) == 14.0 and norm.value(z) == pytest.approx(np.sqrt(14.0))
    assert lift.objective_gradient(z).tolist() == [2.0, -4.0, 0.0, 6.0]
    assert np.diag(lift.objective_hessian(z)).tolist() == [2.0, 2.0, 0.0, 2.0]
    zs = ca.SX.sym("z", 4)
    f = ca.Function("f", [zs], [lift.objective(zs), ca.gradient(lift.objective(zs), zs)])
    value, grad = f(z)
    assert float(value) == 14.0 and np.array(grad).reshape(-1).tolist() == [2.0, -4.0, 0.0, 6.0]
    assert lift.bounds()[0].tolist() == [-np.inf] * 4 and lift.n_rows == 0
    assert norm.to_dict() == {"name": "l2", "label": "l2 without theta[2]", "free": [2]}
    with pytest.raises(LexmarginError, match="objective form only"):
        norm.lift(BALL, 4)
    with pytest.raises(LexmarginError, match="outside 2 parameters"):
        norm.lift(OBJECTIVE, 2)
    with pytest.raises(LexmarginError, match="distinct non-negative"):
        PartialL2(free=())
    with pytest.raises(LexmarginError, match="distinct non-negative"):
        PartialL2(free=(1, 1))


# ---- arguments and results ------------------------------------------------------------------------
def test_arguments_are_checked():
    data = offset_data(n=10, d=2)
    with pytest.raises(ModelError, match="sign must be one of"):
        svm_with_bias(data, sign="negative")
    with pytest.raises(LexmarginError, match="route must be one of"):
        svm_with_bias(data, route="fast")
    with pytest.raises(LexmarginError, match="expected a lexmargin Dataset"):
        svm_with_bias((data.X, data.y))
    with pytest.raises(LexmarginError, match="zero_tol"):
        S.svm_with_bias_qp(data, zero_tol=-1.0)
    with pytest.raises(TypeError, match="unknown option"):
        svm_with_bias(data, bogus=1)


def test_result_to_dict_and_certificate_round_trip():
    _, _, result = lm.svm_with_bias(offset_data(n=20, d=2))
    back = json.loads(json.dumps(result.to_dict()))
    assert back["route"] == "qp" and [s["blocks"] for s in back["stages"]] == [["w"], ["b"]]
    assert back["qp"]["problem"] == "svm_with_bias_qp" and back["success"]
    qp = lm.Certificate.from_dict(result.qp.to_dict())
    assert qp.status == result.qp.status and qp.kkt == result.qp.kkt and qp.diagnostics == result.qp.diagnostics


def test_the_general_route_gets_what_the_qp_route_left_of_the_time_limit(monkeypatch):
    """``time_limit`` bounds the QP route and the general route after it together."""
    import time

    from lexmargin.problems import svm_bias as S

    rng = np.random.default_rng(1)
    X = rng.standard_normal((12, 2))
    y = np.where(X[:, 0] > 0, 1.0, -1.0)
    X[:, 0] += 0.5 * y
    real_solve, real_general, limits = S.SVMBiasQP.solve, S.depth_sensitive, []

    def slow_failed_qp(self, options=None, **kw):
        time.sleep(0.3)
        return replace(real_solve(self, options, **kw), status=Status.FAILED)

    def general(model, data, zero_tol, options):
        limits.append(options.time_limit)
        return real_general(model, data, zero_tol=zero_tol, options=options)

    monkeypatch.setattr(S.SVMBiasQP, "solve", slow_failed_qp)
    monkeypatch.setattr(S, "depth_sensitive", general)
    _, _, result = lm.svm_with_bias(lm.Dataset(X, y), time_limit=5.0)
    assert result.route == "depth_sensitive" and len(limits) == 1 and 0 < limits[0] <= 4.7
    # without a time limit the general route still gets a budget per solve: FALLBACK_SECONDS here (0.3 s is less) ...
    limits.clear()
    lm.svm_with_bias(lm.Dataset(X, y))
    assert limits == [S.FALLBACK_SECONDS]
    # ... and the QP route's own seconds where that is more
    limits.clear()
    monkeypatch.setattr(S, "FALLBACK_SECONDS", 0.1)
    lm.svm_with_bias(lm.Dataset(X, y))
    assert len(limits) == 1 and 0.3 <= limits[0] <= 5.0
    # the general route asked for by name is not a fallback: no budget
    limits.clear()
    lm.svm_with_bias(lm.Dataset(X, y), route="depth_sensitive")
    assert limits == [None]


def test_the_general_routes_start_gets_the_time_limit(monkeypatch):
    """Every IPOPT solve of ``depth_sensitive`` is bounded by ``time_limit``, the feasible start's margin path too
    (it ran unbounded: minutes on 4000 nearly inseparable samples)."""
    from lexmargin.problems import depth as D

    real_path, limits = D.margin_path, []

    def margin_path(*args, **kwargs):
        limits.append(kwargs.get("time_limit"))
        return real_path(*args, **kwargs)

    monkeypatch.setattr(D, "margin_path", margin_path)
    data = offset_data(n=12, d=2)
    model = lm.load_model("svm_bias", input_dim=2, sign="both")
    assert D.depth_sensitive(model, data, time_limit=7.0).success
    D.depth_gamma_path(model, data, [1.0], time_limit=3.0)
    D.depth_sensitive(model, data)
    assert limits == [7.0, 3.0, None]
