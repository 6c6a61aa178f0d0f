import json
import subprocess
import sys

import numpy as np
import pytest

from lexmargin import Dataset
from lexmargin.cli import CLIError, main, parse_options, parse_value


@pytest.fixture()
def data_file(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((25, 2))
    y = np.where(X @ np.array([1.0, 0.3]) >= 0, 1.0, -1.0)
    path = tmp_path / "data.npz"
    Dataset(X + 0.3 * y[:, None] * np.array([1.0, 0.3]), y).save(path)
    return path


def run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, err, fragment):
    assert code == 2
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and fragment in lines[0], err


def test_parse_values_and_options():
    assert parse_value("3") == 3 and parse_value("0.5") == 0.5 and parse_value("True") is True
    assert parse_value("(1, 2)") == (1, 2) and parse_value("relu") == "relu" and parse_value("none") is None
    assert parse_options(["width=4", "activation=relu"]) == {"width": 4, "activation": "relu"}
    with pytest.raises(CLIError, match="key=value"):
        parse_options(["width"])


def test_models_lists_every_bundled_model(capsys):
    from lexmargin.modeling.loading import BUNDLED

    code, out, _ = run(["models"], capsys)
    assert code == 0
    for name in BUNDLED:
        assert f"\n{name}: " in "\n" + out
    assert "f = y*(w_0*x_0 + w_1*x_1)" in out


def test_solve_then_report_with_certificate(tmp_path, data_file, capsys):
    cert = tmp_path / "cert.json"
    code, out, _ = run(["solve", "linear", data_file, "--out", cert], capsys)
    assert code == 0 and "max_margin: optimal" in out
    saved = json.loads(cert.read_text())
    assert saved["status"] == "optimal" and len(saved["theta"]) == 2
    np.savez(tmp_path / "theta.npz", theta=5 * np.array(saved["theta"]))
    code, out, _ = run(["report", "linear", data_file, tmp_path / "theta.npz", "--certificate", cert,
                        "--support-tol", "1e-6", "--out", tmp_path / "rep", "--no-progress"], capsys)
    assert code == 0 and "Comparison with the solver certificate" in out
    report = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert report["kkt"]["relative_epsilon"] < 1e-8 and report["comparison"]["angle"] < 1e-10
    assert (tmp_path / "rep" / "multipliers.png").exists()


def test_report_reads_data_from_the_theta_file(tmp_path, data_file, capsys):
    data = Dataset.load(data_file)
    np.savez(tmp_path / "run.npz", thetas=np.array([[1.0, 0.2], [2.0, 0.5]]), iterations=[10, 100],
             X=data.X, y=data.y)
    code, out, _ = run(["report", "linear", "-", tmp_path / "run.npz", "--out", tmp_path / "r", "--no-progress"],
                       capsys)
    assert code == 0 and "## Trajectory" in out and (tmp_path / "r" / "angle.png").exists()


def test_solve_with_model_options(data_file, capsys):
    code, out, _ = run(["solve", "deep_linear", data_file, "-o", "depth=2", "-o", "width=2",
                        "--starts", "2"], capsys)
    assert code == 0 and "max_margin: optimal" in out


@pytest.mark.parametrize("argv, fragment", [
    (["solve", "linear", "missing.npz"], "data file not found"),
    (["solve", "linear", "{data}", "-o", "width=3"], "takes no options"),
    (["solve", "two_layer", "{data}", "-o", "widht=3"], "unexpected keyword argument 'widht'"),
    (["solve", "nosuchmodel", "{data}"], "cannot find model 'nosuchmodel'"),
    (["solve", "linear", "{data}", "-o", "width"], "must look like key=value"),
    (["report", "linear", "{data}", "missing.npz"], "parameter file not found"),
    (["report", "linear", "-", "{theta}"], "holds no X and y"),
    (["report", "deep_linear", "{data}", "{theta}"], "theta has 2 entries but model"),
    (["report", "linear", "{data}", "{theta}", "--certificate", "{data}"], "is not valid JSON"),
])
def test_readable_errors(tmp_path, data_file, capsys, argv, fragment):
    theta = tmp_path / "theta.npz"
    np.savez(theta, theta=np.ones(2))
    argv = [a.format(data=data_file, theta=theta) for a in argv] + (
        ["--out", str(tmp_path / "o")] if argv[0] == "report" else [])
    code, _, err = run(argv, capsys)
    assert_one_line_error(code, err, fragment)


def test_bad_data_file_is_a_readable_error(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("1,2,0.5\n3,4,1\n")
    code, _, err = run(["solve", "linear", bad], capsys)
    assert_one_line_error(code, err, "labels must be -1 or +1")


def test_suite_runs_selected_paper_checks(tmp_path, capsys):
    code, out, _ = run(["suite", "paper", "--quick", "--only", "theorem1_shallow_discarded", "--out", tmp_path,
                        "--no-progress"], capsys)
    assert code == 0 and "| theorem1_shallow_discarded | passed |" in out
    result = json.loads((tmp_path / "report.json").read_text())
    assert [c["name"] for c in result["checks"]] == ["theorem1_shallow_discarded"]


def test_suite_seed_and_formats_reach_the_report(tmp_path, capsys):
    code, out, _ = run(["suite", "paper", "--quick", "--only", "theorem4_lexicographic", "--seed", "3",
                        "--format", "svg", "pdf", "--out", tmp_path, "--no-progress"], capsys)
    assert code == 0 and "seed 3" in out
    result = json.loads((tmp_path / "report.json").read_text())
    assert result["seed"] == 3 and result["schema_version"] == 1
    assert sorted(p.rsplit("/", 1)[1] for p in result["checks"][0]["plots"]) == [
        "theorem4_lexicographic.pdf", "theorem4_lexicographic.svg"]
    assert not (tmp_path / "theorem4_lexicographic.png").exists()
    assert "![theorem4_lexicographic](theorem4_lexicographic.svg)" in (tmp_path / "report.md").read_text()


@pytest.mark.parametrize("argv, fragment", [
    (["suite", "paper", "--format", "gif"], "argument --format: invalid choice: 'gif'"),
    (["suite", "paper", "--seed", "-2"], "argument --seed: must be an integer >= 0"),
    (["report", "linear", "d.npz", "t.npz", "--format", "jpg"], "argument --format: invalid choice: 'jpg'"),
    (["info", "--yaml"], "unrecognized arguments: --yaml"),
])
def test_bad_format_seed_or_info_options_are_one_line_usage_errors(capsys, argv, fragment):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert_one_line_error(2, capsys.readouterr().err, fragment)


def test_info_prints_the_environment(capsys):
    from lexmargin.environment import environment

    code, out, _ = run(["info"], capsys)
    assert code == 0
    for label in ("lexmargin:", "NumPy:", "SciPy:", "SymPy:", "CasADi:", "IPOPT:", "git commit:", "CPU:",
                  "compiled GD kernel:"):
        assert label in out
    code, out, _ = run(["info", "--json"], capsys)
    assert code == 0 and json.loads(out) == environment()


def test_report_in_several_formats(tmp_path, data_file, capsys):
    np.savez(tmp_path / "theta.npz", theta=np.array([1.0, 0.3]))
    code, out, _ = run(["report", "linear", data_file, tmp_path / "theta.npz", "--out", tmp_path / "r",
                        "--format", "png", "pdf", "--no-progress"], capsys)
    assert code == 0 and "figures as png, pdf" in out
    assert (tmp_path / "r" / "multipliers.png").exists() and (tmp_path / "r" / "multipliers.pdf").exists()
    assert not (tmp_path / "r" / "multipliers.svg").exists()
    saved = json.loads((tmp_path / "r" / "report.json").read_text())
    assert saved["kind"] == "stationarity_report" and saved["seed"] is None


def test_unknown_check_name_is_a_readable_error(tmp_path, capsys):
    code, _, err = run(["suite", "paper", "--only", "lemma4", "--out", tmp_path, "--no-progress"], capsys)
    assert_one_line_error(code, err, "unknown check name(s) ['lemma4']; choose from ['lemma3_bound'")


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["suite", "nosuchsuite"])
    assert exc.value.code == 2
    assert_one_line_error(2, capsys.readouterr().err, "lexmargin suite: error: argument name: invalid choice")


def test_python_dash_m_entry_point():
    done = subprocess.run([sys.executable, "-m", "lexmargin", "--version"], capture_output=True, text=True,
                          check=False, timeout=60)
    assert done.returncode == 0 and done.stdout.startswith("lexmargin ")


def test_report_on_a_saved_numeric_history(tmp_path, data_file, capsys):
    numeric = pytest.importorskip("lexmargin.numeric")
    from lexmargin import load_model

    data = Dataset.load(data_file)
    kernel = numeric.kernel_for(load_model("linear", input_dim=2), data.X, data.y)
    history = numeric.train(kernel, np.array([[0.1, 0.0], [0.0, 0.1]]), rule=numeric.Constant(0.1), n_steps=300,
                            checkpoints=6)
    history.save(tmp_path / "hist.npz")
    code, out, _ = run(["report", "linear", data_file, tmp_path / "hist.npz", "--run", "1", "--out",
                        tmp_path / "r", "--no-progress"], capsys)
    assert code == 0 and "numeric History" in out and "| iteration | 0 .. 300 |" in out
    saved = json.loads((tmp_path / "r" / "report.json").read_text())
    np.testing.assert_allclose(saved["theta"], history.theta[1])


def test_solve_from_a_trained_theta_in_its_activation_region(tmp_path, data_file, capsys):
    from lexmargin import load_model

    model = load_model("two_layer", input_dim=2, activation="relu", width=3)
    rng = np.random.default_rng(1)
    data = Dataset.load(data_file)
    theta = next(t for t in (rng.standard_normal(model.n_params) for _ in range(200))
                 if model.margins(t, data).min() > 0)          # a separating "trained" network
    np.savez(tmp_path / "trained.npz", theta=1e6 * theta)
    cert = tmp_path / "cert.json"
    code, out, _ = run(["solve", "two_layer", data_file, "-o", "width=3", "--init", tmp_path / "trained.npz",
                        "--out", cert], capsys)
    # solved exactly within the region, which ends on its boundary with a binding sign row; the walk enters the
    # adjacent region and ends at a Clarke-KKT point (exit 0), with a larger normalized margin than the start's
    assert code == 0 and "max_margin: optimal" in out
    saved = json.loads(cert.read_text())
    region = saved["diagnostics"]["region"]
    assert region["n_sign_constraints"] == 25 * 3 and saved["kkt"]["max"] <= 1e-8
    assert [w["status"] for w in region["walk"]] == ["region_boundary", "optimal"]
    assert region["walk"][1]["objective"] < region["walk"][0]["objective"]
    assert region["clarke"]["residuals"]["max"] <= 1e-8
    assert saved["normalized_margin"] > model.normalized_margin(theta, data)
    code, _, err = run(["solve", "linear", data_file, "--init", tmp_path / "missing.npz"], capsys)
    assert_one_line_error(code, err, "not found")


def test_a_closed_pipe_ends_quietly_with_status_141():
    """`lexmargin models | head -1`: the reader goes away; no traceback, no error line, 128 + SIGPIPE."""
    import os

    read_end, write_end = os.pipe()
    os.close(read_end)                     # the reader is gone before the first write
    try:
        done = subprocess.run([sys.executable, "-m", "lexmargin", "models", "--input-dim", "2"], stdout=write_end,
                              stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write_end)
    assert done.returncode == 141 and done.stderr == ""
