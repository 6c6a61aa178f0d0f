"""Sweeps on Dask (lexmargin.sweep, lexmargin.parallel, `lexmargin sweep`) and `lexmargin suite --jobs`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from lexmargin import Dataset
from lexmargin.cli import main
from lexmargin.errors import MissingDependencyError, SweepError
from lexmargin.fileio import dumps_strict
from lexmargin.parallel import run_tasks
from lexmargin.sweep import (
    ERROR,
    config_from_dict,
    load_config,
    merge_reports,
    parse_shard,
    run_sweep,
)

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "docs" / "examples" / "sweep.toml"


@pytest.fixture(scope="module")
def validator():
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((ROOT / "docs" / "schema" / "report.schema.json").read_text())
    return jsonschema.Draft202012Validator(schema)


def small(bad_path="/no/such/data.npz") -> dict:
    """2 models x 2 datasets (one unreadable) x 2 seeds x 3 problems = 24 points; 12 fail, 12 certify."""
    return {"name": "small", "seeds": [0, 1],
            "models": ["linear", {"name": "deep_linear", "options": {"depth": 2, "width": 2}}],
            "datasets": [{"name": "g", "kind": "separable", "n": 12, "d": 2}, {"name": "gone", "path": bad_path}],
            "problems": [{"type": "max_margin"}, {"type": "margin_path", "rhos": [1.0, 2.0]},
                         {"type": "train", "steps": 50, "checkpoints": 4}]}


def comparable(report: dict) -> list:
    """The points without their timings, through strict JSON (what two runs must agree on)."""
    points = json.loads(dumps_strict(report["points"]))
    return [{k: v for k, v in p.items() if k != "seconds"} for p in points]


@pytest.fixture(scope="module")
def serial():
    return run_sweep(small())


# ---- configuration ------------------------------------------------------------------------------
def test_example_config_loads():
    config = load_config(EXAMPLE)
    assert config.name == "example" and config.size == 32 == len(config.points())
    assert [p["index"] for p in config.points()] == list(range(32))
    first, last = config.points()[0], config.points()[-1]
    assert (first["model"]["name"], first["dataset"]["name"], first["seed"], first["problem"]["type"]) == \
        ("linear", "gauss20", 0, "max_margin")
    assert (last["model"]["label"], last["dataset"]["name"], last["seed"], last["problem"]["type"]) == \
        ("deep_linear_L2", "gauss40", 1, "train")


def test_json_and_toml_configs_are_the_same_sweep(tmp_path):
    (tmp_path / "s.json").write_text(json.dumps(small()))
    (tmp_path / "s.toml").write_text(
        'name = "small"\nseeds = [0, 1]\nmodels = ["linear", {name = "deep_linear", options = {depth = 2, width = 2}}]\n'
        '[[datasets]]\nname = "g"\nkind = "separable"\nn = 12\nd = 2\n'
        '[[datasets]]\nname = "gone"\npath = "/no/such/data.npz"\n'
        '[[problems]]\ntype = "max_margin"\n[[problems]]\ntype = "margin_path"\nrhos = [1.0, 2.0]\n'
        '[[problems]]\ntype = "train"\nsteps = 50\ncheckpoints = 4\n')
    assert load_config(tmp_path / "s.json").sha256 == load_config(tmp_path / "s.toml").sha256


def test_relative_data_paths_are_resolved_against_the_config(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "s.json").write_text(json.dumps(small(bad_path="d.npz")))
    config = load_config(tmp_path / "sub" / "s.json")
    assert config.datasets[1]["path"] == str(tmp_path / "sub" / "d.npz")


@pytest.mark.parametrize("change, fragment", [
    (lambda c: c.pop("models"), "'models' must be a non-empty list"),
    (lambda c: c.update(problems=[{"type": "svm"}]), "a problem must have a 'type' among"),
    (lambda c: c.update(problems=[{"type": "max_margin", "rhos": [1]}]), "unknown keys ['rhos']"),
    (lambda c: c.update(problems=[{"type": "max_margin", "options": {"tolerance": 1}}]), "unknown option"),
    (lambda c: c.update(problems=[{"type": "max_margin", "options": {"tol": 5}}]), "tol must be in (0, 1)"),
    (lambda c: c.update(datasets=[{"kind": "moons"}]), "dataset kind must be one of"),
    (lambda c: c.update(datasets=[{"kind": "separable", "n": 1}]), "n must be an integer >= 2"),
    (lambda c: c.update(seeds=[-1]), "seeds must be integers >= 0"),
    (lambda c: c.update(grid={}), "unknown top-level keys ['grid']"),
    (lambda c: c.update(models=[{"name": "linear", "width": 3}]), "use 'options' for build() options"),
])
def test_bad_configs_raise_sweep_error(change, fragment):
    raw = small()
    change(raw)
    with pytest.raises(SweepError) as info:
        config_from_dict(raw)
    assert fragment in str(info.value)


def test_unparsable_config_file(tmp_path):
    (tmp_path / "s.toml").write_text("name = [")
    with pytest.raises(SweepError, match="does not parse as TOML"):
        load_config(tmp_path / "s.toml")


@pytest.mark.parametrize("text, expected", [("0/2", (0, 2)), ("3/4", (3, 4)), (None, None)])
def test_parse_shard(text, expected):
    assert parse_shard(text) == expected


@pytest.mark.parametrize("text", ["2/2", "1", "a/b", "-1/3", "0/0"])
def test_bad_shards(text):
    with pytest.raises(SweepError):
        parse_shard(text)


# ---- running ------------------------------------------------------------------------------------
def test_serial_sweep_records_every_point_and_validates(serial, validator):
    report = json.loads(dumps_strict(serial.to_dict()))
    validator.validate(report)
    assert report["kind"] == "sweep" and report["schema_version"] == 1 and report["seed"] is None
    assert [p["index"] for p in report["points"]] == list(range(24))
    assert report["summary"] == {"points": 24, "computed": 24, "ok": 12, "not_ok": 0, "error": 12, "missing": []}
    failed = [p for p in report["points"] if p["dataset"] == "gone"]
    assert len(failed) == 12 and all(p["status"] == ERROR and p["result"] is None for p in failed)
    assert all(p["error"].startswith("DataError: data file not found: /no/such/data.npz") for p in failed)
    solved = {(p["model"], p["seed"], p["type"]): p for p in report["points"] if p["dataset"] == "g"}
    mm = solved[("linear", 0, "max_margin")]
    assert mm["status"] == "optimal" and mm["ok"] and mm["error"] is None and mm["result"]["kkt_max"] < 1e-8
    assert solved[("deep_linear", 1, "margin_path")]["result"]["statuses"] == ["optimal", "optimal"]
    assert solved[("linear", 0, "train")]["status"] == "completed"
    assert not serial.all_ok


def test_points_match_direct_solves(serial):
    import lexmargin as lm
    from lexmargin.sweep import separable_data

    point = next(p for p in serial.points if (p["model"], p["dataset"], p["seed"], p["type"]) ==
                 ("linear", "g", 1, "max_margin"))
    cert = lm.max_margin(lm.load_model("linear", input_dim=2), separable_data(12, 2, 1), seed=1)
    np.testing.assert_allclose(point["result"]["theta"], cert.theta, rtol=0, atol=0)


def test_a_solve_that_is_not_certified_keeps_its_status():
    raw = {"name": "limited", "models": ["linear"], "datasets": [{"kind": "separable", "n": 12, "d": 2}],
           "problems": [{"type": "max_margin", "options": {"time_limit": 1e-9}}]}
    (point,) = run_sweep(raw).points
    assert point["status"] == "max_time" and point["ok"] is False and point["error"] is None
    assert point["result"]["status"] == "max_time"


def test_threads_give_the_serial_report(serial):
    pytest.importorskip("dask")
    parallel = run_sweep(small(), jobs=2, scheduler="threads")
    assert comparable(parallel.to_dict()) == comparable(serial.to_dict())
    assert parallel.runs[0]["scheduler"] == "threads" and parallel.runs[0]["jobs"] == 2


def test_processes_give_the_serial_report(serial):
    pytest.importorskip("dask")
    parallel = run_sweep(small(), jobs=2, scheduler="processes")
    assert comparable(parallel.to_dict()) == comparable(serial.to_dict())


def test_shards_merge_into_the_full_report(serial, validator, tmp_path):
    a = run_sweep(small(), shard="0/2").save(tmp_path / "a.json")
    b = run_sweep(small(), shard=(1, 2)).save(tmp_path / "b.json")
    half = json.loads(a.read_text())
    assert half["summary"]["missing"] == list(range(1, 24, 2)) and half["runs"][0]["shard"] == "0/2"
    validator.validate(half)
    merged = merge_reports([b, a])                       # any order: points come out by index
    report = json.loads(dumps_strict(merged.to_dict()))
    validator.validate(report)
    assert comparable(report) == comparable(serial.to_dict())
    assert report["summary"]["missing"] == [] and [r["shard"] for r in report["runs"]] == ["1/2", "0/2"]


def test_merge_replaces_failed_points_and_refuses_conflicts(serial, tmp_path):
    data = tmp_path / "d.npz"
    failing = run_sweep(small(bad_path=str(data)), shard="1/2").to_dict()
    rng = np.random.default_rng(0)
    X = rng.standard_normal((12, 2))
    Dataset(X + 0.3 * np.sign(X[:, :1]) * [1.0, 0.0], np.sign(X[:, 0])).save(data)
    fixed = run_sweep(small(bad_path=str(data)), shard="1/2").to_dict()
    fixed_points = [p for p in fixed["points"] if p["dataset"] == "gone"]
    assert fixed_points and all(p["status"] != ERROR for p in fixed_points)
    merged = merge_reports([failing, fixed]).to_dict()
    assert all(p["status"] != ERROR for p in merged["points"])
    assert comparable(merge_reports([fixed, failing]).to_dict()) == comparable(merged)   # an error never wins
    conflicting = json.loads(json.dumps(fixed, default=float))
    conflicting["points"][0]["result"]["objective"] = 123.0
    with pytest.raises(SweepError, match="conflicting results for grid point 1"):
        merge_reports([fixed, conflicting])
    with pytest.raises(SweepError, match="different sweeps"):
        merge_reports([serial.to_dict(), run_sweep(small() | {"name": "other"}, shard="0/4").to_dict()])
    with pytest.raises(SweepError, match="nothing to merge"):
        merge_reports([])


def test_merge_refuses_other_reports(tmp_path):
    (tmp_path / "r.json").write_text(json.dumps({"schema_version": 1, "kind": "paper_suite"}))
    with pytest.raises(SweepError, match="is not a sweep report"):
        merge_reports([tmp_path / "r.json"])


# ---- lexmargin.parallel ---------------------------------------------------------------------------
def _square_or_fail(x):
    if x == 3:
        raise ValueError("three")
    return x * x


@pytest.mark.parametrize("jobs, scheduler", [(1, "processes"), (1, "sync"), (2, "sync"), (3, "threads")])
def test_run_tasks_keeps_order_and_failures(jobs, scheduler):
    if jobs > 1 and scheduler != "sync":
        pytest.importorskip("dask")
    out = run_tasks(_square_or_fail, [(x,) for x in range(6)], jobs=jobs, scheduler=scheduler,
                    on_error=lambda call, exc: f"{type(exc).__name__}: {exc}")
    assert out == [0, 1, 4, "ValueError: three", 16, 25]
    with pytest.raises(ValueError, match="three"):
        run_tasks(_square_or_fail, [(3,)], jobs=jobs, scheduler=scheduler)


def test_missing_dask_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "dask", None)        # import dask raises ImportError
    assert run_tasks(_square_or_fail, [(2,)], jobs=1) == [4]   # serial runs need no dask
    with pytest.raises(MissingDependencyError, match=r'pip install "lexmargin\[dask\]"'):
        run_tasks(_square_or_fail, [(2,)], jobs=2)


# ---- command line ---------------------------------------------------------------------------------
def run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_sweep_shards_and_merge(tmp_path, capsys, validator):
    config = tmp_path / "s.json"
    raw = small()
    raw["datasets"] = raw["datasets"][:1]
    config.write_text(json.dumps(raw))
    code, out, err = run(["sweep", config, "--shard", "0/2", "--out", tmp_path / "a.json"], capsys)
    assert code == 1 and "sweep small: 12 grid points, shard 0/2 ..." in err   # half the points are missing
    code, out, _ = run(["sweep", config, "--shard", "1/2", "--out", tmp_path / "b.json", "-q"], capsys)
    assert code == 1 and out == ""
    code, out, _ = run(["sweep", "merge", tmp_path / "a.json", tmp_path / "b.json", "--out", tmp_path / "c.json"],
                       capsys)
    assert code == 0 and "merged 2 reports of sweep small: 12 of 12 points ok" in out
    merged = json.loads((tmp_path / "c.json").read_text())
    validator.validate(merged)
    assert (tmp_path / "c.md").read_text().startswith("# Sweep small")
    code, _, _ = run(["sweep", config, "--out", tmp_path / "full.json", "-q"], capsys)
    assert code == 0
    assert comparable(json.loads((tmp_path / "full.json").read_text())) == comparable(merged)


@pytest.mark.parametrize("argv, fragment", [
    (["sweep", "merge", "--out", "x.json"], "sweep merge needs the reports to merge"),
    (["sweep", "merge", "a.json"], "sweep merge needs --out"),
    (["sweep", "a.json", "b.json"], "sweep takes one CONFIG"),
    (["sweep", "no_such.toml"], "No such file"),
    (["sweep", str(EXAMPLE), "--shard", "3/2"], "shard must look like K/N"),
    (["suite", "perf", "--jobs", "2"], "the perf suite times its benchmarks one at a time"),
])
def test_cli_sweep_errors_are_one_line(argv, fragment, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(argv, capsys)
    assert code == 2 and "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("sweep ")]
    assert len(lines) == 1 and fragment in lines[0], err


def test_cli_without_dask(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LEXMARGIN_BENCHMARKS", str(ROOT / "benchmarks"))
    monkeypatch.setitem(sys.modules, "dask", None)
    code, _, err = run(["sweep", EXAMPLE, "--jobs", "2", "--out", tmp_path / "x.json"], capsys)
    assert code == 2 and err.strip() == ('lexmargin sweep: error: --jobs 2 needs dask, which is not installed: '
                                         'pip install "lexmargin[dask]" (or run with --jobs 1)')
    assert not (tmp_path / "x.json").exists()
    code, _, err = run(["suite", "paper", "--quick", "--jobs", "2", "--out", tmp_path], capsys)
    assert code == 2 and "--jobs 2 needs dask" in err and len(err.strip().splitlines()) == 1


def test_quick_paper_suite_in_parallel_is_the_serial_suite(tmp_path, capsys, monkeypatch):
    pytest.importorskip("dask")
    monkeypatch.setenv("LEXMARGIN_BENCHMARKS", str(ROOT / "benchmarks"))   # this checkout's suite
    code, _, _ = run(["suite", "paper", "--quick", "--out", tmp_path / "serial", "-q"], capsys)
    assert code == 0
    code, _, _ = run(["suite", "paper", "--quick", "--jobs", "2", "--out", tmp_path / "parallel", "-q"], capsys)
    assert code == 0
    serial, parallel = (json.loads((tmp_path / name / "report.json").read_text()) for name in ("serial", "parallel"))

    def timeless(value):
        """value without its wall-clock entries (keys naming seconds, at any depth)."""
        if isinstance(value, dict):
            return {k: timeless(v) for k, v in value.items() if "second" not in k}
        return value

    def checks(report, folder):
        out = []
        for check in report["checks"]:
            check = timeless(check)
            check["plots"] = [Path(p).relative_to(folder).as_posix() for p in check["plots"]]
            out.append(check)
        return out

    names = [c["name"] for c in serial["checks"]]
    assert len(names) == 12 and {"geometry", "path_sgd_limits", "sgd_limit", "multiclass_gd_rate"} <= set(names)
    assert serial["summary"] == parallel["summary"] and serial["summary"]["passed"] == len(names)
    assert checks(serial, tmp_path / "serial") == checks(parallel, tmp_path / "parallel")


def test_verbose_sweep_logs_each_point(caplog):
    import logging

    raw = {"name": "one", "models": ["linear"], "datasets": [{"kind": "separable", "n": 12, "d": 2}],
           "seeds": [0, 1], "problems": ["max_margin"]}
    with caplog.at_level(logging.INFO, logger="lexmargin"):
        result = run_sweep(raw, verbose=True, progress=True)     # no bar in tests; records at INFO
    lines = [r.getMessage() for r in caplog.records if r.name == "lexmargin.sweep"]
    assert [line.split(":")[0] for line in lines] == ["sweep point 0 (linear, separable_12x2, seed 0, max_margin)",
                                                      "sweep point 1 (linear, separable_12x2, seed 1, max_margin)"]
    assert all("optimal in" in line for line in lines) and result.all_ok


def test_bad_run_options_are_refused_before_any_work():
    from lexmargin.errors import LexmarginError

    with pytest.raises(LexmarginError, match="jobs must be an integer >= 1"):
        run_sweep(small(), jobs=0)
    with pytest.raises(LexmarginError, match="scheduler must be one of"):
        run_sweep(small(), scheduler="gpu")


def test_address_without_distributed_is_a_clear_error(monkeypatch):
    pytest.importorskip("dask")
    monkeypatch.setitem(sys.modules, "dask.distributed", None)
    with pytest.raises(MissingDependencyError, match=r"--address tcp://127.0.0.1:8786 needs dask.distributed"):
        run_tasks(_square_or_fail, [(2,)], address="tcp://127.0.0.1:8786")


def test_address_runs_on_a_distributed_client(monkeypatch, serial):
    """The distributed route: a Client on the address computes the tasks; the points come back in order."""
    dask = pytest.importorskip("dask")
    import types

    opened = []

    class Client:                        # the part of dask.distributed.Client that run_tasks uses
        def __init__(self, address):
            opened.append(address)
            self.closed = False

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.closed = True

        def compute(self, tasks):          # futures, here already their values
            return list(dask.compute(*tasks, scheduler="threads"))

        def gather(self, futures):
            return list(futures)

    monkeypatch.setitem(sys.modules, "dask.distributed", types.SimpleNamespace(Client=Client))
    result = run_sweep(small(), address="tcp://10.0.0.1:8786")
    assert opened == ["tcp://10.0.0.1:8786"] and result.runs[0]["scheduler"] == "distributed"
    assert comparable(result.to_dict()) == comparable(serial.to_dict())


def test_train_points_take_any_registered_rule_and_a_geometry():
    """A train problem names a registered step rule and optionally a geometry; the point is what train gives."""
    import lexmargin as lm
    from lexmargin.numeric import Steepest, kernel_for, train
    from lexmargin.numeric.steps import Momentum
    from lexmargin.sweep import separable_data

    raw = {"name": "rules", "models": ["linear"], "datasets": [{"kind": "separable", "n": 12, "d": 2}],
           "problems": [{"type": "train", "steps": 30, "checkpoints": 3, "rule": "momentum", "lr": 0.05},
                        {"type": "train", "steps": 30, "checkpoints": 3, "rule": "normalized", "geometry": "lp",
                         "p": 3.0}]}
    momentum, lp = run_sweep(raw).points
    model, data = lm.load_model("linear", input_dim=2), separable_data(12, 2, 0)
    theta0 = model.random_params(0)[None, :]
    for point, rule in ((momentum, Momentum(0.05)), (lp, Steepest("lp", lm.numeric.Normalized(0.1), p=3.0))):
        assert point["status"] == "completed"
        expected = train(kernel_for(model, data.X, data.y), theta0, rule=rule, n_steps=30, checkpoints=3, seed=0)
        np.testing.assert_allclose(point["result"]["theta"], expected.theta, rtol=1e-12)
    bad = [({"rule": "steepest"}, "rule must be one of"), ({"rule": "nope"}, "rule must be one of"),
           ({"geometry": "l3"}, "geometry must be one of"), ({"rule": "momentum", "geometry": "l1"}, "step-size rule"),
           ({"geometry": "lp"}, "needs p")]
    for extra, fragment in bad:
        raw["problems"] = [{"type": "train", "steps": 2, **extra}]
        (point,) = run_sweep(raw).points
        assert point["status"] == ERROR and fragment in point["error"], point["error"]
