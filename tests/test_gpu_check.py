"""benchmarks/gpu_check.py: skipped cleanly without a GPU; end to end on the CPU backends (tiny sizes)."""

from __future__ import annotations

import json
import sys

import pytest
from lexmargin.benchmarks import gpu_check

TINY = ["--runs", "4", "--samples", "64", "--dim", "8", "--steps", "3", "--warmup", "1", "--peak-n", "64"]


def test_without_cupy_it_skips_in_one_line_and_exits_0(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "cupy", None)          # import cupy raises ImportError
    out = tmp_path / "gpu.json"
    assert gpu_check.main(["--backend", "cupy", "--json", str(out)]) == 0
    assert capsys.readouterr().out == "no GPU/CuPy: skipped\n"
    assert json.loads(out.read_text())["status"] == "skipped"


def test_auto_without_any_gpu_skips(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "cupy", None)
    monkeypatch.setattr(gpu_check, "_torch", lambda cuda_only: None)
    assert gpu_check.main([]) == 0
    assert capsys.readouterr().out.strip() == "no GPU/CuPy: skipped"


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_cpu_backends_run_the_generic_path_end_to_end(backend, capsys, tmp_path):
    if backend == "torch":
        pytest.importorskip("torch")
    out = tmp_path / "gpu.json"
    assert gpu_check.main(["--backend", backend, "--dtype", "float64", "--json", str(out), *TINY]) == 0
    printed = capsys.readouterr().out.splitlines()
    result = json.loads(printed[-1])
    assert result == json.loads(out.read_text())
    assert result["status"] == "ok" and result["backend"] == backend and result["generic_path"] and result["finite"]
    assert result["gflops"] > 0 and result["peak_gflops"] > 0
    assert result["fraction_of_peak"] == pytest.approx(result["gflops"] / result["peak_gflops"])
    assert "% of the" in printed[0]
