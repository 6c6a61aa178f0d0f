"""`import lexmargin` is cheap, and heavy dependencies load only when they are needed (performance issue)."""

import json
import subprocess
import sys

import pytest

import lexmargin


def modules_after(code: str) -> set[str]:
    script = f"import sys\n{code}\nimport json; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def test_import_loads_no_solver_stack():
    loaded = modules_after("import lexmargin")
    assert not {"casadi", "sympy", "scipy", "matplotlib", "pyomo", "sklearn", "torch"} & {m.split(".")[0] for m in loaded}


def test_the_torch_bridge_resolves_without_importing_torch():
    loaded = modules_after("import lexmargin\nlexmargin.from_torch, lexmargin.from_arrays, lexmargin.to_state_dict")
    assert "torch" not in {m.split(".")[0] for m in loaded}


def test_a_solve_does_not_load_sympy_or_matplotlib():
    loaded = modules_after(
        "import numpy as np, lexmargin as lm\n"
        "X = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, -0.5], [-0.5, -1.0]])\n"
        "cert = lm.max_margin(lm.load_model('linear', input_dim=2), lm.Dataset(X, np.array([1, 1, -1, -1.0])))\n"
        "assert cert.status.value == 'optimal'")
    assert "casadi" in loaded
    assert not {"sympy", "matplotlib"} & {m.split(".")[0] for m in loaded}


def test_formulas_still_use_sympy():
    import sympy

    model = lexmargin.load_model("linear", input_dim=2)
    assert isinstance(model.formula(), sympy.Expr)


@pytest.mark.parametrize("name", lexmargin.__all__)
def test_every_public_name_resolves(name):
    assert getattr(lexmargin, name) is not None
    assert name in dir(lexmargin)


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'not_a_name'"):
        lexmargin.not_a_name  # noqa: B018


def test_version_is_typed_once():
    from importlib.metadata import version
    from pathlib import Path

    root = Path(lexmargin.__file__).resolve().parents[1]
    assert version("lexmargin") == lexmargin.__version__
    assert 'dynamic = ["version"]' in (root / "pyproject.toml").read_text()
    assert (root / "LICENSE").read_text().startswith("MIT License")
    assert (Path(lexmargin.__file__).parent / "py.typed").exists()
