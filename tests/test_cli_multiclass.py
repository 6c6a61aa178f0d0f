"""K-class data through the command line and the stationarity report (issue 16, front doors): `lexmargin solve` and
`lexmargin report` (MODEL DATA THETA and --state-dict) on integer labels, report.json with one margin row and one
multiplier per (n, j) (validated against docs/schema/report.schema.json), Markdown with the rows, and one-line
errors with exit status 2 for data and models that do not fit."""

import json
from pathlib import Path

import jsonschema
import numpy as np
import pytest

import lexmargin as lm
from lexmargin.cli import main
from lexmargin.report import stationarity_report

SCHEMA = Path(__file__).resolve().parent.parent / "docs" / "schema" / "report.schema.json"


@pytest.fixture(scope="module")
def validator():
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def assert_valid(validator, document):
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    assert not errors, [f"{list(e.absolute_path)}: {e.message[:200]}" for e in errors]


def run(argv, capsys):
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:            # argparse's own usage errors
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def separable(seed=0, n=20, d=3, K=3):
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((K, d))
    X = rng.standard_normal((n, d))
    return lm.Dataset(X, np.argmax(X @ W.T, axis=1), n_classes=K)


@pytest.fixture()
def files(tmp_path):
    data = separable()
    data.save(tmp_path / "data.npz")                                      # records n_classes
    data.save(tmp_path / "data.csv")                                      # does not
    lm.Dataset(data.X, np.where(data.labels == 0, 1.0, -1.0)).save(tmp_path / "binary.npz")
    return tmp_path, data


def test_solve_writes_a_certificate_with_its_rows(files, capsys):
    tmp, data = files
    code, out, err = run(["solve", "multiclass_linear", tmp / "data.npz", "--out", tmp / "cert.json"], capsys)
    assert code == 0, err
    assert "max_margin: optimal" in out and "3 classes: 40 margin rows (n, j)" in err
    cert = json.loads((tmp / "cert.json").read_text())
    native = lm.max_margin(lm.load_model("multiclass_linear", input_dim=3, n_classes=3), data)
    assert cert["status"] == "optimal" and cert["margin_rows"] == native.margin_rows.tolist()
    assert np.array_equal(cert["theta"], native.theta) and np.array_equal(cert["multipliers"], native.multipliers)
    code, _, err = run(["solve", "multiclass_linear", tmp / "data.csv", "--classes", "3", "--out", tmp / "c2.json"],
                       capsys)
    assert code == 0, err
    assert json.loads((tmp / "c2.json").read_text())["theta"] == cert["theta"]


@pytest.mark.parametrize("argv, fragment", [
    (["solve", "multiclass_linear", "{tmp}/data.csv"], "on the command line give --classes K"),
    (["solve", "multiclass_linear", "{tmp}/data.npz", "--classes", "4"], "--classes 4 but"),
    (["solve", "multiclass_linear", "{tmp}/binary.npz"], "has 3 outputs but the data is binary"),
    (["solve", "multiclass_linear", "{tmp}/binary.npz", "--classes", "3"], "must be integers 0..2"),
    (["solve", "linear", "{tmp}/data.npz"], "the data has 3 classes but model 'linear' has 1 output"),
    (["solve", "multiclass_linear", "{tmp}/data.npz", "-o", "n_classes=4"], "has 4 output(s)"),
    (["solve", "mlp", "{tmp}/data.npz", "-o", "hidden=3"], "not supported yet"),
    (["solve", "multiclass_linear", "{tmp}/data.npz", "--classes", "1"], "must be an integer >= 2"),
    (["report", "linear", "{tmp}/data.npz", "{tmp}/theta.npz"], "has 1 output"),
    (["report", "multiclass_linear", "-", "{tmp}/theta.npz", "--classes", "4"], "--classes 4 but"),
    (["report", "--state-dict", "{tmp}/net.npz", "{tmp}/binary.npz"], "has 3 outputs but the data is binary"),
])
def test_wrong_classes_are_one_line_and_exit_2(files, capsys, argv, fragment):
    tmp, data = files
    np.savez(tmp / "theta.npz", theta=np.ones(9), X=data.X, y=data.y, n_classes=3)
    np.savez(tmp / "net.npz", **{"0.weight": np.ones((4, 3)), "2.weight": np.ones((3, 4))})
    code, _, err = run([a.format(tmp=tmp) for a in argv] + ["--out", tmp / "o"], capsys)
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("solving")]
    assert code == 2 and len(lines) == 1 and fragment in lines[0] and "Traceback" not in err, err


def test_report_of_k_class_data_has_one_row_per_pair(files, capsys, validator):
    tmp, data = files
    run(["solve", "multiclass_linear", tmp / "data.npz", "--out", tmp / "cert.json"], capsys)
    theta = np.array(json.loads((tmp / "cert.json").read_text())["theta"])
    np.savez(tmp / "theta.npz", theta=2.0 * theta)                       # the solution, rescaled
    code, out, err = run(["report", "multiclass_linear", tmp / "data.npz", tmp / "theta.npz", "--certificate",
                          tmp / "cert.json", "--support-tol", "1e-6", "--out", tmp / "r", "--no-progress"], capsys)
    assert code == 0, err
    report = json.loads((tmp / "r" / "report.json").read_text())
    assert_valid(validator, report)
    pairs = lm.MarginRows.of(data).pairs
    assert report["n_classes"] == 3 and report["n_samples"] == 20 and report["margin_rows"] == pairs.tolist()
    assert len(report["margins"]) == len(report["multipliers"]) == 40
    native = lm.max_margin(lm.load_model("multiclass_linear", input_dim=3, n_classes=3), data)
    assert sorted(report["support"]) == sorted(native.support.tolist())
    assert report["comparison"]["multiplier_relative_error"] <= 1e-8 and report["comparison"]["support_jaccard"] == 1
    assert report["kkt"]["relative_epsilon"] <= 1e-10 and report["approximate_kkt_1e-3"] is True
    markdown = (tmp / "r" / "report.md").read_text()
    assert "samples N / classes K / margin rows (n, j) / parameters P | 20 / 3 / 40 / 9" in markdown
    assert "## Near-support margin rows (n, j)" in markdown
    n, j = native.margin_rows[native.support[0]]
    assert f"({n}, {j})" in markdown and "## Near-support margin rows (n, j)" in out


def test_report_of_a_k_output_state_dict(files, capsys, validator):
    tmp, data = files
    rng = np.random.default_rng(5)
    np.savez(tmp / "net.npz", **{"0.weight": rng.standard_normal((4, 3)), "0.bias": rng.standard_normal(4),
                                 "2.weight": rng.standard_normal((3, 4))})
    code, _, err = run(["report", "--state-dict", tmp / "net.npz", tmp / "data.csv", "--classes", "3",
                        "--out", tmp / "r", "--no-progress"], capsys)
    assert code == 0, err
    report = json.loads((tmp / "r" / "report.json").read_text())
    assert_valid(validator, report)
    assert report["model"] == "mlp_relu" and report["n_classes"] == 3 and len(report["multipliers"]) == 40
    model, theta = lm.from_arrays(lm.interop.torch.load_state_dict(tmp / "net.npz"))
    np.testing.assert_allclose(np.array(report["margins"]) * report["scale"] ** 2, model.margins(theta, data),
                               rtol=1e-12, atol=1e-12)


def test_binary_reports_keep_their_shape(validator):
    data = lm.Dataset(np.array([[1.0, 0.2], [-1.0, 0.1], [0.5, -1.0]]), np.array([1.0, -1.0, 1.0]))
    report = stationarity_report(lm.load_model("linear", input_dim=2), data, np.array([1.0, -0.3]))
    document = json.loads(report.to_json())
    assert document["n_classes"] is None and document["margin_rows"] is None
    assert_valid(validator, document)
    assert "margin rows" not in report.to_markdown()
    del document["n_classes"], document["margin_rows"]                   # reports written before these fields
    assert_valid(validator, document)
    document["margin_rows"] = [[0, 1, 2]]
    assert not validator.is_valid(document)
