"""Activation regions at scale: summed Hessians in sample chunks, and the walk's time limit."""

import numpy as np
import pytest

import lexmargin as lm
from lexmargin.modeling import regions as R
from lexmargin.nlp.status import Status


def _region(hidden, n=10, seed=0):
    rng = np.random.default_rng(seed)
    model = lm.load_model("mlp", input_dim=3, hidden=hidden)
    X = rng.standard_normal((n, 3))
    data = lm.Dataset(X, np.where(X[:, 0] > 0, 1.0, -1.0))
    theta = rng.standard_normal(model.n_params)
    return model, data, theta, R.RegionMargins(model, data, theta), rng


def _per_sample(region, name, theta, weights):
    fam = region.family
    return sum(np.array(getattr(fam, name)(theta, region.data.X[n], region.data.y[n], region.slopes[n], weights[n]))
               for n in range(region.data.n_samples))


@pytest.mark.parametrize("chunk_bytes", [1, None])
def test_chunked_hessians_equal_the_per_sample_sums(monkeypatch, chunk_bytes):
    model, data, theta, _, rng = _region((3, 2))
    P = model.n_params
    # chunks of 3 samples (the last one padded with zero weights) or 1, against one map over all N
    monkeypatch.setattr(R, "REDUCE_CHUNK_BYTES", 8 * P * P * 3 if chunk_bytes is None else chunk_bytes)
    region = R.RegionMargins(model, data, theta)
    assert region.family.reduce_chunk == (3 if chunk_bytes is None else 1)
    w = rng.standard_normal(data.n_samples)
    expected = _per_sample(region, "_hessian", theta, w)
    assert np.abs(expected).max() > 0
    np.testing.assert_allclose(region.weighted_hessian(theta, np.arange(data.n_samples), w), expected,
                               rtol=1e-12, atol=1e-12 * np.abs(expected).max())
    v = rng.standard_normal((data.n_samples, region.family.n_units))
    expected = _per_sample(region, "_pre_hessian", theta, v * region.signs)
    assert not region.family.pre_linear and np.abs(expected).max() > 0      # two hidden layers: curved sign rows
    np.testing.assert_allclose(region.extra_hessian(theta, v.reshape(-1)), expected,
                               rtol=1e-12, atol=1e-12 * np.abs(expected).max())


def test_one_hidden_layer_has_flat_sign_rows():
    model, data, theta, region, rng = _region((4,))
    assert region.family.pre_linear
    v = rng.standard_normal((data.n_samples, region.family.n_units))
    assert np.array_equal(region.extra_hessian(theta, v.reshape(-1)), np.zeros((model.n_params, model.n_params)))
    assert not np.any(_per_sample(region, "_pre_hessian", theta, v))


def test_the_walk_stops_at_the_time_limit_with_the_start_kept():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((40, 3))
    data = lm.Dataset(X, np.where(X[:, 0] + 0.3 * X[:, 1] > 0, 1.0, -1.0))
    model = lm.load_model("mlp", input_dim=3, hidden=(4,))
    from lexmargin.problems.starts import gd_start

    theta = gd_start(model, data, seed=0)
    assert np.min(model.margins(theta, data)) > 0
    # the limit passes while the start is judged: no region is solved, the start comes back, not certified
    cert = lm.max_margin(model, data, init=theta, time_limit=1e-6, raise_on_failure=False)
    assert cert.status == Status.MAX_TIME and cert.diagnostics.region.walk == ()
    assert cert.normalized_margin == pytest.approx(model.normalized_margin(theta, data), rel=1e-12)
    with pytest.raises(lm.SolverError) as info:
        lm.max_margin(model, data, init=theta, time_limit=1e-6)
    assert info.value.status == "max_time"
    # without a limit the walk runs and its result is at least the start's normalized margin
    free = lm.max_margin(model, data, init=theta, raise_on_failure=False)
    assert free.status != Status.MAX_TIME and free.diagnostics.region.walk
    assert free.normalized_margin >= model.normalized_margin(theta, data) * (1 - 1e-9)


def test_a_region_solve_too_large_is_refused_at_once(monkeypatch):
    from lexmargin.problems import maxmargin as M

    model, data, theta, _, _ = _region((4,), n=10)
    P, U, N = model.n_params, 4, 10
    monkeypatch.setattr(M, "REGION_DENSE_BYTES", 8 * N * U * P - 1)     # one byte short of the sign-row Jacobian
    with pytest.raises(lm.ModelError, match=f"{N} samples x {U} units x {P} parameters"):
        lm.max_margin(model, data, init=theta, raise_on_failure=False)
    monkeypatch.setattr(M, "REGION_DENSE_BYTES", 8 * N * U * P)
    cert = lm.max_margin(model, data, starts=1, raise_on_failure=False)
    assert cert.diagnostics.region is not None
