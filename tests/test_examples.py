"""Every script in docs/examples/ runs to completion and prints what it is there to show.

Each ``docs/examples/*.py`` is run in a fresh interpreter (as a user would run it, from another folder).
A script that needs an optional package says so in a ``# requires: name[, name]`` comment and is skipped
when one is not installed; a script without expected output below is still run and must exit 0.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "docs" / "examples"
SCRIPTS = sorted(EXAMPLES.glob("*.py"))
REQUIRES = re.compile(r"^#\s*requires:\s*(.+)$", re.MULTILINE)

# lines each script must print: the results it exists to show
EXPECTED = {
    "linear_svm.py": ["status: optimal", "max |theta - w_svc|", "largest relative KKT residual"],
    "svm_with_bias.py": ["route: qp  success: True", "status optimal", "its smallest margin: 1.000000000",
                         "(the bias is regularized)"],
    "lexicographic.py": ["lexicographic solution: [1.         0.16666667]",
                         "sorted margins: [1.         2.16666667 2.16666667]", "solution unique: True"],
    "depth_sensitive.py": ["discarded blocks: ('w',)", "discarded: True, status optimal", "gamma =   10000"],
    "relu_certificate.py": ["status: optimal", "Clarke check:", "undecided rows 0", "start 4:"],
    "stationarity_report.py": ["max_margin from the trained point: optimal", "relative eps",
                               "step  20000", "saved: ['angle', 'json', 'margin', 'markdown', 'multipliers']"],
    "pyomo_hs71.py": ["termination: optimal", "objective 17.0140173", "certify_pyomo: optimal",
                      "multipliers from: suffix", "(off the sphere constraint): inaccurate"],
    "sklearn_classifier.py": ["classes: ['ham', 'spam']", "certificate: optimal", "two-layer net: status optimal",
                              "with bias: coef"],
    "torch_digits.py": ["digits 0 vs 1: N = 60, d = 64; MLP 64-8-1, P = 520", "| max_margin(init=trained)",
                        "| lexmargin normalized GD"],
}


def requirements(script: Path) -> list[str]:
    """The modules named in the script's ``# requires:`` comments."""
    return [name.strip() for line in REQUIRES.findall(script.read_text()) for name in line.split(",") if name.strip()]


def test_examples_are_found():
    names = {script.name for script in SCRIPTS}
    assert set(EXPECTED) <= names, f"missing examples: {sorted(set(EXPECTED) - names)}"


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda s: s.name)
def test_example_runs(script: Path, tmp_path):
    missing = [name for name in requirements(script) if importlib.util.find_spec(name) is None]
    if missing:
        pytest.skip(f"{script.name} needs {', '.join(missing)}")
    text = script.read_text()
    assert text.startswith('"""'), f"{script.name}: start with a docstring saying what it shows"
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONHASHSEED": "0"}
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, f"{script.name} failed:\n{done.stdout}\n{done.stderr}"
    assert done.stdout.strip(), f"{script.name} printed nothing"
    for expected in EXPECTED.get(script.name, []):
        assert expected in done.stdout, f"{script.name}: {expected!r} not in its output:\n{done.stdout}"
    assert list(tmp_path.iterdir()) == [], f"{script.name} left files in the working directory"
