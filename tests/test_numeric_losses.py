"""Log-space losses and step rules."""

import numpy as np
import pytest

from lexmargin.numeric import Adaptive, Constant, ExponentialLoss, LinearKernel, LogisticLoss, Normalized, get_loss


def brute_loss(loss, f):
    return np.sum(np.exp(-f) if loss.name == "exp" else np.log1p(np.exp(-f)), axis=-1)


@pytest.mark.parametrize("loss", [ExponentialLoss(), LogisticLoss()])
def test_log_loss_and_weights_match_direct_formulas_at_moderate_margins(loss):
    f = np.random.default_rng(0).normal(1.0, 2.0, size=(3, 20))
    log_L, w = loss.value_and_weights(f)
    np.testing.assert_allclose(log_L, np.log(brute_loss(loss, f)), rtol=1e-13)
    # grad_f log L = -w: compare with central differences
    eps = 1e-6
    for n in (0, 7):
        df = np.zeros_like(f)
        df[:, n] = eps
        fd = (np.log(brute_loss(loss, f + df)) - np.log(brute_loss(loss, f - df))) / (2 * eps)
        np.testing.assert_allclose(-w[:, n], fd, rtol=1e-6)


@pytest.mark.parametrize("loss", [ExponentialLoss(), LogisticLoss()])
def test_log_loss_stays_finite_at_huge_margins(loss):
    f = np.array([[1e5, 1e5 + 1.0, 2e5], [-1e5, 3.0, 1e5]])
    log_L, w = loss.value_and_weights(f)
    assert np.all(np.isfinite(log_L)) and np.all(np.isfinite(w))
    # exact asymptotics: log(e^-a + e^-b) with a=1e5, b=1e5+1
    np.testing.assert_allclose(log_L[0], -1e5 + np.log1p(np.exp(-1.0)), rtol=1e-15)
    np.testing.assert_allclose(w[0], [1 / (1 + np.exp(-1)), np.exp(-1) / (1 + np.exp(-1)), 0.0], atol=1e-15)
    np.testing.assert_allclose(log_L[1], 1e5 if loss.name == "exp" else np.log(1e5 + np.log1p(np.exp(-3.0))),
                               rtol=1e-12)
    np.testing.assert_allclose(w[0].sum(), 1.0, rtol=1e-10)


def test_logistic_equals_exponential_asymptotically():
    f = np.array([[40.0, 41.0, 45.0]])
    np.testing.assert_allclose(LogisticLoss().value_and_weights(f)[0], ExponentialLoss().value_and_weights(f)[0],
                               rtol=1e-15)


def test_float32_margins_in_log_space():
    f = np.array([[3e4, 3e4 + 2]], dtype=np.float32)
    log_L, w = ExponentialLoss().value_and_weights(f)
    assert np.isfinite(log_L).all() and abs(log_L[0] + 3e4) < 1


def test_get_loss_rejects_unknown():
    assert get_loss("logistic").name == "logistic"
    with pytest.raises(ValueError, match="unknown loss"):
        get_loss("hinge")
    with pytest.raises(TypeError):
        get_loss(3)


def test_normalized_step_is_eta_grad_L_over_L():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((10, 3))
    kernel = LinearKernel(X, np.sign(X[:, 0]) + (X[:, 0] == 0))
    theta = rng.standard_normal((2, 3))
    f, _ = kernel.forward(theta)
    grad_L = kernel.vjp(theta, None, -np.exp(-f))
    L = np.exp(-f).sum(axis=1)
    log_L, w = ExponentialLoss().value_and_weights(f)
    grad_log_L = -kernel.vjp(theta, None, w)
    np.testing.assert_allclose(grad_log_L, grad_L / L[:, None], rtol=1e-12)
    rule = Normalized(0.3)
    np.testing.assert_allclose(rule.multiplier(rule.init(2), log_L), [0.3, 0.3])
    rule = Constant((0.1, 0.2))
    np.testing.assert_allclose(rule.multiplier(rule.init(2), log_L), [0.1, 0.2] * L, rtol=1e-12)


def test_adaptive_grows_and_shrinks():
    rule = Adaptive(1.0, grow=2.0, shrink=0.25)
    state = rule.accept(rule.init(2), np.array([True, False]))
    np.testing.assert_allclose(state["eta"], [2.0, 0.25])


@pytest.mark.parametrize("bad", [0.0, -1.0, np.nan, np.inf, [[0.1]], ()])
def test_bad_step_sizes_rejected(bad):
    with pytest.raises(ValueError, match="eta"):
        Constant(bad)


def test_bad_adaptive_factors_rejected():
    with pytest.raises(ValueError, match="grow"):
        Adaptive(0.1, grow=0.5)
    with pytest.raises(ValueError, match="shrink"):
        Adaptive(0.1, shrink=1.0)
    with pytest.raises(ValueError, match="runs"):
        Constant((0.1, 0.2)).init(3)
