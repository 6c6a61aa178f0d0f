"""Path-SGD (p = 2): dynamic program vs brute-force path enumeration, and rescaling invariance."""

import numpy as np
import pytest

from lexmargin.numeric import (
    Constant,
    LayeredNetKernel,
    LinearKernel,
    Trainer,
    path_norm_squared,
    path_scales,
    path_scales_bruteforce,
    train,
)


def tiny_weights(rng):
    return [rng.standard_normal((3, 2)), rng.standard_normal((2, 3)), rng.standard_normal((1, 2))]


def test_path_scales_equal_brute_force_enumeration():
    rng = np.random.default_rng(0)
    runs = [tiny_weights(rng) for _ in range(3)]
    batched = [np.stack([r[i] for r in runs]) for i in range(3)]
    kappa = path_scales(batched)
    for r, weights in enumerate(runs):
        brute = path_scales_bruteforce(weights)
        for layer in range(3):
            np.testing.assert_allclose(kappa[layer][r], brute[layer], rtol=1e-13)


def test_path_scales_are_derivatives_of_path_norm():
    """kappa_e = d pi^2 / d (w_e^2): pi^2 is linear in each w_e^2."""
    rng = np.random.default_rng(1)
    weights = [W[None] for W in tiny_weights(rng)]
    kappa = path_scales(weights)
    W = [w.copy() for w in weights]
    W[1][0, 1, 2] = 0.0
    base = path_norm_squared(W)[0]
    W[1][0, 1, 2] = 1.0
    np.testing.assert_allclose(path_norm_squared(W)[0] - base, kappa[1][0, 1, 2], rtol=1e-12)


def net_and_data(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((12, 2))
    y = np.where(X[:, 0] + 0.3 * X[:, 1] > 0, 1.0, -1.0)
    return LayeredNetKernel(X, y, hidden=(3, 2), activation="relu"), rng


def rescale(kernel, theta, layer, unit, c):
    """Multiply the incoming weights of hidden unit ``unit`` of ``layer`` by c, the outgoing by 1/c."""
    theta = theta.copy()
    Ws = kernel.weights(theta)                  # views into theta
    Ws[layer][:, unit, :] *= c
    Ws[layer + 1][:, :, unit] /= c
    return theta


def test_rescaled_network_follows_rescaled_trajectory():
    kernel, rng = net_and_data()
    theta = kernel.random_theta([3], 2.0)
    other = rescale(kernel, rescale(kernel, theta, 0, 1, 4.0), 1, 0, 0.2)
    np.testing.assert_allclose(kernel.margins(other), kernel.margins(theta), rtol=1e-12)
    kw = dict(rule=Constant(0.05), n_steps=200, checkpoints=[200], path_sgd=True)
    a = Trainer(kernel, theta, **kw).run().theta
    b = Trainer(kernel, other, **kw).run().theta
    expected = rescale(kernel, rescale(kernel, a, 0, 1, 4.0), 1, 0, 0.2)
    np.testing.assert_allclose(b, expected, rtol=1e-9, atol=1e-12)
    assert np.max(np.abs(a - theta)) > 1e-2            # the runs really moved


def test_plain_gd_is_not_rescaling_invariant():
    """Control for the test above: without the path scaling the trajectories differ."""
    kernel, rng = net_and_data()
    theta = kernel.random_theta([3], 2.0)
    other = rescale(kernel, theta, 0, 1, 4.0)
    kw = dict(rule=Constant(0.05), n_steps=200, checkpoints=[200])
    a = Trainer(kernel, theta, **kw).run().theta
    b = Trainer(kernel, other, **kw).run().theta
    assert np.max(np.abs(b - rescale(kernel, a, 0, 1, 4.0))) > 1e-3


def test_path_sgd_step_does_not_decay():
    """The update uses the current gradient only (no accumulation across steps)."""
    kernel, rng = net_and_data(1)
    theta = kernel.random_theta([0], 1.0)
    trainer = Trainer(kernel, theta, rule=Constant(0.01), n_steps=3, checkpoints=[0, 3], path_sgd=True)
    for _ in range(3):
        before = trainer.theta.copy()
        f, cache = kernel.forward(before)
        grad_L = kernel.vjp(before, cache, -np.exp(-f))
        trainer.run(trainer.step + 1)
        np.testing.assert_allclose(trainer.theta, before - 0.01 * grad_L / kernel.path_scales(before), rtol=1e-10)


def test_path_sgd_needs_layered_net():
    X = np.eye(2)
    with pytest.raises(ValueError, match="Path-SGD"):
        train(LinearKernel(X, [1.0, -1.0]), np.ones((1, 2)), n_steps=1, path_sgd=True)
