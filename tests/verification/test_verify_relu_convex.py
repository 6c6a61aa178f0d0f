"""The convex form of two-layer ReLU activation regions (problems/relu_convex.py) and its place in max_margin."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lexmargin as lm
from lexmargin.modeling.regions import RegionMargins
from lexmargin.nlp.status import Status
from lexmargin.problems import maxmargin as M
from lexmargin.problems import relu_convex as C
from lexmargin.sweep import relu_teacher_data

PROPERTY = settings(deadline=None, derandomize=True, max_examples=8)


def net(width=6, d=3, activation="relu"):
    return lm.load_model("two_layer", input_dim=d, activation=activation, width=width)


def separating_point(model, data, seed):
    """A separating theta (normalized GD), rescaled to min f = 1."""
    from lexmargin.problems.starts import gd_start
    theta = gd_start(model, data, seed=seed)
    f = model.margins(theta, data)
    assert f.min() > 0
    return theta / np.sqrt(f.min())


def balanced_data(seed, n=30, d=3):
    """Two classes, each a cone around its own direction (a two-layer ReLU net separates them)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = np.where(X[:, 0] * X[:, 1] > 0, 1.0, -1.0)
    return lm.Dataset(X[np.abs(X[:, 0] * X[:, 1]) > 0.1], y[np.abs(X[:, 0] * X[:, 1]) > 0.1])


def region_program(model, data, theta):
    form = C.TwoLayerRegions.of(model, data)
    region = RegionMargins(model, data, theta)
    signs = form.output_signs(theta)
    rows = C._RowSets(form, np.asarray(region.slopes, float), np.asarray(region.signs, float), signs)
    return form, region, signs, rows


@PROPERTY
@given(seed=st.integers(0, 10 ** 5), activation=st.sampled_from(["relu", "leaky_relu"]))
def test_the_substitution_is_exact_and_balanced(seed, activation):
    """f_n(theta(u)) = y_n sum_j s_j c_nj u_j . x_n and ||theta(u)||^2 = 2 sum_j ||u_j|| for any u (the region of
    theta(u), signs s): the SOCP's objective is the max-margin objective at the balanced point."""
    rng = np.random.default_rng(seed)
    model, data = net(activation=activation), balanced_data(seed)
    u = rng.standard_normal((6, 3))
    signs = np.where(rng.random(6) < 0.5, -1.0, 1.0)
    form = C.TwoLayerRegions.of(model, data)
    theta = form.theta(u, signs)
    region = RegionMargins(model, data, theta)
    rows = C._RowSets(form, np.asarray(region.slopes, float), np.asarray(region.signs, float), signs)
    margins, sign_values = rows.values(u)
    np.testing.assert_allclose(model.margins(theta, data), margins, rtol=1e-12, atol=1e-12)
    assert np.all(sign_values >= -1e-12)                       # theta(u) lies in its own region
    np.testing.assert_allclose(theta @ theta, 2 * np.linalg.norm(u, axis=1).sum(), rtol=1e-12)
    V, a = theta[form.v_columns], theta[form.a_columns]
    np.testing.assert_allclose(np.abs(a), np.linalg.norm(V, axis=1), rtol=1e-12)
    np.testing.assert_array_equal(np.sign(a), signs)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_region_optimum_is_feasible_and_no_worse_than_the_start(seed):
    """The SOCP's point satisfies every margin and sign row of the region (also the rows its working sets left
    out), and its objective is at most the start's (the start's balanced u is feasible)."""
    model, data = net(), balanced_data(seed, n=60)
    theta = separating_point(model, data, seed)
    form, region, signs, rows = region_program(model, data, theta)
    solved = form.solve(region, signs, theta)
    assert solved.status in (Status.OPTIMAL, Status.INACCURATE)
    V, a = solved.theta[form.v_columns], solved.theta[form.a_columns]
    u = np.abs(a)[:, None] * V
    margins, sign_values = rows.values(u)
    assert margins.min() >= 1 - 1e-7 and sign_values.min() >= -1e-7 * np.abs(sign_values).max()
    u0 = np.abs(theta[form.a_columns])[:, None] * theta[form.v_columns]
    assert solved.theta @ solved.theta <= 2 * np.linalg.norm(u0, axis=1).sum() * (1 + 1e-9)


def test_working_sets_give_the_all_rows_solution(monkeypatch):
    """Tiny first working sets (rounds of violated rows join) end at the SOCP's solution on all rows."""
    model, data = net(), balanced_data(4, n=80)
    theta = separating_point(model, data, 4)
    form, region, signs, _ = region_program(model, data, theta)
    whole = form.solve(region, signs, theta)
    monkeypatch.setattr(C, "SEED_MARGINS", 3)
    monkeypatch.setattr(C, "SEED_SIGNS", 5)
    monkeypatch.setattr(C, "ROUND_ROWS", 4)
    rounds = form.solve(region, signs, theta)
    assert rounds.iterations > whole.iterations               # more than one round ran
    np.testing.assert_allclose(rounds.theta @ rounds.theta, whole.theta @ whole.theta, rtol=1e-7)


def test_the_convex_form_applies_only_to_its_family():
    data = balanced_data(0)
    assert C.TwoLayerRegions.of(net(), data) is not None
    assert C.TwoLayerRegions.of(net(activation="leaky_relu"), data) is not None
    assert C.TwoLayerRegions.of(net(activation="squared_relu"), data) is None        # not piecewise linear
    deep = lm.load_model("mlp", input_dim=3, hidden=(3, 3), activation="relu")
    assert C.TwoLayerRegions.of(deep, data) is None
    problem = M.MaxMarginProblem(net(), data, "l1")
    assert problem._convex_regions is None                                            # the l2 objective only


def test_max_margin_certifies_what_the_convex_form_proposes():
    """Teacher data (N = 100, the benchmark's): the walk over convex region solves ends at a Clarke-certified
    point, at least GD's normalized margin; its certificate names Clarabel and every number is the pipeline's."""
    data = relu_teacher_data(100, 5, 8, 1)
    model = lm.load_model("two_layer", input_dim=5, activation="relu", width=8)
    cert = lm.max_margin(model, data, seed=0)
    assert cert.status == Status.OPTIMAL and cert.kkt.max <= 1e-8
    assert cert.solver.name == "clarabel" and "Clarabel" in cert.solver.message
    walk = cert.diagnostics.region.walk
    assert walk[-1].status == Status.OPTIMAL and all(w.status == Status.REGION_BOUNDARY for w in walk[:-1])
    objectives = [w.objective for w in walk]
    assert all(b <= a * (1 + 1e-9) for a, b in zip(objectives, objectives[1:]))
    from lexmargin.problems.starts import gd_start
    assert cert.normalized_margin >= model.normalized_margin(gd_start(model, data, seed=0), data)
    # the IPOPT route reaches no larger normalized margin here (it walks to the same region's optimum; its point
    # keeps a unit of weights ~1e-4 whose own balance IPOPT leaves at 1e-7 of its terms: honestly not optimal)
    ipopt = lm.max_margin(model, data, seed=0, route="ipopt", raise_on_failure=False)
    assert cert.normalized_margin >= ipopt.normalized_margin * (1 - 1e-9)


def test_a_region_the_socp_cannot_solve_goes_to_ipopt(monkeypatch):
    """No point from Clarabel (here: it reports no progress): the region is solved by IPOPT as before."""
    model, data = net(), balanced_data(0)
    calls = []

    def failing(self, region, signs, theta, time_limit=None):
        calls.append(1)
        return C.ConvexRegionSolution(theta, Status.FAILED, "clarabel: NumericalError", 0, 0.0)

    monkeypatch.setattr(C.TwoLayerRegions, "solve", failing)
    cert = lm.max_margin(model, data, seed=0, starts=1, raise_on_failure=False)
    expected = lm.max_margin(model, data, seed=0, starts=1, route="ipopt", raise_on_failure=False)
    assert calls and cert.solver.name == "ipopt"
    assert cert.status == expected.status and cert.objective == pytest.approx(expected.objective, rel=1e-9)


def test_a_convex_point_the_finish_cannot_certify_goes_to_ipopt_from_there(monkeypatch):
    """A proposal that is feasible but not a KKT point of its region (here the SOCP's point scaled by 1.05: every
    margin above 1, so no active set fits) is not accepted: IPOPT solves the region from that point."""
    from dataclasses import replace
    model, data = net(), balanced_data(0)
    real = C.TwoLayerRegions.solve
    proposals, starts = [], []

    def scaled(self, region, signs, theta, time_limit=None):
        out = real(self, region, signs, theta, time_limit)
        proposals.append(1.05 * out.theta)
        return replace(out, theta=proposals[-1])

    attempt_in_region = M.MaxMarginProblem._attempt_in_region

    def spy(self, region, theta, *args, **kwargs):
        starts.append(np.array(theta, dtype=float))
        return attempt_in_region(self, region, theta, *args, **kwargs)

    monkeypatch.setattr(C.TwoLayerRegions, "solve", scaled)
    monkeypatch.setattr(M.MaxMarginProblem, "_attempt_in_region", spy)
    cert = lm.max_margin(model, data, seed=0, starts=1, raise_on_failure=False)
    assert proposals and starts and len(starts) <= len(proposals)
    np.testing.assert_allclose(starts[0], proposals[0], rtol=1e-12)        # IPOPT from the proposal
    assert np.min(cert.margins) >= 1 - 1e-8
