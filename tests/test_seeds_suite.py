"""`lexmargin suite seeds --quick` (benchmarks/seeds_suite.py): Path-SGD vs SGD vs AdaGrad on digits from balanced
and unbalanced starts, and test error vs width; report.json follows the schema and records the run's seconds (its
speed is measured, not asserted: about 23 s on an idle 2-core machine, docs/reports_and_suites.md)."""

import json
import time

import pytest
from test_benchmarks import assert_follows_schema

from lexmargin.cli import main

pytest.importorskip("sklearn")


def test_quick_seeds_suite_through_the_cli(tmp_path, capsys):
    start = time.perf_counter()
    code = main(["suite", "seeds", "--quick", "--out", str(tmp_path), "--format", "png", "svg", "pdf",
                 "--no-progress"])
    seconds = time.perf_counter() - start
    out = capsys.readouterr().out
    assert code == 0 and "# Seeds suite (quick)" in out
    report = json.loads((tmp_path / "report.json").read_text())
    assert_follows_schema(report)
    assert report["kind"] == "seeds_suite" and report["suite"] == "seeds" and 0 < report["seconds"] <= seconds
    checks = {c["name"]: c for c in report["checks"]}
    assert [c["status"] for c in checks.values()] == ["passed", "passed"]
    methods = checks["optimizers"]["numbers"]["methods"]
    # Path-SGD from the two starts of the same function: the same outputs to rounding; SGD and AdaGrad: not
    assert methods["path_sgd"]["output_gap_balanced_vs_unbalanced"] < 1e-12
    assert methods["sgd"]["output_gap_balanced_vs_unbalanced"] > 1e-2
    assert methods["adagrad"]["output_gap_balanced_vs_unbalanced"] > 1e-2
    for m in methods.values():         # every method learns (quick: 300 steps)
        assert m["final_train_error"]["balanced"] < 0.1 and len(m["curves"]["steps"]) == 16
    rows = checks["width"]["numbers"]["rows"]
    assert [r["H"] for r in rows] == [8, 32, 128] and rows[-1]["reached_zero_train_error"]
    for check in checks.values():
        assert sorted(p.rsplit(".", 1)[1] for p in check["plots"]) == ["pdf", "png", "svg"]
        assert all((tmp_path / p.rsplit("/", 1)[1]).exists() for p in check["plots"])
