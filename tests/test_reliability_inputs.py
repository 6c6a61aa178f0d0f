"""No silent wrong answer, no lost work, no traceback for a user's mistake: data, parameter and certificate
files, the Dataset, the command line and the files it writes (issue: reliability, rows 4, 5, 7, 9, 11 and
strict JSON).

Every loader turns a damaged or foreign file into one ``DataError("... is corrupt or not a lexmargin ...
file")`` (never numpy's advice to ``allow_pickle``); the CLI prints exactly one line on stderr and exits 2;
saves are atomic (a temporary renamed over the target); every JSON file parses with a strict parser.
"""

import dataclasses
import io
import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import lexmargin as lm
from lexmargin import DataError, Dataset
from lexmargin.cli import main
from lexmargin.nlp.certificate import Certificate
from lexmargin.report import as_theta_source, load_certificate, load_theta_npz, stationarity_report

PROPERTY = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])

X0 = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, -0.5], [-0.5, -1.0]])
Y0 = np.array([1.0, 1.0, -1.0, -1.0])
CORRUPT = "is corrupt or not a lexmargin"


def strict_loads(text: str):
    """RFC 8259 JSON: NaN, Infinity and -Infinity are refused."""
    def refuse(name):
        raise ValueError(f"non-standard JSON constant {name}")
    return json.loads(text, parse_constant=refuse)


def npz_bytes(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def certificate():
    return lm.max_margin(lm.load_model("linear", input_dim=2), Dataset(X0, Y0))


@pytest.fixture()
def files(tmp_path, certificate):
    """Valid files of every kind the CLI reads."""
    paths = {"data": tmp_path / "data.npz", "csv": tmp_path / "data.csv", "theta": tmp_path / "theta.npz",
             "thetas": tmp_path / "thetas.npz", "cert": tmp_path / "cert.json"}
    Dataset(X0, Y0).save(paths["data"])
    Dataset(X0, Y0).save(paths["csv"])
    np.savez(paths["theta"], theta=np.array([1.0, 1.0]))
    np.savez(paths["thetas"], thetas=np.array([[1.0, 0.5], [1.0, 1.0]]), iterations=[1, 10])
    paths["cert"].write_text(certificate.to_json())
    return paths


def run_cli(argv, capsys):
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:      # argparse's usage errors (and --help / --version)
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, err, fragment=""):
    assert code == 2, (code, err)
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "error:" in lines[0] and fragment in lines[0], err
    assert "allow_pickle" not in err


# ---- damaged files (row 4) -----------------------------------------------------------------------
def damaged(valid: bytes) -> dict[str, bytes]:
    middle = len(valid) // 2
    flipped = bytearray(valid)
    # a bit of the stored numbers (the zip's CRC-32 catches it) or the JSON's opening brace
    target = np.float64(-0.5).tobytes()
    flipped[valid.index(target) + 7 if target in valid else 0] ^= 0x10
    return {"truncated": valid[:middle], "empty": b"", "random": np.random.default_rng(7).bytes(400),
            "bit-flipped": bytes(flipped), "text": b"this is not a lexmargin file\n"}


VALID_DATA = npz_bytes(X=X0, y=Y0)
VALID_THETA = npz_bytes(theta=np.array([1.0, 1.0]), X=X0, y=Y0)


@pytest.mark.parametrize("how", list(damaged(VALID_DATA)))
def test_damaged_data_file_is_a_data_error(tmp_path, how):
    path = tmp_path / "data.npz"
    path.write_bytes(damaged(VALID_DATA)[how])
    with pytest.raises(DataError, match=CORRUPT + " data file") as info:
        Dataset.load(path)
    assert str(path) in str(info.value) and "allow_pickle" not in str(info.value)


@pytest.mark.parametrize("how", list(damaged(VALID_THETA)))
def test_damaged_parameter_file_is_a_data_error(tmp_path, how):
    path = tmp_path / "theta.npz"
    path.write_bytes(damaged(VALID_THETA)[how])
    with pytest.raises(DataError, match=CORRUPT + " parameter file") as info:
        load_theta_npz(path)
    assert "allow_pickle" not in str(info.value)


def test_damaged_certificate_file_is_a_data_error(tmp_path, certificate):
    valid = certificate.to_json().encode()
    for how, content in damaged(valid).items():
        path = tmp_path / f"{how}.json"
        path.write_bytes(content)
        with pytest.raises(DataError, match="corrupt or not a lexmargin certificate|not a lexmargin certificate"):
            load_certificate(path)


@pytest.mark.parametrize("content, fragment", [
    ("[1, 2, 3]", "holds a JSON list"),
    ('{"problem": "max_margin"}', "missing field 'status'"),
    ('{"problem": "max_margin", "status": "no such status"}', "bad field"),
])
def test_json_that_is_not_a_certificate_names_the_file(tmp_path, content, fragment):
    path = tmp_path / "other.json"
    path.write_text(content)
    with pytest.raises(DataError, match="not a lexmargin certificate") as info:
        load_certificate(path)
    assert str(path) in str(info.value) and fragment in str(info.value)


@pytest.mark.parametrize("loader", [Dataset.load, load_theta_npz])
def test_pickled_object_arrays_are_never_loaded_nor_advised(tmp_path, loader):
    path = tmp_path / "pickled.npz"
    np.savez(path, X=np.array([[1.0, {"a": 1}]], dtype=object), y=np.array([1.0]),
             theta=np.array([object()], dtype=object))
    with pytest.raises(DataError, match=CORRUPT) as info:
        loader(path)
    assert "allow_pickle" not in str(info.value) and "Python objects" in str(info.value)


@pytest.mark.parametrize("text, fragment", [
    ("1,2,1\n3,-1\n", "numeric table"),                    # ragged rows
    ("1,2,1\n3,x,-1\n", "numeric table"),                  # a non-numeric cell
    ("", "no data rows"),
    ("\n\n", "no data rows"),
])
def test_bad_csv_is_a_data_error(tmp_path, text, fragment):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=fragment):
        Dataset.load(path)


def test_binary_csv_is_a_data_error(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_bytes(b"\xff\xfe\x00garbage\x80\x81,1\n")
    with pytest.raises(DataError, match="numeric table"):
        Dataset.load(path)


def test_folder_named_like_a_data_file(tmp_path):
    (tmp_path / "dir.csv").mkdir()
    with pytest.raises(DataError, match="not a data file"):
        Dataset.load(tmp_path / "dir.csv")


def test_a_malformed_history_file_is_a_data_error(tmp_path):
    path = tmp_path / "hist.npz"
    np.savez(path, direction=np.ones((3, 2, 2)), norm=np.ones((3, 5)), steps=np.arange(2), theta=np.ones((2, 2)))
    with pytest.raises(DataError, match=str(path.name)):
        load_theta_npz(path, run=1)


# ---- row 5: the CLI on a truncated data file ------------------------------------------------------
@pytest.mark.parametrize("how", list(damaged(VALID_DATA)))
def test_solve_on_a_damaged_data_file_prints_one_line(tmp_path, capsys, how):
    path = tmp_path / "truncated.npz"
    path.write_bytes(damaged(VALID_DATA)[how])
    code, _, err = run_cli(["solve", "linear", path], capsys)
    assert_one_line_error(code, err, CORRUPT + " data file")


def test_report_on_damaged_theta_and_certificate_prints_one_line(tmp_path, files, capsys):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(VALID_THETA[:100])
    code, _, err = run_cli(["report", "linear", files["data"], bad, "--out", tmp_path / "r"], capsys)
    assert_one_line_error(code, err, CORRUPT + " parameter file")
    bad_cert = tmp_path / "bad.json"
    bad_cert.write_bytes(files["cert"].read_bytes()[:50])
    code, _, err = run_cli(["report", "linear", files["data"], files["theta"], "--certificate", bad_cert,
                            "--out", tmp_path / "r", "--no-progress"], capsys)
    assert_one_line_error(code, err, "is not valid JSON")


# ---- row 7: ragged, object, text and extended-precision inputs -------------------------------------
@pytest.mark.parametrize("X, fragment", [
    ([[1.0, 2.0], [3.0]], "rectangular"),
    ([[1.0, None], [3.0, 4.0]], "Python objects"),
    (np.array([[1.0, 2.0], [3.0, 4.0]], dtype=object), "Python objects"),
    (np.array([["1", "2"], ["3", "4"]]), "text"),
    (np.array([[b"1", b"2"], [b"3", b"4"]]), "text"),
    (np.array([[1, 2], [3, 4]], dtype="datetime64[s]"), "numeric"),
])
def test_ragged_object_and_text_X_is_a_data_error(X, fragment):
    with pytest.raises(DataError, match=fragment):
        Dataset(X, [1.0, -1.0])


def test_float128_that_float64_cannot_hold_is_refused():
    if np.finfo(np.longdouble).nmant <= np.finfo(np.float64).nmant:
        pytest.skip("longdouble is float64 on this platform")
    X = np.array([[1.0, 0.0], [1.0, 0.0]], dtype=np.longdouble)
    X[1, 0] += np.longdouble(2.0) ** -60     # distinct in float128, identical once rounded to float64
    with pytest.raises(DataError, match="float64 cannot represent exactly") as info:
        Dataset(X, [1.0, -1.0])                # never "identical samples with opposite labels"
    assert "index (1, 0)" in str(info.value) and "exact in float64 is accepted" in str(info.value)
    with pytest.raises(DataError, match="cannot represent exactly"):
        Dataset(np.array([[np.longdouble("1e400")], [1.0]], dtype=np.longdouble), [1.0, -1.0])


def test_float128_exact_in_float64_is_accepted():
    d = Dataset(X0.astype(np.longdouble), Y0.astype(np.longdouble))
    assert d.X.dtype == np.float64 and d.y.dtype == np.float64
    np.testing.assert_array_equal(d.X, X0)


def test_float128_labels_are_checked_too():
    if np.finfo(np.longdouble).nmant <= np.finfo(np.float64).nmant:
        pytest.skip("longdouble is float64 on this platform")
    y = Y0.astype(np.longdouble)
    y[0] += np.longdouble(2.0) ** -60
    with pytest.raises(DataError, match="y has dtype .* cannot represent exactly"):
        Dataset(X0, y)


def test_int64_beyond_2_to_53_is_refused_when_inexact():
    X = np.array([[2 ** 53 + 1, 0], [2 ** 53, 0]], dtype=np.int64)
    with pytest.raises(DataError, match="int64 and a value that float64 cannot represent exactly"):
        Dataset(X, [1.0, -1.0])
    ok = Dataset(np.array([[2 ** 60, 0], [-(2 ** 62), 3]], dtype=np.int64), [1.0, -1.0])
    assert ok.X[0, 0] == 2.0 ** 60


def test_ragged_list_as_theta_is_a_data_error():
    with pytest.raises(DataError, match="rectangular"):
        as_theta_source([[1.0, 2.0], [3.0]])
    with pytest.raises(DataError, match="complex"):
        as_theta_source(np.array([1 + 1j, 2.0]))


# ---- row 9: options that were silently ignored or accepted ----------------------------------------
@pytest.mark.parametrize("argv, fragment", [
    (["report", "linear", "{data}", "{theta}", "--run", "1"], "holds a single parameter vector"),
    (["report", "linear", "{data}", "{thetas}", "--run", "2"], "holds a single run"),
    (["solve", "linear", "{data}", "--init", "{theta}", "--run", "1"], "holds a single parameter vector"),
    (["solve", "linear", "{data}", "--run", "1"], "needs --init"),
    (["solve", "linear", "{data}", "--init", "{thetas}", "--run", "-1"], "argument --run: must be an integer >= 0"),
    (["report", "linear", "{data}", "{theta}", "--support-tol", "-1"], "argument --support-tol: must be a finite"),
    (["report", "linear", "{data}", "{theta}", "--support-tol", "nan"], "must be a finite number >= 0"),
    (["report", "linear", "{data}", "{theta}", "--support-tol", "inf"], "must be a finite number >= 0"),
    (["models", "--input-dim", "0"], "argument --input-dim: must be an integer from 1"),
    (["models", "--input-dim", "-3"], "argument --input-dim"),
    (["solve", "linear", "{data}", "--starts", "0"], "argument --starts: must be an integer >= 1"),
    (["solve", "linear", "{data}", "--norm", "lp", "--p", "0.5"], "argument --p: must be a finite number > 1"),
    (["solve", "linear", "{data}", "--norm", "lp", "--p", "inf"], "argument --p"),
    (["solve", "linear", "{data}", "--norm", "lp"], "needs a finite p > 1"),
    (["solve", "linear", "{data}", "--p", "3"], "p is only used by norm 'lp'"),
    (["solve", "linear", "{data}", "--init", "{theta3}"], "holds 3 parameters but model 'linear' has 2"),
    (["solve", "linear", "{data}", "--out", "{dir}"], "is a folder"),
    (["solve", "linear", "{data}", "--out", "{data}/cert.json"], "is a file, not a folder"),
    (["report", "linear", "{data}", "{theta}", "--out", "{data}"], "exists and is not a folder"),
    (["solve", "linear", "{data}", "--seed", "-1"], "argument --seed"),
    (["solve", "linear"], "the following arguments are required: data"),
    (["solve", "linear", "{data}", "--bogus"], "unrecognized arguments: --bogus"),
    (["nosuchcommand"], "invalid choice: 'nosuchcommand'"),
    ([], "the following arguments are required: COMMAND"),
])
def test_bad_options_are_one_line_errors(tmp_path, files, capsys, argv, fragment):
    np.savez(tmp_path / "theta3.npz", theta=np.ones(3))
    names = {k: str(v) for k, v in files.items()} | {"dir": str(tmp_path), "theta3": str(tmp_path / "theta3.npz")}
    argv = [a.format(**names) for a in argv]
    if argv and argv[0] == "report" and "--out" not in argv:
        argv += ["--out", str(tmp_path / "rep")]
    code, _, err = run_cli(argv, capsys)
    assert_one_line_error(code, err, fragment)
    assert not (tmp_path / "rep").exists()


def test_run_zero_or_a_valid_run_is_accepted(tmp_path, files, capsys):
    code, _, _ = run_cli(["report", "linear", files["data"], files["theta"], "--run", "0", "--out", tmp_path / "r",
                          "--no-progress"], capsys)
    assert code == 0
    np.savez(tmp_path / "batched.npz", thetas=np.stack([np.ones((2, 2)), 2 * np.ones((2, 2))], axis=1))
    assert load_theta_npz(tmp_path / "batched.npz", run=1).theta.tolist() == [2.0, 2.0]
    with pytest.raises(DataError, match="run 2 is out of range"):
        load_theta_npz(tmp_path / "batched.npz", run=2)


def test_library_refuses_a_run_for_a_single_vector_and_a_bad_support_tol():
    with pytest.raises(DataError, match="run 1 was given"):
        as_theta_source(np.ones(2), run=1)
    with pytest.raises(DataError, match="run 1 was given"):
        as_theta_source(np.ones((3, 2)), run=1)
    for tol in (-1.0, float("nan"), float("inf")):
        with pytest.raises(DataError, match="support_tol"):
            stationarity_report("linear", Dataset(X0, Y0), np.ones(2), support_tol=tol)


def test_help_and_version_still_work(capsys):
    code, out, _ = run_cli(["solve", "--help"], capsys)
    assert code == 0 and "usage: lexmargin solve" in out and "--support-tol" not in out
    code, out, _ = run_cli(["report", "--help"], capsys)
    assert code == 0 and "--support-tol" in out
    code, out, _ = run_cli(["--version"], capsys)
    assert code == 0 and out.startswith("lexmargin ")


# ---- row 11: atomic writes ---------------------------------------------------------------------------
def test_solve_out_replaces_an_existing_file_atomically(tmp_path, files, capsys):
    out = tmp_path / "cert.json"
    out.write_text("previous certificate")
    before = os.stat(out).st_ino
    keep = tmp_path / "link.json"
    os.link(out, keep)                          # the old inode: untouched by a temp + rename
    code, _, _ = run_cli(["solve", "linear", files["data"], "--out", out], capsys)
    assert code == 0
    assert os.stat(out).st_ino != before and keep.read_text() == "previous certificate"
    assert strict_loads(out.read_text())["status"] == "optimal"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_solve_out_failing_midway_keeps_the_old_file(tmp_path, files, capsys, monkeypatch):
    out = tmp_path / "cert.json"
    out.write_text("previous certificate")

    def full_disk(fd):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "fsync", full_disk)
    code, _, err = run_cli(["solve", "linear", files["data"], "--out", out], capsys)
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("solving")]
    assert code == 2 and len(lines) == 1 and "No space left on device" in lines[0]
    assert out.read_text() == "previous certificate"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".cert.json")] == []


@pytest.mark.parametrize("suffix", [".npz", ".csv"])
def test_dataset_save_is_atomic(tmp_path, suffix):
    path = tmp_path / f"data{suffix}"
    path.write_text("old")
    keep = tmp_path / "old"
    os.link(path, keep)
    Dataset(X0, Y0).save(path)
    assert keep.read_text() == "old"
    np.testing.assert_array_equal(Dataset.load(path).X, X0)


def test_report_save_is_atomic_and_strict(tmp_path, certificate):
    report = stationarity_report("linear", Dataset(X0, Y0), np.array([[0.0, 0.0], [1.0, 1.0]]),
                                 certificate=certificate)
    folder = tmp_path / "rep"
    folder.mkdir()
    (folder / "report.json").write_text("old")
    os.link(folder / "report.json", tmp_path / "old.json")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report.save(folder)
    assert (tmp_path / "old.json").read_text() == "old"
    saved = strict_loads((folder / "report.json").read_text())   # trajectory margins at theta = 0 are NaN
    assert saved["model"] == "linear"


# ---- strict JSON --------------------------------------------------------------------------------------
def test_certificate_json_is_strict_and_non_finite_numbers_round_trip(certificate):
    odd = dataclasses.replace(certificate, objective=float("inf"), normalized_margin=float("nan"),
                              finish=dataclasses.replace(certificate.finish, residual_before=float("nan")))
    text = odd.to_json(indent=2)
    back = Certificate.from_dict(strict_loads(text))
    assert back.objective == float("inf") and np.isnan(back.normalized_margin)
    assert np.isnan(back.finish.residual_before)
    np.testing.assert_array_equal(back.theta, certificate.theta)


def test_certificate_reader_accepts_null_for_numbers(certificate):
    d = strict_loads(certificate.to_json())
    d["objective"] = None
    d["kkt"]["stationarity"] = None
    d["solver"]["seconds"] = None
    d["licq"]["smallest_singular_value"] = None
    d["margins"] = [None] + d["margins"][1:]
    back = Certificate.from_dict(d)
    assert np.isnan(back.objective) and np.isnan(back.kkt.stationarity) and np.isnan(back.solver.seconds)
    assert np.isnan(back.licq.smallest_singular_value) and np.isnan(back.margins[0])


def test_legacy_certificate_still_loads_and_writes_strict_json():
    old = Path(__file__).parent / "data" / "certificate_v0_1.json"
    cert = load_certificate(old)
    assert strict_loads(cert.to_json())["status"] == "inaccurate"


def test_cli_writes_strict_json(tmp_path, files, capsys):
    cert = tmp_path / "c.json"
    assert run_cli(["solve", "linear", files["data"], "--out", cert], capsys)[0] == 0
    strict_loads(cert.read_text())
    np.savez(tmp_path / "traj.npz", thetas=np.array([[0.0, 0.0], [1.0, 1.0]]))
    code, _, _ = run_cli(["report", "linear", files["data"], tmp_path / "traj.npz", "--certificate", cert,
                          "--out", tmp_path / "r", "--no-progress"], capsys)
    assert code == 0
    strict_loads((tmp_path / "r" / "report.json").read_text())


# ---- properties: Dataset on anything -----------------------------------------------------------------
DTYPES = [np.bool_, np.int8, np.int64, np.uint64, np.float16, np.float32, np.float64, np.longdouble,
          np.complex128, "U3", "S3", "datetime64[s]"]
scalars = st.one_of(st.integers(-3, 3), st.floats(allow_nan=True, allow_infinity=True), st.none(),
                    st.text(max_size=2), st.booleans(), st.integers(2 ** 53, 2 ** 70), st.complex_numbers())
nested = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4), max_leaves=12)
arrays = st.one_of(
    st.sampled_from(DTYPES).flatmap(lambda dt: hnp.arrays(dt, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0,
                                                                               max_side=4))),
    hnp.arrays(object, hnp.array_shapes(max_dims=2, max_side=3), elements=scalars),
    nested,
)
labels = st.one_of(st.none(), arrays)


def _valid(d: Dataset) -> None:
    assert d.X.dtype == np.float64 and d.X.ndim == 2 and d.X.shape[0] >= 1 and d.X.shape[1] >= 1
    assert np.all(np.isfinite(d.X)) and d.y.shape == (d.X.shape[0],) and set(d.y.tolist()) <= {-1.0, 1.0}
    assert not d.X.flags.writeable and not d.y.flags.writeable


@settings(PROPERTY, max_examples=300)
@given(X=arrays, y=labels, flip=st.booleans())
def test_property_dataset_on_anything_is_valid_or_a_data_error(X, y, flip):
    if y is None:       # labels that fit, so that X itself is what is tested
        n = X.shape[0] if isinstance(X, np.ndarray) and X.ndim >= 1 else (len(X) if isinstance(X, list) else 2)
        y = np.where(np.arange(n) % 2 == int(flip), 1.0, -1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            d = Dataset(X, y)
        except DataError:
            return
    _valid(d)


# ---- properties: every loader on damaged files --------------------------------------------------------
def _valid_files(certificate) -> dict[str, bytes]:
    buffer = io.StringIO()
    np.savetxt(buffer, np.column_stack([X0, Y0]), delimiter=",", fmt="%.17g")
    history = {"direction": np.ones((3, 2, 2)) / np.sqrt(2), "norm": np.ones((3, 2)),
               "steps": np.array([0, 1, 2]), "theta": np.ones((2, 2)), "meta": np.array("{}")}
    return {"data.npz": VALID_DATA, "data.csv": buffer.getvalue().encode(), "theta.npz": VALID_THETA,
            "history.npz": npz_bytes(**history), "cert.json": certificate.to_json().encode()}


def _load(path: Path):
    if path.name.startswith("data"):
        return Dataset.load(path)
    if path.name.startswith(("theta", "history")):
        return load_theta_npz(path, run=1 if path.name.startswith("history") else None)
    return load_certificate(path)


@st.composite
def damaged_files(draw, valid):
    name = draw(st.sampled_from(sorted(valid)))
    content = valid[name]
    how = draw(st.sampled_from(["random", "truncate", "flip", "flips"]))
    if how == "random":
        content = draw(st.binary(max_size=600))
    elif how == "truncate":
        content = content[:draw(st.integers(0, len(content)))]
    else:
        content = bytearray(content)
        for _ in range(1 if how == "flip" else draw(st.integers(2, 8))):
            i = draw(st.integers(0, len(content) - 1))
            content[i] ^= 1 << draw(st.integers(0, 7))
        content = bytes(content)
    return name, content


@pytest.fixture(scope="module")
def valid_files(certificate):
    return _valid_files(certificate)


@settings(PROPERTY, max_examples=200)
@given(data=st.data())
def test_property_loaders_on_damaged_files_raise_only_data_errors(tmp_path, valid_files, data):
    name, content = data.draw(damaged_files(valid_files))
    path = tmp_path / name
    path.write_bytes(content)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            _load(path)
        except DataError as exc:
            assert "allow_pickle" not in str(exc) and "\n" not in str(exc).strip()


# ---- properties: the CLI on bad arguments and files ---------------------------------------------------
bad_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=8).filter(
    lambda s: s.strip() != "" and "\x00" not in s)


def _not_a_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return True
    return False


@st.composite
def bad_invocations(draw, valid_files):
    """(argv template, files to write, slot of the damaged file or None): one ingredient is wrong."""
    fault = draw(st.sampled_from(["data", "theta", "certificate", "init", "number", "option", "model", "argv"]))
    written = {"data.npz": VALID_DATA, "theta.npz": npz_bytes(theta=np.array([1.0, 1.0])),
               "cert.json": valid_files["cert.json"]}
    command = draw(st.sampled_from(["solve", "report"]))
    data, theta, extra, slot = "{dir}/data.npz", "{dir}/theta.npz", [], None
    if fault in ("data", "theta", "certificate", "init"):
        name, content = draw(damaged_files(valid_files))
        broken = "{dir}/broken" + Path(name).suffix
        written["broken" + Path(name).suffix] = content
        slot = fault
        if fault == "data":
            data = broken
        elif fault == "theta":
            command, theta = "report", broken
        elif fault == "certificate":
            command, extra = "report", ["--certificate", broken]
        else:
            command, extra = "solve", ["--init", broken]
    elif fault == "number":
        flag, low = draw(st.sampled_from([("--support-tol", 0.0), ("--starts", 1), ("--p", 1.0), ("--seed", 0),
                                          ("--run", 0)]))
        command = "report" if flag in ("--support-tol", "--run") else "solve"
        if flag == "--run":          # the theta file holds one vector: any run but 0 is an error
            value = str(draw(st.one_of(st.integers(1, 5), st.integers(max_value=-1))))
        else:
            value = draw(st.one_of(
                bad_text.filter(_not_a_number),
                st.sampled_from(["nan", "inf", "-inf", "1e999"]) if isinstance(low, float)
                else st.integers(max_value=low - 1).map(str),
                st.floats(max_value=low, exclude_max=flag != "--p").map(repr)))
        extra = [flag, value]
    elif fault == "option":          # linear takes no options; a pair without '=' is malformed
        extra = ["-o", draw(st.sampled_from(["width", "=3", "width=3", "depth=x", "activation=relu", "k=(1,"]))]
    elif fault == "argv":
        extra = draw(st.sampled_from([["--bogus"], ["--out"], ["--norm", "l3"], ["--activation-region", "x"],
                                      ["--starts"], ["-o"]]))
    model = draw(st.sampled_from(["nosuchmodel", "no_such_model.py", "linearr", "missing/model.py"])) \
        if fault == "model" else "linear"
    argv = [command, model, data] + ([theta] if command == "report" else []) + extra
    if command == "report" and "--out" not in extra:
        argv += ["--out", "{dir}/rep", "--no-progress"]
    return argv, written, slot


def _loads_fine(path: Path, slot: str) -> bool:
    """Whether damage left a file that the command would accept (then the fault is not certain)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            if slot == "data":
                Dataset.load(path)
            elif slot == "init":
                return load_theta_npz(path).theta.shape == (2,)
            elif slot == "theta":
                theta = load_theta_npz(path).theta
                return theta.shape == (2,) and bool(np.any(theta))
            else:
                load_certificate(path)
        except DataError:
            return False
    return True


@settings(PROPERTY, max_examples=150)
@given(data=st.data())
def test_property_cli_on_bad_arguments_and_files_prints_one_line_and_exits_2(tmp_path, capsys, valid_files,
                                                                             data):
    argv, written, slot = data.draw(bad_invocations(valid_files))
    folder = tmp_path / "case"
    folder.mkdir(exist_ok=True)
    for old in folder.iterdir():
        old.unlink()
    for name, content in written.items():
        (folder / name).write_bytes(content)
    argv = [a.format(dir=folder) for a in argv]
    if slot is not None:
        broken = next(Path(a) for a in argv if "/broken." in a)
        if _loads_fine(broken, slot):   # damage that left a valid file: make the fault certain
            broken.unlink()
    event(f"{argv[0]} {slot or 'arguments'}")
    code, _, err = run_cli(argv, capsys)
    assert_one_line_error(code, err)
