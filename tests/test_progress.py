"""Logging, verbose= and progress bars (lexmargin.progress), and honest statuses under time_limit."""

from __future__ import annotations

import ast
import io
import logging
import sys
from pathlib import Path

import numpy as np
import pytest

import lexmargin as lm
from lexmargin import progress
from lexmargin.errors import LexmarginError
from lexmargin.nlp.status import Status

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from common import separable_data


@pytest.fixture(scope="module")
def data():
    return separable_data(20, 2, seed=0)


@pytest.fixture(scope="module")
def linear():
    return lm.load_model("linear", input_dim=2)


# ---- loggers ------------------------------------------------------------------------------------
def test_package_logger_has_a_null_handler():
    handlers = logging.getLogger("lexmargin").handlers
    assert any(isinstance(h, logging.NullHandler) for h in handlers)


def test_module_loggers_are_named_under_the_package():
    from lexmargin.numeric import trainer
    from lexmargin.problems import depth, lexicographic, paths

    for module in (paths, lexicographic, depth, trainer):
        assert module.log.name == module.__name__
        assert module.log.name.startswith("lexmargin.")
    assert progress.get_logger("elsewhere").name == "lexmargin.elsewhere"


# print() is allowed in the command line, and in the Pyomo plugin only for tee=True (Pyomo's convention: the
# solver's log goes to stdout when asked)
PRINT_ALLOWED = {"lexmargin/cli.py", "lexmargin/interop/pyomo.py"}


def test_library_code_does_not_print():
    offenders = []
    for path in sorted((ROOT / "lexmargin").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel in PRINT_ALLOWED:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
                offenders.append(f"{rel}:{node.lineno}")
    assert offenders == []


# ---- verbose= -----------------------------------------------------------------------------------
@pytest.mark.parametrize("verbose, level", [(False, None), (None, None), (0, None), (True, logging.INFO),
                                            (1, logging.INFO), (2, logging.DEBUG), (5, logging.DEBUG),
                                            (logging.INFO, logging.INFO), (logging.DEBUG, logging.DEBUG)])
def test_level_of(verbose, level):
    assert progress.level_of(verbose) == level


def test_level_of_rejects_bad_values():
    with pytest.raises(ValueError):
        progress.level_of(-1)
    with pytest.raises(TypeError):
        progress.level_of("info")
    with pytest.raises(LexmarginError):
        lm.SolveOptions(verbose="yes")
    with pytest.raises(LexmarginError):
        lm.SolveOptions(verbose=-2)
    assert lm.SolveOptions(verbose=np.int64(2)).verbose == 2


def test_verbosity_attaches_and_removes_a_stderr_handler(monkeypatch):
    logger = logging.getLogger("lexmargin")
    monkeypatch.setattr(logging.getLogger(), "handlers", [])   # an application that configured no logging
    before_level, before = logger.level, list(logger.handlers)
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    with progress.verbosity(True) as shown:
        assert shown and progress.active()
        assert logger.level == logging.INFO
        with progress.verbosity(2):          # nested: no second handler, the outer level stays
            assert len(logger.handlers) == len(before) + 1
            assert logger.level == logging.INFO
        logging.getLogger("lexmargin.problems.paths").info("hello %d", 7)
        logging.getLogger("lexmargin.problems.paths").debug("not shown")
    assert "lexmargin.problems.paths: hello 7" in stream.getvalue()
    assert "not shown" not in stream.getvalue()
    assert logger.level == before_level and logger.handlers == before and not progress.active()
    with progress.verbosity(False) as shown:
        assert not shown and not progress.active()


def test_verbose_solves_log_progress_at_info(data, linear, caplog):
    from lexmargin.problems.paths import constrained_path, margin_path, regularization_path

    with caplog.at_level(logging.INFO, logger="lexmargin"):
        margin_path(linear, data, [1.0, 2.0], verbose=True)
        constrained_path(linear, data, [1.0, 2.0], options=lm.SolveOptions(verbose=1))
        regularization_path(linear, data, [1.0, 0.1], verbose=True)
    messages = [(r.name, r.levelno, r.getMessage()) for r in caplog.records]
    rhos = [m for n, lv, m in messages if n == "lexmargin.problems.paths" and m.startswith("margin path: rho=")]
    assert len(rhos) >= 4 and all("status=optimal" in m for m in rhos)   # 2 own + 2 of the constrained path's
    assert any(m.startswith("constrained path: rho=2 ") for _, _, m in messages)
    assert any(m.startswith("regularization path: lambda=0.1 ") for _, _, m in messages)
    assert {lv for *_, lv, _ in [(n, lv, m) for n, lv, m in messages]} <= {logging.INFO, logging.DEBUG,
                                                                             logging.WARNING}


def test_quiet_by_default(data, linear, capsys, monkeypatch):
    from lexmargin.problems.paths import margin_path

    monkeypatch.setattr(logging.getLogger(), "handlers", [])
    margin_path(linear, data, [1.0])
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""


def test_lexicographic_and_depth_log_their_stages(data, linear, caplog):
    from lexmargin.problems.depth import depth_sensitive
    from lexmargin.problems.lexicographic import lexicographic_max_margin

    ensemble = lm.load_model("ensemble", input_dim=2, depths=(1, 2), widths=2)
    with caplog.at_level(logging.INFO, logger="lexmargin"):
        lexicographic_max_margin(linear, data, verbose=True)
        depth_sensitive(ensemble, data, verbose=True)
    text = caplog.text
    assert "lexicographic stage 1: level=" in text
    assert "depth-sensitive stage depth1: " in text and "discarded=True" in text


def test_train_logs_checkpoints_and_changes_nothing(data, linear, caplog):
    from lexmargin.numeric import kernel_for, train

    kernel = kernel_for(linear, data.X, data.y)
    theta0 = np.array([[1.0, 0.5], [0.2, 1.0]])
    quiet = train(kernel, theta0, n_steps=200, checkpoints=5)
    with caplog.at_level(logging.INFO, logger="lexmargin"):
        loud = train(kernel, theta0, n_steps=200, checkpoints=5, verbose=True)
    lines = [r.getMessage() for r in caplog.records if r.name == "lexmargin.numeric.trainer"]
    assert lines and lines[-1].startswith("train: step 200/200 log-loss ")
    assert "normalized margin" in lines[-1] and "(median of 2 runs)" in lines[-1]
    np.testing.assert_array_equal(quiet.theta, loud.theta)
    np.testing.assert_array_equal(quiet.steps, loud.steps)


def test_train_calls_the_users_callback_when_verbose(data, linear):
    from lexmargin.numeric import kernel_for, train

    seen = []
    train(kernel_for(linear, data.X, data.y), np.ones((1, 2)), n_steps=50, checkpoints=3, verbose=True,
          callback=lambda t: seen.append(t.step))
    assert seen and seen[-1] == 50


# ---- progress bars ------------------------------------------------------------------------------
class _TTY(io.StringIO):
    def isatty(self):
        return True


def test_bars_only_on_a_terminal_and_never_in_tests(monkeypatch):
    monkeypatch.setattr(sys, "stderr", _TTY())
    assert not progress.bars_enabled(True)                  # PYTEST_CURRENT_TEST is set
    monkeypatch.delenv("PYTEST_CURRENT_TEST", raising=False)
    monkeypatch.delenv("LEXMARGIN_NO_PROGRESS", raising=False)
    assert progress.bars_enabled(True)
    assert not progress.bars_enabled(False)
    monkeypatch.setenv("LEXMARGIN_NO_PROGRESS", "1")
    assert not progress.bars_enabled(True)
    monkeypatch.delenv("LEXMARGIN_NO_PROGRESS")
    monkeypatch.setattr(sys, "stderr", io.StringIO())      # not a TTY (a pipe, a file, CI logs)
    assert not progress.bars_enabled(True)


def test_bar_falls_back_to_a_silent_iterable(monkeypatch):
    silent = progress.bar([1, 2, 3], wanted=True)
    assert isinstance(silent, progress.SilentBar) and list(silent) == [1, 2, 3]
    silent.update(2)
    silent.set_postfix_str("x")
    silent.close()
    monkeypatch.setattr(sys, "stderr", _TTY())
    monkeypatch.delenv("PYTEST_CURRENT_TEST", raising=False)
    monkeypatch.delenv("LEXMARGIN_NO_PROGRESS", raising=False)
    drawn = progress.bar([1, 2], wanted=True, desc="x")
    assert not isinstance(drawn, progress.SilentBar) and list(drawn) == [1, 2]
    assert isinstance(progress.bar([1], wanted=None), progress.SilentBar)   # no verbose= call is active


# ---- time_limit: every solve has it, and hitting it is never "optimal" -------------------------------
TINY_LIMIT = 1e-9


def _statuses(result):
    if hasattr(result, "status"):
        return [result.status]
    if hasattr(result, "points"):
        return [p.certificate.status for p in result.points]
    return [s.certificate.status for s in result.stages]


def _solves():
    from lexmargin.problems.depth import depth_gamma_path, depth_sensitive, svm_with_bias
    from lexmargin.problems.lexicographic import lexicographic_max_margin
    from lexmargin.problems.paths import constrained_path, margin_path, regularization_path

    linear = lm.load_model("linear", input_dim=2)
    deep = lm.load_model("deep_linear", input_dim=2, depth=2, width=2)
    ensemble = lm.load_model("ensemble", input_dim=2, depths=(1, 2), widths=2)
    return {
        "max_margin_linear": lambda d, **o: lm.max_margin(linear, d, **o),
        "max_margin_deep": lambda d, **o: lm.max_margin(deep, d, **o),
        "margin_path": lambda d, **o: margin_path(deep, d, [1.0, 2.0], **o),
        "constrained_path": lambda d, **o: constrained_path(linear, d, [1.0, 2.0], **o),
        "regularization_path": lambda d, **o: regularization_path(linear, d, [1.0, 0.1], **o),
        "lexicographic": lambda d, **o: lexicographic_max_margin(linear, d, **o),
        "depth_sensitive": lambda d, **o: depth_sensitive(ensemble, d, **o),
        "depth_gamma_path": lambda d, **o: depth_gamma_path(ensemble, d, [1.0, 2.0], **o),
        "svm_with_bias": lambda d, **o: svm_with_bias(d, **o)[2],
    }


@pytest.mark.parametrize("name", sorted(_solves()))
def test_time_limit_gives_an_honest_status(name, data):
    solve = _solves()[name]
    statuses = _statuses(solve(data, time_limit=TINY_LIMIT, raise_on_failure=False))
    assert statuses and all(s == Status.MAX_TIME for s in statuses), statuses
    with pytest.raises(lm.SolverError) as info:
        solve(data, time_limit=TINY_LIMIT)
    assert info.value.status == "max_time"


# ---- max_margin: starts, working-set rounds, activation regions ------------------------------------
def test_max_margin_logs_starts_and_working_set_rounds(caplog):
    from lexmargin.problems.maxmargin import WorkingSetOptions

    data = separable_data(60, 3, seed=1)
    deep = lm.load_model("deep_linear", input_dim=3, depth=2, width=2)
    ws = WorkingSetOptions(enabled=True, initial=3, batch=2, seeding="margins")
    with caplog.at_level(logging.INFO, logger="lexmargin"):
        cert = lm.max_margin(deep, data, structure="general", starts=2, working_set=ws, verbose=True)
    assert cert.status == Status.OPTIMAL
    lines = [r.getMessage() for r in caplog.records if r.name == "lexmargin.problems.maxmargin"]
    starts = [m for m in lines if m.startswith("max_margin start: IPOPT ")]
    rounds = [m for m in lines if m.startswith("max_margin working set: round ")]
    assert len(starts) >= 2 and rounds
    assert rounds[0].startswith("max_margin working set: round 1 left ")


def test_relu_max_margin_logs_its_regions_and_training_starts_at_debug(caplog):
    data = separable_data(20, 2, seed=0)
    net = lm.load_model("two_layer", input_dim=2, width=3, activation="relu")
    with caplog.at_level(logging.INFO, logger="lexmargin"):
        lm.max_margin(net, data, starts=1, raise_on_failure=False, verbose=True)
    regions = [r for r in caplog.records if r.getMessage().startswith("max_margin region 1 of the walk: ")]
    assert regions and all(r.levelno == logging.INFO for r in regions)
    # the GD start's training run is a detail of the solve: DEBUG, not shown at INFO
    assert not [r for r in caplog.records if r.name == "lexmargin.numeric.trainer"]
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="lexmargin"):
        lm.max_margin(net, data, starts=1, raise_on_failure=False)
    trained = [r for r in caplog.records if r.name == "lexmargin.numeric.trainer"]
    assert trained and all(r.levelno == logging.DEBUG for r in trained)
    assert not progress.inside_solve()
