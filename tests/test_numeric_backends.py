"""The generic path on other array libraries: ``array_api_strict`` (the standard, nothing more) and torch (CPU).

Each case trains R runs from the same start on numpy (the generic path, ``fused=False``) and on the other library,
and asks for the same History (every recorded series) and final theta to ~1e-12: the same formulas in another
namespace, differing only by the libraries' summation orders.  Mixed libraries fail with one typed line.
"""

from __future__ import annotations

import numpy as np
import pytest

from lexmargin.numeric import (
    AdaGrad,
    Adaptive,
    Constant,
    CrossEntropyLoss,
    LayeredNetKernel,
    LinearKernel,
    Momentum,
    MulticlassLayeredNetKernel,
    MulticlassLinearKernel,
    Normalized,
    Steepest,
    SumKernel,
    SVMBiasKernel,
    Trainer,
    train,
)
from lexmargin.numeric.backend import BackendMismatchError, namespace, to_numpy
from lexmargin.numeric.history import SERIES

strict = pytest.importorskip("array_api_strict")


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


BACKENDS = ["array_api_strict", pytest.param("torch", marks=pytest.mark.skipif(_torch() is None,
                                                                                 reason="torch is not installed"))]


def to_backend(name: str, a: np.ndarray):
    if name == "array_api_strict":
        return strict.asarray(a)
    return _torch().asarray(a)


def data(seed=0, N=14, d=3):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N, d))
    y = np.where(X @ np.array([1.0, -0.5, 0.25])[:d] > 0, 1.0, -1.0)
    return X, y


def multiclass_data(seed=0, N=12, d=3, K=3):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N, d))
    return X, np.argmax(X @ rng.standard_normal((d, K)), axis=1)


def linear():
    return LinearKernel(*data())


def net(bias=True):
    return LayeredNetKernel(*data(), hidden=(4, 3), activation="relu", first_bias=bias)


# (id, kernel factory, train keyword arguments)
CASES = [
    ("gd_linear", linear, dict(rule=Constant(0.2))),
    ("normalized_net", net, dict(rule=Normalized(0.05))),
    ("logistic_net", lambda: net(False), dict(rule=Constant(0.3), loss="logistic")),
    ("steepest_linf", linear, dict(rule=Steepest("linf", Normalized(0.05)))),
    ("steepest_l1_incremental", linear, dict(rule=Steepest("l1", Constant(0.3)))),
    ("steepest_lp3", net, dict(rule=Steepest("lp", Normalized(0.05), p=3.0))),
    ("mirror_hypentropy", linear, dict(rule=Steepest("hypentropy", Normalized(0.05)))),
    ("adagrad_net", net, dict(rule=AdaGrad(0.05))),
    ("adagrad_two_lanes", net, dict(rule=AdaGrad(0.05), workers=2)),       # lanes in threads, state by rows
    ("momentum_two_lanes", net, dict(rule=Momentum(0.05, beta=0.8), workers=2)),
    ("momentum_sgd_linear", linear, dict(rule=Momentum(0.1, beta=0.5, normalized=False), batch_size=6, seed=2)),
    ("adaptive_net", net, dict(rule=Adaptive(0.5, grow=1.5, shrink=0.3))),
    ("path_sgd", net, dict(rule=Normalized(0.02), path_sgd=True)),
    ("sgd_net", net, dict(rule=Normalized(0.05), batch_size=5, seed=3)),
    ("svm_bias", lambda: SVMBiasKernel(*data(), bias="product", bias_degree=3), dict(rule=Normalized(0.05))),
    ("sum", lambda: SumKernel([linear(), net(False)]), dict(rule=Normalized(0.05))),
    ("multiclass_linear_ce", lambda: MulticlassLinearKernel(*multiclass_data(), n_classes=3),
     dict(rule=Constant(0.2), loss=CrossEntropyLoss(3), batch_size=4)),
    ("multiclass_linear_exp", lambda: MulticlassLinearKernel(*multiclass_data(), n_classes=3),
     dict(rule=Normalized(0.05))),                      # fused on numpy by default: the generic path elsewhere
    ("multiclass_net_exp", lambda: MulticlassLayeredNetKernel(*multiclass_data(), n_classes=3, hidden=(4,), first_bias=True),
     dict(rule=Normalized(0.05))),
]


def assert_same_history(got, want, rtol=1e-12):
    np.testing.assert_array_equal(got.steps, want.steps)
    for name in SERIES:
        a, b = getattr(got, name), getattr(want, name)
        assert isinstance(a, np.ndarray) and a.shape == b.shape, name
        np.testing.assert_allclose(a, b, rtol=rtol, atol=1e-13, err_msg=name)
    assert isinstance(got.theta, np.ndarray)
    np.testing.assert_allclose(got.theta, want.theta, rtol=rtol, atol=1e-13)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case, make, kw", CASES, ids=[c[0] for c in CASES])
def test_training_on_another_library_gives_the_numpy_history(backend, case, make, kw):
    kernel = make()
    theta0 = kernel.random_theta([0, 1, 2], scales=[0.5, 1.0, 2.0])
    common = dict(n_steps=40, checkpoints=6, fused=False, **kw)
    want = train(kernel, theta0, **common)
    got = train(kernel, to_backend(backend, theta0), **common)
    assert_same_history(got, want)


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_state_stays_in_the_library_during_the_run(backend):
    kernel = net()
    theta0 = to_backend(backend, kernel.random_theta([0, 1], 1.0))
    trainer = Trainer(kernel, theta0, rule=AdaGrad(0.05), n_steps=5, checkpoints=2)
    trainer.run()
    xp = namespace(theta0)
    for value in (trainer.theta, trainer.margins, trainer.log_loss, trainer.rule_state["eta"],
                  trainer.rule_state["sum_sq"]):
        assert namespace(value) is xp
    assert not trainer.fused


@pytest.mark.parametrize("backend", BACKENDS)
def test_kernel_products_match_numpy(backend):
    rng = np.random.default_rng(2)
    for kernel in (linear(), net(), SVMBiasKernel(*data()), MulticlassLinearKernel(*multiclass_data(), n_classes=3),
                   MulticlassLayeredNetKernel(*multiclass_data(), n_classes=3, hidden=(3, 2))):
        theta = kernel.random_theta([0, 1], 1.0)
        c = rng.standard_normal((2, kernel.n_samples))
        f = kernel.margins(to_backend(backend, theta))
        g = kernel.gradient(to_backend(backend, theta), to_backend(backend, c))
        np.testing.assert_allclose(to_numpy(f), kernel.margins(theta), rtol=1e-13, atol=1e-14)
        np.testing.assert_allclose(to_numpy(g), kernel.gradient(theta, c), rtol=1e-12, atol=1e-13)
        if hasattr(kernel, "path_scales") and not isinstance(kernel, MulticlassLayeredNetKernel):
            np.testing.assert_allclose(to_numpy(kernel.path_scales(to_backend(backend, theta))),
                                       kernel.path_scales(theta), rtol=1e-13)


def test_float32_runs_stay_float32():
    kernel = LayeredNetKernel(*data(), hidden=(3,), dtype=np.float32)
    theta0 = kernel.random_theta([0, 1], 1.0)
    want = train(kernel, theta0, rule=Normalized(0.05), n_steps=10, checkpoints=3)
    trainer = Trainer(kernel, strict.asarray(theta0), rule=Normalized(0.05), n_steps=10, checkpoints=3)
    trainer.run()
    assert trainer.theta.dtype == strict.float32
    np.testing.assert_allclose(trainer.history().theta, want.theta, rtol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_resume_from_a_checkpoint_goes_on_in_the_same_library(backend, tmp_path):
    kernel = net()
    theta0 = to_backend(backend, kernel.random_theta([0, 1], 1.0))
    kw = dict(rule=AdaGrad(0.05), n_steps=30, checkpoints=[0, 10, 20, 30], batch_size=6)
    whole = train(kernel, theta0, **kw)
    path = tmp_path / "run.npz"
    Trainer(kernel, theta0, **kw).run(until=20, checkpoint_path=path)
    trainer = Trainer.load(path, kernel, like_array=theta0)
    assert namespace(trainer.theta) is namespace(theta0)
    resumed = train(kernel, theta0, checkpoint_path=path, **kw)
    for name in SERIES:
        np.testing.assert_array_equal(getattr(resumed, name), getattr(whole, name), err_msg=name)
    np.testing.assert_array_equal(resumed.theta, whole.theta)


def test_mixed_libraries_raise_one_typed_line():
    kernel = linear()
    theta = kernel.random_theta([0], 1.0)
    with pytest.raises(BackendMismatchError, match="different libraries") as info:
        kernel.gradient(strict.asarray(theta), np.ones((1, kernel.n_samples)))
    assert "\n" not in str(info.value) and isinstance(info.value, TypeError)
    torch = _torch()
    if torch is not None:
        with pytest.raises(BackendMismatchError, match="torch"):
            namespace(strict.asarray(theta), torch.asarray(theta))


def test_numpy_stays_numpy():
    assert namespace(np.ones(2), 1.0, None, [1.0]) is np
    kernel = linear()
    trainer = Trainer(kernel, kernel.random_theta([0], 1.0), rule=Normalized(0.1), n_steps=3)
    assert trainer.fused and isinstance(trainer.theta, np.ndarray)
