"""The Clarke-KKT check of ReLU max-margin certificates (lexmargin/nlp/clarke.py, regions.vertices).

Checked against an independent numpy computation of two-layer nets' gradients for chosen kink slopes, and
against brute-force enumeration of slope choices on a grid: the check's residual is never above the best
grid choice's (its columns span the whole Clarke subdifferential).
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import nnls
from verify_helpers import PROPERTY, kinked_point

import lexmargin as lm
import lexmargin.problems.maxmargin as M
from lexmargin import Block, Dataset, Model, ops
from lexmargin.modeling.regions import RegionMargins
from lexmargin.nlp.clarke import KinkedRow, clarke_check
from lexmargin.nlp.norms import OBJECTIVE, get_norm
from lexmargin.nlp.options import Tolerances
from lexmargin.nlp.status import Status


def issue_net_and_data():
    """The reproduction of the ReLU issue: 7 (support sample, unit) pairs on kinks were certified optimal."""
    rng = np.random.default_rng(9501)
    A = rng.standard_normal((200, 3))
    X = A[np.abs(np.abs(A[:, 0]) - np.abs(A[:, 1])) > 0.25][:12]
    y = np.where(np.abs(X[:, 0]) > np.abs(X[:, 1]), 1.0, -1.0)
    net = Model("r", [Block("net", {"V": (4, 3), "a": (4,)}, degree=2)], input_dim=3,
                output=lambda p, x: p.a @ ops.relu(p.V @ x))
    return net, Dataset(X, y)


def two_layer_gradient(V, a, x, y, slopes):
    """grad of y a . relu(V x) with relu'(z_j) = slopes[j] (numpy, independent of lexmargin): (dV, da)."""
    z = V @ x
    dV = y * (a * slopes)[:, None] * x[None, :]
    da = y * np.maximum(z, 0.0)
    return np.concatenate([dV.ravel(), da])


def default_slopes(z):
    return (z > 0).astype(float)


def test_issue_reproduction_is_certified_only_where_a_clarke_choice_exists(monkeypatch):
    net, data = issue_net_and_data()
    cert = lm.max_margin(net, data, starts=6, seed=9502)
    assert cert.status == Status.OPTIMAL and cert.kkt.max <= 1e-8
    region = cert.diagnostics.region
    # the starts that reach the certified point (within TIE) walk 1 to 6 regions, depending on MUMPS's pivoting and
    # the CPU's rounding (on an Intel machine the first start crossed a region boundary, on an AMD EPYC one its first
    # region held the optimum); the first one is reported: every region before its last ends at a boundary
    assert region.walk[-1].status == Status.OPTIMAL
    assert all(step.status == Status.REGION_BOUNDARY for step in region.walk[:-1])
    objectives = [w.objective for w in region.walk]
    assert all(b <= a * (1 + 1e-9) for a, b in zip(objectives, objectives[1:]))
    # independent check: 2 theta = sum_n lambda_n grad f_n with the reported slopes on the kinked units
    V, a = cert.theta[:12].reshape(4, 3), cert.theta[12:]
    chosen = {c["row"]: c for c in region.clarke["slopes"]}
    total = np.zeros(16)
    for n in np.nonzero(cert.multipliers)[0]:
        s = default_slopes(V @ data.X[n])
        for (call, unit), value in zip(chosen.get(n, {"units": [], "slopes": []})["units"],
                                       chosen.get(n, {"slopes": []})["slopes"]):
            assert call == 0 and 0.0 <= value <= 1.0
            s[unit] = value
        total += cert.multipliers[n] * two_layer_gradient(V, a, data.X[n], data.y[n], s)
    assert np.max(np.abs(2 * cert.theta - total)) <= 1e-7 * np.max(np.abs(2 * cert.theta))
    # the first region's end point (no walk) is not certified: no slope choice makes it stationary
    monkeypatch.setattr(M, "WALK_MAX_STEPS", 1)
    monkeypatch.setattr(M, "WALK_MAX_STEPS_CONVEX", 1)
    stuck = lm.max_margin(net, data, starts=1, seed=9502, raise_on_failure=False)
    assert stuck.status != Status.OPTIMAL and stuck.diagnostics.region.clarke["residuals"]["max"] > 1e-3
    assert stuck.normalized_margin < cert.normalized_margin


def test_the_stationarity_report_at_a_certified_point_with_kinks_is_clarke_stationary():
    """max_margin certifies the issue's net by its Clarke check (support samples with units at their kinks); the
    stationarity report at its theta reads it (eps, delta)-KKT to rounding over the Clarke subdifferential
    (lexmargin/report/stationarity.py), where one gradient per row (derivative 0 at the kink) left relative eps 0.41.
    The reported slopes, with this file's numpy gradients, rebuild theta_hat."""
    from lexmargin.report import stationarity_report

    net, data = issue_net_and_data()
    X, y = data.X, data.y
    cert = lm.max_margin(net, data, starts=6, seed=9502)
    assert cert.status.value == "optimal" and cert.diagnostics.region.clarke["kinked_rows"] >= 1
    report = stationarity_report(net, data, cert.theta, support_tol=1e-6)
    k = report.kinks
    assert k is not None and k.fitted and k.undecided_rows == 0
    assert {s["row"] for s in cert.diagnostics.region.clarke["slopes"]} <= set(k.rows.tolist())
    assert report.kkt.relative_epsilon <= 1e-12 and abs(report.kkt.delta) <= 1e-12
    assert report.is_approximate_kkt(1e-9, 1e-9)
    assert k.single_gradient_epsilon > 0.1 * np.linalg.norm(cert.theta)
    theta_hat = cert.theta / report.scale
    V, a = theta_hat[:12].reshape(4, 3), theta_hat[12:]
    chosen = {s["row"]: s for s in k.slopes}
    total = np.zeros(theta_hat.size)
    for n in np.flatnonzero(report.multipliers):
        slopes = (V @ X[n] > 0).astype(float)
        for (call, unit), s in zip(chosen[n]["units"], chosen[n]["slopes"]) if n in chosen else ():
            assert call == 0 and 0.0 <= s <= 1.0
            slopes[unit] = s
        total += report.multipliers[n] * two_layer_gradient(V, a, X[n], y[n], slopes)
    np.testing.assert_allclose(total, theta_hat, rtol=0, atol=1e-12 * np.abs(theta_hat).max())


def test_unrestricted_solves_are_certified_by_the_clarke_check(monkeypatch):
    """activation_region=False: IPOPT on the nonsmooth net itself.  Its points are judged by the Clarke check too
    (the solver's derivative at a kink is one convention, not a certificate), and a separating start is kept as an
    outcome, so a solver that wanders off it never ends in a failure status."""
    net, data = issue_net_and_data()
    certified = lm.max_margin(net, data, starts=6, seed=9502)
    at_optimum = lm.max_margin(net, data, activation_region=False, init=certified.theta)
    assert at_optimum.status == Status.OPTIMAL and at_optimum.kkt.max <= 1e-8
    clarke = at_optimum.diagnostics.region.clarke
    assert clarke["kinks"] >= 1 and clarke["residuals"]["max"] == at_optimum.kkt.max
    assert not at_optimum.diagnostics.region.walk and "activation region" not in at_optimum.constraints
    np.testing.assert_allclose(at_optimum.normalized_margin, certified.normalized_margin, rtol=1e-9)
    monkeypatch.setattr(M, "WALK_MAX_STEPS", 1)
    monkeypatch.setattr(M, "WALK_MAX_STEPS_CONVEX", 1)
    stuck = lm.max_margin(net, data, starts=1, seed=9502, raise_on_failure=False)
    at_boundary = lm.max_margin(net, data, activation_region=False, init=stuck.theta, raise_on_failure=False)
    assert at_boundary.status not in (Status.OPTIMAL, Status.NO_SEPARATING_POINT, Status.INFEASIBLE)
    assert at_boundary.kkt.max > 1e-3 and at_boundary.diagnostics.region.clarke["kinks"] >= 1
    assert np.min(at_boundary.margins) >= 1 - 1e-9


# ---- brute force on tiny two-layer nets at points with kinks -------------------------------------------
def clarke_of(model, data, theta, tol=Tolerances()):
    region = RegionMargins(model, data, theta)
    lift = get_norm("l2").lift(OBJECTIVE, model.n_params)
    nlp = M.margin_nlp(region, lift, np.arange(data.n_samples), extra=False)
    kinked = {}
    for n, units in region.kinks(theta, tol.active).items():
        v = region.vertices(theta, n, units)
        kinked[n] = KinkedRow(n, v.units, v.slopes, v.gradients, v.complete)
    return clarke_check(nlp, theta, kinked, tolerances=tol), kinked


def grid_residual(V, a, data, kinks, grid=(0.0, 0.25, 0.5, 0.75, 1.0)):
    """min over slope choices on a grid (per kinked (sample, unit)) of the NNLS residual ||2 theta - G^T lam||."""
    theta = np.concatenate([V.ravel(), a])
    pairs = [(n, u) for n, units in kinks.items() for _, u in units]
    best = np.inf
    for choice in np.array(np.meshgrid(*[grid] * len(pairs))).reshape(len(pairs), -1).T:
        columns = []
        for n in range(data.n_samples):
            s = default_slopes(V @ data.X[n])
            for (m, u), value in zip(pairs, choice):
                if m == n:
                    s[u] = value
            columns.append(two_layer_gradient(V, a, data.X[n], data.y[n], s))
        best = min(best, nnls(np.array(columns).T, 2 * theta)[1])
    return best


@settings(PROPERTY, max_examples=6, deadline=None)
@given(seed=st.integers(0, 10 ** 6))
def test_clarke_residual_is_never_above_any_slope_choice(seed):
    V, a, data = kinked_point(seed)
    model = lm.load_model("two_layer", input_dim=3, activation="relu", width=3)
    theta = np.concatenate([V.ravel(), a])
    np.testing.assert_allclose(model.margins(theta, data), 1.0, rtol=1e-9)
    check, kinked = clarke_of(model, data, theta)
    assert 0 in kinked and (0, 0) in kinked[0].units and check.kinks >= 1
    report = check.report
    residual = np.linalg.norm(report.extended.point.gradient - report.extended.jacobian.T @ report.multipliers)
    assert residual <= grid_residual(V, a, data, {n: r.units for n, r in kinked.items()}) + 1e-9 * np.linalg.norm(theta)
    assert np.all(report.multipliers >= 0)
    for entry in check.slopes:
        assert all(0.0 <= s <= 1.0 for s in entry["slopes"])


def test_vertex_gradients_of_a_single_kink():
    """f = a relu(v . x) with v . x = 0: the active side's gradient (d/dv = a x, d/da = relu(0) = 0) and the
    inactive side's (0) are the two vertices; both sides are realizable."""
    net = lm.load_model("two_layer", input_dim=2, activation="relu", width=1)
    theta = np.array([1.0, 0.0, 1.0])
    data = Dataset(np.array([[1.0, 1.0], [0.0, 1.0]]), np.array([1.0, 1.0]))
    region = RegionMargins(net, data, theta)
    kinks = region.kinks(theta, 1e-8)
    assert kinks == {1: [0]}                # sample 1: v . x = 0
    vertices = region.vertices(theta, 1, kinks[1])
    assert vertices.slopes.tolist() == [[0.0], [1.0]] and vertices.dropped == 0
    np.testing.assert_allclose(vertices.gradients, [[0.0, 0.0, 0.0], [0.0, 1.0, 0.0]], atol=1e-15)


def test_unrealizable_patterns_of_stacked_kinks_are_dropped():
    """Three layers: a second-layer unit fed only by a kinked first-layer unit is itself at a kink; on the first
    unit's inactive side the second one cannot move (zero gradient): those patterns are not limits of gradients."""
    def output(p, x):
        return ops.dot(p["a"], ops.relu(ops.matmul(p["W2"], ops.relu(ops.matmul(p["W1"], x)))))

    net = Model("deep", [Block("l1", {"W1": (1, 2)}, 1), Block("l2", {"W2": (1, 1)}, 1), Block("o", {"a": (1,)}, 1)],
                input_dim=2, output=output)
    theta = np.array([1.0, 0.0, 2.0, 1.0])           # z1 = x[0], z2 = 2 relu(z1)
    data = Dataset(np.array([[0.0, 1.0]]), np.array([1.0]))
    region = RegionMargins(net, data, theta)
    assert region.kinks(theta, 1e-8)[0] == [0, 1]        # z2 = 0 (constant in this region: z1 inactive)
    v = region.vertices(theta, 0, [0])
    assert v.units == ((0, 0), (1, 0))        # found from z1 alone: z2 moves with z1 on its active side
    # z1 < 0: z2 = 0 identically (no direction moves it): 2 patterns dropped; z1 > 0: z2 = 2 z1 > 0 only
    assert v.dropped == 3 and v.slopes.tolist() == [[1.0, 1.0]]
    np.testing.assert_allclose(v.gradients, [[2.0 * 0.0, 2.0 * 1.0, 0.0, 0.0]], atol=1e-15)


def test_too_many_kinks_leave_the_check_undecided():
    net = lm.load_model("two_layer", input_dim=2, activation="relu", width=3)
    theta = np.array([1.0, 0.0, 2.0, 0.0, 3.0, 0.0, 1.0, 1.0, 1.0])
    data = Dataset(np.array([[0.0, 1.0]]), np.array([1.0]))
    region = RegionMargins(net, data, theta)
    units = region.kinks(theta, 1e-8)[0]
    assert len(units) == 3
    v = region.vertices(theta, 0, units, max_vertices=4)
    assert not v.complete and v.gradients.shape[0] == 0
    lift = get_norm("l2").lift(OBJECTIVE, net.n_params)
    nlp = M.margin_nlp(region, lift, np.arange(1), extra=False)
    check = clarke_check(nlp, theta, {0: KinkedRow(0, v.units, v.slopes, v.gradients, False)})
    assert check.undecided == 1 and check.kinks == 3 and not check.holds(Tolerances())


def test_leaky_relu_slopes_stay_in_alpha_one():
    net = lm.load_model("two_layer", input_dim=2, activation="leaky_relu", width=2, slope=0.2)
    theta = np.array([1.0, 0.0, 0.0, 1.0, 1.0, 1.0])
    data = Dataset(np.array([[0.0, 1.0], [1.0, 0.0]]), np.array([1.0, 1.0]))
    region = RegionMargins(net, data, theta)
    kinks = region.kinks(theta, 1e-8)
    assert kinks == {0: [0], 1: [1]}
    v = region.vertices(theta, 0, kinks[0])
    assert sorted(v.slopes.ravel().tolist()) == [0.2, 1.0]
    np.testing.assert_allclose(v.lows, [0.2])
