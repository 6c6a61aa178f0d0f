"""Minibatch steps evaluate the minibatch's rows only (``Kernel.forward_rows`` / ``vjp_rows``): the overrides
agree with the full evaluation, SGD takes the same steps as with every row evaluated, and no step between records
evaluates the full data."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lexmargin import Dataset
from lexmargin.numeric import (
    AdaGrad,
    CrossEntropyLoss,
    Kernel,
    LayeredNetKernel,
    LinearKernel,
    Momentum,
    MulticlassLayeredNetKernel,
    Normalized,
    train,
)
from lexmargin.numeric.training.steppers import GenericStepper


def binary(seed, n=40, d=4):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    return X, np.where(X @ np.arange(1.0, d + 1) > 0, 1.0, -1.0)


def kernels(seed):
    X, y = binary(seed)
    labels = np.random.default_rng(seed).integers(0, 3, X.shape[0])
    return [LinearKernel(X, y), LayeredNetKernel(X, y, hidden=(5, 3)), LayeredNetKernel(X, y, hidden=(4,),
            first_bias=True), MulticlassLayeredNetKernel(Dataset(X, labels, n_classes=3), hidden=(5,))]


@settings(max_examples=20, deadline=None, derandomize=True, database=None)
@given(seed=st.integers(0, 10_000), runs=st.integers(1, 4), batch=st.integers(1, 12), grouped=st.booleans())
def test_row_evaluation_equals_the_full_one(seed, runs, batch, grouped):
    rng = np.random.default_rng(seed)
    for kernel in kernels(seed):
        theta = rng.standard_normal((runs, kernel.n_params))
        group = 2 if grouped and isinstance(kernel, MulticlassLayeredNetKernel) else 1
        samples = rng.integers(0, kernel.n_samples // group, (runs, batch))      # repeats included
        rows = (samples[:, :, None] * group + np.arange(group)).reshape(runs, -1)
        f, cache = kernel.forward_rows(theta, rows, group)
        f_full, cache_full = Kernel.forward_rows(kernel, theta, rows, group)
        np.testing.assert_allclose(f, f_full, rtol=1e-12, atol=1e-12)
        c = rng.standard_normal(rows.shape)
        np.testing.assert_allclose(kernel.vjp_rows(theta, cache, c, rows),
                                   Kernel.vjp_rows(kernel, theta, cache_full, c, rows), rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("case", ["linear", "net", "multiclass"])
def test_sgd_takes_the_steps_of_the_full_evaluation(monkeypatch, case):
    X, y = binary(3)
    if case == "multiclass":
        kernel = MulticlassLayeredNetKernel(Dataset(X, np.random.default_rng(3).integers(0, 3, 40), n_classes=3),
                                            hidden=(6,))
        kw = {"loss": CrossEntropyLoss(3), "rule": AdaGrad(0.05)}
    else:
        kernel = LinearKernel(X, y) if case == "linear" else LayeredNetKernel(X, y, hidden=(6,))
        kw = {"rule": Momentum(0.05, beta=0.5) if case == "net" else Normalized(0.1)}
    theta = kernel.random_theta([0, 1, 2], 1.0)
    kw.update(n_steps=120, checkpoints=6, batch_size=8, seed=4)
    lazy = train(kernel, theta, **kw)
    monkeypatch.setattr(GenericStepper, "lazy", lambda self, lane, idx: False)
    full = train(kernel, theta, **kw)
    np.testing.assert_allclose(lazy.theta, full.theta, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(lazy.log_loss, full.log_loss, rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(lazy.steps, full.steps)


def test_minibatch_steps_do_not_evaluate_the_full_data(monkeypatch):
    X, y = binary(5)
    kernel = LayeredNetKernel(X, y, hidden=(6,))
    calls = []
    forward = LayeredNetKernel.forward

    def counted(self, theta, out=None):
        calls.append(theta.shape)
        return forward(self, theta, out)

    monkeypatch.setattr(LayeredNetKernel, "forward", counted)
    hist = train(kernel, kernel.random_theta([0, 1], 1.0), rule=Normalized(0.05), n_steps=200, checkpoints=2,
                 batch_size=4)
    assert len(calls) <= 4                     # the start and the records at steps 0, 1 and 200, not 200 steps
    assert np.all(np.isfinite(hist.log_loss)) and hist.steps.tolist() == [0, 1, 200]
