"""Markdown rendering of a StationarityReport."""

from __future__ import annotations

import numpy as np


def fmt(value, digits: int = 6) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value).replace("|", "\\|")


def table(rows, header=("quantity", "value")) -> str:
    lines = [f"| {' | '.join(header)} |", f"|{'---|' * len(header)}"]
    lines += [f"| {' | '.join(fmt(c) for c in row)} |" for row in rows]
    return "\n".join(lines)


def _support_labels(r) -> list[str]:
    """The near-support set as sample indices, or as (n, j) pairs for K-class rows."""
    if r.margin_rows is None:
        return [str(i) for i in r.support.tolist()]
    return [f"({int(n)}, {int(j)})" for n, j in r.margin_rows[r.support]]


def _sizes(r) -> tuple[str, str]:
    if r.margin_rows is None:
        return "samples N / parameters P", f"{r.n_samples} / {r.n_params}"
    return ("samples N / classes K / margin rows (n, j) / parameters P",
            f"{r.n_samples} / {r.n_classes} / {len(r.margin_rows)} / {r.n_params}")


def _main_rows(r) -> list:
    support = _support_labels(r)
    shown = ", ".join(support[:20]) + (" ..." if len(support) > 20 else "")
    return [
        ("model", r.model), ("degree alpha", r.degree), _sizes(r),
        ("source", r.source), ("normalized margin min f_n / ||theta||^alpha", r.normalized_margin),
        ("scale q_min^(1/alpha)", r.scale), ("constraint level", r.constraint_level),
        (f"near-support set (tol {r.support_tol:g})", f"{len(support)}: {shown}"),
        ("stationarity eps = ||theta_hat - sum lambda grad f||", r.kkt.epsilon),
        ("relative eps", r.kkt.relative_epsilon), ("delta = sum lambda_n (f_n - 1)", r.kkt.delta),
        ("complementarity max lambda_n |f_n - 1|", r.kkt.complementarity),
        ("primal violation", r.kkt.primal_violation),
        ("LICQ rank / active", f"{r.licq.rank} / {r.licq.n_active}"),
        ("LICQ smallest singular value", r.licq.smallest_singular_value), ("LICQ holds", r.licq.holds),
        ("Theorem 3 alignment cos(-grad L, theta)", r.alignment),
        ("approximate KKT (rel eps, |delta| <= 1e-3)", r.is_approximate_kkt()),
    ] + _kink_rows(r.kinks)


def _kink_rows(k) -> list:
    """The near-support rows at a kink (``StationarityReport.kinks``), when there are any."""
    if k is None:
        return []
    units = sum(len(u) for u in k.units)
    how = ("eps, delta and lambda over the Clarke subdifferential" if k.fitted else
           "not fitted over the Clarke subdifferential (beyond the size limits): one gradient per row")
    return [("near-support rows with units at a kink", f"{k.rows.size} rows, {units} units: {how}"),
            ("rows with too many kinks to enumerate", k.undecided_rows),
            ("eps with one gradient per row (derivative 0 at a kink)", k.single_gradient_epsilon)]


def support_rows_table(r, limit: int = 20) -> str:
    """K-class reports: the near-support rows (n, j) with their margin and multiplier, largest multiplier first.

    Args:
        r: a StationarityReport with ``margin_rows``.
        limit: the most rows shown (a note counts the rest).

    Returns:
        A Markdown table (row, sample n, class j, f_nj(theta_hat), lambda_nj).
    """
    order = r.support[np.argsort(-r.multipliers[r.support], kind="stable")][:limit]
    rows = [(int(i), int(r.margin_rows[i, 0]), int(r.margin_rows[i, 1]), float(r.margins[i]),
             float(r.multipliers[i])) for i in order]
    note = f"\n\n{r.support.size - limit} more near-support rows in report.json." if r.support.size > limit else ""
    return table(rows, header=("row", "sample n", "class j", "f_nj(theta_hat)", "lambda_nj")) + note


def _comparison_rows(c) -> list:
    return [
        ("certificate", f"{c.certificate_problem} ({c.certificate_status})"), ("angle to certificate (rad)", c.angle),
        ("angle between margin vectors (rad)", c.margin_vector_angle),
        ("normalized margin ratio (ours / certificate)", c.margin_ratio),
        ("multiplier relative error", c.multiplier_relative_error), ("support Jaccard index", c.support_jaccard),
    ] + ([("note", c.note)] if c.note else [])


def _trajectory_rows(t) -> list:
    finite = np.nonzero(np.isfinite(t.margins))[0]
    k = int(finite[0]) if finite.size else 0  # first checkpoint with theta != 0
    return [("checkpoints", len(t.iterations)), (t.axis, f"{t.iterations[0]:g} .. {t.iterations[-1]:g}"),
            (f"{t.margin_kind} margin at {t.axis} {t.iterations[k]:g} / last",
             f"{fmt(float(t.margins[k]))} / {fmt(float(t.margins[-1]))}"),
            (f"angle to {t.reference} at {t.axis} {t.iterations[k]:g}", float(t.angles[k])),
            ("alignment cos(-grad L, theta): first / last",
             f"{fmt(float(t.alignment[k]))} / {fmt(float(t.alignment[-1]))}")]


def environment_rows(env: dict) -> list:
    """(name, value) rows of an environment block (versions, commit, CPU, compiled GD kernel)."""
    from ..environment import format_environment

    rows = []
    for line in format_environment(env).splitlines():
        name, _, value = line.partition(":")
        rows.append((name.strip(), value.strip()))
    return rows


def report_markdown(r, plots: dict) -> str:
    """The report as Markdown; ``plots``: figure name -> its file or files (paths relative to report.md)."""
    from .figures import figure_markdown

    parts = [f"# Stationarity report: {r.model}", "", f"Convention: {r.convention}.", "", table(_main_rows(r))]
    if r.margin_rows is not None and r.support.size:
        parts += ["", "## Near-support margin rows (n, j)", "",
                  "Row (n, j) is f_nj = g_{y_n}(x_n) - g_j(x_n), sample n against class j.", "",
                  support_rows_table(r)]
    if r.comparison is not None:
        parts += ["", "## Comparison with the solver certificate", "", table(_comparison_rows(r.comparison))]
    if r.trajectory is not None:
        parts += ["", "## Trajectory", "", table(_trajectory_rows(r.trajectory))]
    if plots:
        parts += ["", "## Plots", ""]
        for name, files in plots.items():
            parts += figure_markdown(name, [files] if isinstance(files, str) else files) + [""]
    parts += ["", "## Environment", "", f"Seed: {'not recorded' if r.seed is None else r.seed}.", "",
              table(environment_rows(r.environment))]
    return "\n".join(parts) + "\n"
