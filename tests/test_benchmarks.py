import json
from pathlib import Path

import numpy as np
import pytest

from lexmargin.cli import load_suite_module


def assert_follows_schema(document) -> None:
    """docs/schema/report.schema.json (when jsonschema is installed: it is in the test extra)."""
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((Path(__file__).resolve().parents[1] / "docs" / "schema" / "report.schema.json").read_text())
    errors = [f"{list(e.absolute_path)}: {e.message[:200]}" for e in jsonschema.Draft202012Validator(schema)
              .iter_errors(document)]
    assert not errors, errors


@pytest.fixture(scope="module")
def paper():
    return load_suite_module("paper")


@pytest.fixture(scope="module")
def perf():
    return load_suite_module("perf")


@pytest.fixture(scope="module")
def common(paper):
    import common

    return common


def test_check_result_status_rules(common):
    ok = common.CheckResult("a", "claim", True, {"x": np.float64(1.5), "flag": np.bool_(True)})
    assert ok.status == "passed" and ok.to_dict()["numbers"] == {"x": 1.5, "flag": True}
    na = common.not_available("b", "claim", "module missing")
    assert na.passed is False and na.status == "not available" and na.note == "module missing"
    with pytest.raises(ValueError, match="contradicts"):
        common.CheckResult("c", "claim", True, status="not available")
    json.dumps(common.jsonable({"v": np.array([1.0, np.inf]), "n": np.int64(3)}))


def test_run_check_turns_exceptions_into_error_results(common):
    def check_boom(cfg):
        """Claim that explodes."""
        raise RuntimeError("kaboom")

    result = common.run_check(check_boom, cfg=None)
    assert result.status == "error" and not result.passed
    assert result.name == "boom" and "RuntimeError: kaboom" in result.note and result.claim == "Claim that explodes."


def test_markdown_table_escapes_pipes(common):
    table = common.markdown_table(("a", "b"), [("||x||", 0.123456789), (None, True)])
    assert "\\|\\|x\\|\\|" in table and "0.1235" in table and "| n/a | yes |" in table


def test_quick_paper_suite_end_to_end(tmp_path, paper):
    suite = paper.run_paper_suite(tmp_path, quick=True, progress=False)
    names = [c.name for c in suite.checks]
    assert names == ["lemma3_bound", "theorem1_shallow_discarded", "svm_bias", "theorems23_homogeneous",
                     "theorem4_lexicographic", "log_vs_eps_log", "path_sgd_invariance", "gd_rate",
                     "multiclass_gd_rate", "geometry", "path_sgd_limits", "sgd_limit"]
    failures = {c.name: (c.status, c.note, c.numbers) for c in suite.checks if c.status not in ("passed",)}
    assert not failures
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["summary"]["passed"] == 12 and saved["quick"] is True
    assert saved["kind"] == "paper_suite" and saved["seed"] == 0 and saved["schema_version"] == 1
    assert_follows_schema(saved)
    md = (tmp_path / "report.md").read_text()
    assert "12 passed, 0 failed, 0 not available, 0 error" in md
    for check in suite.checks:
        assert check.plots, check.name
        for plot in check.plots:
            assert Path(plot).read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "theorems23_report" / "report.md").exists()


def test_missing_module_gives_not_available(paper, monkeypatch, tmp_path):
    monkeypatch.setattr(paper, "optional_module", lambda name: None)
    monkeypatch.setattr(paper, "missing", lambda *names: list(names))
    cfg = paper.SuiteConfig(tmp_path, quick=True)
    for check in paper.CHECKS:
        result = check(cfg)
        assert result.status == "not available" and not result.passed and "missing" in result.note


def test_quick_perf_suite_structure(tmp_path, perf):
    suite = perf.run_perf_suite(tmp_path, quick=True, progress=False)
    by_name = {b.name: b for b in suite.benchmarks}
    assert set(by_name) == {"max_margin", "gd_throughput", "path_sgd_overhead", "structured"}
    assert all(b.status in ("passed", "not available") for b in suite.benchmarks), [b.note for b in suite.benchmarks]
    for row in by_name["max_margin"].rows:  # correctness of the compared solutions, not their speed
        assert row["lexmargin_status"] == "optimal"
        assert row["angle_vs_cvxpy"] < 1e-5 and row["objective_rel_diff"] < 1e-5
        assert row["cvxpy_over_lexmargin"] > 0 and row["svc_over_lexmargin"] > 0
    for row in by_name["gd_throughput"].rows:
        assert 0 < row["fraction_of_matmul_peak"]
    for row in by_name["structured"].rows:  # each formulation certified, and they agree
        assert row["status"] == "optimal" and row.get("general_status", row.get("lse_status")) == "optimal"
        assert max(row.get(k, 0.0) for k in ("objective_rel_diff", "normalized_margin_rel_diff",
                                             "theta_diff_vs_lse")) < 1e-8
    saved = json.loads((tmp_path / "report.json").read_text())
    assert [b["name"] for b in saved["benchmarks"]] == ["max_margin", "gd_throughput", "path_sgd_overhead",
                                                        "structured"]
    assert saved["kind"] == "perf_suite" and saved["seed"] == 0 and saved["environment"]["cpus"] >= 1
    assert_follows_schema(saved)
    assert "| N | d | lexmargin_s |" in (tmp_path / "report.md").read_text()


def test_bench_numeric_runs_every_contender(tmp_path):
    """A tiny run of benchmarks/bench_numeric.py: every contender is timed and the report is complete."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("bench_numeric", Path(__file__).parents[1] / "benchmarks" / "bench_numeric.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "b.json"
    report = bench.main(["--runs", "32", "--samples", "70", "--dim", "6", "--steps", "3", "--repeats", "1",
                         "--dtype", "float64", "--threads", "1", "--peak-size", "200", "--json", str(out)])
    result = report["results"][0]
    for name in ("numpy", "numpy_generic", "numpy_2_workers"):
        assert result[name]["gflops"] > 0 and 0 < result[name]["fraction_of_peak"]
    assert result["breakdown_us"]["whole step"] > 0
    assert json.loads(out.read_text())["results"][0]["dtype"] == "float64"


def test_bench_numeric_times_every_geometry(tmp_path):
    """A tiny run of bench_numeric.py --geometry: every rule is timed against the peak (no timing is asserted)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("bench_numeric", Path(__file__).parents[1] / "benchmarks" / "bench_numeric.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    report = bench.main(["--geometry", "--runs", "4", "--samples", "50", "--dim", "6", "--steps", "3", "--repeats", "1",
                         "--dtype", "float64", "--peak-size", "200", "--json", str(tmp_path / "g.json")])
    result = report["geometry"][0]
    for name in bench.geometry_rules():
        assert 0 < result[name]["fraction_of_peak"] and result[name]["over_gd"] > 0
    assert json.loads((tmp_path / "g.json").read_text())["geometry"][0]["dtype"] == "float64"


def test_soudry_offset_follows_the_certificate_convention(paper):
    """w_hat = sum_n alpha_n a_n with alpha = multipliers / 2, and lr exp(-a_n.w_tilde) = alpha_n on the support."""
    data = paper.separable_data(30, 2, seed=4)
    certificate = paper.svm_without_bias(data)
    lr = 0.05
    w_hat, w_tilde, support_rows = paper.soudry_offset(data, certificate, lr)
    A = data.y[:, None] * data.X
    alpha = np.asarray(certificate.multipliers) / 2
    np.testing.assert_allclose(A.T @ alpha, w_hat, rtol=1e-8, atol=1e-10)
    support = alpha > 1e-9 * alpha.max()
    np.testing.assert_allclose(lr * np.exp(-support_rows @ w_tilde), alpha[support], rtol=1e-8)


@pytest.mark.parametrize("seed", [1, 2, 5])
def test_gd_rate_holds_beyond_seed_0(paper, tmp_path, seed):
    result = paper.check_gd_rate(paper.SuiteConfig(out_dir=tmp_path, quick=True, seed=seed))
    assert result.passed and result.numbers["distance_decreasing"]


@pytest.mark.parametrize("seed", [1, 3])
def test_multiclass_gd_rate_holds_beyond_seed_0(paper, tmp_path, seed):
    result = paper.check_multiclass_gd_rate(paper.SuiteConfig(out_dir=tmp_path, quick=True, seed=seed))
    assert result.passed and result.numbers["certificate_status"] == "optimal"
    assert np.all(np.diff(result.numbers["distance"]) < 0) and result.numbers["rate_C"] > 0


def test_multiclass_offset_solves_its_defining_equations(paper):
    """W_hat = sum alpha a over the margin rows (a = (e_y - e_k) kron x), lr exp(-a.W_tilde) = alpha on the support."""
    data = paper.multiclass_separable_data(30, 2, 3, seed=4)
    model = paper.lexmargin.load_model("multiclass_linear", input_dim=2, n_classes=3)
    certificate = paper.lexmargin.max_margin(model, data)
    from lexmargin.numeric import kernel_for
    kernel = kernel_for(model, data)
    rows = kernel.per_sample_jacobian(np.zeros(kernel.n_params), np.arange(kernel.n_samples))
    w_hat, w_tilde, support_rows = paper.soudry_offset_rows(rows, certificate, 0.05)
    alpha = np.asarray(certificate.multipliers) / 2
    np.testing.assert_allclose(rows.T @ alpha, w_hat, rtol=1e-8, atol=1e-10)
    support = alpha > 1e-9 * alpha.max()
    np.testing.assert_allclose(0.05 * np.exp(-support_rows @ w_tilde), alpha[support], rtol=1e-8)


def test_geometry_check_holds_beyond_seed_0(paper, tmp_path):
    """Seed 0 runs in the end-to-end test; seeds 0-9 pass (--quick, and 0-4 in full: docs/reports_and_suites.md)."""
    result = paper.check_geometry(paper.SuiteConfig(out_dir=tmp_path, quick=True, seed=3, formats=("png", "svg")))
    assert result.passed, result.numbers
    rows = result.numbers["geometries"]
    assert set(rows) == {"l1", "linf", "l3", "l1.5", "mirror_l3", "mirror_l1.5"}
    for name, row in rows.items():
        assert row["certificate_status"] == "optimal"
        if not name.startswith("mirror"):
            assert max(row["gap_slope"]) < -0.5
    assert not rows["mirror_l3"]["claimed"] and max(rows["mirror_l3"]["final_gap"]) < 0.1   # reported: slower
    assert sorted(Path(p).suffix for p in result.plots) == [".png", ".svg"]


def test_geometry_check_fails_for_the_wrong_geometry(paper):
    """The check can fail: GD (l2 steepest descent) measured against the linf certificate converges to the SVM,
    whose linf margin falls short of the certified one, so its gap stalls and the angle stays large."""
    from lexmargin.numeric.geometry import get_geometry
    from lexmargin.problems.maxmargin import max_margin

    data = paper.separable_data(30, 8, seed=0)
    model = paper.lexmargin.load_model("linear", input_dim=8)
    svm, linf = max_margin(model, data), max_margin(model, data, norm="linf")
    wrong = paper.geometry_run(data, linf, svm, get_geometry("l2"), 10_000)
    assert not wrong["passed"] and wrong["svm_gap"] > 0.05
    assert min(wrong["final_gap"]) > paper.GEOMETRY_MAX_GAP and min(wrong["final_angle"]) > paper.GEOMETRY_MAX_ANGLE
    right = paper.geometry_run(data, linf, svm, get_geometry("linf"), 10_000)
    assert max(right["final_gap"]) < min(wrong["final_gap"]) / 3


def test_path_sgd_limits_check_can_fail(paper):
    """The claim applied to the wrong geometry fails: GD's limit (seed 1, quick) is within 0.3 % of an l2 certificate
    but its path-norm margin is about 20 % short of the path-norm certificate from the same limit, while Path-SGD's
    limit is within 2 % of its path-norm certificate (seeds 0-9 pass: docs/path_norm.md)."""
    model = paper.lexmargin.load_model("two_layer", input_dim=2, activation="relu", width=4)
    data = paper.separable_data(20, 2, seed=1)
    theta0 = paper.path_limit_starts(model, 1)
    gd = paper.path_limit_runs(model, data, theta0, 10_000, path_sgd=False)
    assert gd["separated"].sum() >= 2
    sep = gd["separated"]
    assert np.median(gd["l2_ratio"][sep]) >= 1 - paper.PATH_LIMIT_MAX_GAP                  # its own geometry
    assert np.median(gd["path_ratio"][sep]) < 1 - 3 * paper.PATH_LIMIT_MAX_GAP              # the wrong one
    psgd = paper.path_limit_runs(model, data, theta0, 10_000, path_sgd=True)
    assert np.median(psgd["path_ratio"][psgd["separated"]]) >= 1 - paper.PATH_LIMIT_MAX_GAP


def test_sgd_limit_check_records_its_numbers(paper, tmp_path):
    result = paper.check_sgd_limit(paper.SuiteConfig(out_dir=tmp_path, quick=True, seed=1))
    assert result.passed, result.numbers
    n = result.numbers
    assert np.all(n["final_angle"] <= paper.SGD_MAX_ANGLE) and np.all(n["angle_slope"] < 0)
    assert np.all(np.abs(np.log(n["angle_over_gd"])) <= np.log(paper.SGD_GD_FACTOR))


def test_svm_bias_check_reports_data_without_an_svm_through_the_origin(paper, tmp_path):
    """Seed 1's shifted data is separable with a bias but not through the origin: the check evaluates its claim
    (that SVM does not exist: angle pi, Farkas status) instead of ending in an error."""
    result = paper.check_svm_bias(paper.SuiteConfig(out_dir=tmp_path, quick=True, seed=1))
    assert result.status in ("passed", "failed")
    assert result.numbers["origin_svm_status"] == "not_separable"
    assert result.numbers["angle_svm_bias_vs_origin"] == pytest.approx(np.pi)
    assert result.numbers["angle_depth_vs_cvxpy"] < 1e-6


def test_bench_multiclass_times_every_contender(tmp_path):
    """A tiny run of benchmarks/bench_multiclass.py (digits, 2 runs): every contender is timed against the peak."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("bench_multiclass",
                                                  Path(__file__).parents[1] / "benchmarks" / "bench_multiclass.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    report = bench.main(["--runs", "2", "--steps", "2", "--repeats", "1", "--peak-size", "200",
                         "--json", str(tmp_path / "m.json")])
    result = report["results"][0]
    assert (result["N"], result["d"], result["K"]) == (1797, 64, 10)
    for name in ("lexmargin", "lexmargin_kernel_numpy", "lexmargin_generic"):
        assert result[name]["gflops"] > 0 and 0 < result[name]["fraction_of_peak"]
    assert result["kernels"]["lexmargin_generic"] == "generic" and result["kernels"]["lexmargin"] != "generic"
    assert json.loads((tmp_path / "m.json").read_text())["results"][0]["dtype"] == "float64"


@pytest.fixture
def contender():
    import importlib.util

    path = Path(__file__).resolve().parent.parent / "benchmarks" / "perf_contender.py"
    spec = importlib.util.spec_from_file_location("perf_contender_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_contender_timing_repeats_fast_calls_until_the_minimum_time(contender, monkeypatch):
    """perf_contender.timed: at least ``repeat`` calls; more until ``min_seconds`` of calls have run (at most
    ``max_calls``); one call when a call takes over REPEAT_SECONDS; the best call's time (a fake clock: each call
    takes the next of the given durations)."""
    def run(durations, *args, **kwargs):
        clock, calls = [0.0], iter(durations)

        def call():
            clock[0] += next(calls)
            return clock[0]
        monkeypatch.setattr(contender.time, "perf_counter", lambda: clock[0])
        return contender.timed(call, *args, **kwargs)

    ms, half = 2.0 ** -10, 2.0 ** -11                  # powers of two: the fake clock's sums are exact
    assert run([4 * ms, ms, 2 * ms, ms], 3)[:2] == (ms, 3)                    # no minimum time: exactly 3 calls
    best, calls, _ = run([ms] * 100 + [half] + [ms] * 1000, 3, 0.5)
    assert (best, calls) == (half, 513)                                        # 512.5 ms after 513 calls
    assert run([ms] * 20, 3, 10.0, max_calls=7)[1] == 7
    assert run([6.0, 1.0, 1.0], 3, 0.5)[:2] == (6.0, 1)                      # a call over 5 s is timed once
    assert run([0.4, 0.4, 0.4, 0.4], 2, 0.5)[:2] == (0.4, 2)               # 0.8 s spent after the repeat


def test_perf_floor_times_the_certificates_the_call_returns(tmp_path):
    """benchmarks/perf_floor.py: the certify calls it times are the computations of the certificates svm_with_bias
    returns (the same residuals, bit for bit), the QP's at the dual route's proposal certifies, and the floor is the
    sum of its parts."""
    import importlib.util

    from benchmarks.common import separable_data

    path = Path(__file__).parents[1] / "benchmarks" / "perf_floor.py"
    spec = importlib.util.spec_from_file_location("perf_floor", path)
    floor = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(floor)
    from lexmargin.nlp.options import Tolerances

    data = separable_data(30, 4, 1)
    parts = floor._parts(data)
    assert set(parts) == {"svm_with_bias", "svc", "ldp", "certify_qp", "certify_w", "certify_b"}
    _, _, result = parts["svm_with_bias"]()
    for name, stage in zip(("certify_w", "certify_b"), result.stages):
        report = parts[name]()
        assert report.residuals == stage.certificate.kkt and report.kkt_met(Tolerances())
    assert parts["certify_qp"]().kkt_met(Tolerances()) and parts["ldp"]().status == "optimal"
    assert floor.main(["--sizes", "30x4", "--repeat", "2", "--rounds", "1", "--out", str(tmp_path)]) == 0
    row = json.loads((tmp_path / "floor.json").read_text())[0]
    parts_ms = row["ldp_ms"] + row["certify_qp_ms"] + row["certify_w_ms"] + row["certify_b_ms"]
    assert row["floor_ms"] == parts_ms and row["floor_over_svc"] == row["floor_ms"] / row["svc_ms"]
    assert "| N | d | svm_with_bias_ms |" in (tmp_path / "floor.md").read_text()
