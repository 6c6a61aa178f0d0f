"""Trainer: batched runs, checkpoints, exact resume, history round trips, SGD and adaptive steps."""

import json

import numpy as np
import pytest
from resume_helpers import interrupted_then_resumed, separable

from lexmargin.numeric import (
    Adaptive,
    Constant,
    DivergenceError,
    History,
    LayeredNetKernel,
    LinearKernel,
    Normalized,
    Reference,
    Trainer,
    log_checkpoints,
    train,
)


def same_history(a: History, b: History):
    for name in ("steps", "log_loss", "norm", "min_margin", "normalized_margin", "eta", "direction", "theta"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


def test_log_checkpoints():
    steps = log_checkpoints(10**6, 30)
    assert steps[0] == 0 and steps[-1] == 10**6 and np.all(np.diff(steps) > 0)
    assert np.all(np.diff(np.log(steps[5:])) < 0.6)
    np.testing.assert_array_equal(log_checkpoints(3, 10), [0, 1, 2, 3])


def test_runs_are_independent_of_batching():
    """R runs at once give the same result as each run alone (different seeds, scales, step sizes)."""
    kernel = LayeredNetKernel(*separable(), hidden=(5,))
    theta = kernel.random_theta([0, 1, 2], [0.5, 1.0, 2.0])
    etas = (0.002, 0.005, 0.01)
    together = train(kernel, theta, rule=Constant(etas), n_steps=50, checkpoints=5)
    for r in range(3):
        alone = train(kernel, theta[r], rule=Constant(etas[r]), n_steps=50, checkpoints=5)
        np.testing.assert_allclose(together.theta[r], alone.theta[0], rtol=1e-12)
        np.testing.assert_allclose(together.log_loss[:, r], alone.log_loss[:, 0], rtol=1e-12)


@pytest.mark.parametrize("options", [
    dict(rule=Constant(0.01)),
    dict(rule=Adaptive(0.5, grow=1.5, shrink=0.5), loss="logistic"),
    dict(rule=Normalized(0.1), batch_size=7),
])
def test_resume_after_interruption_equals_uninterrupted_run(tmp_path, options):
    kernel = LayeredNetKernel(*separable(), hidden=(4,))
    theta = kernel.random_theta([0, 1], [1.0, 3.0])
    kw = dict(n_steps=300, checkpoints=12, seed=7, **options)
    same_history(train(kernel, theta, **kw), interrupted_then_resumed(kernel, theta, tmp_path / "run.npz", 100, **kw))


def test_resume_from_mid_interval_save(tmp_path):
    """A save between checkpoints (save_every) also resumes exactly, including the SGD RNG stream."""
    kernel = LinearKernel(*separable())
    theta = kernel.random_theta([0, 1, 2], 1.0)
    kw = dict(rule=Constant(0.02), n_steps=200, checkpoints=6, batch_size=5, seed=3)
    full = Trainer(kernel, theta, **kw).run()
    part = Trainer(kernel, theta, **kw).run(until=137)
    part.save(tmp_path / "s.npz")
    resumed = Trainer.load(tmp_path / "s.npz", kernel).run()
    same_history(full.history(), resumed.history())


def test_checkpoint_of_other_configuration_is_refused(tmp_path):
    kernel = LinearKernel(*separable())
    theta = kernel.random_theta([0], 1.0)
    path = tmp_path / "c.npz"
    train(kernel, theta, rule=Constant(0.1), n_steps=20, checkpoint_path=path)
    with pytest.raises(ValueError, match="different configuration.*rule"):
        train(kernel, theta, rule=Constant(0.2), n_steps=20, checkpoint_path=path)
    with pytest.raises(ValueError, match="theta0"):
        train(kernel, 2 * theta, rule=Constant(0.1), n_steps=20, checkpoint_path=path)


def test_history_round_trips(tmp_path):
    X, y = separable()
    kernel = LinearKernel(X, y)
    ref = Reference(np.arange(1.0, 4.0), 0.1)
    hist = train(kernel, kernel.random_theta([0, 1], 1.0), rule=Normalized(0.1), n_steps=50, reference=ref)
    assert hist.log_loss.shape == (len(hist.steps), 2) and hist.direction.shape == (len(hist.steps), 2, 3)
    assert np.all(np.isfinite(hist.angle)) and np.all(np.isfinite(hist.margin_ratio))
    for name in ("h.npz", "h.json"):
        back = History.load(hist.save(tmp_path / name))
        same_history(hist, back)
        np.testing.assert_array_equal(back.angle, hist.angle)
        assert back.meta["rule"] == hist.meta["rule"]
    json.dumps(hist.to_dict())
    json.loads((tmp_path / "h.json").read_text(), parse_constant=lambda name: pytest.fail(f"non-standard {name}"))
    with pytest.raises(ValueError, match="file type"):
        hist.save(tmp_path / "h.txt")


def test_history_is_frozen():
    kernel = LinearKernel(*separable())
    hist = train(kernel, kernel.random_theta([0], 1.0), n_steps=5)
    with pytest.raises(ValueError):
        hist.log_loss[0, 0] = 1.0
    with pytest.raises(AttributeError):
        hist.steps = None


def test_sgd_uses_minibatch_gradient():
    """With batch_size = N, SGD is exactly full-batch GD; with B < N it differs."""
    kernel = LinearKernel(*separable(n=10))
    theta = kernel.random_theta([0], 1.0)
    full = train(kernel, theta, rule=Constant(0.1), n_steps=20)
    same = train(kernel, theta, rule=Constant(0.1), n_steps=20, batch_size=10)
    small = train(kernel, theta, rule=Constant(0.1), n_steps=20, batch_size=3)
    np.testing.assert_allclose(same.theta, full.theta, rtol=1e-12)
    assert np.max(np.abs(small.theta - full.theta)) > 1e-4


def test_adaptive_never_increases_loss_and_adapts_step():
    kernel = LayeredNetKernel(*separable(), hidden=(4,))
    hist = train(kernel, kernel.random_theta([0, 1], 1.0), rule=Adaptive(1.0, grow=1.2, shrink=0.5),
                 n_steps=300, checkpoints=np.arange(301))
    assert np.all(np.diff(hist.log_loss, axis=0) <= 0)
    ratios = hist.eta[1:] / hist.eta[:-1]
    assert set(np.round(np.unique(ratios), 12)) == {0.5, 1.2}     # both successes and rejections
    rejected = ratios == 0.5
    np.testing.assert_array_equal(np.diff(hist.log_loss, axis=0)[rejected], 0.0)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_divergence_is_reported():
    kernel = LinearKernel(*separable())
    with pytest.raises(DivergenceError, match="reduce the step size"):
        train(kernel, kernel.random_theta([0], 1.0), rule=Constant(1e3), n_steps=10)


def test_bad_arguments():
    kernel = LinearKernel(*separable())
    theta = kernel.random_theta([0], 1.0)
    with pytest.raises(ValueError, match="batch_size"):
        train(kernel, theta, batch_size=0)
    with pytest.raises(ValueError, match="n_steps"):
        train(kernel, theta, n_steps=-1)
    with pytest.raises(ValueError, match="checkpoints"):
        train(kernel, theta, n_steps=5, checkpoints=[0, 9])
    with pytest.raises(ValueError, match="reference"):
        train(kernel, theta, n_steps=5, reference=Reference(np.ones(4), 1.0))
    with pytest.raises(ValueError, match="non-finite"):
        train(kernel, np.full((1, 3), np.nan), n_steps=5)
    with pytest.raises(ValueError, match="shape"):
        train(kernel, np.ones((2, 4)), n_steps=5)
    with pytest.raises(ValueError, match="step sizes for"):
        train(kernel, np.ones((2, 3)), rule=Constant((0.1, 0.2, 0.3)), n_steps=5)


def test_parallel_lanes_match_single_lane(tmp_path):
    kernel = LayeredNetKernel(*separable(), hidden=(4,))
    theta = kernel.random_theta([0, 1, 2], 1.0)
    kw = dict(rule=Adaptive(0.3), n_steps=60, checkpoints=5, batch_size=9, seed=2)
    one = train(kernel, theta, **kw)
    two = train(kernel, theta, workers=2, **kw)
    np.testing.assert_allclose(two.theta, one.theta, rtol=1e-10, atol=1e-12)
    part = Trainer(kernel, theta, workers=2, **kw).run(until=25)
    part.save(tmp_path / "p.npz")
    same_history(two, Trainer.load(tmp_path / "p.npz", kernel, workers=2).run().history())
    with pytest.raises(ValueError, match="workers"):
        Trainer(kernel, theta, workers=0)


def test_long_normalized_run_stays_finite_at_huge_margins():
    """Margins grow to ~1e4: L = e^{-1e4} underflows, log L and the steps do not."""
    X, y = separable()
    kernel = LinearKernel(X, y)
    hist = train(kernel, kernel.random_theta([0, 1], 1.0), rule=Normalized(400.0), n_steps=3000, checkpoints=8)
    assert hist.min_margin[-1].min() > 5e3 and np.all(hist.log_loss[-1] < -5e3)
    assert np.all(hist.loss[-1] == 0)                               # the plain loss underflowed ...
    assert np.all(np.isfinite(hist.log_loss)) and np.all(np.isfinite(hist.theta))   # ... log space did not
    assert np.all(np.diff(hist.normalized_margin[-3:], axis=0) > 0)


def test_ctrl_c_stops_at_a_step_boundary_and_resumes_exactly(tmp_path):
    """SIGINT during run() is turned into KeyboardInterrupt between steps; the saved state is exact."""
    import os
    import signal

    kernel = LinearKernel(*separable())
    theta = kernel.random_theta(range(20), 1.0)
    kw = dict(rule=Normalized(0.2), n_steps=600, checkpoints=12)
    # the trainer takes over SIGINT only from Python's default handler (a program's own handler wins); an earlier
    # test or library of the session may have left another one, so set the default for this test
    ambient = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        resumed = interrupted_then_resumed(kernel, theta, tmp_path / "sigint.npz", 100,
                                           interrupt=lambda trainer: os.kill(os.getpid(), signal.SIGINT), **kw)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler      # handler restored
    finally:
        signal.signal(signal.SIGINT, ambient)
    same_history(resumed, train(kernel, theta, **kw))
