"""The command line's global -v / -q flags."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from lexmargin import Dataset
from lexmargin.cli import main


@pytest.fixture()
def data_file(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((25, 2))
    y = np.where(X @ np.array([1.0, 0.3]) >= 0, 1.0, -1.0)
    path = tmp_path / "data.npz"
    Dataset(X + 0.3 * y[:, None] * np.array([1.0, 0.3]), y).save(path)
    return path


@pytest.fixture(autouse=True)
def this_checkouts_suites(monkeypatch):
    """The suites of this checkout (an editable install elsewhere would otherwise provide its own)."""
    monkeypatch.setenv("LEXMARGIN_BENCHMARKS", str(Path(__file__).resolve().parent.parent / "benchmarks"))


def run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("where", ["before", "after"])
def test_quiet_prints_nothing_but_still_writes(tmp_path, data_file, capsys, where):
    cert = tmp_path / "cert.json"
    argv = ["solve", "linear", data_file, "--out", cert]
    code, out, err = run(["-q", *argv] if where == "before" else [*argv, "-q"], capsys)
    assert code == 0 and out == "" and err == ""
    assert '"status": "optimal"' in cert.read_text()
    code, out, err = run(argv, capsys)                    # not sticky: the next command prints again
    assert code == 0 and "max_margin: optimal" in out and "solving max-margin" in err


def test_quiet_keeps_errors(capsys):
    code, out, err = run(["-q", "solve", "linear", "no_such_file.npz"], capsys)
    assert code == 2 and out == ""
    assert err.startswith("lexmargin solve: error: ") and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("flag", ["-v", "-vv"])
def test_verbose_shows_progress_records(tmp_path, capsys, flag):
    logger = logging.getLogger("lexmargin")
    before = (logger.level, list(logger.handlers))
    code, _, err = run([flag, "suite", "paper", "--quick", "--only", "lemma3_bound", "--out", tmp_path], capsys)
    assert code == 0
    assert "INFO lexmargin.problems.paths: margin path: rho=1 status=optimal" in err
    assert "INFO lexmargin.problems.paths: constrained path: rho=32 " in err
    assert (logger.level, list(logger.handlers)) == before          # restored after the command


def test_no_records_without_verbose(tmp_path, capsys):
    code, _, err = run(["suite", "paper", "--quick", "--only", "lemma3_bound", "--out", tmp_path], capsys)
    assert code == 0 and "margin path: rho=" not in err


def test_verbose_and_quiet_exclude_each_other(capsys):
    with pytest.raises(SystemExit) as info:
        main(["-v", "-q", "models"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "-v/--verbose and -q/--quiet exclude each other" in err and len(err.strip().splitlines()) == 1
