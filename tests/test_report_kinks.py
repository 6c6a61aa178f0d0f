"""The stationarity report at points of ReLU nets with units exactly at their kink: its (eps, delta)-KKT numbers range
over the Clarke subdifferential, as Lyu and Li's definition and max_margin's Clarke check do
(lexmargin/report/stationarity.py, "Kinks").  Checked against numpy gradients written here, with the kinked units'
slopes chosen on a grid of [0, 1].  The report at a certified max_margin solution with kinks: tests/verification/
test_verify_clarke.py."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import nnls

import lexmargin as lm
from lexmargin import Dataset
from lexmargin.report import stationarity_report

NET = lm.load_model("two_layer", input_dim=3, activation="relu", width=3)


def kinked_point(seed, width=3, d=3, n=5, low=0.0):
    """A two-layer net (theta = (V, a)) and data where unit 0 is exactly at its kink on sample 0 and every margin is
    1 (a . act(V x), act(z) = max(z, low z), is positively 1-homogeneous in x: x_n / |g_n| has margin 1 with
    y_n = sign(g_n))."""
    rng = np.random.default_rng(seed)
    while True:
        V, a = rng.standard_normal((width, d)), rng.standard_normal(width)
        X = rng.standard_normal((n, d))
        X[0] -= (X[0] @ V[0]) / (V[0] @ V[0]) * V[0]           # v_0 . x_0 = 0
        g = np.array([a @ np.maximum(V @ x, low * (V @ x)) for x in X])
        if np.all(np.abs(g) > 1e-2):
            return V, a, Dataset(X / np.abs(g)[:, None], np.sign(g))


def gradient(V, a, x, y, slopes, low=0.0):
    """grad_theta of y a . act(V x), act(z) = max(z, low z), act'(z_j) = slopes[j] (numpy, not lexmargin's)."""
    z = V @ x
    return np.concatenate([(y * (a * slopes)[:, None] * x[None, :]).ravel(), y * np.maximum(z, low * z)])


def best_eps_on_a_grid(V, a, data, grid, low=0.0):
    """min over slopes of the kinked units (each on ``grid``) and lambda >= 0 of ||theta - sum lambda_n g_n||
    (``low``: the activation's slope below 0)."""
    theta = np.concatenate([V.ravel(), a])
    Z = data.X @ V.T
    kinked = np.abs(Z) <= 1e-12 * np.abs(Z).max()
    best = np.inf
    choices = [grid if k else [None] for k in kinked.ravel()]
    for picks in np.array(np.meshgrid(*[np.arange(len(c)) for c in choices])).reshape(len(choices), -1).T:
        columns = []
        for n, (x, y) in enumerate(zip(data.X, data.y)):
            slopes = np.where(Z[n] > 0, 1.0, low)
            for j in range(V.shape[0]):
                if kinked[n, j]:
                    slopes[j] = choices[n * V.shape[0] + j][picks[n * V.shape[0] + j]]
            columns.append(gradient(V, a, x, y, slopes, low))
        best = min(best, nnls(np.array(columns).T, theta)[1])
    return best


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10 ** 6))
def test_property_the_clarke_eps_is_at_most_every_choice_of_slopes(seed):
    """Unit 0 exactly at its kink on sample 0 (every margin 1): the report's eps is the smallest over the Clarke
    subdifferential, so never above the best NNLS of any slope in [0, 1] for it (a grid, numpy gradients) nor the
    one-gradient eps; lambda_0 g_0 with the reported slope rebuilds theta with the others."""
    V, a, data = kinked_point(seed)
    theta = np.concatenate([V.ravel(), a])
    report = stationarity_report(NET, data, theta)
    k = report.kinks
    assert k is not None and k.fitted and 0 in k.rows.tolist()
    scale = np.linalg.norm(theta)
    grid = best_eps_on_a_grid(V, a, data, np.linspace(0.0, 1.0, 11))
    assert report.kkt.epsilon <= grid + 1e-10 * scale
    assert report.kkt.epsilon <= k.single_gradient_epsilon + 1e-10 * scale
    assert report.kkt.epsilon >= 0 and np.all(report.multipliers >= 0)


def test_a_point_off_the_kinks_keeps_the_one_gradient_numbers():
    """No unit of a near-support sample at a kink (a random net; and a unit 1e-4 of the layer's size off it): no
    kinks block, and the numbers are the Gram NNLS's (the report as before)."""
    from lexmargin.report.stationarity import fit_multipliers_gram, margin_kernel, stationarity_residual

    V, a, data = kinked_point(3)
    for shift in (0.0, 1e-4):
        W = V.copy()
        W[0] += 0.3 + shift if shift == 0.0 else shift * data.X[0] / (data.X[0] @ data.X[0])
        theta = np.concatenate([W.ravel(), a])
        report = stationarity_report(NET, data, theta)
        assert report.kinks is None
        kernel = margin_kernel(NET, data)
        theta_hat = theta / report.scale
        support = report.support
        lam = fit_multipliers_gram(kernel.per_sample_gram(theta_hat, support),
                                   kernel.per_sample_jvp(theta_hat, support, theta_hat), support, data.n_samples)
        np.testing.assert_array_equal(report.multipliers, lam)
        assert report.kkt.epsilon == stationarity_residual(kernel, theta_hat, lam)


def test_the_kinks_are_saved_and_shown(tmp_path):
    """report.json carries the kinks block (schema-valid), report.md its rows; a K-class report has none."""
    from test_benchmarks import assert_follows_schema

    V, a, data = kinked_point(11)
    report = stationarity_report(NET, data, np.concatenate([V.ravel(), a]))
    paths = report.save(tmp_path)
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["kinks"]["rows"] == report.kinks.rows.tolist() and saved["kinks"]["fitted"] is True
    assert saved["kinks"]["units"][0] == [[0, 0]]
    assert_follows_schema(saved)
    text = (tmp_path / "report.md").read_text()
    assert "near-support rows with units at a kink" in text and "Clarke subdifferential" in text
    assert paths["json"].endswith("report.json")


def test_columns_beyond_the_dense_limit_keep_the_one_gradient_numbers():
    """Kinks found but their Clarke columns over ``dense_bytes``: recorded, not fitted, the numbers unchanged."""
    from lexmargin.report.stationarity import margin_kernel, stationarity

    V, a, data = kinked_point(5)
    theta = np.concatenate([V.ravel(), a])
    kernel = margin_kernel(NET, data)
    fitted = stationarity(NET, theta, data, kernel=kernel)
    limited = stationarity(NET, theta, data, kernel=kernel, dense_bytes=8)
    assert fitted.kinks.fitted and not limited.kinks.fitted and limited.kinks.slopes == ()
    assert limited.kkt.epsilon == limited.kinks.single_gradient_epsilon == fitted.kinks.single_gradient_epsilon
    assert fitted.kkt.epsilon <= limited.kkt.epsilon


@pytest.mark.parametrize("low", [0.1, 0.5])
def test_leaky_relu_slopes_stay_in_their_interval(low):
    """leaky_relu's Clarke derivative at 0 is [slope, 1]: the chosen slopes lie there, and the eps is at most the
    best of a grid of slopes in that interval (numpy gradients)."""
    net = lm.load_model("two_layer", input_dim=3, activation="leaky_relu", width=3, slope=low)
    for seed in range(4):
        V, a, data = kinked_point(seed, low=low)
        report = stationarity_report(net, data, np.concatenate([V.ravel(), a]))
        assert report.kinks is not None and report.kinks.fitted
        for entry in report.kinks.slopes:
            assert all(low - 1e-12 <= s <= 1.0 + 1e-12 for s in entry["slopes"])
        grid = best_eps_on_a_grid(V, a, data, np.linspace(low, 1.0, 11), low)
        assert report.kkt.epsilon <= grid + 1e-10 * np.linalg.norm(np.concatenate([V.ravel(), a]))


@pytest.mark.parametrize("options", [dict(hidden=(4, 3)), dict(hidden=(5,), bias=True),
                                     dict(hidden=(3, 4), activation="leaky_relu", slope=0.2)])
def test_the_kernels_pre_activations_are_the_models(options):
    """A layered net's kernel gives the pre-activations of every activation call in one batch pass: the same numbers,
    call by call, as the model's own numeric pass per sample (which the kink pre-check falls back to)."""
    from lexmargin.report.stationarity import _pre_activations, margin_kernel

    net = lm.load_model("mlp", input_dim=3, **options)
    rng = np.random.default_rng(2)
    data = Dataset(rng.standard_normal((7, 3)), np.sign(rng.standard_normal(7)))
    theta = rng.standard_normal(net.n_params)
    kernel = margin_kernel(net, data)
    assert hasattr(kernel, "pre_activations")
    rows = np.array([6, 0, 3])
    batch, own = _pre_activations(net, kernel, theta, data, rows), _pre_activations(net, None, theta, data, rows)
    assert [Z.shape for Z in batch] == [Z.shape for Z in own] == [(h, 3) for h in options["hidden"]]
    for Z, W in zip(batch, own):
        np.testing.assert_allclose(Z, W, rtol=1e-12, atol=1e-14)
