"""The path-norm max-margin certificate (nlp.norms.PathNorm, problems.pathnorm)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lexmargin as lm
from lexmargin.errors import LexmarginError
from lexmargin.nlp.norms import BalancedPathNorm, PathNorm, get_norm
from lexmargin.problems.pathnorm import certify_point, gauge_fix, path_max_margin
from lexmargin.sweep import separable_data


def _relu(width=4, d=2):
    return lm.load_model("two_layer", input_dim=d, activation="relu", width=width)


def _linear(width=3, d=2):
    return lm.load_model("deep_linear", input_dim=d, depth=2, width=width)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10**6), st.sampled_from([0.0, 0.25]))
def test_gradient_and_hessian_match_finite_differences(seed, rho):
    model = _relu(3, 2)
    norm = (BalancedPathNorm(rho=rho) if rho else PathNorm()).bind(model)
    z = np.random.default_rng(seed).standard_normal(model.n_params)
    P, h = z.size, 1e-6
    grad = norm.objective_gradient(z, P)
    fd = np.array([(norm.objective_of_z(z + h * e, P) - norm.objective_of_z(z - h * e, P)) / (2 * h)
                   for e in np.eye(P)])
    assert np.allclose(grad, fd, rtol=1e-6, atol=1e-6 * np.max(np.abs(grad)))
    hess = norm.objective_hessian(z, P)
    fdh = np.array([(norm.objective_gradient(z + h * e, P) - norm.objective_gradient(z - h * e, P)) / (2 * h)
                    for e in np.eye(P)])
    assert np.allclose(hess, hess.T) and np.allclose(hess, fdh, rtol=1e-5, atol=1e-5 * np.max(np.abs(hess)))
    import casadi as ca
    sym = ca.SX.sym("z", P)
    value = float(ca.Function("f", [sym], [norm.objective_expr(sym, P)])(z))
    assert value == pytest.approx(norm.objective_of_z(z, P), rel=1e-12)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10**6))
def test_objective_and_margins_are_invariant_under_node_rescaling(seed):
    rng = np.random.default_rng(seed)
    model = _relu(3, 2)
    norm = PathNorm().bind(model)
    theta = rng.standard_normal(model.n_params)
    V, a = norm.split(theta)
    c = np.exp(rng.uniform(-2, 2, size=a.size))
    moved = norm.join(V / c[:, None], a * c)
    data = lm.Dataset(rng.standard_normal((5, 2)), np.array([1, -1, 1, -1, 1.0]))
    assert norm.objective_value(moved) == pytest.approx(norm.objective_value(theta), rel=1e-12)
    assert np.allclose(model.margins(moved, data), model.margins(theta, data), rtol=1e-12, atol=1e-12)
    balanced = norm.balance(moved)
    assert norm.imbalance(balanced) < 1e-14 and norm.imbalance(moved) > 0
    assert np.allclose(norm.paths(balanced), norm.paths(theta), rtol=1e-12, atol=1e-14)


def test_path_norm_needs_a_bound_two_layer_layout():
    with pytest.raises(LexmarginError, match="bind"):
        get_norm("path").lift("objective", 6)
    with pytest.raises(LexmarginError, match="two-layer"):
        get_norm("path").bind(lm.load_model("linear", input_dim=3))
    with pytest.raises(lm.ModelError, match="degree 2"):
        path_max_margin(lm.load_model("two_layer", input_dim=2, activation="square"), separable_data(6, 2, seed=0))
    with pytest.raises(LexmarginError, match="objective form only"):
        get_norm("path").bind(_relu()).lift("ball", _relu().n_params)


def test_linear_activation_net_matches_cvxpy_and_the_svm():
    """f = y (sum_j w_j) . x with w_j = a_j v_j: min sum_j ||w_j||^2 is a convex QP in W (cvxpy), and its solution
    is w_j = beta* / H, beta* the SVM through the origin, phi* = ||beta*||^2 / H."""
    cp = pytest.importorskip("cvxpy")
    data = separable_data(20, 2, seed=0)
    H = 3
    res = path_max_margin(_linear(H), data, seed=0)
    cert = res.certificate
    assert cert.status == lm.Status.OPTIMAL and res.balanced and res.imbalance < 1e-12
    W = cp.Variable((H, 2))
    A = data.y[:, None] * data.X
    prob = cp.Problem(cp.Minimize(cp.sum_squares(W)), [A @ (W.T @ np.ones(H)) >= 1])
    prob.solve(solver=cp.CLARABEL, tol_gap_abs=1e-12, tol_gap_rel=1e-12, tol_feas=1e-12)
    assert cert.objective == pytest.approx(prob.value, rel=1e-7)
    assert np.allclose(res.paths, W.value, atol=1e-6)
    svm = lm.max_margin(lm.load_model("linear", input_dim=2), data)
    assert cert.objective == pytest.approx(svm.objective / H, rel=1e-9)
    assert np.allclose(res.paths, np.tile(svm.theta / H, (H, 1)), atol=1e-9)
    assert cert.second_order.strict is not True          # the rescalings: a set of minimizers
    assert cert.normalized_margin == pytest.approx(1 / np.sqrt(cert.objective), rel=1e-9)


def test_relu_net_matches_its_region_qp():
    """In the activation region of the certified point (no kinks), with the signs s_j of a_j fixed, the problem in
    w_j = a_j v_j is the convex QP  min sum ||w_j||^2  s.t.  y_n sum_{j on at n} w_j . x_n >= 1, s_j w_j . x_n >= 0 (on)
    / <= 0 (off): cvxpy's optimum equals the certificate's objective."""
    cp = pytest.importorskip("cvxpy")
    data = separable_data(20, 2, seed=1)
    model = _relu(4)
    res = path_max_margin(model, data, seed=0)
    cert = res.certificate
    assert cert.status == lm.Status.OPTIMAL and res.balanced and res.imbalance < 1e-12
    assert cert.diagnostics.region.clarke["kinks"] == 0
    norm = PathNorm().bind(model)
    V, a = norm.split(cert.theta)
    live = np.nonzero(np.abs(a) * np.linalg.norm(V, axis=1) > 0)[0]
    on = (data.X @ V.T > 0)
    W = cp.Variable((live.size, 2))
    cons = []
    for n in range(data.n_samples):
        terms = [W[i] @ data.X[n] for i, j in enumerate(live) if on[n, j]]
        assert terms, f"sample {n} sees no live unit: the region QP would be infeasible"
        cons.append(data.y[n] * sum(terms) >= 1)
    for i, j in enumerate(live):
        s = np.sign(a[j])
        cons += [s * (data.X[on[:, j]] @ W[i]) >= 0, s * (data.X[~on[:, j]] @ W[i]) <= 0]
    prob = cp.Problem(cp.Minimize(cp.sum_squares(W)), cons)
    prob.solve(solver=cp.CLARABEL)
    assert prob.status == "optimal"
    assert cert.objective == pytest.approx(prob.value, rel=1e-6)
    assert np.allclose(res.paths[live], W.value, atol=1e-4)


def test_mutated_points_and_derivatives_are_caught():
    data = separable_data(20, 2, seed=1)
    model = _relu(4)
    res = path_max_margin(model, data, seed=0)
    theta = res.certificate.theta
    norm = PathNorm().bind(model)
    # the gauge is a symmetry: a rescaled point is certified again (with the same objective)
    V, a = norm.split(theta)
    rescaled = norm.join(V / 1.5, a * 1.5)
    again = certify_point(model, data, rescaled)
    assert again.status == lm.Status.OPTIMAL and again.objective == pytest.approx(res.certificate.objective, rel=1e-12)
    # a point moved off the minimizer set (feasible, larger objective) is not
    moved = theta.copy()
    moved[norm.v_index[0]] += 1e-3 * np.linalg.norm(V[0])
    moved = moved / min(1.0, float(np.min(model.margins(moved, data)))) ** 0.5
    assert certify_point(model, data, moved).status != lm.Status.OPTIMAL
    # a wrong derivative of the objective (1e-3 off on the output weights) is caught by the recomputed residuals

    class Wrong(PathNorm):
        def objective_gradient(self, z, P):
            g = super().objective_gradient(z, P)
            g[list(self.a_index)] *= 1 + 1e-3
            return g

    assert certify_point(model, data, theta, Wrong(norm.v_index, norm.a_index)).status != lm.Status.OPTIMAL
    # the gauge-fixed NLP's own point, balanced exactly, is certified for the plain path norm
    fixed, dead = gauge_fix(norm, res.unbalanced.theta)
    assert certify_point(model, data, fixed, norm).status == lm.Status.OPTIMAL and dead == ()
    # and max_margin(norm="path") solves that gauge-fixed NLP
    assert isinstance(get_norm("path"), BalancedPathNorm)
    plain = lm.max_margin(model, data, norm="path", seed=0)
    assert plain.objective == pytest.approx(res.certificate.objective, rel=1e-8)
    assert norm.imbalance(plain.theta) < 1e-6


# ---- the norm itself, without a solver: fast properties of PathNorm / BalancedPathNorm -------------------------
def _two_unit_point():
    """V = [[3, 4], [0, 1]], a = [1, 2] of a relu net with 2 units: ||v|| = (5, 1), phi = 1 * 25 + 4 * 1 = 29."""
    model = _relu(2, 2)
    norm = PathNorm().bind(model)
    return model, norm, norm.join(np.array([[3.0, 4.0], [0.0, 1.0]]), np.array([1.0, 2.0]))


def test_path_norm_values_by_hand_and_their_degrees():
    model, norm, theta = _two_unit_point()
    assert norm.objective_value(theta) == 29.0
    assert norm.path_norm(theta) == pytest.approx(29.0 ** 0.5, rel=1e-15)
    assert norm.value(theta) == pytest.approx(29.0 ** 0.25, rel=1e-15)
    for t in (1e-3, 0.5, 3.0):          # phi is 4-homogeneous, the path norm 2-homogeneous, value 1-homogeneous
        assert norm.path_norm(t * theta) == pytest.approx(t ** 2 * norm.path_norm(theta), rel=1e-13)
        assert norm.value(t * theta) == pytest.approx(t * norm.value(theta), rel=1e-13)
    assert norm.path_norm(np.zeros(model.n_params)) == 0.0


def test_imbalance_by_hand_is_scale_free_and_zero_at_zero():
    """max_j | |a_j| - ||v_j|| | / max_j (|a_j| + ||v_j||) = max(4, 1) / max(6, 3)."""
    model, norm, theta = _two_unit_point()
    assert norm.imbalance(theta) == pytest.approx(4.0 / 6.0, rel=1e-15)
    for t in (1e-4, 0.1, 10.0, 1e4):
        assert norm.imbalance(t * theta) == pytest.approx(4.0 / 6.0, rel=1e-12)
    assert norm.imbalance(np.zeros(model.n_params)) == 0.0
    assert norm.imbalance(norm.balance(theta)) < 1e-15
    V, a = norm.split(theta)
    assert norm.imbalance(norm.join(V, -a)) == pytest.approx(4.0 / 6.0, rel=1e-15)     # |a_j|, not a_j


def test_balance_leaves_dead_units_alone_and_balances_every_live_unit():
    """Units with a_j = 0 or v_j = 0 are returned as they are; every other unit gets |a_j| = ||v_j|| with its
    path a_j v_j unchanged (a unit with a_j = 1 exactly, too)."""
    model = _relu(5, 2)
    norm = PathNorm().bind(model)
    V = np.array([[3.0, 4.0], [0.0, 0.0], [0.5, -2.0], [0.0, 0.25], [1.0, 1.0]])
    a = np.array([0.0, -3.0, 1.0, -8.0, 0.0])
    theta = norm.join(V, a)
    out = norm.balance(theta)
    assert np.all(np.isfinite(out))
    V2, a2 = norm.split(out)
    for j in (0, 1, 4):                                    # dead: unchanged
        assert V2[j].tolist() == V[j].tolist() and a2[j] == a[j]
    for j in (2, 3):                                       # live: balanced, same path, same sign of a_j
        assert abs(a2[j]) == pytest.approx(np.linalg.norm(V2[j]), rel=1e-14) and np.sign(a2[j]) == np.sign(a[j])
    assert np.allclose(norm.paths(out), norm.paths(theta), rtol=1e-14, atol=0)
    assert norm.objective_value(out) == pytest.approx(norm.objective_value(theta), rel=1e-14)


@settings(max_examples=25, deadline=None, derandomize=True, database=None)
@given(st.integers(0, 2 ** 32 - 1), st.integers(1, 4), st.integers(1, 3), st.floats(-6, 6))
def test_balance_is_a_rescaling_of_the_same_function(seed, H, D, log_scale):
    """For any point (some units dead), balance returns the same function (paths, margins, phi) with |a_j| =
    ||v_j|| on every live unit, and balancing again changes nothing."""
    rng = np.random.default_rng(seed)
    model = _relu(H, D)
    norm = PathNorm().bind(model)
    V = rng.standard_normal((H, D)) * np.exp(log_scale)
    a = rng.standard_normal(H) * np.exp(-log_scale)
    a[rng.random(H) < 0.25] = 0.0
    V[rng.random(H) < 0.25] = 0.0
    theta = norm.join(V, a)
    out = norm.balance(theta)
    V2, a2 = norm.split(out)
    live = (np.linalg.norm(V, axis=1) > 0) & (a != 0)
    assert np.allclose(np.abs(a2[live]), np.linalg.norm(V2[live], axis=1), rtol=1e-12, atol=0)
    assert np.array_equal(out[list(norm.v_index)].reshape(H, D)[~live], V[~live]) and np.array_equal(a2[~live],
                                                                                                  a[~live])
    assert np.allclose(norm.paths(out), norm.paths(theta), rtol=1e-12, atol=1e-300)
    X = rng.standard_normal((4, D))
    data = lm.Dataset(X, np.array([1.0, -1.0, 1.0, -1.0]))
    assert np.allclose(model.margins(out, data), model.margins(theta, data), rtol=1e-10,
                       atol=1e-12 * (1 + np.max(np.abs(model.margins(theta, data)))))
    assert np.allclose(norm.balance(out), out, rtol=1e-14, atol=0)


def test_split_and_join_round_trip_any_shape_of_theta():
    model, norm, theta = _two_unit_point()
    V, a = norm.split(theta.reshape(-1, 1))                # a column (CasADi's DM shape) reads like a flat theta
    assert V.shape == (2, 2) and a.shape == (2,)
    assert V.tolist() == [[3.0, 4.0], [0.0, 1.0]] and a.tolist() == [1.0, 2.0]
    assert np.array_equal(norm.join(*norm.split(theta)), theta)
    assert norm.objective_gradient(theta.reshape(-1, 1), 0).shape == (model.n_params,)
    assert np.array_equal(norm.objective_gradient(theta.reshape(-1, 1), 0), norm.objective_gradient(theta, 0))


def _arrays_model(shapes, D=2):
    blocks = [lm.Block.array(name, shape, degree=1) for name, shape in shapes]
    return lm.Model("arrays", blocks, input_dim=D, output=lambda p, x: 0.0 * x[0], verify=False)


def test_bind_needs_exactly_one_h_by_d_matrix_and_one_h_vector():
    ok = _arrays_model([("V", (3, 2)), ("a", 3)])
    bound = PathNorm().bind(ok)
    assert bound.width == 3 and bound.v_index == tuple(range(6)) and bound.a_index == (6, 7, 8)
    flipped = PathNorm().bind(_arrays_model([("a", 3), ("V", (3, 2))]))
    assert flipped.a_index == (0, 1, 2) and flipped.v_index == tuple(range(3, 9))
    for shapes in ([("V", (3, 2)), ("a", 3), ("U", (2, 3))],    # a third array
                   [("V", (3, 3)), ("a", 3)],                   # no (H, D) matrix
                   [("V", (3, 2)), ("W", (3, 2))],              # no vector
                   [("V", (3, 2)), ("a", 4)],                   # H does not match
                   [("V", (3, 2)), ("a", 3), ("b", 3)]):        # two vectors
        with pytest.raises(LexmarginError, match=r"^norm 'path' needs a two-layer net with parameters V \(H x 2\) "
                                                 r"and a \(H\); model 'arrays' has arrays of shapes"):
            PathNorm().bind(_arrays_model(shapes))
    # a bound norm binds again to the same layout only
    assert bound.bind(ok).v_index == bound.v_index and bound.bind(_relu(3, 2)).a_index == bound.a_index
    for other in (_relu(4, 2), _arrays_model([("a", 3), ("V", (3, 2))])):
        with pytest.raises(LexmarginError, match=r"^this PathNorm is bound to another model's layout$"):
            bound.bind(other)


def test_lift_is_refused_with_the_reason():
    import re
    model = _relu(3, 2)
    with pytest.raises(LexmarginError, match="^" + re.escape(
            "norm 'path' has an objective form only (its ball is not convex and is unbounded along the node "
            "rescalings)") + "$"):
        get_norm("path").bind(model).lift("ball", model.n_params)
    with pytest.raises(LexmarginError, match="^" + re.escape(
            "norm 'path' depends on the model's layout: bind(model) first (max_margin does it)") + "$"):
        PathNorm().lift("objective", model.n_params)
    with pytest.raises(LexmarginError, match=r"^norm 'path' is bound to 9 parameters; got 10$"):
        PathNorm().bind(model).lift("objective", 10)
    assert PathNorm().bind(model).lift("objective", 9).n_params == 9


def test_to_dict_names_the_width_and_the_gauge():
    model = _relu(3, 2)
    assert PathNorm().bind(model).to_dict() == {"name": "path", "label": "path", "width": 3}
    d = BalancedPathNorm(rho=1).bind(model).to_dict()
    assert d == {"name": "path", "label": "path", "width": 3, "gauge": "balanced", "rho": 1.0}
    assert type(d["rho"]) is float
    assert get_norm("path").bind(model).to_dict()["rho"] == 0.25
