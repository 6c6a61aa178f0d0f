"""Shared pieces of the benchmark suites: results, optional modules, timing, JSON + Markdown output, figures.

Every suite's ``report.json`` follows ``docs/schema/report.schema.json`` (kinds ``paper_suite`` and
``perf_suite``): ``write_outputs`` adds ``schema_version``, ``kind`` and ``seed`` to the payload, writes
strict JSON (non-finite numbers as null) and writes both files atomically.  ``environment()`` is
``lexmargin.environment.environment()`` plus the machine's state during the run (load average, time).
Figures go through ``lexmargin.report.figures`` (PNG at 200 dpi, PDF, SVG; bounds drawn; distinct
styles).
"""

from __future__ import annotations

import argparse
import importlib
import os
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lexmargin.fileio import dumps_strict, write_text_atomic
from lexmargin.nlp.certificate import jsonable  # noqa: F401 - kept for callers of common.jsonable
from lexmargin.report import figures
from lexmargin.report.schema import header, plain

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
                "numbers": plain(self.numbers), "plots": list(self.plots), "note": self.note,
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
    """``lexmargin.environment.environment()`` plus the load average and the time (UTC) of the run."""
    from lexmargin.environment import environment as software_and_hardware

    return software_and_hardware() | {
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def environment_line(env: dict) -> str:
    """One line naming the versions, commit, CPU and GD path of an environment block (for Markdown)."""
    commit = env.get("git_commit")
    where = f" (git {commit[:10]}{', modified' if env.get('git_dirty') else ''})" if commit else ""
    gd = "compiled GD kernel" if env.get("compiled_gd") else f"numpy GD ({env.get('compiled_gd_reason', 'unknown')})"
    return (f"lexmargin {env.get('lexmargin')}{where}, Python {env.get('python')}, NumPy {env.get('numpy')}, "
            f"SciPy {env.get('scipy')}, SymPy {env.get('sympy')}, CasADi {env.get('casadi')}, "
            f"IPOPT {env.get('ipopt')}; {env.get('cpu')}, {env.get('cpus')} CPUs; {gd}")


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


def write_outputs(out_dir, name: str, payload: dict, markdown: str, seed: int | None = None) -> dict[str, str]:
    """Write ``{name}.json`` (strict, versioned) and ``{name}.md`` into ``out_dir``, atomically.

    Args:
        out_dir: the folder (created when missing).
        name: the files' stem (``report``).
        payload: the suite's ``to_dict()``; its ``suite`` (``paper``/``perf``) names the report's kind.
            ``schema_version``, ``kind`` and ``seed`` are added in front unless present; its
            ``environment`` is kept (``environment()`` is used when it has none).
        markdown: the Markdown text.
        seed: the seed of the suite's random data.

    Returns:
        ``{"json": path, "markdown": path}``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    document = dict(payload)
    if "schema_version" not in document and "suite" in document:
        head = header(f"{document['suite']}_suite", document.get("seed", seed),
                      document.get("environment") or environment())
        document = head | {k: v for k, v in document.items() if k not in head}
    json_path, md_path = out / f"{name}.json", out / f"{name}.md"
    write_text_atomic(json_path, dumps_strict(plain(document), indent=2))
    write_text_atomic(md_path, markdown)
    return {"json": str(json_path), "markdown": str(md_path)}


def pyplot():
    """matplotlib.pyplot on the Agg backend."""
    return figures.pyplot()


def save_figure(fig, path, formats=("png",)) -> list[str]:
    """Write ``fig`` in each format (``path``'s suffix replaced), atomically; returns the files."""
    return figures.save_figure(fig, path, formats)


_BOUND_LINES = ((0, (4, 2)), ":", "-.")   # two bounds on one axes never share a line style


def line_plot(stem, formats, series, *, xlabel: str, ylabel: str, title: str, bounds=(), logx: bool = True,
              logy: bool = True, panel=None) -> list[str]:
    """A line plot of one check: every curve in its own style, every claimed bound drawn.

    Args:
        stem: the figure's path without suffix.
        formats: figure formats (``lexmargin.report.figures.FORMATS``).
        series: ``[(label, x, y), ...]``; non-positive values are left out on a log axis.
        xlabel, ylabel, title: mathtext allowed (``r"$\\rho$"``).
        bounds: ``[(value, label), ...]`` horizontal lines, e.g. ``[(np.log(N), r"$\\log N$ (bound)")]``.
        logx, logy: log axes.
        panel: optional ``callable(fig, axes)`` given a second axes to its right to draw on.

    Returns:
        The files written.
    """
    with figures.style():
        below = 0 if panel or len(series) + len(bounds) <= 3 else len(series) + len(bounds)   # legend entries
        fig, axes = figures.new_figure(2 if panel else 1, width=10.0 if panel else 5.5, height=3.6 + 0.2 * below)
        ax = axes[0] if panel else axes
        xs, ys = [], []
        for k, (label, x, y) in enumerate(series):
            x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
            keep = np.isfinite(x) & np.isfinite(y) & ((y > 0) if logy else True) & ((x > 0) if logx else True)
            figures.plot_series(ax, x[keep], y[keep], label, k)
            xs.append(x[keep])
            ys.append(y[keep])
        for k, (value, label) in enumerate(bounds):
            figures.draw_bound(ax, value, label, linestyle=_BOUND_LINES[k % len(_BOUND_LINES)])
        ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
        figures.log_scale(ax, x=np.concatenate(xs) if logx and xs else None,
                          y=np.concatenate(ys + [[b for b, _ in bounds]]) if logy and xs else None)
        if logx and xs:   # ticks at the values of the widest series (the union of several would be uneven)
            figures.log_ticks(ax, max(xs, key=lambda v: np.ptp(np.log(v)) if v.size else -1.0))
        figures.legend(ax)
        if panel:
            panel(fig, axes[1])
        return figures.save_figure(fig, stem, formats)


def separable_data(n: int, d: int, seed: int = 0, gap: float = 0.3):
    """Linearly separable Gaussian data with a margin gap along a random unit direction (the sweeps' draw,
    ``lexmargin.sweep.separable_data``)."""
    from lexmargin.sweep import separable_data as draw

    return draw(n, d, seed, gap)


def multiclass_separable_data(n: int, d: int, n_classes: int, seed: int = 0, gap: float = 0.3):
    """K-class data separable by a linear K-output model through 0 (``lexmargin.sweep.multiclass_separable_data``)."""
    from lexmargin.sweep import multiclass_separable_data as draw

    return draw(n, d, n_classes, seed, gap)


def suite_main(argv, description: str, default_out: str, run) -> int:
    """The command line of a suite (paper, seeds): ``--out``, ``--quick``, ``--seed``, ``--format``; prints the
    report and returns 0 when every available check passed, else 1.

    Args:
        argv: the arguments (None: ``sys.argv``).
        description: the suite's one-line description.
        default_out: the default output folder.
        run: ``run(out_dir, quick, seed=..., formats=...) -> SuiteResult``.

    Returns:
        The exit status.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--out", default=default_out)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--format", nargs="+", choices=figures.FORMATS, default=["png"], dest="formats")
    args = parser.parse_args(argv)
    suite = run(args.out, args.quick, seed=args.seed, formats=args.formats)
    print(suite.to_markdown())
    return 0 if suite.all_available_passed else 1
