"""The parts of the trainer (``lexmargin.numeric.training``) tested alone, without ``Trainer``: the recorder's
schedule and measurements, the checkpoint format and its typed errors, the steppers on a tiny linear kernel,
and the deferred interrupts."""

import os
import signal
from types import SimpleNamespace

import numpy as np
import pytest

from lexmargin.errors import DataError, FileInUseError
from lexmargin.numeric import Constant, LinearKernel, Normalized, get_loss
from lexmargin.numeric.history import SERIES
from lexmargin.numeric.training import CheckpointMismatchError, DivergenceError
from lexmargin.numeric.training.checkpoint import (
    FORMAT_VERSION,
    CheckpointLock,
    check_identity,
    checked_config,
    config_diff,
    data_fingerprint,
    model_fingerprint,
    read_checkpoint,
    restore_entries,
    state_entries,
    write_checkpoint,
)
from lexmargin.numeric.training.interrupts import DeferredInterrupts
from lexmargin.numeric.training.recorder import Recorder, checkpoint_schedule, measure
from lexmargin.numeric.training.state import Lane, TrainingState, split_rows
from lexmargin.numeric.training.steppers import CompiledStepper, FusedStepper, GenericStepper, sample_minibatches


def tiny_kernel(n=12, d=3, seed=0, shift=0.0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) + shift
    y = np.where(X @ np.arange(1.0, d + 1) > 0, 1.0, -1.0)
    return LinearKernel(X, y)


# ---- recorder ------------------------------------------------------------------------------------------------
class FakeKernel:
    """Normalized margins min_n f_n / ||theta|| (what a degree-1 kernel reports)."""

    degree = 1

    def normalized_margins(self, theta, f):
        return np.min(f, axis=1) / np.linalg.norm(theta, axis=1)


def fake_state(step=0):
    theta = np.array([[3.0, 4.0], [0.0, 2.0]])
    lane = SimpleNamespace(rows=slice(0, 2), theta=theta, f=np.array([[1.0, 2.0], [4.0, 3.0]]),
                           log_loss=np.array([-1.0, -2.0]))
    return SimpleNamespace(kernel=FakeKernel(), step=step, rule=Normalized(0.1), rule_state={"eta": np.array([0.1, 0.2])},
                           gather=lambda name: getattr(lane, name))


def test_checkpoint_schedule_counts_or_takes_the_steps():
    np.testing.assert_array_equal(checkpoint_schedule(3, 10), [0, 1, 2, 3])
    np.testing.assert_array_equal(checkpoint_schedule(10, [5, 0, 5, 10]), [0, 5, 10])
    for bad in ([], [-1, 3], [11]):
        with pytest.raises(ValueError, match="checkpoints must lie in"):
            checkpoint_schedule(10, bad)


def test_measure_on_a_fake_lane():
    state = fake_state(step=7)
    rec = measure(state.kernel, 7, state.gather("theta"), state.gather("f"), state.gather("log_loss"),
                  state.rule_state["eta"])
    assert rec["step"] == 7 and set(rec) == {"step", *SERIES}
    np.testing.assert_array_equal(rec["norm"], [5.0, 2.0])
    np.testing.assert_array_equal(rec["min_margin"], [1.0, 3.0])
    np.testing.assert_allclose(rec["normalized_margin"], [0.2, 1.5])
    np.testing.assert_allclose(rec["direction"], [[0.6, 0.8], [0.0, 1.0]])
    assert np.isnan(rec["angle"]).all() and np.isnan(rec["margin_ratio"]).all()    # no reference
    rec["eta"][0] = 9.0
    assert state.rule_state["eta"][0] == 0.1                                       # the record is a copy
    assert measure(state.kernel, 7, state.gather("theta"), state.gather("f"), state.gather("log_loss"),
                   state.rule_state["eta"], store_direction=False)["direction"].shape == (2, 0)


def test_recorder_records_on_schedule_and_round_trips_its_arrays():
    recorder = Recorder(checkpoint_schedule(10, [0, 4, 10]))
    assert recorder.next_checkpoint(0) == 4 and recorder.next_checkpoint(4) == 10 and recorder.next_checkpoint(10) is None
    taken = [recorder.record_if_due(fake_state(step)) for step in range(11)]
    assert [s for s, t in enumerate(taken) if t] == [0, 4, 10] and recorder.last_step() == 10
    arrays = recorder.arrays()
    np.testing.assert_array_equal(arrays["rec_step"], [0, 4, 10])
    again = Recorder.records_from(arrays)
    for a, b in zip(recorder.records, again):
        assert a["step"] == b["step"]
        for name in SERIES:
            np.testing.assert_array_equal(a[name], b[name])
    history = recorder.history(fake_state().gather("theta"), {"completed_steps": 10})
    np.testing.assert_array_equal(history.steps, [0, 4, 10])
    assert history.log_loss.shape == (3, 2)


# ---- checkpoint -----------------------------------------------------------------------------------------------
def config_for(kernel, **changes):
    config = {"format": FORMAT_VERSION, "kernel": kernel.describe(), "loss": {"name": "exp"},
              "rule": {"name": "constant", "eta": [0.1]}, "n_steps": 10, "checkpoints": [0, 10], "batch_size": None,
              "path_sgd": False, "seed": 0, "runs": 1, "theta0_sha1": "0" * 40, "store_direction": True,
              "fused": False, "data_sha256": data_fingerprint(kernel), "model_sha256": model_fingerprint(kernel)}
    return {**config, **changes}


def test_checkpoint_round_trip_and_identity(tmp_path):
    kernel = tiny_kernel()
    meta = {"config": config_for(kernel), "rng": {"state": 1}, "reference": None}
    arrays = {"theta": np.ones((1, 3)), "step": np.array(3, dtype=np.int64), "rec_step": np.zeros(0, np.int64)}
    path = write_checkpoint(tmp_path / "c.npz", arrays, meta)
    d, meta_read, config = read_checkpoint(path, kernel)
    np.testing.assert_array_equal(d["theta"], arrays["theta"])
    assert int(d["step"]) == 3 and meta_read == meta and config == meta["config"]
    with pytest.raises(CheckpointMismatchError, match="other data"):
        read_checkpoint(path, tiny_kernel(shift=1.0))             # same shapes, other X
    with pytest.raises(CheckpointMismatchError, match="kernel"):
        check_identity(meta["config"], tiny_kernel(d=4), path)
    with pytest.raises(FileNotFoundError):
        read_checkpoint(tmp_path / "missing.npz", kernel)
    (tmp_path / "junk.npz").write_bytes(b"not a checkpoint")
    with pytest.raises(DataError):
        read_checkpoint(tmp_path / "junk.npz", kernel)


def test_state_entries_round_trip_and_corruptions_are_data_errors():
    kernel = tiny_kernel()
    state = stepping_state(kernel, kernel.random_theta([0, 1], 1.0), Normalized(0.2), lanes=2)
    recorder = Recorder(checkpoint_schedule(5, [0, 2, 5]))
    for _ in range(3):
        recorder.record_if_due(state)
        GenericStepper(state).advance(1)
    arrays = state_entries(state, recorder, incremental=False)
    meta = {"rng": state.rng.bit_generator.state}
    kw = {"kernel": kernel, "runs": 2, "n_steps": 5, "schedule": recorder.schedule,
          "rule_template": Normalized(0.2).init(2), "saved_fused": False, "fused": False, "store_direction": True,
          "incremental": False}
    got = restore_entries(arrays, meta, "c.npz", **kw)
    assert got.step == 3 and got.shift is None and got.margins is None and len(got.records) == 2
    np.testing.assert_array_equal(got.theta, state.gather("theta"))
    np.testing.assert_array_equal(got.rule_state["eta"], state.rule_state["eta"])
    assert got.rng.bit_generator.state == state.rng.bit_generator.state
    for change, match in [({"step": np.array(9)}, "outside"), ({"theta": np.full((2, 3), np.nan)}, "non-finite"),
                          ({"rule_eta": np.ones(3)}, "step-rule state"), ({"extra": np.ones(1)}, "unexpected entries"),
                          ({"rec_step": np.array([0, 1])}, "not checkpoints reached")]:
        with pytest.raises(DataError, match=match):
            restore_entries({**arrays, **change}, meta, "c.npz", **kw)
    missing = {k: v for k, v in arrays.items() if k != "rec_norm"}
    with pytest.raises(DataError, match="'norm' is missing"):
        restore_entries(missing, meta, "c.npz", **kw)


@pytest.mark.parametrize("meta, match", [
    ({"config": {"format": 1}, "rng": {}, "reference": None}, "format 1"),
    ({"config": {"format": 99}, "rng": {}, "reference": None}, "unsupported checkpoint format"),
    ({"config": {}}, "lacks config"),
    ("not a mapping", "lacks config"),
])
def test_config_validation_errors_are_data_errors(meta, match):
    with pytest.raises(DataError, match=match) as caught:
        checked_config(meta, "c.npz")
    assert not isinstance(caught.value, CheckpointMismatchError)


@pytest.mark.parametrize("key, value", [("n_steps", 1.5), ("path_sgd", 1), ("seed", True), ("checkpoints", None)])
def test_config_entries_are_type_checked(key, value):
    kernel = tiny_kernel()
    meta = {"config": config_for(kernel, **{key: value}), "rng": {}, "reference": None}
    with pytest.raises(DataError, match=f"config entry '{key}'"):
        checked_config(meta, "c.npz")
    assert checked_config({**meta, "config": config_for(kernel)}, "c.npz")["n_steps"] == 10


def test_config_diff_ignores_the_implementation():
    kernel = tiny_kernel()
    assert config_diff(config_for(kernel), config_for(kernel, fused=True)) == []
    assert config_diff(config_for(kernel), config_for(kernel, seed=1, n_steps=5)) == ["n_steps", "seed"]


def test_checkpoint_lock_is_reentrant_for_its_holder_only(tmp_path):
    path = tmp_path / "c.npz"
    lock, other = CheckpointLock(), CheckpointLock()
    with lock.writing(path) as held:
        assert held == path.resolve() and lock.held == held
        with lock.writing(path):                  # the holder again: no second lock
            pass
        with pytest.raises(FileInUseError), other.writing(path):
            pass
    assert lock.held is None
    with lock.writing(None) as nothing:
        assert nothing is None


# ---- steppers -------------------------------------------------------------------------------------------------
def stepping_state(kernel, theta, rule, lanes=1, fused=False):
    state = TrainingState(kernel, loss=get_loss("exp"), rule=rule, rule_state=rule.init(theta.shape[0]),
                          rng=np.random.default_rng(0), fused=fused)
    rows = split_rows(theta.shape[0], lanes)
    if fused:
        state.lanes = [kernel.fused_lane(r, theta[r].copy(), kernel="numpy") for r in rows]
    else:
        state.lanes = [Lane(r, np.ascontiguousarray(theta[r])) for r in rows]
        for lane in state.lanes:
            state.refresh(lane)
    return state


def test_generic_stepper_takes_normalized_gradient_steps():
    """One step is theta - eta grad log L, with grad log L = -A softmax(-f) for f = theta A (exp loss)."""
    kernel = tiny_kernel()
    theta = kernel.random_theta([0, 1, 2], 1.0)
    A = (kernel.data.y[:, None] * kernel.data.X).T
    state = stepping_state(kernel, theta, Normalized(0.3), lanes=2)
    stepper = GenericStepper(state)
    assert stepper.max_chunk == 1
    expected = theta.copy()
    for step in range(1, 4):
        stepper.advance(1)
        f = expected @ A
        w = np.exp(-(f - f.min(axis=1, keepdims=True)))
        expected = expected + 0.3 * (w / w.sum(axis=1, keepdims=True)) @ A.T
        assert state.step == step
        np.testing.assert_allclose(state.gather("theta"), expected, rtol=1e-12)
    stepper.check_chunk()                          # nothing to check on the generic path


@pytest.mark.parametrize("stepper_class", [FusedStepper, CompiledStepper])
def test_fused_steppers_agree_with_the_generic_one(stepper_class):
    kernel = tiny_kernel()
    theta = kernel.random_theta([0, 1], 1.0)
    generic = stepping_state(kernel, theta, Normalized(0.2))
    fused = stepping_state(kernel, theta, Normalized(0.2), fused=True)
    for _ in range(8):
        GenericStepper(generic).advance(1)
    stepper = stepper_class(fused, max_chunk=8)
    stepper.advance(8)
    stepper.check_chunk()
    assert fused.step == generic.step == 8
    np.testing.assert_allclose(fused.gather("theta"), generic.gather("theta"), rtol=1e-10)


def test_generic_stepper_raises_divergence_before_adopting():
    kernel = tiny_kernel()
    state = stepping_state(kernel, kernel.random_theta([0], 1.0), Constant(1e3))
    stepper = GenericStepper(state)
    with pytest.raises(DivergenceError, match="reduce the step size") as caught:
        for _ in range(20):
            stepper.advance(1)
    assert f"diverged at step {state.step + 1}" in str(caught.value)
    assert np.isfinite(state.gather("theta")).all() and np.isfinite(state.gather("log_loss")).all()
    assert not state.unsaveable and state.nonfinite_runs().size == 0     # the last good step: saveable


def test_minibatches_are_without_replacement_and_whole_samples():
    rng = np.random.default_rng(3)
    idx = sample_minibatches(rng, 4, 10, 3)
    assert idx.shape == (4, 3) and all(len(set(row)) == 3 for row in idx.tolist())
    grouped = sample_minibatches(np.random.default_rng(3), 2, 12, 2, rows_per_sample=3)
    assert grouped.shape == (2, 6)
    for row in grouped.reshape(2, 2, 3):
        assert all((r == r[0] + np.arange(3)).all() and r[0] % 3 == 0 for r in row)


# ---- interrupts -----------------------------------------------------------------------------------------------
def test_interrupt_is_deferred_to_the_next_boundary():
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        pytest.skip("SIGINT has an application handler here")
    interrupts, seconds = DeferredInterrupts(), []
    with interrupts.deferring(on_second=lambda: seconds.append(True)):
        os.kill(os.getpid(), signal.SIGINT)       # delivered to the main thread, deferred
        assert interrupts.requested
        with pytest.raises(KeyboardInterrupt):
            interrupts.raise_if_requested()
        assert not interrupts.requested
        interrupts.raise_if_requested()           # nothing pending: no exception
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler and not seconds


def test_sigterm_is_deferred_to_the_next_boundary_as_an_exit_143():
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        pytest.skip("SIGTERM has an application handler here")
    interrupts, seconds = DeferredInterrupts(), []
    with interrupts.deferring(on_second=lambda: seconds.append(True)):
        os.kill(os.getpid(), signal.SIGTERM)      # recorded: the process is not terminated
        assert interrupts.requested == signal.SIGTERM
        with pytest.raises(SystemExit) as stop:
            interrupts.raise_if_requested()
        assert stop.value.code == 143 and interrupts.requested is None
        interrupts.raise_if_requested()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL and not seconds


def test_an_application_handler_is_left_alone():
    seen = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))
    try:
        interrupts = DeferredInterrupts()
        with interrupts.deferring():
            os.kill(os.getpid(), signal.SIGTERM)
            assert interrupts.requested is None
        assert seen == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, previous)
