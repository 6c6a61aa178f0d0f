"""The fused exponential-loss path for linear kernels agrees with the generic path and resumes exactly."""

import numpy as np
import pytest

from lexmargin.numeric import Adaptive, Constant, LinearKernel, Normalized, Trainer, logsumexp, train
from lexmargin.numeric.fused import LinearExpLane, safe_log_sum_range


def separable(n=60, d=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = np.where(X @ np.arange(1.0, d + 1) > 0, 1.0, -1.0)
    return X, y


def exact_log_loss(kernel, theta):
    return logsumexp(-kernel.margins(theta))


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-11), (np.float32, 2e-4)])
@pytest.mark.parametrize("rule, scales", [(Constant(0.01), (0.1, 0.3, 1.0)), (Normalized((0.02, 0.1, 0.3)), (0.1, 1.0, 10.0))])
def test_fused_path_matches_generic_path(dtype, rtol, rule, scales):
    kernel = LinearKernel(*separable(), dtype=dtype)
    theta = kernel.random_theta([0, 1, 2], scales)
    kw = dict(rule=rule, n_steps=400, checkpoints=9)
    fused, generic = Trainer(kernel, theta, **kw), Trainer(kernel, theta, fused=False, **kw)
    assert fused.fused and not generic.fused and isinstance(fused.lanes[0], LinearExpLane)
    a, b = fused.run().history(), generic.run().history()
    for name in ("theta", "log_loss", "min_margin", "normalized_margin", "direction"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=rtol, atol=rtol, err_msg=name)
    assert a.meta["fused"] is True and b.meta["fused"] is False
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


@pytest.mark.parametrize("workers", [1, 2])
def test_fused_resume_is_bit_identical(tmp_path, workers):
    kernel = LinearKernel(*separable())
    theta = kernel.random_theta([0, 1, 2, 3], [0.5, 1.0, 2.0, 4.0])
    kw = dict(rule=Normalized(0.3), n_steps=700, checkpoints=10, workers=workers)
    full = train(kernel, theta, **kw)
    part = Trainer(kernel, theta, **kw).run(until=333)
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


def test_interrupt_between_chunks_saves_a_consistent_state(tmp_path):
    kernel = LinearKernel(*separable())
    theta = kernel.random_theta(range(4), 1.0)
    kw = dict(rule=Normalized(0.2), n_steps=1000, checkpoints=20, workers=2)
    full = train(kernel, theta, **kw)
    path = tmp_path / "i.npz"

    def interrupt(trainer):
        if trainer.step >= 300:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(kernel, theta, checkpoint_path=path, callback=interrupt, **kw)
    resumed = train(kernel, theta, checkpoint_path=path, **kw)
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
