"""Pyomo export of K-output max-margin problems (issue 16, front doors): one constraint margin[n, j] per margin row
f_{n,j} = g_{y_n} - g_j >= 1, solved by SolverFactory('lexmargin') and judged by certify_pyomo, with one dual per
(n, j) in Pyomo's sign convention, against lexmargin's native certificate."""

import numpy as np
import pytest

import lexmargin as lm
from lexmargin import ClassCountError, Status

pyo = pytest.importorskip("pyomo.environ")

from lexmargin.interop.pyomo import certify_pyomo, margin_duals, margin_pairs, theta_of, to_pyomo


def separable(seed=0, n=20, d=3, K=3):
    """Labels argmax_k (W x)_k of a random W: separable by the linear K-class model through the origin."""
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((K, d))
    X = rng.standard_normal((n, d))
    return lm.Dataset(X, np.argmax(X @ W.T, axis=1), n_classes=K)


def linear(d=3, K=3):
    return lm.load_model("multiclass_linear", input_dim=d, n_classes=K)


@pytest.mark.parametrize("name, options", [
    ("multiclass_linear", {"n_classes": 3}),
    ("mlp", {"hidden": (4,), "n_classes": 3, "bias": True}),
    ("mlp", {"hidden": (3, 2), "n_classes": 3, "activation": "leaky_relu", "slope": 0.2}),
])
def test_k_output_export_has_one_constraint_per_margin_row(name, options):
    model = lm.load_model(name, input_dim=3, **options)
    data = separable(1, n=8)
    theta = model.random_params(2)
    pm = to_pyomo(model, data, init=theta)
    pairs = lm.MarginRows.of(data).pairs
    assert np.array_equal(margin_pairs(pm), pairs) and len(pm.margin) == data.n_samples * 2
    bodies = np.array([pyo.value(pm.margin[int(n), int(j)].body) for n, j in pairs])
    np.testing.assert_allclose(bodies, model.margins(theta, data), rtol=1e-12, atol=1e-12)
    assert all(pm.margin[key].lb == 1 and pm.margin[key].ub is None for key in pm.margin)
    np.testing.assert_array_equal(theta_of(pm), theta)


@pytest.mark.parametrize("seed, K, d", [(0, 3, 3), (5, 4, 2)])
def test_solver_factory_matches_the_native_certificate_row_by_row(seed, K, d):
    data = separable(seed, n=6 * K, d=d, K=K)
    cert = lm.max_margin(linear(d, K), data)
    assert cert.status == Status.OPTIMAL and cert.licq.holds           # unique multipliers: comparable
    pm = to_pyomo(linear(d, K), data, seed=1)
    results = pyo.SolverFactory("lexmargin").solve(pm)
    pyo.assert_optimal_termination(results)
    scale = np.max(np.abs(cert.theta))
    assert np.max(np.abs(theta_of(pm) - cert.theta)) <= 1e-8 * scale
    assert np.array_equal(margin_pairs(pm), cert.margin_rows)
    duals = margin_duals(pm)
    # Pyomo's dual of an active lower bound of a minimization is d objective*/d bound >= 0: lexmargin's lambda_nj
    assert np.max(np.abs(duals - cert.multipliers)) <= 1e-8 * np.max(cert.multipliers)
    assert np.min(duals) >= -1e-9 * np.max(duals)
    assert set(np.flatnonzero(duals > 1e-6 * np.max(duals))) == set(cert.support.tolist())
    assert pyo.value(pm.objective) == pytest.approx(cert.objective, rel=1e-10)


def load_native(pm, cert, multipliers):
    for i, value in enumerate(cert.theta):
        pm.theta[i].set_value(float(value))
    for (n, j), dual in zip(cert.margin_rows, multipliers):
        pm.dual[pm.margin[int(n), int(j)]] = float(dual)


def test_certify_pyomo_reads_the_duals_per_row_and_catches_wrong_ones():
    data = separable(3, n=15)
    cert = lm.max_margin(linear(), data)
    pm = to_pyomo(linear(), data)
    load_native(pm, cert, cert.multipliers)
    judged = certify_pyomo(pm)
    assert judged.status == Status.OPTIMAL and judged.diagnostics.multipliers == "suffix"
    assert judged.kkt.max <= 1e-8
    r = int(cert.support[np.argmax(cert.multipliers[cert.support])])
    flipped = cert.multipliers.copy()
    flipped[r] = -flipped[r]                                           # a wrong sign on one (n, j) row
    load_native(pm, cert, flipped)
    wrong_sign = certify_pyomo(pm)
    assert wrong_sign.status != Status.OPTIMAL
    assert wrong_sign.kkt.dual_feasibility > 1e-3 and wrong_sign.kkt.stationarity > 1e-3
    n = cert.margin_rows[r, 0]
    other = int(np.flatnonzero((cert.margin_rows[:, 0] == n) & (np.arange(len(flipped)) != r))[0])
    swapped = cert.multipliers.copy()
    swapped[other], swapped[r] = swapped[r], swapped[other]              # right value, wrong class of the sample
    load_native(pm, cert, swapped)
    assert certify_pyomo(pm).status != Status.OPTIMAL
    fitted = certify_pyomo(pm, multipliers="fitted")                     # the point itself is a KKT point
    assert fitted.status == Status.OPTIMAL and fitted.diagnostics.multipliers == "fitted"


def test_classes_must_match_the_outputs():
    data = separable(0, n=8)
    binary = lm.Dataset(data.X, np.where(data.labels == 0, 1.0, -1.0))
    with pytest.raises(ClassCountError):
        to_pyomo(linear(), binary)
    with pytest.raises(ClassCountError):
        to_pyomo(lm.load_model("linear", input_dim=3), data)
    with pytest.raises(ClassCountError):
        to_pyomo(linear(K=4), data)
