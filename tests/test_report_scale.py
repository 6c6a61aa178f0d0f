"""Stationarity reports at scale: per-sample Gram / jvp kernels, the Gram NNLS, and the report's Gram path
against the straightforward dense computation (full Jacobian, scipy NNLS on its rows, SVD LICQ)."""

import numpy as np
import pytest
from scipy.optimize import nnls

import lexmargin as lm
from lexmargin import Block, Model, ops
from lexmargin.nlp.certify import licq
from lexmargin.numeric.kernels import (
    CasadiKernel,
    DeepLinearKernel,
    Kernel,
    LayeredNetKernel,
    LinearKernel,
    SumKernel,
    SVMBiasKernel,
    kernel_for,
)
from lexmargin.report import stationarity_report
from lexmargin.report.nnls import gram_nnls
from lexmargin.report.stationarity import (
    fit_multipliers,
    licq_from_gram,
    margin_kernel,
    near_support,
    rescale,
    stationarity,
)


def mlp(input_dim: int, hidden=(6, 5)) -> Model:
    """Test-only declaration: y a . relu(W_K ... relu(W_1 x)) without biases (arrays W1..WK, a)."""
    shapes = {f"W{i + 1}": (h, w) for i, (h, w) in enumerate(zip(hidden, (input_dim,) + tuple(hidden[:-1])))}

    def output(p, x):
        h = x
        for i in range(len(hidden)):
            h = ops.relu(ops.matmul(p[f"W{i + 1}"], h))
        return ops.dot(p["a"], h)

    return Model(f"mlp_{len(hidden)}", [Block("net", {**shapes, "a": (hidden[-1],)}, degree=len(hidden) + 1)],
                 input_dim=input_dim, output=output)


def _data(n=30, d=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = np.where(X[:, 0] + 0.5 * X[:, 1] >= 0, 1.0, -1.0)
    return X, y


def _kernels():
    X, y = _data()
    linear, layered = LinearKernel(X, y), LayeredNetKernel(X, y, hidden=(5, 3))
    return [linear, layered, LayeredNetKernel(X, y, hidden=(6,), activation="squared_relu"),
            LayeredNetKernel(X, y, hidden=(4, 3), activation="leaky_relu"), DeepLinearKernel(X, y, hidden=(3, 3, 2)),
            LayeredNetKernel(X, y, hidden=(5, 3), first_bias=True), LayeredNetKernel(X, y, hidden=(4,), first_bias=True),
            SVMBiasKernel(X, y), SumKernel([linear, layered])]


@pytest.mark.parametrize("kernel", _kernels(), ids=lambda k: f"{type(k).__name__}-{k.name}-{k.n_params}")
def test_per_sample_rows_gram_and_jvp_match_the_jacobian(kernel):
    rng = np.random.default_rng(1)
    theta, v = rng.standard_normal(kernel.n_params), rng.standard_normal(kernel.n_params)
    rows = np.array([3, 7, 0, 29, 12, 7])
    J = kernel.margin_jacobian(theta)[rows]
    np.testing.assert_allclose(kernel.per_sample_jacobian(theta, rows), J, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(kernel.per_sample_gram(theta, rows), J @ J.T, rtol=1e-12, atol=1e-11)
    np.testing.assert_allclose(kernel.per_sample_jvp(theta, rows, v), J @ v, rtol=1e-12, atol=1e-12)
    c = rng.standard_normal(rows.size - 1)
    np.testing.assert_allclose(kernel.per_sample_vjp(theta, rows[:-1], c), c @ J[:-1], rtol=1e-12, atol=1e-12)
    # the generic protocol (row batches of two, pairs of batches recomputed) gives the same numbers
    np.testing.assert_allclose(Kernel.per_sample_gram(kernel, theta, rows, batch=2), J @ J.T, rtol=1e-12, atol=1e-11)
    np.testing.assert_allclose(Kernel.per_sample_jvp(kernel, theta, rows, v, batch=4), J @ v, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(Kernel.per_sample_jacobian(kernel, theta, rows), J, rtol=1e-12, atol=1e-12)


def test_casadi_fallback_rows_come_from_the_rows_samples_only():
    X, y = _data()
    model = lm.load_model("log_predictor", input_dim=4)
    kernel = kernel_for(model, X, y)
    assert isinstance(kernel, CasadiKernel)
    theta = np.random.default_rng(2).standard_normal(model.n_params)
    rows = np.array([5, 1, 20])
    J = model.margin_jacobian(theta, lm.Dataset(X, y))[rows]
    np.testing.assert_allclose(kernel.per_sample_jacobian(theta, rows), J, rtol=1e-13)
    np.testing.assert_allclose(kernel.per_sample_gram(theta, rows, batch=1), J @ J.T, rtol=1e-12)
    c = np.array([0.5, -1.0, 2.0])
    np.testing.assert_allclose(kernel.per_sample_vjp(theta, rows, c, batch=2), c @ J, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("bias", [False, True])
def test_layered_gram_never_forms_jacobian_rows(monkeypatch, bias):
    X, y = _data(n=200, d=30)
    kernel = LayeredNetKernel(X, y, hidden=(40, 40), first_bias=bias)
    theta = np.random.default_rng(3).standard_normal(kernel.n_params)
    ref = Kernel.per_sample_gram(kernel, theta, np.arange(200), batch=64)
    monkeypatch.setattr(LayeredNetKernel, "per_sample_jacobian", lambda *a: pytest.fail("rows formed"))
    monkeypatch.setattr(Kernel, "per_sample_jacobian", lambda *a: pytest.fail("rows formed"))
    np.testing.assert_allclose(kernel.per_sample_gram(theta, np.arange(200)), ref, rtol=1e-11, atol=1e-10)


@pytest.mark.parametrize("warm", [True, False], ids=["warm", "cold"])
@pytest.mark.parametrize("shape", [(40, 12), (12, 12), (25, 3), (200, 120)])
def test_gram_nnls_agrees_with_scipy_nnls_on_the_rows(shape, warm, monkeypatch):
    import lexmargin.report.nnls as gram_module

    if not warm:        # the plain Lawson-Hanson path: one column at a time from P = {}
        monkeypatch.setattr(gram_module, "_warm_start", lambda state, b, lam, maxiter: lam)
    rng = np.random.default_rng(sum(shape))
    for _ in range(20 if shape[1] < 100 else 2):
        A = rng.standard_normal(shape)
        v = rng.standard_normal(shape[0])
        ref, rnorm = nnls(A, v, maxiter=5000)
        lam = gram_nnls(A.T @ A, A.T @ v)
        assert np.all(lam >= 0)
        assert np.linalg.norm(v - A @ lam) == pytest.approx(rnorm, rel=1e-10, abs=1e-12)
        if shape[0] >= shape[1]:       # independent columns: the minimizer is unique
            np.testing.assert_allclose(lam, ref, rtol=1e-9, atol=1e-10)


def test_gram_nnls_exact_dependent_columns_and_degenerate_input():
    rng = np.random.default_rng(7)
    B = rng.standard_normal((6, 3))
    A = np.hstack([B, B @ np.abs(rng.standard_normal((3, 5)))])     # 8 columns spanning 3 dimensions
    v = A @ np.abs(rng.standard_normal(8)) + 0.1 * rng.standard_normal(6)
    lam = gram_nnls(A.T @ A, A.T @ v)
    _, rnorm = nnls(A, v)
    assert np.linalg.norm(v - A @ lam) == pytest.approx(rnorm, rel=1e-9)
    assert np.max(lam) < 1e3 * np.max(np.abs(v))                      # no dependent column with a huge weight
    assert gram_nnls(np.zeros((3, 3)), np.ones(3)).tolist() == [0.0, 0.0, 0.0]
    assert gram_nnls(np.eye(2), -np.ones(2)).tolist() == [0.0, 0.0]
    assert gram_nnls(np.zeros((0, 0)), np.zeros(0)).shape == (0,)


def _dense(model, theta, data, support_tol):
    """The straightforward computation: full CasADi Jacobian, scipy NNLS on J_S^T, SVD LICQ."""
    theta_hat, _, level = rescale(model, theta, data)
    margins = model.margins(theta_hat, data)
    J = model.margin_jacobian(theta_hat, data)
    support = near_support(margins, level, support_tol)
    lam, residual = fit_multipliers(J, theta_hat, support, data.n_samples)
    return support, lam, residual, licq(J[support])


CASES = [
    ("mlp_wide", lambda: mlp(4, (8, 6)), 0.5),          # k < P: the NNLS minimizer is unique
    ("mlp_deep", lambda: mlp(4, (5, 4, 3)), 1.0),
    ("mlp_bundled_bias", lambda: lm.load_model("mlp", input_dim=4, hidden=(8, 6), bias=True), 0.5),
    ("two_layer_sq", lambda: lm.load_model("two_layer", input_dim=4, width=6, activation="squared_relu"), 0.5),
    ("deep_linear", lambda: lm.load_model("deep_linear", input_dim=4, depth=3, width=3), 0.5),
    ("linear_k_gt_p", lambda: lm.load_model("linear", input_dim=4), 2.0),  # k > P: residual unique, lambda not
]


@pytest.mark.parametrize("name,build,tol", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gram_path_matches_the_dense_computation(name, build, tol, seed):
    model = build()
    X, y = _data(n=30, d=4, seed=seed)
    data = lm.Dataset(X, y)
    theta = np.random.default_rng(10 + seed).standard_normal(model.n_params)
    kernel = margin_kernel(model, data)
    assert not isinstance(kernel, CasadiKernel)
    point = stationarity(model, theta, data, support_tol=tol, kernel=kernel, dense_bytes=0)
    support, lam, residual, dense_licq = _dense(model, theta, data, tol)
    np.testing.assert_array_equal(point.support, support)
    assert point.kkt.epsilon == pytest.approx(residual, rel=1e-10, abs=1e-12)
    if support.size <= model.n_params and dense_licq.holds:
        np.testing.assert_allclose(point.multipliers, lam, rtol=1e-10, atol=1e-10 * max(1.0, np.max(lam)))
    assert point.licq.n_active == dense_licq.n_active and point.licq.rank == dense_licq.rank
    assert point.licq.holds == dense_licq.holds
    if dense_licq.holds:
        assert point.licq.smallest_singular_value == pytest.approx(dense_licq.smallest_singular_value, rel=1e-8)


def test_licq_at_gram_resolution_counts_the_rank_of_dependent_rows():
    rng = np.random.default_rng(4)
    J = rng.standard_normal((6, 3)) @ rng.standard_normal((3, 50))      # 6 rows of rank 3
    result, exact = licq_from_gram(J @ J.T, 50)
    ref = licq(J)
    assert not exact and (result.rank, result.holds, result.smallest_singular_value) == (3, False, 0.0)
    assert ref.rank == 3 and not ref.holds
    J = rng.standard_normal((5, 40))
    result, exact = licq_from_gram(J @ J.T, 40)
    assert exact and result.rank == 5 and result.holds
    assert result.smallest_singular_value == pytest.approx(licq(J).smallest_singular_value, rel=1e-10)
    assert licq_from_gram(np.ones((4, 4)), 2)[0].rank == 1                 # k > P: never full rank
    assert licq_from_gram(np.zeros((0, 0)), 3)[0].holds


def test_report_uses_the_kernel_not_the_casadi_jacobian(monkeypatch):
    model = mlp(4, (8, 6))
    X, y = _data(n=40, d=4)
    theta = np.random.default_rng(5).standard_normal(model.n_params)
    before = stationarity_report(model, (X, y), np.stack([0.5 * theta, theta]))
    jacobian = Model.margin_jacobian

    def checked(self, theta, data):          # kernel_for verifies its kernel on <= 25 samples only
        assert data.n_samples <= 25, "N x P Jacobian formed"
        return jacobian(self, theta, data)

    monkeypatch.setattr(Model, "margin_jacobian", checked)
    after = stationarity_report(model, (X, y), np.stack([0.5 * theta, theta]))
    assert after.kkt == before.kkt and after.licq == before.licq
    np.testing.assert_array_equal(after.trajectory.alignment, before.trajectory.alignment)


def test_gram_nnls_treats_columns_within_the_gram_resolution_as_dependent():
    from lexmargin.report.nnls import _Passive

    rng = np.random.default_rng(8)
    B = rng.standard_normal((50, 2))
    for offset, independent in ((1e-7, False), (1e-5, True)):  # relative d^2 ~ 5e-15, 5e-11 vs 2.2e-13
        A = np.column_stack([B, B.sum(axis=1) + offset * rng.standard_normal(50)])
        G = A.T @ A
        state = _Passive(G, 100.0 * 10 * np.finfo(float).eps)
        assert state.try_add(0) and state.try_add(1)
        assert state.try_add(2) is independent
        assert len(state.index) == 2 + independent
