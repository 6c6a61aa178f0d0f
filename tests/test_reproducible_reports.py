"""Reproducible reports: a versioned JSON Schema, the environment block, the seed, strict atomic JSON."""

import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from lexmargin import Dataset, load_model
from lexmargin import environment as env_module
from lexmargin.cli import load_suite_module
from lexmargin.report import stationarity_report
from lexmargin.report.schema import SCHEMA_VERSION, header, plain

jsonschema = pytest.importorskip("jsonschema")

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "docs" / "schema" / "report.schema.json"
ENVIRONMENT_KEYS = {"lexmargin", "python", "numpy", "scipy", "sympy", "casadi", "ipopt", "matplotlib", "git_commit",
                    "git_dirty", "cpu", "cpus", "machine", "platform", "compiled_gd", "compiled_gd_reason"}


@pytest.fixture(scope="module")
def validator():
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def strict_load(path) -> dict:
    """Parse as RFC 8259 JSON: NaN / Infinity tokens are refused."""
    def refuse(token):
        raise AssertionError(f"{path} holds the non-JSON token {token}")

    return json.loads(Path(path).read_text(), parse_constant=refuse)


def no_spelled_out_non_finite(value, where="$"):
    if isinstance(value, dict):
        for k, v in value.items():
            no_spelled_out_non_finite(v, f"{where}.{k}")
    elif isinstance(value, list):
        for k, v in enumerate(value):
            no_spelled_out_non_finite(v, f"{where}[{k}]")
    else:
        assert value not in ("inf", "-inf", "nan", "Infinity", "NaN"), where


def assert_valid(validator, document):
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    assert not errors, [f"{list(e.absolute_path)}: {e.message[:200]}" for e in errors]
    no_spelled_out_non_finite(document)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((30, 2))
    y = np.where(X @ np.array([1.0, -0.5]) >= 0, 1.0, -1.0)
    return Dataset(X + 0.2 * y[:, None] * np.array([1.0, -0.5]), y)


# ---- the environment --------------------------------------------------------------------------------
def test_environment_names_versions_commit_cpu_and_gd_path():
    env = env_module.environment()
    assert set(env) == ENVIRONMENT_KEYS
    import casadi
    import numpy
    import scipy
    import sympy

    import lexmargin
    assert env["lexmargin"] == lexmargin.__version__ and env["numpy"] == numpy.__version__
    assert env["scipy"] == scipy.__version__ and env["sympy"] == sympy.__version__
    assert env["casadi"] == casadi.__version__
    assert re.fullmatch(r"\d+\.\d+\.\d+", env["ipopt"]) or env["ipopt"] == f"bundled with casadi {casadi.__version__}"
    assert isinstance(env["cpu"], str) and env["cpu"] and env["cpus"] >= 1
    from lexmargin.numeric.fused import c_kernel_available
    assert env["compiled_gd"] is c_kernel_available()
    assert env["compiled_gd_reason"] == ("active" if env["compiled_gd"] else env["compiled_gd_reason"])
    env["cpu"] = "changed"
    assert env_module.environment()["cpu"] != "changed"      # a fresh dict every call


def test_git_commit_is_the_checkouts_head_or_none():
    commit, dirty = env_module.git_commit()
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10, check=False)
    except OSError:
        head = None
    if head is not None and head.returncode == 0 and (ROOT / "lexmargin").resolve() == env_module._PACKAGE_DIR:
        assert commit == head.stdout.strip() and isinstance(dirty, bool)
    else:
        assert commit is None


def test_git_commit_never_fails(monkeypatch, tmp_path):
    monkeypatch.setattr(env_module, "_PACKAGE_DIR", tmp_path / "lexmargin")      # not a checkout
    assert env_module.git_commit() == (None, None)

    def no_git(*args, **kwargs):
        raise FileNotFoundError("git")

    monkeypatch.setattr(env_module.subprocess, "run", no_git)                    # git not installed
    assert env_module.git_commit() == (None, None)


def test_ipopt_fallback_and_numpy_only(monkeypatch):
    monkeypatch.setattr(env_module, "_ipopt_from_library", lambda folder: None)
    assert env_module.ipopt_version() == f"bundled with casadi {env_module.package_version('casadi')}"
    monkeypatch.setenv("LEXMARGIN_NUMPY_ONLY", "1")
    assert env_module.compiled_gd() == (False, "LEXMARGIN_NUMPY_ONLY is set")
    assert env_module.environment()["compiled_gd"] is False


def test_format_environment_is_one_line_per_entry():
    text = env_module.format_environment({"lexmargin": "9.9", "ipopt": None, "compiled_gd": False,
                                          "compiled_gd_reason": "not built", "git_dirty": True})
    assert "lexmargin:" in text and "9.9" in text and "IPOPT:" in text and "unknown" in text
    assert "inactive (not built)" in text and re.search(r"uncommitted changes:\s+yes", text)


# ---- the schema ---------------------------------------------------------------------------------------
def test_stationarity_report_json_follows_the_schema(tmp_path, data, validator):
    model = load_model("linear", input_dim=2)
    thetas = np.array([[0.0, 0.0], [1.0, -0.2], [3.0, -1.0]])      # theta = 0 first: NaN margin there
    report = stationarity_report(model, data, thetas, seed=11)
    report.save(tmp_path)
    saved = strict_load(tmp_path / "report.json")
    assert_valid(validator, saved)
    assert saved["schema_version"] == SCHEMA_VERSION and saved["kind"] == "stationarity_report"
    assert saved["seed"] == 11 and set(saved["environment"]) == ENVIRONMENT_KEYS
    assert saved["trajectory"]["margins"][0] is None                 # NaN -> null, not "nan"
    assert list(saved)[:4] == ["schema_version", "kind", "seed", "environment"]
    assert "## Environment" in (tmp_path / "report.md").read_text()
    assert not list(tmp_path.glob(".*.tmp"))
    unseeded = stationarity_report(model, data, thetas[-1])
    assert unseeded.to_dict()["seed"] is None
    assert_valid(validator, json.loads(unseeded.to_json()))
    with pytest.raises(ValueError, match="seed must be an integer"):
        stationarity_report(model, data, thetas[-1], seed=1.5)


def test_non_finite_numbers_become_null_never_strings(validator, data):
    converted = plain({"a": np.array([1.0, np.inf]), "b": "inf", "c": np.float64("nan"), "d": "linf"})
    assert converted["a"] == [1.0, np.inf] and converted["b"] == np.inf and np.isnan(converted["c"])
    assert converted["d"] == "linf" and type(converted["c"]) is float
    from lexmargin.fileio import dumps_strict
    assert json.loads(dumps_strict(converted)) == {"a": [1.0, None], "b": None, "c": None, "d": "linf"}
    report = stationarity_report(load_model("linear", input_dim=2), data, np.array([1.0, -0.5]))
    document = json.loads(report.to_json())
    document["kkt"]["delta"] = "inf"                                  # what the reports used to write
    assert not validator.is_valid(document)


def test_schema_rejects_an_unversioned_or_foreign_document(validator):
    doc = header("paper_suite", 0, env_module.environment()) | {
        "suite": "paper", "quick": True, "seconds": 1.0,
        "summary": {"passed": 0, "failed": 0, "not available": 0, "error": 0}, "checks": []}
    assert validator.is_valid(doc)
    assert not validator.is_valid({k: v for k, v in doc.items() if k != "schema_version"})
    assert not validator.is_valid(doc | {"schema_version": SCHEMA_VERSION + 1})
    assert not validator.is_valid(doc | {"kind": "perf_suite"})
    with pytest.raises(ValueError, match="unknown report kind"):
        header("other", None, {})


def test_paper_suite_report_follows_the_schema_and_records_the_seed(tmp_path, validator):
    paper = load_suite_module("paper")
    runs = {}
    for seed in (0, 1):
        out = tmp_path / f"s{seed}"
        suite = paper.run_paper_suite(out, quick=True, progress=False, only=["gd_rate"], seed=seed,
                                      formats=("png", "svg"))
        saved = strict_load(out / "report.json")
        assert_valid(validator, saved)
        assert saved["seed"] == seed and saved["kind"] == "paper_suite" and "time_utc" in saved["environment"]
        assert suite.checks[0].status == ("passed" if seed == 0 else suite.checks[0].status)   # verified at 0
        assert sorted(Path(p).name for p in saved["checks"][0]["plots"]) == ["gd_rate.png", "gd_rate.svg"]
        assert f"seed {seed}" in (out / "report.md").read_text()
        runs[seed] = saved["checks"][0]["numbers"]["angles"]
    assert runs[0] != runs[1]                                          # the seed reaches the suite's data


def test_perf_suite_output_follows_the_schema(tmp_path, validator):
    perf = load_suite_module("perf")
    import common

    bench = perf.BenchResult("toy", "a toy benchmark", "passed", ("N", "ratio"),
                             ({"N": 10, "ratio": float("inf")}, {"N": 20, "ratio": 2.0}), {"max ratio": float("nan")})
    suite = perf.PerfSuiteResult(True, (bench,), 0.5, common.environment())
    common.write_outputs(tmp_path, "report", suite.to_dict(), suite.to_markdown(), seed=4)
    saved = strict_load(tmp_path / "report.json")
    assert_valid(validator, saved)
    assert saved["kind"] == "perf_suite" and saved["seed"] == 4
    assert saved["benchmarks"][0]["rows"][0]["ratio"] is None and saved["benchmarks"][0]["summary"]["max ratio"] is None


def test_suite_outputs_are_written_atomically(tmp_path, monkeypatch):
    import common

    written = []
    real = common.write_text_atomic
    monkeypatch.setattr(common, "write_text_atomic", lambda path, text: written.append(Path(path).name) or
                        real(path, text))
    common.write_outputs(tmp_path, "report", {"suite": "perf", "quick": True, "seconds": 0.0, "benchmarks": []},
                         "# md\n", seed=0)
    assert written == ["report.json", "report.md"]
