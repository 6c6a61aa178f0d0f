"""The fused multi-class exponential-loss path (numeric.fused_multiclass) agrees with the generic rows path."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lexmargin.numeric import AdaGrad, Constant, Normalized, Trainer, logsumexp, train
from lexmargin.numeric.fused import safe_log_sum_range
from lexmargin.numeric.fused_multiclass import (
    MulticlassExpLane,
    numpy_weights,
    weights_kernel_available,
)
from lexmargin.numeric.geometry import Steepest
from lexmargin.numeric.multiclass import MulticlassLinearKernel
from lexmargin.numeric.trainer import DivergenceError

KERNELS = ["c", "numba", "numpy"]


def use_kernel(kernel, monkeypatch):
    if not weights_kernel_available(kernel):
        pytest.skip(f"the {kernel} kernel is not available here")
    monkeypatch.setenv("LEXMARGIN_FUSED_KERNEL", kernel)


def weights_function(kernel):
    from lexmargin.numeric import _fused_numba, fused
    return {"c": lambda: fused._c_kernel.multiclass_weights, "numba": lambda: _fused_numba.multiclass_weights,
            "numpy": lambda: numpy_weights}[kernel]()


def separable(N=40, d=3, K=3, seed=1):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N, d))
    y = np.argmax(X @ rng.standard_normal((K, d)).T, axis=1)
    return MulticlassLinearKernel(X, y, n_classes=K)


def reference_weights(G, labels, floor):
    """The cotangent, weight sums and shift of the module docstring, written directly."""
    _, K, N = G.shape
    n = np.arange(N)
    z = G - G[:, labels, n][:, None, :]
    wrong = np.ones((K, N), dtype=bool)
    wrong[labels, n] = False
    shift = -np.max(np.where(wrong, z, -np.inf), axis=(1, 2))
    e = np.where(wrong, np.exp(np.maximum(z + shift[:, None, None], floor)), 0.0)
    C = e.copy()
    C[:, labels, n] = -e.sum(axis=1)
    return C, e.sum(axis=(1, 2)), shift


@pytest.mark.parametrize("kernel", KERNELS)
@settings(max_examples=25, deadline=None, derandomize=True)
@given(R=st.integers(1, 3), K=st.integers(2, 5), N=st.integers(1, 40), scale=st.sampled_from([0.1, 3.0, 300.0]),
       seed=st.integers(0, 2 ** 16))
def test_weights_pass_equals_its_definition(kernel, R, K, N, scale, seed):
    """Every sample count (vector tails of 8 and 16 lanes), class count and scale: the cotangent's wrong-class
    entries are the shifted weights (the largest is exp(0) = 1), the own entries minus their column sums."""
    if not weights_kernel_available(kernel):
        pytest.skip(f"the {kernel} kernel is not available here")
    rng = np.random.default_rng(seed)
    G = scale * rng.standard_normal((R, K, N))
    labels = rng.integers(0, K, N).astype(np.int64)
    C, S, shift = reference_weights(G, labels, -700.0)
    out, S_out, shift_out = G.copy(), np.empty(R), np.empty(R)
    weights_function(kernel)(out, labels, S_out, shift_out, -700.0)
    # the exponents g_k - g_{y_n} + c are rounded at the outputs' scale: relative error of e about eps max|G|
    tol = 1e-14 + 8 * np.finfo(float).eps * float(np.abs(G).max())
    np.testing.assert_array_equal(shift_out, shift)
    np.testing.assert_allclose(S_out, S, rtol=tol * N * K)
    np.testing.assert_allclose(out, C, rtol=tol, atol=1e-15)
    np.testing.assert_allclose(out.max(axis=(1, 2)), 1.0, rtol=tol)


@pytest.mark.parametrize("kernel", KERNELS)
def test_weights_pass_in_float32(kernel):
    if not weights_kernel_available(kernel):
        pytest.skip(f"the {kernel} kernel is not available here")
    rng = np.random.default_rng(3)
    G = rng.standard_normal((2, 4, 37))
    labels = rng.integers(0, 4, 37).astype(np.int64)
    C, S, _ = reference_weights(G.astype(np.float32).astype(np.float64), labels, -87.0)
    out, S_out, shift_out = G.astype(np.float32), np.empty(2), np.empty(2)
    weights_function(kernel)(out, labels, S_out, shift_out, -87.0)
    np.testing.assert_allclose(out, C, rtol=2e-6, atol=2e-7)
    np.testing.assert_allclose(S_out, S, rtol=2e-6)


def test_the_compiled_weights_pass_refuses_bad_labels():
    if not weights_kernel_available("c"):
        pytest.skip("the C kernel is not available here")
    fn = weights_function("c")
    G, S, shift = np.zeros((1, 3, 5)), np.empty(1), np.empty(1)
    with pytest.raises(ValueError, match="labels"):
        fn(G, np.array([0, 1, 3, 0, 0], dtype=np.int64), S, shift, -700.0)
    with pytest.raises(ValueError, match="labels"):
        fn(G, np.array([0, 1, 2], dtype=np.int64), S, shift, -700.0)
    with pytest.raises(ValueError, match="3-D"):
        fn(np.zeros((3, 5)), np.zeros(5, dtype=np.int64), S, shift, -700.0)


@pytest.mark.parametrize("path", KERNELS)
@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-11), (np.float32, 2e-4)])
@pytest.mark.parametrize("rule", [Constant(0.001), Normalized((0.02, 0.1, 0.3))])
def test_fused_path_matches_the_generic_path(path, dtype, rtol, rule, monkeypatch):
    use_kernel(path, monkeypatch)
    X, y = separable().dataset.X, separable().dataset.labels
    kernel = MulticlassLinearKernel(X, y, n_classes=3, dtype=dtype)
    theta = kernel.random_theta([0, 1, 2], (0.1, 0.3, 1.0))
    kw = {"rule": rule, "n_steps": 400, "checkpoints": 9}
    fused, generic = Trainer(kernel, theta, **kw), Trainer(kernel, theta, fused=False, **kw)
    assert fused.fused and isinstance(fused.lanes[0], MulticlassExpLane) and not generic.fused
    assert fused.fused_kernels == [path]
    a, b = fused.run().history(), generic.run().history()
    for name in ("theta", "log_loss", "min_margin", "normalized_margin", "direction"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=rtol, atol=rtol, err_msg=name)
    assert a.meta["fused_kernels"] == [path]


@pytest.mark.parametrize("path", KERNELS)
def test_the_lanes_loss_is_the_exponential_loss_of_the_rows(path, monkeypatch):
    use_kernel(path, monkeypatch)
    kernel = separable(N=25, K=4, d=2)
    theta = kernel.random_theta([0, 1], (1.0, 50.0))        # large margins: the shift keeps exp finite
    lane = kernel.fused_lane(slice(0, 2), theta)
    f = kernel.margins(theta)
    np.testing.assert_allclose(lane.log_loss, logsumexp(-f), rtol=1e-13)
    np.testing.assert_array_equal(lane.shift, f.min(axis=1))
    np.testing.assert_allclose(lane.f, f, rtol=1e-15)
    weights = np.exp(-f - lane.log_loss[:, None])
    gradient = -kernel.gradient(theta, weights)             # grad log L
    np.testing.assert_allclose(lane.grad.reshape(2, -1) / lane.S[:, None], gradient, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("path", KERNELS)
@pytest.mark.parametrize("workers", [1, 2])
def test_fused_multiclass_resume_is_bit_identical(tmp_path, path, workers, monkeypatch):
    use_kernel(path, monkeypatch)
    kernel = separable()
    theta = kernel.random_theta([0, 1, 2, 3], [0.5, 1.0, 2.0, 4.0])
    kw = {"rule": Normalized(0.3), "n_steps": 500, "checkpoints": 10, "workers": workers}
    full = train(kernel, theta, **kw)
    part = Trainer(kernel, theta, **kw).run(until=233)
    part.save(tmp_path / "m.npz")
    resumed = Trainer.load(tmp_path / "m.npz", kernel, workers=workers)
    assert resumed.fused and resumed.fused_kernels == [path] * workers
    back = resumed.run().history()
    for name in ("steps", "log_loss", "norm", "min_margin", "theta", "direction"):
        np.testing.assert_array_equal(getattr(back, name), getattr(full, name), err_msg=name)


def test_fused_multiclass_path_only_where_it_applies():
    kernel = separable()
    theta = kernel.random_theta([0], 1.0)
    assert Trainer(kernel, theta).fused
    assert not Trainer(kernel, theta, loss="logistic").fused
    assert not Trainer(kernel, theta, batch_size=10).fused
    assert not Trainer(kernel, theta, rule=AdaGrad(0.1)).fused
    assert not Trainer(kernel, theta, rule=Steepest("l1", Normalized(0.1))).fused       # no fused geometry


@pytest.mark.parametrize("path", KERNELS)
def test_divergence_on_the_fused_multiclass_path_is_reported(path, monkeypatch):
    use_kernel(path, monkeypatch)
    kernel = separable()
    with pytest.raises(DivergenceError, match="diverged"):
        train(kernel, kernel.random_theta([0, 1], (0.1, 1.0)), rule=Constant(10.0), n_steps=50, checkpoints=2)


@pytest.mark.parametrize("path", KERNELS)
@pytest.mark.parametrize("offset", [-900.0, -300.0, 60.0, 900.0])
def test_a_wrong_shift_is_detected_and_replaced_by_the_exact_one(path, offset, monkeypatch):
    """Shifts that overflow, underflow or lose the weights to the floor give the exact log L and gradient anyway."""
    use_kernel(path, monkeypatch)
    kernel = separable(N=30, K=4)
    theta = kernel.random_theta([0, 1], (1.0, 30.0))
    f = kernel.margins(theta)
    lane = kernel.fused_lane(slice(0, 2), theta, shift=f.min(axis=1) + offset)
    np.testing.assert_allclose(lane.log_loss, logsumexp(-f), rtol=1e-13)
    weights = np.exp(-f - lane.log_loss[:, None])
    np.testing.assert_allclose(lane.grad.reshape(2, -1) / lane.S[:, None], -kernel.gradient(theta, weights),
                               rtol=1e-12, atol=1e-14)
    lo, hi = safe_log_sum_range(np.float64, f.shape[1])          # log S lies in [-offset, -offset + log rows]
    if lo < -offset and -offset + np.log(f.shape[1]) < hi:
        assert lane.exact_shifts == 0                             # safe: kept
        np.testing.assert_array_equal(lane.shift, f.min(axis=1) + offset)
    else:
        assert lane.exact_shifts == 1
        np.testing.assert_array_equal(lane.shift, f.min(axis=1))


@pytest.mark.parametrize("path", KERNELS)
def test_large_steps_far_from_the_prediction_stay_exact(path, monkeypatch):
    """Normalized steps of 300 move the margins by hundreds per step: the prediction is off, the loss is not."""
    use_kernel(path, monkeypatch)
    kernel = separable()
    theta = kernel.random_theta([0, 1], 1.0)
    trainer = Trainer(kernel, theta, rule=Normalized(300.0), n_steps=200, checkpoints=np.arange(201)).run()
    hist = trainer.history()
    assert np.abs(np.diff(hist.min_margin, axis=0)).max() > 300 and trainer.lanes[0].exact_shifts > 1
    np.testing.assert_allclose(trainer.log_loss, logsumexp(-kernel.margins(trainer.theta)), rtol=1e-12)
    # steps this large are chaotic (rounding differences grow about 10x per 10 steps): the paths agree to
    # rounding over the first 40 steps, where the margins already jumped by hundreds
    generic = train(kernel, theta, rule=Normalized(300.0), n_steps=40, checkpoints=np.arange(41), fused=False)
    np.testing.assert_allclose(hist.direction[:41], generic.direction, atol=1e-10)
    assert np.abs(np.diff(generic.min_margin, axis=0)).max() > 300
