"""The fused exponential-loss path for linear kernels agrees with the generic path and resumes exactly."""

import numpy as np
import pytest
from resume_helpers import interrupted_then_resumed

from lexmargin.numeric import Adaptive, Constant, LinearKernel, Normalized, Trainer, logsumexp, train
from lexmargin.numeric import fused as fused_module
from lexmargin.numeric.fused import (
    LinearExpLane,
    c_kernel_available,
    choose_kernel,
    kernel_available,
    numba_available,
    safe_log_sum_range,
)

KERNELS = ["c", "numba", "numpy"]       # the fused path's kernels: compiled AVX-512 C, numba, numpy


def use_kernel(kernel, monkeypatch):
    """Make new lanes take ``kernel`` (skip where it is not available)."""
    if not kernel_available(kernel):
        pytest.skip(f"the {kernel} kernel is not available here")
    monkeypatch.setenv("LEXMARGIN_FUSED_KERNEL", kernel)


def separable(n=60, d=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = np.where(X @ np.arange(1.0, d + 1) > 0, 1.0, -1.0)
    return X, y


def exact_log_loss(kernel, theta):
    return logsumexp(-kernel.margins(theta))


@pytest.mark.parametrize("path", KERNELS)
@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-11), (np.float32, 2e-4)])
@pytest.mark.parametrize("rule, scales", [(Constant(0.01), (0.1, 0.3, 1.0)), (Normalized((0.02, 0.1, 0.3)), (0.1, 1.0, 10.0))])
def test_fused_path_matches_generic_path(dtype, rtol, rule, scales, path, monkeypatch):
    use_kernel(path, monkeypatch)
    kernel = LinearKernel(*separable(), dtype=dtype)
    theta = kernel.random_theta([0, 1, 2], scales)
    kw = dict(rule=rule, n_steps=400, checkpoints=9)
    fused, generic = Trainer(kernel, theta, **kw), Trainer(kernel, theta, fused=False, **kw)
    assert fused.fused and not generic.fused and isinstance(fused.lanes[0], LinearExpLane)
    assert fused.lanes[0].kernel == path and fused.fused_kernels == [path] and generic.fused_kernels is None
    a, b = fused.run().history(), generic.run().history()
    for name in ("theta", "log_loss", "min_margin", "normalized_margin", "direction"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=rtol, atol=rtol, err_msg=name)
    assert a.meta["fused"] is True and b.meta["fused"] is False
    assert a.meta["fused_kernels"] == [path] and "fused_kernels" not in b.meta
    assert fused.lanes[0].exact_shifts == 1               # only at the start: the predictions were good


def test_fused_path_is_used_only_where_it_applies():
    kernel = LinearKernel(*separable())
    theta = kernel.random_theta([0], 1.0)
    assert Trainer(kernel, theta).fused
    assert not Trainer(kernel, theta, loss="logistic").fused
    assert not Trainer(kernel, theta, batch_size=10).fused
    assert not Trainer(kernel, theta, rule=Adaptive(0.1)).fused


@pytest.mark.parametrize("offset", [-900.0, -300.0, 60.0, 900.0])
def test_a_wrong_shift_is_detected_and_replaced_by_the_exact_one(offset):
    """Shifts that overflow, underflow or lose precision give the exact log L and gradient anyway."""
    kernel = LinearKernel(*separable())
    theta = kernel.random_theta([0, 1], [1.0, 30.0])
    f = kernel.margins(theta)
    lane = LinearExpLane(slice(0, 2), theta, kernel.augmented_margin_matrix, shift=f.min(axis=1) + offset)
    np.testing.assert_allclose(lane.log_loss, exact_log_loss(kernel, theta), rtol=1e-13)
    weights = np.exp(-f - lane.log_loss[:, None])
    np.testing.assert_allclose(lane.GT[:-1].T / lane.GT[-1][:, None], weights @ kernel.At, rtol=1e-12)
    lo, hi = safe_log_sum_range(np.float64, kernel.n_samples)
    if not lo < -offset + np.log(kernel.n_samples) and -offset < hi:
        np.testing.assert_allclose(lane.shift, f.min(axis=1), rtol=1e-14)      # replaced by the minimum


def test_large_steps_far_from_the_prediction_stay_exact():
    """Normalized steps of 400 move f by hundreds per step: the prediction is off, the loss is not."""
    kernel = LinearKernel(*separable())
    trainer = Trainer(kernel, kernel.random_theta([0, 1], 1.0), rule=Normalized(400.0), n_steps=300,
                      checkpoints=np.arange(301)).run()
    hist = trainer.history()
    assert np.abs(np.diff(hist.min_margin, axis=0)).max() > 500 and trainer.lanes[0].exact_shifts > 1
    np.testing.assert_allclose(trainer.log_loss, exact_log_loss(kernel, trainer.theta), rtol=1e-12)
    generic = train(kernel, kernel.random_theta([0, 1], 1.0), rule=Normalized(400.0), n_steps=300, fused=False)
    np.testing.assert_allclose(hist.theta, generic.theta, rtol=1e-9)


@pytest.mark.parametrize("path", KERNELS)
@pytest.mark.parametrize("workers", [1, 2])
def test_fused_resume_is_bit_identical(tmp_path, workers, path, monkeypatch):
    use_kernel(path, monkeypatch)
    kernel = LinearKernel(*separable())
    theta = kernel.random_theta([0, 1, 2, 3], [0.5, 1.0, 2.0, 4.0])
    kw = dict(rule=Normalized(0.3), n_steps=700, checkpoints=10, workers=workers)
    full = train(kernel, theta, **kw)
    part = Trainer(kernel, theta, **kw).run(until=333)
    assert part.fused_kernels == [path] * workers
    part.save(tmp_path / "f.npz")
    resumed = Trainer.load(tmp_path / "f.npz", kernel, workers=workers)
    assert resumed.fused
    np.testing.assert_array_equal(resumed.lanes[0].shift, part.lanes[0].shift)
    back = resumed.run().history()
    for name in ("steps", "log_loss", "norm", "min_margin", "theta", "direction"):
        np.testing.assert_array_equal(getattr(back, name), getattr(full, name), err_msg=name)


def test_parallel_fused_lanes_match_one_lane_and_stop_at_checkpoints(tmp_path):
    """Two lanes advance up to 256 steps between synchronizations yet record, save and call back on time."""
    kernel = LinearKernel(*separable(n=80))
    theta = kernel.random_theta(range(5), 1.0)
    seen = []
    kw = dict(rule=Normalized(0.1), n_steps=900, checkpoints=[0, 7, 500, 900])
    one = train(kernel, theta, **kw)
    two = train(kernel, theta, workers=2, callback=lambda t: seen.append(t.step),
                checkpoint_path=tmp_path / "p.npz", save_every=100, **kw)
    np.testing.assert_allclose(two.theta, one.theta, rtol=1e-12)
    np.testing.assert_array_equal(two.steps, [0, 7, 500, 900])
    assert seen == [7, 500, 900]


@pytest.mark.parametrize("path", KERNELS)
def test_interrupt_between_chunks_saves_a_consistent_state(tmp_path, path, monkeypatch):
    use_kernel(path, monkeypatch)
    kernel = LinearKernel(*separable())
    theta = kernel.random_theta(range(4), 1.0)
    kw = dict(rule=Normalized(0.2), n_steps=1000, checkpoints=20, workers=2)
    full = train(kernel, theta, **kw)
    resumed = interrupted_then_resumed(kernel, theta, tmp_path / "i.npz", 300, **kw)
    np.testing.assert_array_equal(resumed.theta, full.theta)
    np.testing.assert_array_equal(resumed.log_loss, full.log_loss)


def test_resume_keeps_the_path_the_checkpoint_was_started_on(tmp_path):
    """A generic-path checkpoint (or one written before the fused path existed) resumes on the generic path."""
    kernel = LinearKernel(*separable())
    theta = kernel.random_theta([0, 1], 1.0)
    kw = dict(rule=Normalized(0.2), n_steps=200, checkpoints=5)
    generic = train(kernel, theta, fused=False, **kw)
    path = tmp_path / "g.npz"
    Trainer(kernel, theta, fused=False, **kw).run(until=120).save(path)
    resumed = train(kernel, theta, checkpoint_path=path, **kw)           # fused=True by default
    assert resumed.meta["fused"] is False
    np.testing.assert_array_equal(resumed.theta, generic.theta)


# ---- the compiled kernel (numeric/_fused.c) -------------------------------------------------------------
needs_c = pytest.mark.skipif(not c_kernel_available(), reason="compiled AVX-512 kernel not built or no AVX-512F")


def random_operands(K, R, N, dtype, seed=0):
    rng = np.random.default_rng(seed)
    B = np.ones((K, N), dtype)
    B[:-1] = rng.standard_normal((K - 1, N))
    P = (0.3 * rng.standard_normal((K, R))).astype(dtype)
    return P, B


@needs_c
@pytest.mark.parametrize("dtype, floor, rtol", [(np.float64, -700.0, 5e-15), (np.float32, -87.0, 2e-6)])
@pytest.mark.parametrize("K, R, N", [(101, 64, 1000), (5, 3, 7), (11, 37, 33), (9, 65, 1001), (3, 1, 5), (8, 130, 64),
                                     (2, 40, 70), (4, 33, 3), (1, 16, 9), (6, 96, 129)])
def test_c_weight_sums_match_numpy(dtype, floor, rtol, K, R, N):
    """Full register tiles and every edge (runs, samples and rows not multiples of the tile)."""
    from lexmargin.numeric import _fused
    P, B = random_operands(K, R, N, dtype)
    GT = np.full((K, R), np.nan, dtype)
    _fused.weight_sums(P, B, GT, floor)
    reference = B.astype(float) @ np.exp(np.maximum(P.T.astype(float) @ B.astype(float), floor)).T
    np.testing.assert_allclose(GT, reference, rtol=rtol * 10, atol=rtol * np.abs(reference).max())


@needs_c
def test_c_kernel_floors_propagates_nan_and_checks_its_arguments():
    from lexmargin.numeric import _fused
    B = np.ones((2, 40))
    P = np.zeros((2, 33))
    P[-1, 0], P[-1, 1], P[0, 2] = -1e4, -710.0, np.nan          # far below, just below the floor; NaN
    GT = np.zeros((2, 33))
    _fused.weight_sums(P, B, GT, -700.0)
    np.testing.assert_allclose(GT[-1, :2], 40 * np.exp(-700.0), rtol=1e-14)   # floored: no subnormal weights
    assert np.isnan(GT[:, 2]).all() and np.isfinite(np.delete(GT, 2, axis=1)).all()
    with pytest.raises(ValueError, match="one dtype"):
        _fused.weight_sums(np.zeros((3, 2)), np.zeros((4, 5)), np.zeros((3, 2)), 0.0)
    with pytest.raises(ValueError, match="one dtype"):
        _fused.weight_sums(np.zeros((3, 2), np.float32), np.zeros((3, 5)), np.zeros((3, 2)), 0.0)
    with pytest.raises(ValueError, match="contiguous"):
        _fused.weight_sums(np.zeros((2, 3)).T, np.zeros((3, 5)), np.zeros((3, 2)), 0.0)
    with pytest.raises(ValueError, match="2-D"):
        _fused.weight_sums(np.zeros(3), np.zeros((3, 5)), np.zeros((3, 2)), 0.0)
    with pytest.raises(ValueError, match="length 2"):
        _fused.advance(np.zeros((3, 2)), np.zeros((3, 5)), np.zeros((3, 2)), np.zeros(3), np.zeros(2), 0.0)
    with pytest.raises(ValueError, match="read-only"):
        P = np.zeros((3, 2))
        P.flags.writeable = False
        _fused.advance(P, np.zeros((3, 5)), np.zeros((3, 2)), np.zeros(2), np.zeros(2), 0.0)


@pytest.mark.parametrize("compiled", ["c", "numba"])
@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 1e-4)])
@pytest.mark.parametrize("runs", [1, 16, 45, 64])
def test_compiled_lane_matches_numpy_lane(dtype, rtol, runs, compiled):
    if not kernel_available(compiled):
        pytest.skip(f"the {compiled} kernel is not available here")
    kernel = LinearKernel(*separable(n=77, d=9), dtype=dtype)
    theta = kernel.random_theta(range(runs), np.geomspace(0.1, 10, runs))
    lanes = [LinearExpLane(slice(0, runs), theta, kernel.augmented_margin_matrix, kernel=k) for k in (compiled, "numpy")]
    assert lanes[0].kernel == compiled and lanes[0].compiled and not lanes[1].compiled
    multiplier = np.geomspace(0.01, 1.0, runs)
    for _ in range(50):
        for lane in lanes:
            lane.advance(multiplier)
    np.testing.assert_allclose(lanes[0].theta, lanes[1].theta, rtol=rtol)
    np.testing.assert_allclose(lanes[0].log_loss, lanes[1].log_loss, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(lanes[0].log_loss, exact_log_loss(kernel, lanes[0].theta.astype(float)),
                               rtol=rtol, atol=rtol)


@needs_c
def test_trainer_uses_the_c_kernel_where_it_pays_unless_told_not_to(monkeypatch):
    monkeypatch.setattr(fused_module, "_numba_module", False)            # as without numba installed
    assert not numba_available()
    kernel = LinearKernel(*separable())
    theta = kernel.random_theta(range(40), 1.0)
    kw = dict(rule=Normalized(0.1), n_steps=200, checkpoints=4)
    with_c = Trainer(kernel, theta, **kw)
    assert with_c.lanes[0].use_c and Trainer(kernel, theta[:1], **kw).lanes[0].use_c       # small: C wins
    big = LinearKernel(*separable(n=5000, d=10))                         # few runs on much data: numpy wins
    assert Trainer(big, big.random_theta(range(15), 1.0), **kw).fused_kernels == ["numpy"]
    generic = train(kernel, theta, fused=False, **kw)
    np.testing.assert_allclose(with_c.run().theta, generic.theta, rtol=1e-11)
    monkeypatch.setenv("LEXMARGIN_NUMPY_ONLY", "1")
    assert not c_kernel_available() and not Trainer(kernel, theta, **kw).lanes[0].use_c
    with pytest.raises(RuntimeError, match="not available"):
        LinearExpLane(slice(0, 40), theta, kernel.augmented_margin_matrix, use_c=True)


def test_kernel_choice_rules(monkeypatch):
    """C for many runs or tiny problems, numba for the rest, numpy without either (docs/architecture.md)."""
    f64, f32 = np.float64, np.float32
    for c, numba in [(True, True), (True, False), (False, True), (False, False)]:
        monkeypatch.setattr(fused_module, "c_kernel_available", lambda c=c: c)
        monkeypatch.setattr(fused_module, "numba_available", lambda numba=numba: numba)
        other = "numba" if numba else "numpy"
        assert choose_kernel(f64, 64, 101, 1000) == ("c" if c else other)          # many runs
        assert choose_kernel(f32, 16, 101, 1000) == other                         # float32: C from 32
        assert choose_kernel(f64, 1, 101, 1000) == other                          # few runs, much data
        assert choose_kernel(f64, 8, 3, 30) == ("c" if c else other)               # tiny: C
        assert choose_kernel(f64, 1, 3, 30) == ("c" if c else other)
    monkeypatch.setattr(fused_module, "c_kernel_available", lambda: True)
    monkeypatch.setattr(fused_module, "numba_available", lambda: True)
    # numba only where it wins back its start (about 1 s) over the steps to take, when they are known
    assert choose_kernel(f64, 1, 101, 1000, steps=10 ** 5) == "numba"
    assert choose_kernel(f64, 1, 101, 1000, steps=1000) == "numpy"
    assert choose_kernel(f64, 4, 3, 2000, steps=1000) == "c"                  # C beats numpy there
    monkeypatch.setenv("LEXMARGIN_FUSED_KERNEL", "numpy")
    assert choose_kernel(f64, 64, 101, 1000) == "numpy"
    monkeypatch.setenv("LEXMARGIN_FUSED_KERNEL", "no such kernel")             # ignored
    assert choose_kernel(f64, 64, 101, 1000) == "c"
    with pytest.raises(ValueError, match="kernel must be one of"):
        kernel_available("fortran")


@needs_c
@pytest.mark.skipif(not c_kernel_available() or not __import__("lexmargin.numeric._fused", fromlist=["openmp"]).openmp(),
                    reason="kernel built without OpenMP")
def test_threads_split_samples_deterministically_and_resume_exactly(tmp_path):
    kernel = LinearKernel(*separable(n=300, d=6))
    theta = kernel.random_theta(range(32), np.geomspace(0.01, 0.3, 32))
    kw = dict(rule=Constant(1e-3), n_steps=300, checkpoints=6)           # plain GD: the C loop's eta * L
    one = train(kernel, theta, **kw)
    two = train(kernel, theta, threads=2, **kw)
    np.testing.assert_allclose(two.theta, one.theta, rtol=1e-11)
    np.testing.assert_array_equal(train(kernel, theta, threads=2, **kw).theta, two.theta)
    part = Trainer(kernel, theta, threads=2, **kw).run(until=150)
    part.save(tmp_path / "t.npz")
    np.testing.assert_array_equal(Trainer.load(tmp_path / "t.npz", kernel, threads=2).run().theta, two.theta)
    with pytest.raises(ValueError, match="threads"):
        Trainer(kernel, theta, threads=0)
    from lexmargin.numeric import _fused
    with pytest.raises(ValueError, match="threads"):
        _fused.weight_sums(np.zeros((2, 3)), np.zeros((2, 5)), np.zeros((2, 3)), 0.0, 0)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("path", KERNELS)
@pytest.mark.parametrize("runs", [2, 20])
def test_a_diverged_fused_run_saves_nothing_and_cannot_go_on(tmp_path, runs, path, monkeypatch):
    from lexmargin.errors import LexmarginError
    from lexmargin.numeric import DivergenceError
    use_kernel(path, monkeypatch)
    kernel = LinearKernel(*separable())
    path = tmp_path / "d.npz"
    trainer = Trainer(kernel, kernel.random_theta(range(runs), 1.0), rule=Constant(1e3), n_steps=50,
                      checkpoints=[0, 50])
    with pytest.raises(DivergenceError, match="reduce the step size"):
        trainer.run(checkpoint_path=path)
    assert not path.exists()
    with pytest.raises(LexmarginError, match="mid-step"):
        trainer.run()
    with pytest.raises(DivergenceError, match="not finite"):        # nor an explicit save (reliability row 2)
        trainer.save(path)
    assert not path.exists()


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("path", KERNELS)
def test_an_overflow_at_a_record_is_not_saved_over_the_last_good_checkpoint(tmp_path, path, monkeypatch):
    """The fused loops check a run before stepping from it; a step that overflows right before a record used
    to be recorded and saved (then resuming raised ValueError).  Now the checkpoint of step 1 survives."""
    from lexmargin.numeric import DivergenceError
    use_kernel(path, monkeypatch)
    kernel = LinearKernel(*separable())
    theta = kernel.random_theta(range(2), 1.0)
    kw = dict(rule=Constant(100.0), n_steps=10, checkpoints=np.arange(11))
    path = tmp_path / "d.npz"
    with pytest.raises(DivergenceError, match="diverged"):
        train(kernel, theta, checkpoint_path=path, **kw)
    saved = Trainer.load(path, kernel)
    assert saved.step == 1 and saved.fused
    np.testing.assert_array_equal(saved.theta, Trainer(kernel, theta, **kw).run(until=1).theta)
