"""The C kernel's fused multi-class step (``multiclass_step``, _fused_multiclass.h): outputs, weights and gradient
block by block (128 samples, 4-row x 4-vector register tiles), never storing the outputs.  It must equal its
definition, grad = C X and S = sum of the weights with the given shifts, at every edge of the blocking: rows not a
multiple of 4, samples not a multiple of the vector width or of the block, columns not a multiple of the tile."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lexmargin.numeric import fused
from lexmargin.numeric.fused_multiclass import numpy_weights, weights_kernel_available

pytestmark = pytest.mark.skipif(not weights_kernel_available("c"), reason="the C kernel is not available here")

FLOORS = {np.float64: -700.0, np.float32: -87.0}


def problem(R, K, N, d, dtype, seed, scale=1.0):
    rng = np.random.default_rng(seed)
    W = (scale * rng.standard_normal((R * K, d)) / np.sqrt(d)).astype(dtype)
    X = rng.standard_normal((N, d)).astype(dtype)
    labels = rng.integers(0, K, N).astype(np.int64)
    return W, X, labels


def definition(W, X, labels, K, shift, floor):
    """grad = C X and S in float64 from the numpy weights pass with the given shifts."""
    R = W.shape[0] // K
    G = (W.astype(np.float64) @ X.T.astype(np.float64)).reshape(R, K, -1)
    S = np.empty(R)
    numpy_weights(G, labels, S, np.array(shift, dtype=np.float64), floor, given=True)
    return G.reshape(R * K, -1) @ X.astype(np.float64), S


def exact_shift(W, X, labels, K, floor):
    R = W.shape[0] // K
    G = (W.astype(np.float64) @ X.T.astype(np.float64)).reshape(R, K, -1)
    S, shift = np.empty(R), np.empty(R)
    numpy_weights(G, labels, S, shift, floor)
    return shift


def step(W, X, labels, K, shift, floor, threads=1):
    grad, S = np.empty(W.shape, W.dtype), np.empty(W.shape[0] // K)
    fused._c_kernel.multiclass_step(W, np.ascontiguousarray(X.T), X, labels, grad, S, np.asarray(shift, float), K,
                                    floor, threads)
    return grad, S


@settings(max_examples=40, deadline=None, derandomize=True)
@given(R=st.integers(1, 5), K=st.integers(2, 11), N=st.sampled_from([1, 7, 8, 9, 16, 17, 127, 128, 129, 300]),
       d=st.sampled_from([1, 5, 8, 31, 32, 33, 64, 65]), dtype=st.sampled_from([np.float64, np.float32]),
       offset=st.floats(-3.0, 3.0), seed=st.integers(0, 2 ** 16))
def test_the_fused_step_equals_its_definition(R, K, N, d, dtype, offset, seed):
    W, X, labels = problem(R, K, N, d, dtype, seed)
    floor = FLOORS[dtype]
    shift = exact_shift(W, X, labels, K, floor) + offset
    grad, S = step(W, X, labels, K, shift, floor)
    grad_ref, S_ref = definition(W, X, labels, K, shift, floor)
    eps = np.finfo(dtype).eps
    # products over d and over N, exponents rounded at the outputs' scale
    tol = 64 * eps * np.sqrt(max(N, d)) * (1.0 + np.abs(W.astype(float) @ X.T.astype(float)).max())
    np.testing.assert_allclose(S, S_ref, rtol=tol)
    scale = np.abs(np.exp(np.abs(offset)) * np.abs(X).max(axis=0)).max() * S_ref.max()
    np.testing.assert_allclose(grad, grad_ref, rtol=0, atol=tol * scale)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_the_issue_size_and_threads(dtype):
    """R = 64, K = 10, N = 1797, d = 64 (the benchmark's size): to rounding; 2 threads give the same bits (each run's
    sums run in one order however the runs are split)."""
    W, X, labels = problem(64, 10, 1797, 64, dtype, 5, scale=0.3)
    floor = FLOORS[dtype]
    shift = exact_shift(W, X, labels, 10, floor)
    grad, S = step(W, X, labels, 10, shift, floor)
    grad_ref, S_ref = definition(W, X, labels, 10, shift, floor)
    rtol = 1e-12 if dtype == np.float64 else 3e-5
    np.testing.assert_allclose(S, S_ref, rtol=rtol)
    np.testing.assert_allclose(grad, grad_ref, rtol=0, atol=rtol * np.abs(grad_ref).max())
    grad2, S2 = step(W, X, labels, 10, shift, floor, threads=2)
    np.testing.assert_array_equal(grad2, grad)
    np.testing.assert_array_equal(S2, S)


def test_a_run_computed_alone_equals_the_same_run_among_others():
    """The lane redoes unsafe runs alone: their numbers must be those of the full call, bit for bit."""
    K = 4
    W, X, labels = problem(7, K, 301, 19, np.float64, 9)
    shift = exact_shift(W, X, labels, K, -700.0)
    grad, S = step(W, X, labels, K, shift, -700.0)
    for runs in ([0], [3], [6], [1, 5]):
        rows = (np.array(runs)[:, None] * K + np.arange(K)).ravel()
        g, s = step(np.ascontiguousarray(W[rows]), X, labels, K, shift[runs], -700.0)
        np.testing.assert_array_equal(g, grad[rows])
        np.testing.assert_array_equal(s, S[runs])


def test_the_shift_scales_the_weights():
    """S and grad with shift c + t are e^t times those with c (while no weight reaches the floor)."""
    W, X, labels = problem(2, 3, 50, 4, np.float64, 2)
    shift = exact_shift(W, X, labels, 3, -700.0)
    grad, S = step(W, X, labels, 3, shift, -700.0)
    grad2, S2 = step(W, X, labels, 3, shift + 2.0, -700.0)
    np.testing.assert_allclose(S2, np.exp(2.0) * S, rtol=1e-13)
    np.testing.assert_allclose(grad2, np.exp(2.0) * grad, rtol=1e-12, atol=1e-13 * np.abs(grad2).max())


def test_bad_operands_are_refused():
    W, X, labels = problem(2, 3, 10, 4, np.float64, 0)
    Xt, grad, S, shift = np.ascontiguousarray(X.T), np.empty(W.shape), np.empty(2), np.zeros(2)
    f = fused._c_kernel.multiclass_step
    with pytest.raises(ValueError, match="one float dtype"):
        f(W, Xt, X.astype(np.float32), labels, grad, S, shift, 3, -700.0)
    with pytest.raises(ValueError, match="dividing"):
        f(W, Xt, X, labels, grad, S, shift, 4, -700.0)
    with pytest.raises(ValueError, match="Xt"):
        f(W, Xt[:, :5].copy(), X, labels, grad, S, shift, 3, -700.0)
    with pytest.raises(ValueError, match="labels"):
        f(W, Xt, X, np.full(10, 3, dtype=np.int64), grad, S, shift, 3, -700.0)
    with pytest.raises(ValueError, match="S"):
        f(W, Xt, X, labels, grad, np.empty(3), shift, 3, -700.0)
    with pytest.raises(ValueError, match="threads"):
        f(W, Xt, X, labels, grad, S, shift, 3, -700.0, 0)
    with pytest.raises(ValueError, match="2-D"):
        f(W.ravel(), Xt, X, labels, grad, S, shift, 3, -700.0)


@pytest.mark.parametrize("dtype, floor, ulps", [(np.float64, -700.0, 1.0), (np.float32, -87.0, 2.0)])
def test_the_weights_exponential_is_within_an_ulp_or_two(dtype, floor, ulps):
    """The weights pass's exponential (float64: a 16-entry table and a degree-7 polynomial) against numpy's, over
    the whole range of exponents a weight can have and near 0, where the reduction's rounding matters most."""
    rng = np.random.default_rng(1)
    top = 709.0 if dtype == np.float64 else 88.0
    x = np.concatenate([rng.uniform(floor + 1, top, 20000), rng.uniform(-1, 1, 20000), np.linspace(-0.1, 0.1, 4001),
                        np.arange(-40, 41) * np.log(2) / 16]).astype(dtype)
    G = np.zeros((1, 2, x.size), dtype)
    G[0, 1] = x                                   # own class 0 at 0, shift 0: the wrong class's weight is exp(x)
    S = np.empty(1)
    fused._c_kernel.multiclass_weights(G, np.zeros(x.size, np.int64), S, np.zeros(1), floor, True)
    exact = np.exp(x.astype(np.float64))
    error = np.abs(G[0, 1].astype(np.float64) - exact) / exact / np.finfo(dtype).eps
    assert error.max() <= ulps
    np.testing.assert_array_equal(G[0, 0], -G[0, 1])


def test_many_runs_go_in_groups_with_the_same_bits():
    """K = 100 classes: a run's Gb block (100 x 128 values) leaves room for 10 (float64) or 20 (float32) runs per
    1 MiB group; 23 runs take three groups (two in float32), and each run's numbers equal the run computed alone."""
    for dtype in (np.float64, np.float32):
        K = 100
        W, X, labels = problem(23, K, 150, 9, dtype, 6)
        floor = FLOORS[dtype]
        shift = exact_shift(W, X, labels, K, floor)
        grad, S = step(W, X, labels, K, shift, floor)
        grad_ref, S_ref = definition(W, X, labels, K, shift, floor)
        rtol = 1e-12 if dtype == np.float64 else 3e-5
        np.testing.assert_allclose(S, S_ref, rtol=rtol)
        np.testing.assert_allclose(grad, grad_ref, rtol=0, atol=rtol * np.abs(grad_ref).max())
        for run in (0, 9, 10, 22):
            rows = slice(run * K, (run + 1) * K)
            g, s = step(np.ascontiguousarray(W[rows]), X, labels, K, shift[[run]], floor)
            np.testing.assert_array_equal(g, grad[rows])
            np.testing.assert_array_equal(s, S[[run]])
        grad2, S2 = step(W, X, labels, K, shift, floor, threads=2)
        np.testing.assert_array_equal(grad2, grad)
        np.testing.assert_array_equal(S2, S)
