"""The numba kernel of the fused GD path (numeric/_fused_numba.py): its exponential, both layouts of the weight
sums against numpy, the step loop's statuses, and the path choice and exact resume around it.

Skipped where numba is not installed (``pip install lexmargin[fast]``); the fused path then uses C or numpy.
Compiled code is cached on disk, so only the first run of these tests pays numba's compile time (a few seconds).
"""

import json
import subprocess
import sys

import numpy as np
import pytest

from lexmargin.errors import DataError
from lexmargin.numeric import LinearKernel, Normalized, Trainer, logsumexp, train
from lexmargin.numeric import fused as fused_module
from lexmargin.numeric.fused import (
    LinearExpLane,
    aligned_empty,
    kernel_available,
    numba_available,
    numba_layout,
)

pytestmark = pytest.mark.skipif(not numba_available(), reason="numba is not installed (or LEXMARGIN_NUMPY_ONLY is set)")


@pytest.fixture(scope="module")
def nb():
    from lexmargin.numeric import _fused_numba
    return _fused_numba


def separable(n=60, d=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = np.where(X @ np.arange(1.0, d + 1) > 0, 1.0, -1.0)
    return X, y


def random_operands(K, R, N, dtype, seed=0):
    rng = np.random.default_rng(seed)
    B = aligned_empty((K, N), dtype)
    B[:-1] = rng.standard_normal((K - 1, N))
    B[-1] = 1
    P = aligned_empty((K, R), dtype)
    P[:] = 0.3 * rng.standard_normal((K, R))
    return P, B


FLOOR = {np.float64: -700.0, np.float32: -87.0}


# ---- the exponential ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype, lo, hi, rtol", [(np.float64, -700.0, 709.0, 3e-16), (np.float32, -87.0, 88.0, 2e-7)])
def test_floored_exp_is_exact_to_rounding(nb, dtype, lo, hi, rtol):
    from numba import njit

    @njit
    def apply(x, floor):
        for i in range(x.size):
            x[i] = nb.floored_exp(x[i], floor)

    x = np.linspace(lo, hi, 200_001).astype(dtype)
    y = x.copy()
    apply(y, dtype(FLOOR[dtype]))
    assert y.dtype == dtype
    np.testing.assert_allclose(y.astype(float), np.exp(x.astype(float)), rtol=rtol)
    special = np.array([np.nan, -np.inf, -1e4, lo - 5.0, 0.0, np.inf, 1e4], dtype)
    out = special.copy()
    apply(out, dtype(FLOOR[dtype]))
    floor_value = np.exp(dtype(FLOOR[dtype]))
    assert np.isnan(out[0])                                           # NaN stays NaN
    np.testing.assert_allclose(out[1:4], floor_value, rtol=rtol)      # floored, never subnormal
    assert out[4] == 1 and np.isinf(out[5:]).all() and (out[5:] > 0).all()   # overflow: +inf


# ---- weight sums ------------------------------------------------------------------------------------------------
SHAPES = [(2, 1, 1), (3, 1, 30), (5, 3, 7), (11, 37, 33), (9, 65, 1001), (8, 2, 64), (4, 33, 3), (6, 1, 129),
          (101, 16, 300)]


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 5e-15), (np.float32, 2e-6)])
@pytest.mark.parametrize("K, R, N", SHAPES)
def test_weight_sums_match_numpy_in_both_layouts(nb, dtype, rtol, K, R, N):
    """Rows not a multiple of the 4 handled per pass, one sample, one run, many of each."""
    P, B = random_operands(K, R, N, dtype)
    reference = B.astype(float) @ np.exp(np.maximum(P.T.astype(float) @ B.astype(float), FLOOR[dtype])).T
    for layout in (nb.LOOPS, nb.BLAS):
        GT = np.full((K, R), np.nan, dtype)
        work = np.empty(nb.workspace_shape(layout, R, N), dtype)
        nb.weight_sums(P, B, GT, work, dtype(FLOOR[dtype]), layout)
        np.testing.assert_allclose(GT, reference, rtol=rtol * 10, atol=rtol * np.abs(reference).max(),
                                   err_msg=f"layout {layout}")


@pytest.mark.parametrize("layout", ["LOOPS", "BLAS"])
def test_weight_sums_floor_and_propagate_nan(nb, layout):
    layout = getattr(nb, layout)
    B = np.ones((2, 40))
    P = np.zeros((2, 5))
    P[-1, 0], P[-1, 1], P[0, 2] = -1e4, -710.0, np.nan          # far below, just below the floor; NaN
    GT = np.zeros((2, 5))
    nb.weight_sums(P, B, GT, np.empty(nb.workspace_shape(layout, 5, 40)), -700.0, layout)
    np.testing.assert_allclose(GT[-1, :2], 40 * np.exp(-700.0), rtol=1e-14)
    assert np.isnan(GT[:, 2]).all() and np.isfinite(np.delete(GT, 2, axis=1)).all()


# ---- the step loop ----------------------------------------------------------------------------------------------
def lane_state(kernel, theta, layout, nb):
    """(P, B, GT, work, log L) of a numba lane with the given layout."""
    lane = LinearExpLane(slice(0, len(theta)), theta, kernel.augmented_margin_matrix, kernel="numba")
    work = np.empty(nb.workspace_shape(layout, len(theta), kernel.n_samples), kernel.dtype)
    return lane.P, lane.B, lane.GT, work, lane.log_loss, lane


@pytest.mark.parametrize("layout", ["LOOPS", "BLAS"])
def test_run_steps_statuses(nb, layout):
    layout = getattr(nb, layout)
    kernel = LinearKernel(*separable())
    P, B, GT, work, log_loss, lane = lane_state(kernel, kernel.random_theta(range(3), 1.0), layout, nb)
    s_lo, s_hi = lane.s_lo, lane.s_hi
    eta = np.full(3, 0.1)
    assert nb.run_steps(P, B, GT, work, layout, eta, False, log_loss, 5, -700.0, s_lo, s_hi) == (5, nb.DONE)
    np.testing.assert_allclose(log_loss, logsumexp(-kernel.margins(-P[:-1].T)), rtol=1e-13)
    # a step of 1e4 moves the margins by thousands: the predicted shift is unsafe, the loop stops after it
    done, status = nb.run_steps(P, B, GT, work, layout, np.full(3, 1e4), False, log_loss, 5, -700.0, s_lo, s_hi)
    assert (done, status) == (1, nb.UNSAFE)
    log_loss[1] = np.inf                                      # a run that diverged: nothing is stepped
    before = P.copy()
    assert nb.run_steps(P, B, GT, work, layout, eta, True, log_loss, 5, -700.0, s_lo, s_hi) == (0, nb.DIVERGED)
    np.testing.assert_array_equal(P, before)
    log_loss[1] = 0.0
    assert nb.run_steps(P, B, GT, work, layout, eta, False, log_loss, 1, -700.0, s_lo, s_hi, check=False)[0] == 1


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 1e-4)])
@pytest.mark.parametrize("runs", [1, 3, 40])
def test_numba_lane_matches_numpy_lane_in_its_loop_and_step_by_step(dtype, rtol, runs):
    kernel = LinearKernel(*separable(n=77, d=9), dtype=dtype)
    theta = kernel.random_theta(range(runs), np.geomspace(0.1, 10, runs))
    lanes = [LinearExpLane(slice(0, runs), theta, kernel.augmented_margin_matrix, kernel=k)
             for k in ("numba", "numba", "numpy")]
    eta = np.geomspace(0.01, 1.0, runs)
    lanes[0].run(50, eta, constant=False)                     # the whole loop in numba
    for lane in lanes[1:]:
        for _ in range(50):
            lane.advance(eta)                                  # one step at a time
    for lane in lanes[:2]:
        np.testing.assert_allclose(lane.theta, lanes[2].theta, rtol=rtol)
        np.testing.assert_allclose(lane.log_loss, lanes[2].log_loss, rtol=rtol, atol=rtol)
    np.testing.assert_array_equal(lanes[0].theta, lanes[1].theta)    # the same arithmetic either way


def test_layout_choice_follows_the_sizes(nb):
    assert numba_layout(1, 101, 10_000) == nb.LOOPS                # one run
    assert numba_layout(4, 3, 30) == nb.LOOPS                      # tiny
    assert numba_layout(2, 11, 200) == nb.BLAS
    assert numba_layout(64, 101, 1000) == nb.BLAS


# ---- the path around it -----------------------------------------------------------------------------------------
def test_without_numba_the_other_kernels_are_used(monkeypatch):
    monkeypatch.setattr(fused_module, "_numba_module", False)        # as if numba were not installed
    assert not numba_available() and not kernel_available("numba")
    kernel = LinearKernel(*separable(n=3000, d=10))
    theta = kernel.random_theta(range(2), 1.0)
    assert Trainer(kernel, theta, n_steps=10).fused_kernels == ["numpy"]   # few runs, much data: numpy
    with pytest.raises(RuntimeError, match="'numba' kernel is not available"):
        LinearExpLane(slice(0, 2), theta, kernel.augmented_margin_matrix, kernel="numba")
    monkeypatch.setenv("LEXMARGIN_FUSED_KERNEL", "numba")                  # asked for, not there: chosen anew
    assert Trainer(kernel, theta, n_steps=10).fused_kernels == ["numpy"]


def test_numba_is_used_where_c_does_not_pay_and_is_off_with_numpy_only(monkeypatch):
    kernel = LinearKernel(*separable(n=3000, d=10))
    theta = kernel.random_theta(range(2), 1.0)
    assert Trainer(kernel, theta, n_steps=10 ** 6).fused_kernels == ["numba"]
    # a short run would not win back numba's start (about a second): numpy, as without numba
    assert Trainer(kernel, theta, n_steps=100).fused_kernels == ["numpy"]
    monkeypatch.setenv("LEXMARGIN_NUMPY_ONLY", "1")
    assert not numba_available() and Trainer(kernel, theta, n_steps=10 ** 6).fused_kernels == ["numpy"]


def test_a_checkpoint_resumes_on_the_kernel_it_was_started_on(tmp_path, monkeypatch):
    """Started on numba (asked for), resumed without asking: the run stays on numba and is bit-identical,
    although a new lane here would take another kernel."""
    kernel = LinearKernel(*separable())
    theta = kernel.random_theta(range(4), 1.0)
    kw = dict(rule=Normalized(0.3), n_steps=400, checkpoints=8, workers=2)
    monkeypatch.setenv("LEXMARGIN_FUSED_KERNEL", "numba")
    full = train(kernel, theta, **kw)
    assert full.meta["fused_kernels"] == ["numba", "numba"]
    path = tmp_path / "k.npz"
    Trainer(kernel, theta, **kw).run(until=150).save(path)
    monkeypatch.setenv("LEXMARGIN_FUSED_KERNEL", "numpy")
    assert Trainer(kernel, theta, **kw).fused_kernels == ["numpy", "numpy"]
    resumed = Trainer.load(path, kernel, workers=2)
    assert resumed.fused_kernels == ["numba", "numba"]
    back = train(kernel, theta, checkpoint_path=path, **kw)
    for name in ("steps", "log_loss", "norm", "min_margin", "theta", "direction"):
        np.testing.assert_array_equal(getattr(back, name), getattr(full, name), err_msg=name)
    # with other lanes, or where the recorded kernel is missing, the kernel is chosen anew (same to rounding)
    assert Trainer.load(path, kernel, workers=1).fused_kernels == ["numpy"]
    monkeypatch.setattr(fused_module, "_numba_module", False)
    monkeypatch.delenv("LEXMARGIN_FUSED_KERNEL")
    other = Trainer.load(path, kernel, workers=2)
    assert "numba" not in other.fused_kernels
    np.testing.assert_allclose(other.run().theta, full.theta, rtol=1e-12)


def test_a_damaged_kernel_record_is_a_data_error(tmp_path):
    kernel = LinearKernel(*separable())
    path = tmp_path / "c.npz"
    Trainer(kernel, kernel.random_theta([0], 1.0), n_steps=10).save(path)
    with np.load(path) as f:
        arrays = dict(f)
    meta = json.loads(str(arrays["meta"]))
    for bad in ("numba", ["fortran"], [3]):
        meta["fused_kernels"] = bad
        np.savez(path, **{**arrays, "meta": np.array(json.dumps(meta))})
        with pytest.raises(DataError, match="fused_kernels"):
            Trainer.load(path, kernel)


def test_float32_runs_agree_with_float64(monkeypatch):
    monkeypatch.setenv("LEXMARGIN_FUSED_KERNEL", "numba")
    X, y = separable()
    hist = {dt: train(LinearKernel(X, y, dtype=dt), LinearKernel(X, y).random_theta(range(3), 1.0).astype(dt),
                      rule=Normalized(0.1), n_steps=300, checkpoints=4) for dt in (np.float32, np.float64)}
    assert hist[np.float32].meta["fused_kernels"] == ["numba"]
    np.testing.assert_allclose(hist[np.float32].theta, hist[np.float64].theta, rtol=2e-4)


def test_importing_lexmargin_numeric_does_not_import_numba():
    code = "import sys, lexmargin.numeric; print('numba' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "False"

