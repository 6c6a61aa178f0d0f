"""Implicit bias on separable data: GD direction -> max-margin at the 1/log t rate, normalized GD much
faster; on the SVM-bias model GD -> the SVM with an unregularized bias."""

import numpy as np
import pytest

cp = pytest.importorskip("cvxpy")

from lexmargin import Dataset, load_model
from lexmargin.errors import ModelError
from lexmargin.numeric import (
    Adaptive,
    Constant,
    LinearKernel,
    Normalized,
    Reference,
    SVMBiasKernel,
    angle,
    kernel_for,
    nnls_multipliers,
    train,
)


def separable(seed, w_true, offset=0.0, gap=0.3, n=30):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, len(w_true)))
    y = np.where(X @ w_true > offset, 1.0, -1.0)
    return X + gap * y[:, None] * w_true / np.linalg.norm(w_true), y


def svm(X, y, bias: bool):
    """min ||w||^2 s.t. y (X w + b) >= 1 (b = 0 without bias): w, b, multipliers of ||w||^2 / 2."""
    w, b = cp.Variable(X.shape[1]), cp.Variable()
    cons = [cp.multiply(y, X @ w + (b if bias else 0)) >= 1]
    cp.Problem(cp.Minimize(cp.sum_squares(w) / 2), cons).solve(solver=cp.CLARABEL)
    return w.value, (b.value if bias else 0.0), cons[0].dual_value


@pytest.fixture(scope="module")
def linear_problem():
    X, y = separable(0, np.array([1.0, -2.0, 0.5]))
    w, _, lam = svm(X, y, bias=False)
    ref = Reference(w, 1 / np.linalg.norm(w))
    kernel = LinearKernel(X, y)
    step = 1.0 / np.max(np.sum(X ** 2, axis=1))
    theta0 = np.full((1, 3), 1e-3)
    gd = train(kernel, theta0, rule=Constant(step / len(y)), n_steps=20000, checkpoints=12, reference=ref)
    ngd = train(kernel, theta0, rule=Normalized(step), n_steps=20000, checkpoints=12, reference=ref)
    return X, y, w, lam, kernel, gd, ngd


def test_gd_direction_converges_at_one_over_log_t(linear_problem):
    *_, gd, _ = linear_problem
    late = gd.steps >= 100
    a = gd.angle[late, 0]
    assert np.all(np.diff(a) < 0)                               # monotone approach to max-margin
    assert np.all(np.diff(gd.margin_ratio[late, 0]) > 0) and gd.margin_ratio[-1, 0] < 1
    scaled = a * np.log(gd.steps[late])                         # angle ~ C / log t: bounded band
    assert scaled.max() / scaled.min() < 1.6
    assert a[-1] > 0.01                                         # ... and hence still far after 2e4 steps


def test_normalized_gd_converges_much_faster(linear_problem):
    *_, gd, ngd = linear_problem
    assert ngd.angle[-1, 0] < 1e-3 < gd.angle[-1, 0] / 20
    assert ngd.margin_ratio[-1, 0] > 0.999
    assert np.all(np.isfinite(ngd.log_loss)) and ngd.log_loss[-1, 0] < -100   # L = e^{-100+}: log space


def test_max_margin_certificate_reference_when_available(linear_problem):
    X, y, w, *_ , ngd = linear_problem
    try:
        from lexmargin.problems.maxmargin import max_margin
        cert = max_margin(load_model("linear", input_dim=3), Dataset(X, y))
    except (ImportError, ModelError) as exc:
        pytest.skip(f"max_margin unavailable: {exc}")
    ref = Reference.from_certificate(cert)
    assert angle(ref.direction, w) < 1e-6
    assert angle(ngd.theta[0], ref.direction) < 1e-3


def test_nnls_multipliers_recover_svm_duals(linear_problem):
    X, y, w, lam, kernel, _, ngd = linear_problem
    theta = ngd.theta[0]
    fit = nnls_multipliers(theta, kernel.margins(theta), y[:, None] * X, degree=1, rtol=1e-2)
    assert fit.residual < 1e-3
    np.testing.assert_array_equal(fit.support, np.nonzero(lam > 1e-6)[0])
    np.testing.assert_allclose(fit.multipliers, lam, atol=1e-2 * lam.max())


def test_gd_on_svm_bias_model_reaches_svm_with_bias():
    X, y = separable(1, np.array([1.0, -2.0]), offset=1.0)
    w_svm, b_svm, _ = svm(X, y, bias=True)
    kernel = SVMBiasKernel(X, y, bias="squares_difference")
    step = 1.0 / np.max(np.sum(X ** 2, axis=1))
    hist = train(kernel, kernel.random_theta([0, 1], [0.1, 1.0]), rule=Adaptive(step, normalized=False),
                 n_steps=6000, checkpoints=10)
    w, b = hist.theta[:, :2], kernel.bias(hist.theta)
    assert np.all(np.degrees(angle(w, w_svm)) < 1.5)
    np.testing.assert_allclose(b / np.linalg.norm(w, axis=1), b_svm / np.linalg.norm(w_svm), atol=0.01)
    np.testing.assert_allclose(hist.normalized_margin[-1], 1 / np.linalg.norm(w_svm), rtol=0.01)
    assert np.all(np.diff(hist.normalized_margin[-4:], axis=0) > 0)         # still climbing to the SVM


def test_svm_bias_bundled_model_uses_fast_kernel():
    X, y = separable(1, np.array([1.0, -2.0]), offset=1.0)
    try:
        model = load_model("svm_bias", input_dim=2, sign="both")
    except ModelError as exc:
        pytest.skip(f"bundled svm_bias unavailable: {exc}")
    kernel = kernel_for(model, Dataset(X, y))
    assert isinstance(kernel, SVMBiasKernel) and kernel.bias_form == "squares_difference"
