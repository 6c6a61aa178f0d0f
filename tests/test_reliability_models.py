"""A user's model code that is wrong gives a ModelError naming the user's file and line (issue: reliability).

Row 6: a model file with a syntax error, an ``output`` that raises, Python branching on a symbolic
parameter; the CLI prints one line and exits 2.  Row 12: the docs say plainly that a model file runs code.
"""

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from lexmargin import Block, Dataset, Model, ModelError, load_model
from lexmargin.cli import main

ROOT = Path(__file__).resolve().parents[1]

HEADER = "from lexmargin import Block, Model, ops\n"
LINEAR = 'Model("m", [Block("w", {{"w": (input_dim,)}}, degree=1)], input_dim=input_dim, {kind}={fn})'


def write(tmp_path, name, body):
    path = tmp_path / name
    path.write_text(HEADER + textwrap.dedent(body))
    return path


def line_of(path, fragment):
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if fragment in line)


def model_file(tmp_path, name, function_body, kind="output"):
    """A model file whose output (or margin) function has ``function_body``; returns (path, line of its body)."""
    args = "p, x, y" if kind == "margin" else "p, x"
    text = f"def fn({args}):\n" + textwrap.indent(textwrap.dedent(function_body), "    ") + \
        "\n\ndef build(input_dim=2):\n    return " + LINEAR.format(kind=kind, fn="fn") + "\n"
    path = write(tmp_path, name, text)
    return path


@pytest.fixture()
def data_file(tmp_path):
    X = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, -0.5], [-0.5, -1.0]])
    path = tmp_path / "data.npz"
    Dataset(X, np.array([1.0, 1.0, -1.0, -1.0])).save(path)
    return path


def assert_located(error: ModelError, path: Path, line: int):
    assert f"{path.name}:{line}:" in str(error), str(error)


# ---- the three reported cases --------------------------------------------------------------------
def test_syntax_error_names_file_and_line(tmp_path):
    path = write(tmp_path, "syntax.py", "def build(input_dim=2:\n    pass\n")
    with pytest.raises(ModelError, match="syntax error") as info:
        load_model(str(path), input_dim=2)
    assert_located(info.value, path, 2)
    assert not any(name.startswith("lexmargin_user_model_syntax") for name in sys.modules)


@pytest.mark.parametrize("kind", ["output", "margin"])
def test_output_that_raises_names_the_users_line(tmp_path, kind):
    path = model_file(tmp_path, f"raises_{kind}.py", "s = p.w @ x\nreturn s + undefined_name\n", kind=kind)
    with pytest.raises(ModelError, match="NameError: name 'undefined_name' is not defined") as info:
        load_model(str(path), input_dim=2)
    assert_located(info.value, path, line_of(path, "undefined_name"))
    assert f"{kind}(p, x" in str(info.value)


@pytest.mark.parametrize("body", [
    "s = p.w @ x\nif s > 0:\n    return s\nreturn 0 * s\n",       # if on a parameter
    "s = p.w @ x\nreturn max(s, 0 * s)\n",                          # builtin max compares
    "s = p.w @ x\nreturn s if s >= 0 else -s\n",                    # conditional expression
])
def test_branching_on_a_symbolic_parameter_gives_the_ops_hint(tmp_path, body):
    path = model_file(tmp_path, "branch.py", body)
    with pytest.raises(ModelError, match="use lexmargin.ops") as info:
        load_model(str(path), input_dim=2)
    message = str(info.value)
    assert "sx_elem" not in message and ".cpp" not in message     # no CasADi-internal text
    assert re.search(r"branch\.py:\d+:", message)
    faulty = [i for i, line in enumerate(path.read_text().splitlines(), 1) if ">" in line or "max(" in line]
    assert int(re.search(r"branch\.py:(\d+):", message).group(1)) in faulty


def test_sympy_branching_is_reported_too():
    """A model that branches only when traced by SymPy (formulas, symbolic homogeneity proofs)."""
    def output(p, x):
        s = p.w @ x
        if type(s).__module__.startswith("sympy") and s > 0:
            return s
        return s

    model = Model("m", [Block("w", {"w": (2,)}, degree=1)], input_dim=2, output=output)
    with pytest.raises(ModelError, match="symbolic SymPy value.*use lexmargin.ops") as info:
        model.formula()
    assert "test_reliability_models.py:" in str(info.value)


def test_summand_that_raises_names_its_block(tmp_path):
    def bad(p, x):
        return p.missing @ x

    model_args = dict(input_dim=2, summands={"a": lambda p, x: p.w @ x, "b": bad}, verify=False)
    model = Model("m", [Block("a", {"w": (2,)}, degree=1), Block("b", {"v": (2,)}, degree=1)], **model_args)
    with pytest.raises(ModelError, match="summand 'b'") as info:
        model.margins(np.ones(4), Dataset(np.eye(2), np.array([1.0, -1.0])))
    assert "test_reliability_models.py:" in str(info.value)


def test_build_that_raises_names_the_users_line(tmp_path):
    path = write(tmp_path, "buildfail.py", "def build(input_dim=2):\n    raise RuntimeError('boom')\n")
    with pytest.raises(ModelError, match="build\\(\\) of .* raised RuntimeError: boom") as info:
        load_model(str(path), input_dim=2)
    assert_located(info.value, path, 3)


def test_build_with_an_unknown_option_shows_its_signature(tmp_path):
    path = write(tmp_path, "opts.py", "def build(input_dim=2, width=3):\n    pass\n")
    with pytest.raises(ModelError, match=r"does not accept these options.*build\(input_dim=2, width=3\)"):
        load_model(str(path), input_dim=2, depth=4)


def test_module_code_that_raises_on_import(tmp_path):
    path = write(tmp_path, "importfail.py", "import lexmargin_no_such_package_xyz\n")
    with pytest.raises(ModelError, match="No module named 'lexmargin_no_such_package_xyz'") as info:
        load_model(str(path), input_dim=2)
    assert_located(info.value, path, 2)


def test_lexmargin_errors_from_user_code_pass_unchanged(tmp_path):
    path = write(tmp_path, "own.py", "from lexmargin import ModelError\n"
                                     "def build(input_dim=2):\n    raise ModelError('width must be even')\n")
    with pytest.raises(ModelError, match="^width must be even$"):
        load_model(str(path), input_dim=2)


def test_interrupts_are_not_turned_into_model_errors():
    def output(p, x):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        Model("m", [Block("w", {"w": (2,)}, degree=1)], input_dim=2, output=output)


# ---- the command line: one line, exit 2 ------------------------------------------------------------
CASES = {
    "syntax": "def build(input_dim=2:\n    pass\n",
    "raises": None,
    "branch": None,
    "build": "def build(input_dim=2):\n    raise RuntimeError('boom')\n",
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_cli_reports_model_file_errors_in_one_line(tmp_path, data_file, capsys, case):
    if case == "raises":
        path = model_file(tmp_path, "m_raises.py", "return p.w @ x + undefined_name\n")
    elif case == "branch":
        path = model_file(tmp_path, "m_branch.py", "s = p.w @ x\nreturn s if s > 0 else 0 * s\n")
    else:
        path = write(tmp_path, f"m_{case}.py", CASES[case])
    code = main(["solve", str(path), str(data_file)])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("solving")]
    assert code == 2 and "Traceback" not in err
    assert len(lines) == 1 and path.name in lines[0] and "error" in lines[0], err


def test_cli_subprocess_exit_code(tmp_path, data_file):
    path = model_file(tmp_path, "m_branch.py", "s = p.w @ x\nreturn s if s > 0 else 0 * s\n")
    done = subprocess.run([sys.executable, "-m", "lexmargin", "solve", str(path), str(data_file)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "use lexmargin.ops" in done.stderr


# ---- row 12: the docs say what a model file can do ----------------------------------------------------
@pytest.mark.parametrize("doc", ["README.md", "docs/reliability.md"])
def test_docs_say_model_files_run_code(doc):
    text = (ROOT / doc).read_text().lower()
    assert "model file" in text and "runs" in text and "trust" in text
