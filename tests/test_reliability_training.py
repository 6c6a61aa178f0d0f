"""Training files never give a silent wrong answer and never lose work (issue "Reliability", rows 1-4, 8, 10).

Checkpoints: a hash of the data and model (row 1), no non-finite state saved on either GD path (row 2), one
writer at a time (row 3), every damaged or foreign file a DataError (row 4, also property-based), the step and
shapes validated and stale temporaries removed (row 10), SIGKILL at random points of the saves on every path
followed by a bit-identical resume.  Histories: strict JSON (row 8) and the same loader guarantees.
"""

import json
import os
import signal
import subprocess
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from resume_helpers import FAULT_PATHS, HookedOs, Killer, child_command, fault_env, fault_problem, separable

from lexmargin import fileio
from lexmargin.errors import DataError
from lexmargin.fileio import FileInUseError, exclusive_writer
from lexmargin.numeric import (
    CheckpointMismatchError,
    Constant,
    DivergenceError,
    History,
    LayeredNetKernel,
    LinearKernel,
    Normalized,
    Trainer,
    train,
)
from lexmargin.numeric.fused import kernel_available

SERIES_NAMES = ("steps", "log_loss", "norm", "min_margin", "normalized_margin", "eta", "angle", "margin_ratio",
                "direction", "theta")


def same_history(a: History, b: History):
    for name in SERIES_NAMES:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


def path_options(kind, monkeypatch) -> dict:
    """Train options (and environment) for one GD path: "c", "numba", "numpy" (the fused path's kernels),
    "generic"."""
    if kind in ("c", "numba") and not kernel_available(kind):
        pytest.skip(f"the {kind} kernel is not available here")
    for name, value in fault_env(kind).items():
        monkeypatch.setenv(name, value)
    return {"fused": kind != "generic"}


def check_path(trainer, kind):
    assert trainer.fused == (kind != "generic")
    if trainer.fused:
        assert trainer.fused_kernels == [kind] * len(trainer.lanes)


def temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def rewrite(path: Path, **changes):
    """Rewrite the .npz at ``path`` with some arrays replaced (None: removed)."""
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    for key, value in changes.items():
        if value is None:
            arrays.pop(key)
        else:
            arrays[key] = value
    np.savez(path, **arrays)


def rewrite_meta(path: Path, edit):
    with np.load(path) as f:
        meta = json.loads(str(f["meta"]))
    edit(meta)
    rewrite(path, meta=np.array(json.dumps(meta)))


def no_pickle_advice(error):
    assert "allow_pickle" not in str(error.value)


# ---- row 1: a checkpoint belongs to its data and model ----------------------------------------------------------
def test_resume_with_changed_data_of_the_same_shape_is_refused(tmp_path):
    X, y = separable()
    kernel = LinearKernel(X, y)
    theta = kernel.random_theta([0, 1], 1.0)
    kw = {"rule": Normalized(0.1), "n_steps": 60, "checkpoints": 6}
    path = tmp_path / "c.npz"
    Trainer(kernel, theta, **kw).run(until=30).save(path)
    before = path.read_bytes()
    X2 = X.copy()
    X2[3, 1] += 1e-9                                   # a tiny change of one feature
    y2 = y.copy()
    y2[:2] *= -1                                       # or of two labels
    for changed in (LinearKernel(X2, y), LinearKernel(X, y2)):
        with pytest.raises(CheckpointMismatchError, match="data changed") as info:
            train(changed, theta, checkpoint_path=path, **kw)
        assert str(path) in str(info.value)
        with pytest.raises(CheckpointMismatchError, match="data changed"):
            Trainer.load(path, changed)
        with pytest.raises(ValueError, match="data changed"):      # still a ValueError, as before
            train(changed, theta, checkpoint_path=path, **kw)
    assert path.read_bytes() == before                 # the refused checkpoint is left alone
    same_history(train(kernel, theta, checkpoint_path=path, **kw), train(kernel, theta, **kw))


def test_resume_with_another_model_structure_is_refused(tmp_path):
    X, y = separable()
    kernel = LayeredNetKernel(X, y, hidden=(3,), activation="leaky_relu", slope=0.1)
    theta = kernel.random_theta([0], 1.0)
    path = tmp_path / "m.npz"
    kw = {"rule": Normalized(0.05), "n_steps": 20, "checkpoints": 3}
    Trainer(kernel, theta, **kw).run(until=10).save(path)
    other = LayeredNetKernel(X, y, hidden=(3,), activation="leaky_relu", slope=0.2)   # describe() is the same
    with pytest.raises(CheckpointMismatchError, match="model structure"):
        train(other, theta, checkpoint_path=path, **kw)
    with pytest.raises(CheckpointMismatchError, match="written for kernel"):
        Trainer.load(path, LayeredNetKernel(X, y, hidden=(4,)))


def test_a_checkpoint_of_the_older_format_is_refused_clearly(tmp_path):
    kernel = LinearKernel(*separable())
    path = tmp_path / "old.npz"
    Trainer(kernel, kernel.random_theta([0], 1.0), n_steps=10).save(path)

    def as_format_1(meta):
        meta["config"]["format"] = 1
        del meta["config"]["data_sha256"], meta["config"]["model_sha256"]

    rewrite_meta(path, as_format_1)
    with pytest.raises(DataError, match="format 1.*no hash of its data"):
        Trainer.load(path, kernel)


# ---- row 2: a diverging run never overwrites its last good checkpoint ----------------------------------------------
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("kind, workers", [("c", 1), ("c", 2), ("numba", 1), ("numba", 2), ("numpy", 1), ("generic", 1),
                                           ("generic", 2)])
def test_divergence_keeps_the_last_good_checkpoint(tmp_path, monkeypatch, kind, workers):
    """Run 3 overflows at step 2; every step is recorded and saved.  The fused paths used to save the
    overflowed state (and generic lanes in parallel a mix of two steps); now the checkpoint on disk is the
    exact state of an earlier step, which loads and goes on."""
    kernel = LinearKernel(*separable(n=60, d=4))
    theta = kernel.random_theta(range(4), 1.0)
    kw = {"rule": Constant((0.01, 0.01, 0.01, 100.0)), "n_steps": 30, "checkpoints": np.arange(31),
          "workers": workers, **path_options(kind, monkeypatch)}
    check_path(Trainer(kernel, theta, **kw), kind)
    path = tmp_path / "d.npz"
    with pytest.raises(DivergenceError, match=r"runs \[3\] diverged"):
        train(kernel, theta, checkpoint_path=path, **kw)
    saved = Trainer.load(path, kernel, workers=workers)
    assert 1 <= saved.step < 30 and np.isfinite(saved.theta).all()
    reference = Trainer(kernel, theta, **kw).run(until=saved.step)
    np.testing.assert_array_equal(saved.theta, reference.theta)
    same_history(saved.history(), reference.history())
    # it resumes (the same configuration diverges again, deterministically) and still survives
    with pytest.raises(DivergenceError):
        train(kernel, theta, checkpoint_path=path, **kw)
    assert Trainer.load(path, kernel).step == saved.step
    # a diverged trainer's state is never written, not even by an explicit save
    trainer = Trainer(kernel, theta, **kw)
    with pytest.raises(DivergenceError):
        trainer.run()
    if trainer.fused:
        before = path.read_bytes()
        with pytest.raises(DivergenceError, match="not finite"):
            trainer.save(path)
        assert path.read_bytes() == before


# ---- row 3: one writer per checkpoint ---------------------------------------------------------------------------
def wait_for(path: Path, proc, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"child exited with {proc.returncode}: {proc.stderr.read().decode()[-2000:]}")
        assert time.monotonic() < deadline, "child did not get ready"
        time.sleep(0.01)


def test_a_second_writer_process_fails_at_start_and_the_first_finishes(tmp_path):
    kernel, theta, kw = fault_problem("generic")
    path = tmp_path / "shared.npz"
    first = subprocess.Popen(child_command({"kind": "generic", "mode": "hold", "path": str(path)}),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(tmp_path / "ready", first)              # it saved its first record and holds the lock
        before = path.read_bytes()
        calls = []
        with pytest.raises(FileInUseError, match="being written by another process"):
            train(kernel, theta, checkpoint_path=path, callback=calls.append, **kw)
        trainer = Trainer(kernel, theta, **kw)
        with pytest.raises(FileInUseError):
            trainer.run(checkpoint_path=path)
        with pytest.raises(FileInUseError):
            trainer.save(path)
        assert calls == [] and trainer.step == 0         # refused before any step
        assert path.read_bytes() == before
        assert isinstance(FileInUseError("x"), OSError)
    finally:
        (tmp_path / "go").touch()
        assert first.wait(60) == 0, first.stderr.read().decode()[-2000:]
    finished = Trainer.load(path, kernel)
    assert finished.step == kw["n_steps"]
    same_history(train(kernel, theta, checkpoint_path=path, **kw), train(kernel, theta, **kw))


@pytest.mark.parametrize("kind", ["generic", "sgd", "numpy"])
def test_sigterm_saves_at_a_step_boundary_exits_143_and_resumes_exactly(tmp_path, kind, monkeypatch):
    """A scheduler's SIGTERM (SLURM, Kubernetes, ``kill``) is deferred like Ctrl-C: the run stops at the next step
    boundary, saves an exact checkpoint and exits with 143 (128 + SIGTERM); a resumed run ends bit-identical."""
    for name in ("LEXMARGIN_NUMPY_ONLY", "LEXMARGIN_FUSED_KERNEL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in fault_env(kind).items():
        monkeypatch.setenv(name, value)                  # the child and this process take the same path
    kernel, theta, kw = fault_problem(kind)
    path = tmp_path / "term.npz"
    child = subprocess.Popen(child_command({"kind": kind, "mode": "hold", "path": str(path)}),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(tmp_path / "ready", child)              # at its first record, inside the training loop
        child.send_signal(signal.SIGTERM)                # recorded, not acted on: the child keeps waiting
        time.sleep(0.2)
        assert child.poll() is None
    finally:
        (tmp_path / "go").touch()
    assert child.wait(60) == 128 + signal.SIGTERM, child.stderr.read().decode()[-2000:]
    saved = Trainer.load(path, kernel)
    assert 0 < saved.step < kw["n_steps"]                # stopped at the boundary after its first record
    same_history(train(kernel, theta, checkpoint_path=path, **kw), train(kernel, theta, **kw))


def test_a_second_writer_in_the_same_process_fails_at_start(tmp_path):
    kernel = LinearKernel(*separable())
    theta = kernel.random_theta([0, 1], 1.0)
    kw = {"rule": Normalized(0.1), "n_steps": 40, "checkpoints": 4}
    path = tmp_path / "c.npz"
    seen = []

    def second_writer(trainer):
        other = Trainer(kernel, theta, **kw)
        with pytest.raises(FileInUseError, match="in this process"):
            other.run(checkpoint_path=path)
        with pytest.raises(FileInUseError):
            train(kernel, theta, checkpoint_path=path, **kw)
        seen.append((trainer.step, other.step))

    hist = train(kernel, theta, checkpoint_path=path, callback=second_writer, **kw)
    assert seen and all(other == 0 for _, other in seen)
    same_history(hist, train(kernel, theta, **kw))
    assert Trainer.load(path, kernel).step == 40


def test_the_lock_is_taken_before_the_checkpoint_is_read(tmp_path):
    kernel = LinearKernel(*separable())
    path = tmp_path / "c.npz"
    path.write_bytes(b"not a checkpoint")
    with exclusive_writer(path, "checkpoint"), pytest.raises(FileInUseError):
        train(kernel, kernel.random_theta([0], 1.0), n_steps=5, checkpoint_path=path)
    with pytest.raises(DataError):                     # free again: now it is read (and refused)
        train(kernel, kernel.random_theta([0], 1.0), n_steps=5, checkpoint_path=path)
    assert path.read_bytes() == b"not a checkpoint"


# ---- SIGKILL at random points of the saves, on every path; resume is bit-identical -----------------------------------
def count_save_events(kind, tmp_path, monkeypatch, save_every) -> int:
    kernel, theta, kw = fault_problem(kind)
    killer = Killer(0)
    monkeypatch.setattr(fileio, "os", HookedOs(killer))
    train(kernel, theta, checkpoint_path=tmp_path / f"count-{kind}.npz", save_every=save_every, **kw)
    monkeypatch.setattr(fileio, "os", os)
    return killer.count


def test_sigkill_during_saves_then_resume_is_bit_identical(tmp_path, monkeypatch):
    """Each path (fused: C, numba and numpy kernels; generic GD; SGD on a net) is killed twice at a random file
    operation of its saves (a write of the temporary, after half of its data; an fsync; before or after the
    rename).  The checkpoint left is absent or valid, and resuming it gives the uninterrupted run exactly."""
    rng = np.random.default_rng(20261201)
    kinds = [k for k in FAULT_PATHS if k not in ("c", "numba") or kernel_available(k)]
    save_every = 20
    children = []
    switches = ("LEXMARGIN_NUMPY_ONLY", "LEXMARGIN_FUSED_KERNEL")
    for kind in kinds:
        env = {k: v for k, v in os.environ.items() if k not in switches} | fault_env(kind)
        for name, value in fault_env(kind).items():
            monkeypatch.setenv(name, value)
        events = count_save_events(kind, tmp_path, monkeypatch, save_every)
        for name in switches:
            monkeypatch.delenv(name, raising=False)
        for trial, kill_at in enumerate(rng.integers(1, events + 1, size=2)):
            folder = tmp_path / f"{kind}-{trial}"
            folder.mkdir()
            spec = {"kind": kind, "mode": "kill", "path": str(folder / "run.npz"), "kill_at": int(kill_at),
                    "save_every": save_every}
            children.append((kind, folder, int(kill_at), events,
                             subprocess.Popen(child_command(spec), env=env, stderr=subprocess.PIPE)))
    for kind, folder, kill_at, events, proc in children:
        assert proc.wait(120) == -signal.SIGKILL, (kind, kill_at, proc.stderr.read().decode()[-2000:])
        for name, value in fault_env(kind).items():
            monkeypatch.setenv(name, value)
        kernel, theta, kw = fault_problem(kind)
        check_path(Trainer(kernel, theta, **kw), "generic" if kind == "sgd" else kind)
        path = folder / "run.npz"
        if path.exists():                              # killed after the first save: a valid checkpoint
            assert Trainer.load(path, kernel).step <= kw["n_steps"]
        resumed = train(kernel, theta, checkpoint_path=path, save_every=save_every, **kw)
        same_history(resumed, train(kernel, theta, **kw))
        assert temporaries(folder) == [], (kind, kill_at, events)       # the next save removed them
        for name in switches:
            monkeypatch.delenv(name, raising=False)


# ---- row 4: every damaged or foreign file is a DataError ------------------------------------------------------------
@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A valid checkpoint, History (.npz, .json) and data file, and the kernel they belong to."""
    folder = tmp_path_factory.mktemp("valid")
    kernel = LinearKernel(*separable())
    trainer = Trainer(kernel, kernel.random_theta([0, 1], 1.0), rule=Normalized(0.1), n_steps=30, checkpoints=4)
    trainer.run(checkpoint_path=folder / "c.npz")
    hist = trainer.history()
    X, y = separable()
    np.savez(folder / "data.npz", X=X, y=y)
    return {"kernel": kernel, "checkpoint": folder / "c.npz", "history_npz": hist.save(folder / "h.npz"),
            "history_json": hist.save(folder / "h.json"), "data": folder / "data.npz", "history": hist}


def damaged(valid: bytes) -> dict:
    flipped = bytearray(valid)
    flipped[len(valid) // 2] ^= 0x10
    return {"empty": b"", "truncated": valid[: len(valid) // 2], "last byte cut": valid[:-1],
            "random": np.random.default_rng(0).bytes(800), "bit flip": bytes(flipped),
            "text": b"theta = [1, 2, 3]\n", "zip magic only": b"PK\x03\x04" + b"\0" * 30}


def checkpoint_loaders(kernel):
    return {
        "Trainer.load": lambda p: Trainer.load(p, kernel),
        "train": lambda p: train(kernel, kernel.random_theta([0, 1], 1.0), rule=Normalized(0.1), n_steps=30,
                                 checkpoints=4, checkpoint_path=p),
    }


@pytest.mark.parametrize("loader", ["Trainer.load", "train", "History.load npz", "History.load json"])
def test_damaged_files_raise_data_error(tmp_path, files, loader):
    source = files["history_json" if loader.endswith("json") else "history_npz" if "History" in loader
                   else "checkpoint"]
    load = History.load if "History" in loader else checkpoint_loaders(files["kernel"])[loader]
    for name, content in damaged(source.read_bytes()).items():
        path = tmp_path / f"{name.replace(' ', '_')}{source.suffix}"
        path.write_bytes(content)
        with pytest.raises(DataError, match="corrupt or not a lexmargin") as info:
            load(path)
        no_pickle_advice(info)
        assert str(path) in str(info.value), name
        assert path.read_bytes() == content          # a refused file is left as it was


def test_foreign_files_raise_data_error(tmp_path, files):
    kernel = files["kernel"]
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, meta=np.array([{"config": 1}], dtype=object), theta=np.zeros((2, 3)))
    cases = [
        (lambda p: Trainer.load(p, kernel), files["data"]),          # a data file used as a checkpoint
        (lambda p: Trainer.load(p, kernel), files["history_npz"]),
        (lambda p: Trainer.load(p, kernel), pickled),
        (History.load, files["checkpoint"]),
        (History.load, files["data"]),
        (History.load, pickled),
    ]
    for load, path in cases:
        with pytest.raises(DataError, match="corrupt or not a lexmargin") as info:
            load(path)
        no_pickle_advice(info)
    not_json = tmp_path / "h.json"
    for text in ("[1, 2]", '{"steps": [0]}', "NaN", json.dumps({**files["history"].to_dict(), "steps": "x"}, default=str)):
        not_json.write_text(text)
        with pytest.raises(DataError):
            History.load(not_json)
    with pytest.raises(FileNotFoundError):
        Trainer.load(tmp_path / "missing.npz", kernel)
    with pytest.raises(FileNotFoundError):
        History.load(tmp_path / "missing.json")


# ---- row 10 (and row 4's KeyError): the contents are validated ---------------------------------------------------------
@pytest.mark.parametrize("change, reason", [
    ({"step": np.array(31)}, "outside"),                        # beyond n_steps = 30
    ({"step": np.array(-1)}, "outside"),
    ({"step": np.array(3.0)}, "step has"),
    ({"step": None}, "missing"),
    ({"theta": np.zeros((3, 3))}, "theta has shape"),            # rows are not the runs
    ({"theta": np.full((2, 3), np.nan)}, "non-finite"),
    ({"rec_norm": np.zeros((1, 2))}, "record 'norm'"),           # the records' lengths differ
    ({"rec_step": np.array([0, 1, 2, 3, 4, 5][::-1])}, "recorded steps"),
    ({"rule_eta": np.ones(3)}, "step-rule state"),
    ({"shift": None}, "shift"),
    ({"extra": np.zeros(2)}, "unexpected entries"),
    ({"meta": np.array("{}")}, "meta entry lacks"),
    ({"meta": np.array("[1, 2]")}, "meta entry lacks"),
    ({"meta": np.array(5.0)}, "meta is not a text"),
])
def test_inconsistent_checkpoints_raise_data_error(tmp_path, files, change, reason):
    path = tmp_path / "c.npz"
    path.write_bytes(files["checkpoint"].read_bytes())
    rewrite(path, **change)
    with pytest.raises(DataError, match=reason):
        Trainer.load(path, files["kernel"])


@pytest.mark.parametrize("edit, reason", [
    (lambda m: m.pop("rng"), "lacks"),
    (lambda m: m["config"].pop("runs"), "'runs'"),
    (lambda m: m["config"].update(n_steps="30"), "'n_steps'"),
    (lambda m: m["config"].update(fused=1), "'fused'"),
    (lambda m: m["config"].update(format=99), "format 99"),
    (lambda m: m["config"].update(checkpoints=[0, 40]), "schedule"),
    (lambda m: m["config"]["rule"].update(rule="nope"), "unknown step rule"),
    (lambda m: m.update(rng={"bit_generator": "nope"}), "corrupt"),
    (lambda m: m.update(reference={"direction": [1.0]}), "corrupt"),
])
def test_inconsistent_checkpoint_meta_raises_data_error(tmp_path, files, edit, reason):
    path = tmp_path / "c.npz"
    path.write_bytes(files["checkpoint"].read_bytes())
    rewrite_meta(path, edit)
    with pytest.raises(DataError, match=reason):
        Trainer.load(path, files["kernel"])


def test_stale_temporaries_are_removed_by_the_next_save(tmp_path):
    kernel = LinearKernel(*separable())
    theta = kernel.random_theta([0], 1.0)
    path = tmp_path / "c.npz"
    stale = [tmp_path / "c.npz.tmp", tmp_path / ".c.npz.k1ll3d.tmp", tmp_path / ".h.json.x.tmp",
             tmp_path / ".h.npz.y.tmp"]
    for p in stale:
        p.write_bytes(b"half a file")
    hist = train(kernel, theta, n_steps=10, checkpoints=3, checkpoint_path=path)
    hist.save(tmp_path / "h.json")
    hist.save(tmp_path / "h.npz")
    assert temporaries(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.npz", "c.npz.lock", "h.json", "h.npz"]


# ---- row 8: History JSON is strict ------------------------------------------------------------------------------------
def strict_loads(text):
    def refuse(name):
        raise ValueError(f"non-standard JSON constant {name}")
    return json.loads(text, parse_constant=refuse)


def test_history_json_is_strict_and_round_trips_non_finite_values(tmp_path):
    kernel = LinearKernel(*separable())
    theta = np.vstack([kernel.random_theta([0], 1.0), np.zeros((1, 3))])     # run 1 starts at 0: NaN direction
    hist = train(kernel, theta, rule=Normalized(0.1), n_steps=20, checkpoints=4, fused=False)
    assert np.isnan(hist.angle).all() and np.isnan(hist.direction[0, 1]).all()   # no reference; theta = 0
    path = hist.save(tmp_path / "h.json")
    document = strict_loads(path.read_text())
    assert document["angle"][0] == [None, None]
    back = History.load(path)
    for name in SERIES_NAMES:
        assert getattr(back, name).shape == getattr(hist, name).shape, name
        np.testing.assert_array_equal(getattr(back, name), getattr(hist, name), err_msg=name)
    assert back.meta == strict_loads(json.dumps(back.meta))
    with np.load(hist.save(tmp_path / "h.npz")) as f:
        strict_loads(str(f["meta"]))                   # the meta entry of .npz files too
    train(kernel, theta, n_steps=5, checkpoint_path=tmp_path / "c.npz")
    with np.load(tmp_path / "c.npz") as f:
        strict_loads(str(f["meta"]))                   # and of checkpoints


# ---- property-based: random bytes, truncations, bit flips -> DataError or a valid load -------------------------------
def mutations(valid: bytes):
    n = len(valid)
    flips = st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, 7)), min_size=1, max_size=4)
    return st.one_of(
        st.binary(max_size=3000),
        st.integers(0, n - 1).map(lambda k: valid[:k]),
        flips.map(lambda fs: _flip(valid, fs)),
        st.tuples(st.integers(0, n - 1), st.binary(min_size=1, max_size=16)).map(
            lambda t: valid[:t[0]] + t[1] + valid[t[0] + len(t[1]):]),
    )


def _flip(valid: bytes, flips) -> bytes:
    out = bytearray(valid)
    for index, bit in flips:
        out[index] ^= 1 << bit
    return bytes(out)


PROPERTY = settings(max_examples=150, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def check_loads_or_data_error(load, path: Path, content: bytes):
    path.write_bytes(content)
    try:
        result = load(path)
    except DataError as exc:
        assert "allow_pickle" not in str(exc)
        return None
    return result


@PROPERTY
@given(data=st.data())
def test_checkpoint_loader_raises_only_data_error(tmp_path, files, data):
    valid = files["checkpoint"].read_bytes()
    content = data.draw(mutations(valid))
    loaded = check_loads_or_data_error(lambda p: Trainer.load(p, files["kernel"]), tmp_path / "c.npz", content)
    if loaded is not None:                             # the damage left a valid checkpoint
        assert 0 <= loaded.step <= loaded.n_steps and np.isfinite(loaded.theta).all()
        assert loaded.theta.shape == (2, 3) and len(loaded.records) <= len(loaded.schedule)


@PROPERTY
@given(data=st.data(), suffix=st.sampled_from([".npz", ".json"]))
def test_history_loader_raises_only_data_error(tmp_path, files, data, suffix):
    valid = files[f"history_{suffix[1:]}"].read_bytes()
    content = data.draw(mutations(valid))
    loaded = check_loads_or_data_error(History.load, tmp_path / f"h{suffix}", content)
    if loaded is not None:
        assert loaded._inconsistency() is None


def test_a_zip_bit_flip_is_caught_by_its_checksum(tmp_path, files):
    """The arrays of a checkpoint are stored with CRC-32 checks: a flipped bit in their data is found."""
    valid = files["checkpoint"].read_bytes()
    with zipfile.ZipFile(files["checkpoint"]) as z:
        info = z.getinfo("theta.npy")
    name_length, extra_length = np.frombuffer(valid[info.header_offset + 26:info.header_offset + 30], "<u2")
    data_start = info.header_offset + 30 + int(name_length) + int(extra_length)
    flipped = bytearray(valid)
    flipped[data_start + info.compress_size - 3] ^= 1            # in the last parameter's bytes
    path = tmp_path / "c.npz"
    path.write_bytes(bytes(flipped))
    with pytest.raises(DataError, match="corrupt"):
        Trainer.load(path, files["kernel"])
