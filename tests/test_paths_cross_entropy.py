"""The cross-entropy constrained path (``constrained_path(..., loss="cross_entropy")``): against cvxpy/Clarabel on
binary (logistic) and multi-class linear data in three norms, the NLP's hand derivatives against central differences
on a nonlinear K-output model, Lemmas 2 and 3 (the cross-entropy bound) on every point, the direction's convergence
to the max-margin direction and to the exponential loss's path, and certificates that refuse a perturbed point or
multiplier."""

import json
import re
import sys
import warnings
from pathlib import Path

import casadi as ca
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lexmargin as lm
from lexmargin.errors import LexmarginError
from lexmargin.fileio import dumps_strict
from lexmargin.modeling.multiclass import MarginRows
from lexmargin.nlp.certify import certify
from lexmargin.nlp.norms import BALL, get_norm
from lexmargin.problems.crossentropy import group_log_loss, group_log_loss_hessian
from lexmargin.problems.margins import model_margins
from lexmargin.problems.paths import cross_entropy_constrained_path_nlp, cross_entropy_lemma3_bound, direction_distance

sys.path.insert(0, str(Path(__file__).resolve().parent / "verification"))
from verify_helpers import kesler  # noqa: E402

cp = pytest.importorskip("cvxpy")
PROPERTY = settings(max_examples=25, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


def separable(seed, N=20, d=3, K=3):
    """Inputs and labels argmax_k (W x)_k of a random W (K = 2: labels +-1 of a random w)."""
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((K, d))
    X = rng.standard_normal((N, d))
    if K == 2:
        return X, np.sign(X @ (W[0] - W[1]))
    return X, np.argmax(X @ W.T, axis=1)


def multiclass(d, K):
    return lm.load_model("multiclass_linear", input_dim=d, n_classes=K)


def reference(A, g, rho, norm):
    """argmin_{||w|| <= 1} sum_n log(1 + sum_j exp(-rho (A w)_{n,j})) with Clarabel (an exponential cone program)."""
    w = cp.Variable(A.shape[1])
    margins = cp.reshape(rho * (A @ w), (A.shape[0] // g, g), order="C")
    zeros = np.zeros((A.shape[0] // g, 1))
    terms = cp.log_sum_exp(cp.hstack([zeros, -margins]), axis=1)
    ball = {"l2": cp.norm(w, 2), "l1": cp.norm(w, 1), "linf": cp.norm(w, "inf")}[norm] <= 1
    problem = cp.Problem(cp.Minimize(cp.sum(terms)), [ball])
    with warnings.catch_warnings():      # Clarabel may end "almost solved" at 1e-12 (a warning), accurate to ~1e-10
        warnings.simplefilter("ignore")
        problem.solve(solver=cp.CLARABEL, tol_gap_abs=1e-12, tol_gap_rel=1e-12, tol_feas=1e-12)
    assert problem.status in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE)
    return np.asarray(w.value)


RHOS = [0.5, 2.0, 8.0]


@pytest.mark.parametrize("norm", ["l2", "l1", "linf"])
def test_multiclass_linear_path_matches_clarabel(norm):
    X, y = separable(1, N=15, d=3, K=3)
    path = lm.constrained_path(multiclass(3, 3), lm.Dataset(X, y, n_classes=3), RHOS, norm=norm, loss="cross_entropy")
    assert path.success and path.kind == "constrained"
    A = kesler(X, y, 3)[0]
    for point in path.points:
        w = reference(A, 2, point.parameter, norm)
        np.testing.assert_allclose(A @ point.theta, A @ w, rtol=0, atol=1e-7)   # the loss is strictly convex in them
        if norm == "l2":                          # W + 1 c^T has the same margins: unique only in a strict ball
            np.testing.assert_allclose(point.theta, w, rtol=0, atol=1e-7)
        assert point.certificate.status == lm.Status.OPTIMAL and point.certificate.kkt.max < 1e-8
        assert point.certificate.margin_rows is not None


def test_binary_path_is_the_logistic_loss():
    X, y = separable(2, N=15, d=3, K=2)
    path = lm.constrained_path(lm.load_model("linear", input_dim=3), lm.Dataset(X, y), RHOS, loss="cross_entropy")
    A = y[:, None] * X
    for point in path.points:
        w = reference(A, 1, point.parameter, "l2")
        np.testing.assert_allclose(point.theta, w, rtol=0, atol=1e-7)
        log_loss = np.log(np.sum(np.logaddexp(0.0, -point.parameter * (A @ point.theta))))
        assert point.certificate.objective == pytest.approx(log_loss, rel=1e-12)
        assert point.certificate.success and point.lemma2_holds and point.lemma3_holds
    record = json.loads(dumps_strict(path.to_dict()))
    assert record["loss"] == "cross_entropy" and record["points"][0]["lemma3_holds"] is True
    assert "loss" not in lm.margin_path(lm.load_model("linear", input_dim=3), lm.Dataset(X, y), RHOS).to_dict()


@pytest.fixture(scope="module")
def long_paths():
    """The cross-entropy and exponential paths of a 3-class linear model up to rho = 1e4, and the max-margin
    direction."""
    X, y = separable(5, N=12, d=3, K=3)
    data = lm.Dataset(X, y, n_classes=3)
    mm = lm.max_margin(multiclass(3, 3), data)
    rhos = [1.0, 10.0, 100.0, 1e3, 1e4]
    ce = lm.constrained_path(multiclass(3, 3), data, rhos, reference=mm.theta, loss="cross_entropy")
    exp = lm.constrained_path(multiclass(3, 3), data, rhos, reference=mm.theta)
    return data, ce, exp


def test_lemmas_2_and_3_hold_with_the_cross_entropy_bound(long_paths):
    data, ce, _ = long_paths
    R = data.n_samples * (data.n_classes - 1)
    assert ce.success and max(p.certificate.kkt.max for p in ce.points) < 1e-8
    for point in ce.points:
        assert point.lemma2_holds and point.lemma3_holds
        x = R * np.exp(-point.gamma_star)
        assert np.log(R) + x / 2 - 1e-12 <= point.lemma3_bound <= np.log(R) + x + 1e-12
        assert -1e-9 <= point.lemma3_gap <= point.lemma3_bound
        # the bound's ingredients on this data: log(1 + e^{-gamma}) <= L(rho theta_c) <= L(rho theta_m) <= x
        rows = MarginRows.of(data)
        loss = np.exp(point.certificate.objective)
        at_margin_path = np.exp(group_log_loss(multiclass(3, 3).margins(point.parameter * point.margin_path_theta,
                                                                        rows).reshape(-1, 2))[0])
        assert np.log1p(np.exp(-point.margin)) <= loss * (1 + 1e-12) and loss <= at_margin_path * (1 + 1e-12) <= x
    assert ce.points[-1].lemma3_bound == pytest.approx(np.log(R), abs=1e-6)
    # IPOPT on the epigraph: a log-sum-exp objective took hundreds of iterations once the margins passed ~25
    assert max(p.certificate.solver.iterations for p in ce.points) < 60


def test_direction_tends_to_the_max_margin_direction_and_to_the_exponential_path(long_paths):
    _, ce, exp = long_paths
    d = ce.distances_to_reference
    assert np.all(np.diff(d) < 0) and d[-1] < 1e-3 < d[0]
    between = np.array([direction_distance(a.theta, b.theta) for a, b in zip(ce.points, exp.points)])
    # log(1 + u) = u (1 - u/2 + ...): the paths differ by O(e^{-gamma}), below rounding from rho = 100 (gamma ~ 30)
    assert np.all(np.diff(between[:3]) < 0) and np.all(between[2:] < 1e-12) and between[0] > 1e-2
    assert exp.points[-1].lemma3_bound == pytest.approx(np.log(24))      # the exponential loss's bound is unchanged


def quadratic(K=3, d=3):
    return lm.Model("quadratic", [lm.Block.array("W", (K, d), degree=2)], input_dim=d,
                    output=lambda p, x: (p["W"] @ x) * (p["W"] @ x), outputs=K)


@pytest.mark.parametrize("norm", ["l2", "l1"])
def test_hand_derivatives_match_central_differences(norm):
    X, y = separable(3, N=8, d=3, K=3)
    rows = MarginRows.of(lm.Dataset(X, y, n_classes=3))
    model = quadratic()
    lift = get_norm(norm).lift(BALL, model.n_params)
    nlp = cross_entropy_constrained_path_nlp(model_margins(model, rows, "auto"), lift, 2)
    rng = np.random.default_rng(4)
    z = lift.start(0.4 * rng.standard_normal(model.n_params))
    p, h = np.array([1.7, 0.3, 1.2]), 1e-5
    lam = np.abs(rng.standard_normal(nlp.m))
    point = nlp.evaluate(z, p)
    basis = np.eye(nlp.n)
    fd = [(nlp.evaluate(z + h * e, p).objective - nlp.evaluate(z - h * e, p).objective) / (2 * h) for e in basis]
    np.testing.assert_allclose(point.gradient, fd, rtol=1e-6, atol=1e-8)

    def lagrangian_gradient(u):
        at = nlp.evaluate(u, p)
        return at.gradient - at.jacobian.T @ lam

    fdH = np.array([(lagrangian_gradient(z + h * e) - lagrangian_gradient(z - h * e)) / (2 * h) for e in basis])
    np.testing.assert_allclose(nlp.hessian(z, p, lam), fdH, rtol=1e-5, atol=1e-7)
    symbol = ca.SX.sym("z", nlp.n)
    phi, _ = nlp.expressions(symbol, ca.DM(p))
    assert float(ca.Function("phi", [symbol], [phi])(z)) == pytest.approx(point.objective, rel=1e-12)


def test_a_nonlinear_model_path_is_certified():
    X, y = separable(6, N=10, d=3, K=3)
    model = quadratic()
    path = lm.constrained_path(model, lm.Dataset(X, y, n_classes=3), [1.0, 4.0], loss="cross_entropy",
                               init=model.random_params(seed=2))
    assert path.success and all(p.lemma2_holds and p.lemma3_holds for p in path.points)


def test_deep_linear_logistic_path_aligns_end_to_end_with_the_svm():
    """Depth-2 linear net, logistic loss: W2 W1 tends to the l2 max-margin direction (margins affine in the input:
    MX expressions), and the model's own CasADi route (``structure="general"``) gives the same points."""
    from lexmargin.sweep import separable_data

    data = separable_data(20, 3, 0)
    model = lm.load_model("deep_linear", input_dim=3, depth=2, width=2)
    svm = lm.max_margin(lm.load_model("linear", input_dim=3), data).theta
    rhos, init = [1.0, 10.0, 100.0, 1000.0], model.random_params(seed=1)
    path = lm.constrained_path(model, data, rhos, init=init, loss="cross_entropy")
    general = lm.constrained_path(model, data, rhos, init=init, loss="cross_entropy", structure="general")
    assert path.success and general.success and all(p.lemma3_holds and p.lemma2_holds for p in path.points)
    def end_to_end(t):
        return (model.unflatten(t)["W2"] @ model.unflatten(t)["W1"]).ravel()

    # theta is unique only up to the hidden layer's symmetries; the end-to-end map and the loss are not
    np.testing.assert_allclose([end_to_end(t) for t in path.thetas], [end_to_end(t) for t in general.thetas],
                               rtol=0, atol=1e-8)
    np.testing.assert_allclose([p.certificate.objective for p in path.points],
                               [p.certificate.objective for p in general.points], rtol=1e-10)
    d = [direction_distance(end_to_end(t), svm) for t in path.thetas]
    assert np.all(np.diff(d) < 0) and d[-1] < 1e-6


def test_a_perturbed_point_or_multiplier_is_not_certified():
    X, y = separable(7, N=12, d=3, K=3)
    rows = MarginRows.of(lm.Dataset(X, y, n_classes=3))
    model = multiclass(3, 3)
    rho = 5.0
    point = lm.constrained_path(model, rows, [rho], loss="cross_entropy").points[0]
    lift = get_norm("l2").lift(BALL, model.n_params)
    nlp = cross_entropy_constrained_path_nlp(model_margins(model, rows, "auto"), lift, 2)
    c = float(np.min(model.margins(rho * point.theta, rows)))
    p = [rho, c, max(1.0, abs(c))]
    at = nlp.evaluate(point.theta, p)
    lam = np.linalg.lstsq(at.jacobian.T, at.gradient, rcond=None)[0]
    tol = point.certificate.tolerances
    assert lam[0] > 0 and certify(nlp, point.theta, lam, p=p, tolerances=tol).kkt_met(tol)
    for wrong in (lam * (1 + 1e-4), -lam, np.zeros_like(lam)):
        assert not certify(nlp, point.theta, wrong, p=p, tolerances=tol).kkt_met(tol)
    turn = np.linalg.qr(np.column_stack([point.theta, np.random.default_rng(0).standard_normal(point.theta.size)]))[0]
    moved = np.cos(1e-4) * point.theta + np.sin(1e-4) * turn[:, 1] * np.sign(turn[:, 0] @ point.theta)
    assert not certify(nlp, moved, lam, p=p, tolerances=tol).kkt_met(tol)     # on the sphere, off the optimum
    assert not certify(nlp, point.theta * (1 - 1e-4), lam, p=p, tolerances=tol).kkt_met(tol)   # inside the ball


def test_bad_loss_and_formulation_are_rejected():
    X, y = separable(2, N=6, d=3, K=2)
    data, model = lm.Dataset(X, y), lm.load_model("linear", input_dim=3)
    with pytest.raises(LexmarginError, match="unknown loss 'hinge' for the constrained path"):
        lm.constrained_path(model, data, [1.0], loss="hinge")
    with pytest.raises(LexmarginError, match="exponential loss's"):
        lm.constrained_path(model, data, [1.0], loss="cross_entropy", formulation="lse")


# ---- properties ----------------------------------------------------------------------------------------------
@PROPERTY
@given(gamma=st.floats(-600.0, 1e6), n_rows=st.integers(1, 10 ** 6))
def test_lemma3_bound_lies_between_its_limits(gamma, n_rows):
    """log R + x/2 <= B <= log R + x, x = R e^{-gamma*}, and B = gamma* + log(expm1(x)) where that is finite."""
    B = cross_entropy_lemma3_bound(gamma, n_rows)
    log_x = np.log(n_rows) - gamma
    x = np.exp(log_x)
    assert np.log(n_rows) + x / 2 - 1e-9 * max(1.0, B) <= B <= np.log(n_rows) + x + 1e-9 * max(1.0, B)
    if 1e-8 < x < 700:
        assert B == pytest.approx(gamma + np.log(np.expm1(x)), rel=1e-9, abs=1e-9)


@PROPERTY
@given(seed=st.integers(0, 10 ** 6), g=st.integers(1, 4), shift=st.floats(-30.0, 1e7), spread=st.floats(0.0, 40.0))
def test_log_loss_weights_match_their_definition_at_any_margin_scale(seed, g, shift, spread):
    """A = log sum_n log(1 + sum_j e^{-F_nj}) and v = -dA/dF: against a direct evaluation (shifted by the
    smallest margin), and the Gauss-Newton Hessian against the weights' finite differences (margins below 100)."""
    rng = np.random.default_rng(seed)
    F = shift + spread * rng.random((5, g))
    A, v, q, _ = group_log_loss(F)
    m = np.min(F)
    T = np.sum(np.exp(-(F - m)), axis=1)                 # S_n = e^{-m} T_n, 1 <= max T_n
    if m < 30:
        direct = np.log(np.sum(np.log1p(np.exp(-m) * T)))
    else:                                                # log(1 + u) = u (1 + O(u)), u <= g e^{-30}
        direct = -m + np.log(np.sum(T))
    assert A == pytest.approx(direct, rel=1e-10, abs=1e-10)
    assert np.all(v >= 0) and np.sum(v) <= 1 + 1e-14 * max(1.0, np.max(np.abs(F)))   # exponents round at eps |F|
    if m > 100:             # F + G h rounds at ~1e-16 |F|: finite differences only where that is below h^2
        return
    G = rng.standard_normal((F.size, 3))

    def minus_grad(t):                                   # -d A(F + G t)/dt = G^T v
        return G.T @ group_log_loss(F + (G @ t).reshape(F.shape))[1].reshape(-1)

    h = 1e-6
    fd = np.array([(minus_grad(-h * e) - minus_grad(h * e)) / (2 * h) for e in np.eye(3)])
    np.testing.assert_allclose(group_log_loss_hessian(G, v, q), fd, rtol=1e-5, atol=1e-8)


@settings(max_examples=6, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10 ** 5), K=st.integers(2, 4), scale=st.sampled_from([1e-2, 1.0, 30.0]))
def test_random_paths_are_certified_and_keep_the_bound(seed, K, scale):
    X, y = separable(seed, N=10, d=3, K=K)
    data = lm.Dataset(scale * X, y) if K == 2 else lm.Dataset(scale * X, y, n_classes=K)
    model = lm.load_model("linear", input_dim=3) if K == 2 else multiclass(3, K)
    path = lm.constrained_path(model, data, [1.0, 10.0, 100.0], loss="cross_entropy")
    assert path.success
    assert all(p.lemma2_holds and p.lemma3_holds for p in path.points)


# ---- sweeps and the command line ------------------------------------------------------------------------------
def sweep_config(**problem) -> dict:
    return {"name": "ce", "seeds": [0], "models": ["linear"],
            "datasets": [{"name": "g", "kind": "separable", "n": 12, "d": 2}], "problems": [problem]}


def test_sweep_paths_take_the_loss():
    from lexmargin.sweep import run_sweep

    report = run_sweep(sweep_config(type="constrained_path", rhos=[1.0, 4.0], loss="cross_entropy")).to_dict()
    exp = run_sweep(sweep_config(type="constrained_path", rhos=[1.0, 4.0])).to_dict()
    reg = run_sweep(sweep_config(type="regularization_path", lambdas=[1e-2], loss="cross_entropy")).to_dict()
    (point,), (exp_point,), (reg_point,) = report["points"], exp["points"], reg["points"]
    assert point["status"] == exp_point["status"] == reg_point["status"] == "optimal"
    assert report["config"]["problems"][0]["loss"] == "cross_entropy"
    assert point["result"]["theta_last"] != exp_point["result"]["theta_last"]     # another loss, another point


@pytest.mark.parametrize("problem, fragment", [
    ({"type": "constrained_path", "loss": "hinge"}, "loss must be one of ('exp', 'cross_entropy'); got 'hinge'"),
    ({"type": "margin_path", "loss": "cross_entropy"}, "problem 'margin_path' has unknown keys ['loss']"),
])
def test_sweep_loss_errors_are_one_line_with_exit_2(problem, fragment, tmp_path, capsys):
    from lexmargin.cli import main
    from lexmargin.errors import SweepError
    from lexmargin.sweep import config_from_dict

    with pytest.raises(SweepError, match=re.escape(fragment)):
        config_from_dict(sweep_config(**problem))
    config = tmp_path / "s.json"
    config.write_text(json.dumps(sweep_config(**problem)))
    code = main(["sweep", str(config), "--out", str(tmp_path / "r.json")])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("sweep ")]
    assert code == 2 and "Traceback" not in err and len(lines) == 1 and fragment in lines[0], err
