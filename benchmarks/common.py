"""Shared pieces of the benchmark suites: results, optional modules, timing, JSON + Markdown output."""

from __future__ import annotations

import importlib
import json
import platform
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lexmargin.nlp.certificate import jsonable


PASSED, FAILED, NOT_AVAILABLE, ERROR = "passed", "failed", "not available", "error"


@dataclass(frozen=True)
class CheckResult:
    """One claim checked numerically.  ``status``: passed, failed, not available, error."""

    name: str
    claim: str
    passed: bool
    numbers: dict = field(default_factory=dict)
    plots: tuple[str, ...] = ()
    status: str = ""
    note: str = ""
    seconds: float = 0.0

    def __post_init__(self):
        if not self.status:
            object.__setattr__(self, "status", PASSED if self.passed else FAILED)
        if self.passed and self.status != PASSED:
            raise ValueError(f"check {self.name}: passed=True contradicts status {self.status!r}")

    def to_dict(self) -> dict:
        return {"name": self.name, "claim": self.claim, "passed": self.passed, "status": self.status,
                "numbers": jsonable(self.numbers), "plots": list(self.plots), "note": self.note,
                "seconds": self.seconds}


def not_available(name: str, claim: str, reason: str) -> CheckResult:
    """An explicit 'not available' result (never counted as passed)."""
    return CheckResult(name, claim, False, status=NOT_AVAILABLE, note=reason)


def optional_module(name: str):
    """Import a module or return None when it (or one of its dependencies) is missing."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def select(functions, only, prefix: str) -> list:
    """The functions whose names (without ``prefix``) are in ``only`` (all when None); unknown names raise."""
    names = [fn.__name__.removeprefix(prefix) for fn in functions]
    unknown = sorted(set(only or ()) - set(names))
    if unknown:
        raise ValueError(f"unknown {prefix.rstrip('_')} name(s) {unknown}; choose from {names}")
    return [fn for fn, name in zip(functions, names) if only is None or name in only]


def run_check(fn: Callable[..., CheckResult], **kwargs) -> CheckResult:
    """Run one check, timing it; an unexpected exception becomes an 'error' result."""
    start = time.perf_counter()
    try:
        result = fn(**kwargs)
    except Exception as exc:  # noqa: BLE001 - one failing check must not stop the suite
        name = getattr(fn, "__name__", "check").removeprefix("check_")
        last = traceback.extract_tb(exc.__traceback__)[-1]
        result = CheckResult(name, (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else "", False,
                             status=ERROR, note=f"{type(exc).__name__}: {exc} ({Path(last.filename).name}:{last.lineno})")
    seconds = time.perf_counter() - start
    return CheckResult(result.name, result.claim, result.passed, result.numbers, result.plots, result.status,
                       result.note, seconds)


def best_time(fn: Callable[[], object], repeat: int = 3, min_seconds: float = 0.0) -> float:
    """Smallest wall time of ``repeat`` calls (each call repeated until ``min_seconds``)."""
    best = float("inf")
    for _ in range(max(1, repeat)):
        count, start = 0, time.perf_counter()
        while True:
            fn()
            count += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_seconds:
                break
        best = min(best, elapsed / count)
    return best


def environment() -> dict:
    import os

    return {"python": platform.python_version(), "numpy": np.__version__, "machine": platform.machine(),
            "processor": platform.processor(), "cpus": os.cpu_count(),
            "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
            "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def fmt(value, digits: int = 4) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.{digits}g}"
    return str(value).replace("|", "\\|")


def markdown_table(header, rows) -> str:
    lines = [f"| {' | '.join(header)} |", f"|{'---|' * len(header)}"]
    lines += [f"| {' | '.join(fmt(c) for c in row)} |" for row in rows]
    return "\n".join(lines)


def write_outputs(out_dir, name: str, payload: dict, markdown: str) -> dict[str, str]:
    """Write ``{name}.json`` and ``{name}.md`` into ``out_dir``; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / f"{name}.json", out / f"{name}.md"
    json_path.write_text(json.dumps(jsonable(payload), indent=2))
    md_path.write_text(markdown)
    return {"json": str(json_path), "markdown": str(md_path)}


def pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    pyplot().close(fig)
    return str(path)


def separable_data(n: int, d: int, seed: int = 0, gap: float = 0.3):
    """Linearly separable Gaussian data with a margin gap along a random unit direction."""
    from lexmargin import Dataset

    rng = np.random.default_rng(seed)
    w = rng.standard_normal(d)
    w /= np.linalg.norm(w)
    X = rng.standard_normal((n, d))
    y = np.where(X @ w >= 0, 1.0, -1.0)
    return Dataset(X + gap * y[:, None] * w, y)
