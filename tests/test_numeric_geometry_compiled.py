"""The compiled step loops in a geometry (``geometry.compiled_geometry``; ``run_steps`` of _fused.c and
_fused_numba.py): against the Python ``fused_step`` path on both compiled kernels and dtypes (l1 ties, the
unsafe-shift redo), divergence at the same step, exact resume, and the fallback for other inner rules."""

from types import SimpleNamespace

import numpy as np
import pytest
from resume_helpers import interrupted_then_resumed

from lexmargin.numeric import (
    Adaptive,
    Constant,
    DivergenceError,
    Hypentropy,
    LinearKernel,
    MirrorLp,
    Normalized,
    Steepest,
    Trainer,
    train,
)
from lexmargin.numeric import geometry as geo
from lexmargin.numeric.fused import LinearExpLane, kernel_available
from lexmargin.numeric.training.steppers import CompiledStepper

COMPILED = ["c", "numba"]
DTYPES = [(np.float64, 1e-12), (np.float32, 1e-5)]
RULES = [Steepest("l2", Normalized(0.1), scale="unit"), Steepest("l1", Normalized(0.2)),
         Steepest("l1", Constant(0.005), scale="unit"), Steepest("linf", Normalized(0.02)),
         Steepest("linf", Normalized(0.02), scale="unit"), Steepest("lp", Normalized(0.1), p=3.0),
         Steepest("lp", Constant(0.002), p=1.5), Steepest("lp", Normalized(0.1), p=2.5, scale="unit"),
         Steepest(MirrorLp(3.0), Normalized(0.1)), Steepest(MirrorLp(1.7), Constant(0.002)),
         Steepest(Hypentropy(0.5), Normalized(0.1))]


def rule_id(rule):
    g = rule.geometry
    return f"{g.name}{getattr(g, 'p', '') if g.name in ('lp', 'mirror_lp') else ''}-{getattr(g, 'scale', '')}-" \
           f"{type(rule.step).__name__}"


def need(kernel):
    if not kernel_available(kernel):
        pytest.skip(f"the {kernel} kernel is not available here")


def tied(n=50, d=6, seed=0):
    """Separable data whose columns 1 and 4 are equal: |d_1| = |d_4| exactly at every step (l1 ties)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    X[:, 4] = X[:, 1]
    return X, np.where(X @ np.arange(1.0, d + 1) > 0, 1.0, -1.0)


def python_steps(lane, rule, n):
    """n steps of the Python fused path (``geometry.fused_step``), as ``FusedStepper`` takes them."""
    state = rule.init(len(lane.log_loss))
    for _ in range(n):
        geo.fused_step(lane, rule.geometry, rule.multiplier(state, lane.log_loss))


def lanes(kernel_name, dtype, runs=5, scales=(0.0, 0.1, 0.5, 1.0, 2.0)):
    """theta0 and two lanes from it.  numba's lanes take its LOOPS layout: equal rows of B then give equal rows
    of G (exact l1 ties; its BLAS products need not), so that a rounding difference between the paths (the
    multiplier eta L is computed differently) cannot break a tie differently."""
    kernel = LinearKernel(*tied(), dtype=dtype)
    theta = kernel.random_theta(range(runs), list(scales))
    out = [LinearExpLane(slice(0, runs), theta, kernel.augmented_margin_matrix, kernel=kernel_name) for _ in range(2)]
    for lane in out:
        if kernel_name == "numba":
            lane.layout = lane._nb.LOOPS
            lane._refresh()
    return theta, out


def test_compiled_geometry_codes():
    assert geo.compiled_geometry(Steepest("l1", Constant(0.1))) == (geo.GEO_L1, 0.0)
    assert geo.compiled_geometry(Steepest("linf", Normalized(0.1), scale="unit")) == (geo.GEO_LINF | geo.GEO_UNIT, 0.0)
    assert geo.compiled_geometry(Steepest("lp", Normalized(0.1), p=3)) == (geo.GEO_LP, 3.0)
    assert geo.compiled_geometry(Steepest(MirrorLp(1.5), Normalized(0.1))) == (geo.GEO_MIRROR, 1.5)
    assert geo.compiled_geometry(Steepest(Hypentropy(0.3), Normalized(0.1))) == (geo.GEO_HYPENTROPY, 0.3)
    assert geo.compiled_geometry(Steepest("l2", Normalized(0.1))) == (geo.GEO_L2, 0.0)
    for rule in (Steepest("linf", Adaptive(0.1)), Normalized(0.1), Constant(0.1)):
        assert geo.compiled_geometry(rule) is None


@pytest.mark.parametrize("kernel", COMPILED)
@pytest.mark.parametrize("dtype, rtol", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("rule", RULES, ids=rule_id)
def test_compiled_loop_matches_fused_step(kernel, dtype, rtol, rule):
    """50 steps in chunks of 10 agree with fused_step's after every chunk; l1 moves the same coordinates."""
    need(kernel)
    theta0, (python, compiled) = lanes(kernel, dtype)
    eta = np.asarray(rule.init(5)["eta"], np.float64)
    for _ in range(5):
        python_steps(python, rule, 10)
        assert compiled.run(10, eta, isinstance(rule.step, Constant), geo.compiled_geometry(rule)) == (10, False)
        scale = np.abs(python.theta).max()
        np.testing.assert_allclose(compiled.theta, python.theta, rtol=rtol, atol=rtol * scale)
        np.testing.assert_allclose(compiled.log_loss, python.log_loss, rtol=rtol, atol=rtol)
    assert compiled.exact_shifts == python.exact_shifts
    if rule.geometry.name == "l1":
        moved = compiled.theta != theta0
        np.testing.assert_array_equal(moved, python.theta != theta0)
        assert moved[:, 1].any() and not moved[:, 4].any()          # exact ties: the first coordinate, as argmax


@pytest.mark.parametrize("rule", [Steepest("l1", Normalized(0.2)), Steepest(Hypentropy(0.5), Normalized(0.1))],
                         ids=rule_id)
def test_compiled_loop_with_openmp_threads_matches_fused_step(rule):
    """The C kernel splitting the samples over two threads: the geometry step is the same, the sums too."""
    need("c")
    kernel = LinearKernel(*tied(n=300), dtype=np.float64)
    theta = kernel.random_theta(range(3), [0.1, 0.5, 1.0])
    python, compiled = (LinearExpLane(slice(0, 3), theta, kernel.augmented_margin_matrix, kernel="c", threads=2)
                        for _ in range(2))
    python_steps(python, rule, 30)
    assert compiled.run(30, np.full(3, rule.eta), False, geo.compiled_geometry(rule)) == (30, False)
    np.testing.assert_allclose(compiled.theta, python.theta, rtol=1e-12, atol=1e-12 * np.abs(python.theta).max())


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("kernel", COMPILED)
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("rule", [Steepest("linf", Normalized(100.0), scale="unit"),
                                  Steepest(Hypentropy(1.0), Normalized(5.0))], ids=rule_id)
def test_unsafe_shifts_are_redone_like_fused_step(kernel, dtype, rule):
    """Steps so large that the predicted shift fails the check at every step: both paths redo them alike."""
    need(kernel)
    _, (python, compiled) = lanes(kernel, dtype, runs=4, scales=(1.0,) * 4)
    python_steps(python, rule, 20)
    assert compiled.run(20, np.full(4, rule.eta), False, geo.compiled_geometry(rule)) == (20, False)
    assert compiled.exact_shifts == python.exact_shifts > 15
    scale = np.abs(python.theta).max()
    np.testing.assert_allclose(compiled.theta, python.theta, rtol=1e-5, atol=1e-5 * scale)


def python_path(monkeypatch):
    """Make ``CompiledStepper`` take the Python ``fused_step`` loop for geometry rules."""
    monkeypatch.setattr(geo, "compiled_geometry", lambda rule: None)


def divergence_message(kernel, theta, kw):
    trainer = Trainer(kernel, theta, **kw)
    with pytest.raises(DivergenceError, match="reduce the step size") as caught:
        trainer.run()
    assert trainer.state.unsaveable
    return str(caught.value)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("kernel", COMPILED)
@pytest.mark.parametrize("rule", [Steepest("l1", Constant((0.01, 1e3))), Steepest("linf", Constant((0.01, 1e3))),
                                  Steepest("lp", Constant((0.01, 1e3)), p=3.0),
                                  Steepest(MirrorLp(3.0), Constant((0.01, 1e3))),
                                  Steepest(Hypentropy(1.0), Constant((0.01, 1e3)))], ids=rule_id)
def test_divergence_is_raised_at_the_same_step_as_on_the_python_path(kernel, rule, monkeypatch, tmp_path):
    need(kernel)
    monkeypatch.setenv("LEXMARGIN_FUSED_KERNEL", kernel)
    data = LinearKernel(*tied())
    theta = data.random_theta(range(2), 1.0)
    kw = {"rule": rule, "n_steps": 50, "checkpoints": [0, 50]}
    compiled = divergence_message(data, theta, kw)
    path = tmp_path / "d.npz"
    with pytest.raises(DivergenceError):
        train(data, theta, checkpoint_path=path, **kw)
    assert not path.exists()
    python_path(monkeypatch)
    assert compiled == divergence_message(data, theta, kw)
    assert "runs [1] diverged" in compiled


@pytest.mark.parametrize("kernel", COMPILED)
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("rule", [Steepest("l1", Normalized(0.2)), Steepest("linf", Constant(0.002), scale="unit"),
                                  Steepest("lp", Normalized((0.1, 0.3)), p=3.0),
                                  Steepest(MirrorLp(3.0), Normalized(0.05)),
                                  Steepest(Hypentropy(0.3), Normalized(0.1))], ids=rule_id)
def test_resume_in_a_compiled_geometry_is_bit_identical(tmp_path, kernel, dtype, rule, monkeypatch):
    need(kernel)
    monkeypatch.setenv("LEXMARGIN_FUSED_KERNEL", kernel)
    data = LinearKernel(*tied(), dtype=dtype)
    theta = data.random_theta([0, 1], [0.3, 1.0])
    kw = {"rule": rule, "n_steps": 300, "checkpoints": 12}
    full = train(data, theta, **kw)
    assert full.meta["fused_kernels"] == [kernel]
    resumed = interrupted_then_resumed(data, theta, tmp_path / "run.npz", 100, **kw)
    for name in ("steps", "log_loss", "theta", "min_margin", "normalized_margin", "direction"):
        np.testing.assert_array_equal(getattr(full, name), getattr(resumed, name), err_msg=name)


@pytest.mark.parametrize("kernel", COMPILED)
@pytest.mark.parametrize("rule", [Steepest("linf", Normalized(0.02)), Steepest(Hypentropy(0.5), Constant(0.002))],
                         ids=rule_id)
def test_trainer_histories_match_the_python_path(kernel, rule, monkeypatch):
    """The trainer's records through the compiled loop and through fused_step agree to rounding."""
    need(kernel)
    monkeypatch.setenv("LEXMARGIN_FUSED_KERNEL", kernel)
    data = LinearKernel(*tied())
    theta = data.random_theta(range(3), [0.5, 1.0, 2.0])
    kw = {"rule": rule, "n_steps": 200, "checkpoints": 9}
    trainer = Trainer(data, theta, **kw)
    assert CompiledStepper(trainer.state).compiled_rule(trainer.state.lanes[0]) is not None
    compiled = trainer.run().history()
    python_path(monkeypatch)
    python = train(data, theta, **kw)
    for name in ("theta", "log_loss", "min_margin", "normalized_margin"):
        np.testing.assert_allclose(getattr(compiled, name), getattr(python, name), rtol=1e-12, atol=1e-12, err_msg=name)


def test_compiled_rule_takes_fixed_steps_in_a_geometry_only():
    """Steepest(geometry, Constant | Normalized) runs in the compiled loop; Adaptive keeps the Python loop, and a
    lane without a compiled kernel the FusedStepper loop."""
    lane = SimpleNamespace(compiled=True, rows=slice(0, 2))

    def compiled_rule(rule, lane=lane):
        rule_state = rule.init(2)
        state = SimpleNamespace(rule=rule, rule_state=rule_state, lane_rule_state=lambda lane: rule_state)
        return CompiledStepper(state).compiled_rule(lane)

    eta, constant, geometry = compiled_rule(Steepest("lp", Constant((0.1, 0.2)), p=3.0))
    np.testing.assert_array_equal(eta, [0.1, 0.2])
    assert constant and geometry == (geo.GEO_LP, 3.0)
    assert compiled_rule(Normalized(0.1))[1:] == (False, (geo.GEO_L2, 0.0))
    assert compiled_rule(Steepest("linf", Adaptive(0.05))) is None
    assert compiled_rule(Steepest("linf", Normalized(0.05)), SimpleNamespace(compiled=False, rows=slice(0, 2))) is None


def test_the_c_kernel_rejects_bad_geometries():
    need("c")
    from lexmargin.numeric import _fused
    P, B, GT, ll = np.zeros((3, 2)), np.zeros((3, 4)), np.ones((3, 2)), np.zeros(2)
    for code, param in [(6, 0.0), (3, 1.0), (4, float("nan")), (5, 0.0), (geo.GEO_MIRROR | geo.GEO_UNIT, 3.0), (-1, 0.0)]:
        with pytest.raises(ValueError, match="bad geometry"):
            _fused.run_steps(P, B, GT, np.ones(2), False, ll, 1, -700.0, 1e-300, 1e300, 1, code, param)
