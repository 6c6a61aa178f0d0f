"""Margin, constrained and regularization paths (lexmargin.problems.paths)."""

import json

import cvxpy as cp
import numpy as np
import pytest
from scipy.optimize import minimize

import lexmargin as lm
from lexmargin.errors import LexmarginError, SolverError
from lexmargin.problems.paths import constrained_path, direction_distance, margin_path, regularization_path


@pytest.fixture(scope="module")
def separable():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20, 3))
    w = np.array([1.0, -2.0, 0.5])
    y = np.sign(X @ w)
    X = X + 0.3 * y[:, None] * w / np.linalg.norm(w)
    return lm.Dataset(X, y)


@pytest.fixture(scope="module")
def linear3():
    return lm.load_model("linear", input_dim=3)


@pytest.fixture(scope="module")
def svm_direction(separable):
    """l2 max-margin direction (no bias) from cvxpy."""
    w = cp.Variable(3)
    cp.Problem(cp.Minimize(cp.sum_squares(w)),
               [cp.multiply(separable.y, separable.X @ w) >= 1]).solve(solver="CLARABEL")
    return w.value / np.linalg.norm(w.value)


@pytest.fixture(scope="module")
def cpath(linear3, separable, svm_direction):
    return constrained_path(linear3, separable, [1, 3, 10, 30, 100, 300, 1000], reference=svm_direction)


# ---- schedules and inputs -----------------------------------------------------------------------
@pytest.mark.parametrize("rhos, message", [
    ([1.0, 0.0, 2.0], "positive"),
    ([-1.0, 2.0], "positive"),
    ([1.0, 3.0, 2.0], "strictly increasing"),
    ([1.0, 1.0], "strictly increasing"),
    ([], "empty"),
    ([1.0, np.nan], "non-finite"),
])
def test_bad_rho_schedules_are_rejected(linear3, separable, rhos, message):
    for solve in (margin_path, constrained_path):
        with pytest.raises(LexmarginError, match=message):
            solve(linear3, separable, rhos)


def test_lambda_schedule_must_decrease(linear3, separable):
    with pytest.raises(LexmarginError, match="strictly decreasing"):
        regularization_path(linear3, separable, [1e-3, 1e-2])
    with pytest.raises(LexmarginError, match="positive"):
        regularization_path(linear3, separable, [1e-2, 0.0])


def test_bad_norm_and_start(linear3, separable):
    with pytest.raises(LexmarginError, match="unknown norm"):
        margin_path(linear3, separable, [1.0], norm="l3")
    with pytest.raises(LexmarginError, match="init must have 3"):
        margin_path(linear3, separable, [1.0], init=[1.0, 2.0])
    with pytest.raises(LexmarginError, match="Dataset"):
        margin_path(linear3, separable.X, [1.0])


def test_solver_failure_raises_with_context(linear3, separable):
    with pytest.raises(SolverError, match="rho=1") as info:
        constrained_path(linear3, separable, [1.0], max_iter=1)
    assert info.value.status == "max_iterations"


# ---- margin path --------------------------------------------------------------------------------
def test_margin_path_of_homogeneous_model_is_the_max_margin_direction(linear3, separable, svm_direction):
    path = margin_path(linear3, separable, [1.0, 10.0, 100.0])
    for point in path.points:
        assert np.allclose(point.theta, svm_direction, atol=1e-7)
        cert = point.certificate
        assert cert.success and cert.kkt.max < 1e-8 and cert.licq.holds
    gamma = path.margins
    assert np.allclose(gamma, gamma[0] * path.parameters, rtol=1e-9)  # degree 1: gamma*(rho) = rho gamma*(1)
    margins = separable.y * (separable.X @ svm_direction)
    assert set(path.points[0].certificate.support) == set(np.nonzero(margins < margins.min() + 1e-6)[0])


def test_margin_path_of_deep_linear_scales_with_degree(separable):
    model = lm.load_model("deep_linear", input_dim=3, depth=2, width=2)
    x0 = model.random_params(seed=3)
    path = margin_path(model, separable, [1.0, 2.0, 4.0], init=x0)
    assert np.allclose(path.margins / path.parameters ** 2, path.margins[0], rtol=1e-7)
    assert all(p.certificate.success and p.certificate.kkt.max < 1e-7 for p in path.points)


# ---- constrained path ---------------------------------------------------------------------------
def test_constrained_path_lemmas_2_and_3(cpath, separable):
    assert cpath.success
    assert np.allclose(cpath.theta_norms, 1.0, atol=1e-9)                       # Lemma 2
    assert all(p.lemma2_holds for p in cpath.points)
    assert all(p.lemma3_holds for p in cpath.points)                            # Lemma 3
    assert np.all(cpath.lemma3_gaps <= np.log(separable.n_samples))
    assert np.all(cpath.lemma3_gaps >= -1e-9)                                   # gamma* is the max
    assert max(p.certificate.kkt.max for p in cpath.points) < 1e-8


def test_constrained_path_is_a_minimizer(cpath, linear3, separable):
    for point in cpath.points:
        rho = point.parameter
        log_loss = lm.problems.logspace.logsumexp(-linear3.margins(rho * point.theta, separable))
        at_margin_path = lm.problems.logspace.logsumexp(-linear3.margins(rho * point.margin_path_theta, separable))
        assert log_loss <= at_margin_path + 1e-12
        assert point.certificate.objective == pytest.approx(log_loss, rel=1e-12)


def test_constrained_path_converges_to_the_max_margin_direction(cpath):
    d = cpath.distances_to_reference
    assert np.allclose(d, cpath.distances_to_margin_path, atol=1e-7)  # homogeneous: margin path = max margin
    assert np.all(np.diff(d[2:]) < 0)
    assert d[-1] < 1e-3 < d[0]


def test_regularization_path_direction(linear3, separable, svm_direction, cpath):
    lambdas = [1e-1, 1e-2, 1e-4, 1e-6, 1e-8, 1e-12]
    path = regularization_path(linear3, separable, lambdas, reference=svm_direction)
    assert path.success and max(p.certificate.kkt.max for p in path.points) < 1e-8
    assert np.all(np.diff(path.theta_norms) > 0)
    d = path.distances_to_reference
    assert np.all(np.diff(d) < 0) and d[-1] < 1e-2
    # convex model: theta_lambda / ||theta_lambda|| is the constrained path at rho = ||theta_lambda||
    at_norms = constrained_path(linear3, separable, path.theta_norms)
    for point, reg in zip(at_norms.points, path.points):
        assert direction_distance(reg.theta, point.theta) < 1e-6


def test_deep_linear_constrained_path_aligns_end_to_end_with_the_svm(separable, svm_direction):
    """Depth-2 linear net: the end-to-end vector W2 W1 aligns with the l2 max-margin direction and the
    normalized margin tends to gamma_linear / 2 (balanced layers), up to a margin scale rho^2 gamma ~ 2e5."""
    model = lm.load_model("deep_linear", input_dim=3, depth=2, width=2)
    path = constrained_path(model, separable, [1.0, 10.0, 100.0, 1000.0], init=model.random_params(seed=1))
    assert path.success and max(p.certificate.kkt.max for p in path.points) < 1e-9
    assert all(p.lemma3_holds for p in path.points)
    end_to_end = [model.unflatten(t)["W2"] @ model.unflatten(t)["W1"] for t in path.thetas]
    d = np.array([direction_distance(b, svm_direction) for b in end_to_end])
    assert np.all(np.diff(d) < 0) and d[-1] < 1e-5
    gamma_linear = np.min(separable.y * (separable.X @ svm_direction))
    normalized = np.array([p.certificate.normalized_margin for p in path.points])
    assert np.all(np.diff(normalized) > 0) and normalized[-1] == pytest.approx(gamma_linear / 2, rel=1e-5)


# ---- log predictors (section 3.1) ---------------------------------------------------------------
@pytest.fixture(scope="module")
def positive_data():
    return lm.Dataset(np.array([[2.0, 0.3], [1.0, 1.5], [1.5, -0.5], [3.0, 1.0]]), np.ones(4))


@pytest.fixture(scope="module")
def l2_direction(positive_data):
    path = margin_path(lm.load_model("linear", input_dim=2), positive_data, [1.0])
    return path.last.theta


LOG_RHOS = np.logspace(0, 12, 7)


def test_log_predictor_constrained_path_is_fixed_away_from_the_margin_path(positive_data, l2_direction):
    model = lm.load_model("log_predictor", input_dim=2)
    path = constrained_path(model, positive_data, LOG_RHOS, init=l2_direction, reference=l2_direction)
    # margin path of f = log(theta.z) is the l2 max-margin direction for every rho (log is increasing)
    assert all(np.allclose(p.margin_path_theta, l2_direction, atol=1e-7) for p in path.points)
    # L(rho theta) = (1/rho) sum 1/(theta.z): the constrained path does not depend on rho ...
    assert np.ptp(path.thetas, axis=0).max() < 1e-8
    X = positive_data.X
    sphere = [{"type": "eq", "fun": lambda t: t @ t - 1}]
    best = minimize(lambda t: np.sum(1 / (X @ t)), l2_direction, constraints=sphere, tol=1e-14).x
    assert np.allclose(path.thetas[0], best, atol=1e-6)
    # ... and stays at a fixed distance from the margin-path limit
    assert np.all(path.distances_to_margin_path > 0.04)
    assert np.ptp(path.distances_to_margin_path) < 1e-8
    assert all(p.lemma3_holds for p in path.points)


def test_power_log_predictor_constrained_path_approaches_the_margin_path(positive_data, l2_direction):
    model = lm.load_model("log_predictor", input_dim=2, eps=1.0)
    path = constrained_path(model, positive_data, LOG_RHOS, init=l2_direction, reference=l2_direction)
    d = path.distances_to_margin_path
    assert np.all(np.diff(d) < 0)
    assert d[-1] < 0.005 and d[-1] < 0.1 * d[0]
    assert path.success and all(p.lemma3_holds for p in path.points)


def test_path_to_dict_is_json(cpath):
    text = json.dumps(cpath.to_dict())
    back = json.loads(text)
    assert back["kind"] == "constrained" and len(back["points"]) == len(cpath.points)
    assert back["points"][0]["lemma3_holds"] is True


# ---- found by a fresh-seed hunt (2026-12-01): the margin rows' levels were max_n ||grad f_n||, so a feature in large
# units made violations of the size of the margins look like 1e-11 (fixed: ``margin_levels``, each row's own terms) ----
COLUMN_SCALED_X = np.array([
    [4.33959543313606e-06, -296738.19411784864, 0.17642406982944253],
    [-2.3803814112071195e-07, 150742.67657860363, -0.223510033809114],
    [-7.391366158900115e-07, -158865.71908306394, 0.17456830458376776],
    [5.213112139280226e-07, -157668.61195553013, 0.2059628920709501],
    [-4.5912796424667575e-06, -116917.25230132828, -0.1492145927454598],
    [-3.51066379971404e-06, 457877.55980583676, -0.012937842929349854],
    [1.3439480778303263e-06, -51888.954167146425, 0.10241822207073015],
    [-4.2904180145911526e-07, -389253.0293391196, -0.1527277890535967],
    [4.252577517031428e-07, 75666.3385369584, -0.11719675387321543],
    [2.414034295779852e-06, -130952.6713436816, -0.12694062216151508]])
COLUMN_SCALED_Y = np.array([1.0, 1.0, -1.0, -1.0, -1.0, -1.0, 1.0, 1.0, 1.0, 1.0])


def _exact_min_margin(A, theta):
    from fractions import Fraction
    t = [Fraction(float(v)) for v in theta]
    return min(sum(Fraction(float(a)) * v for a, v in zip(row, t)) for row in A)


def test_margin_path_point_on_column_scaled_data_is_not_beaten():
    data, model = lm.Dataset(COLUMN_SCALED_X, COLUMN_SCALED_Y), lm.load_model("linear", input_dim=3)
    A = COLUMN_SCALED_Y[:, None] * COLUMN_SCALED_X
    mm = lm.max_margin(model, data)
    assert mm.status == "optimal"
    better = mm.theta / np.linalg.norm(mm.theta) * (1 - 1e-12)        # inside the unit ball, exactly
    assert float(np.sum(np.square(better))) < 1.0
    point = lm.margin_path(model, data, [0.15872498927423184], raise_on_failure=False).points[0]
    if point.certificate.status == "optimal":
        assert _exact_min_margin(A, point.theta) >= _exact_min_margin(A, better) * (1 - 1e-9)


def test_paths_and_stages_accept_arrays_as_their_docstrings_say():
    """``data: a Dataset, or (X, y)``: the tuple gives the same solutions (integer labels: the model's K classes)."""
    X = np.array([[1.0, 0.2], [0.1, 1.0], [-1.0, -0.5], [-0.5, -1.0]])
    y = np.array([1.0, 1.0, -1.0, -1.0])
    model = lm.load_model("linear", input_dim=2)
    for solve in (lambda d: lm.margin_path(model, d, [1.0, 2.0]).thetas,
                  lambda d: lm.constrained_path(model, d, [1.0, 2.0]).thetas,
                  lambda d: lm.lexicographic_max_margin(model, d, norm="linf").theta):
        np.testing.assert_array_equal(solve((X, y)), solve(lm.Dataset(X, y)))
    three = lm.load_model("multiclass_linear", input_dim=2, n_classes=3)
    Xm, ym = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]]), np.array([0, 1, 2])
    np.testing.assert_array_equal(lm.margin_path(three, (Xm, ym), [1.0]).thetas,
                                  lm.margin_path(three, lm.Dataset(Xm, ym, n_classes=3), [1.0]).thetas)
    with pytest.raises(lm.LexmarginError, match="expected a lexmargin Dataset, got tuple"):
        lm.margin_path(model, (X,), [1.0])


# ---- found by a fresh-seed scan (2026-12-01): IPOPT's point was certified at stationarity 1e-10 per component and
# not finished ("not needed"), but the components' terms (~2e5) exceed the margins (~0.25) by ~1e6: the smallest
# margin was 2e-5 below the optimum.  Margin paths of models linear in theta are now always finished. -------------
CANCELLING_X = np.array([
    [-0.16883878622827417, 93287.82099821777, -257305.5328922118],
    [-0.8904471224328011, 156815.08945517166, -113266.9249846871],
    [-0.5034400714136593, 68507.10852144894, -155144.07312379498],
    [-0.20168842492057687, 74561.13443719228, -134979.21515298574],
    [-0.3931647790709425, 214194.58390155828, -116050.83448819366]])
CANCELLING_Y = np.array([0, 3, 3, 0, 3])


def test_margin_path_of_a_linear_model_is_finished_where_terms_cancel():
    import cvxpy as cp

    model = lm.load_model("multiclass_linear", input_dim=3, n_classes=6)
    data = lm.Dataset(CANCELLING_X, CANCELLING_Y, n_classes=6)
    point = lm.margin_path(model, data, [1.0], norm="linf").points[0]
    cert = point.certificate
    assert cert.status == "optimal" and cert.finish.applied
    W = point.theta.reshape(6, 3)
    rows = [(n, j) for n in range(5) for j in range(6) if j != CANCELLING_Y[n]]
    A = np.array([np.kron(np.eye(6)[CANCELLING_Y[n]] - np.eye(6)[j], CANCELLING_X[n]) for n, j in rows])
    np.testing.assert_allclose(A @ point.theta, [W[CANCELLING_Y[n]] @ CANCELLING_X[n] - W[j] @ CANCELLING_X[n]
                                                 for n, j in rows], rtol=1e-9, atol=1e-6)
    theta, t = cp.Variable(18), cp.Variable()
    cp.Problem(cp.Maximize(t), [A @ theta >= t, cp.norm_inf(theta) <= 1]).solve(
        solver="CLARABEL", tol_gap_abs=1e-12, tol_gap_rel=1e-12, tol_feas=1e-12, max_iter=500)
    reference = np.clip(theta.value, -1.0, 1.0)                 # a point of the ball
    assert _exact_min_margin(A, point.theta) >= _exact_min_margin(A, reference) * (1 - 1e-9)
