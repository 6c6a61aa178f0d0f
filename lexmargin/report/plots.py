"""Plots of a stationarity report (matplotlib, Agg backend): PNG at 200 dpi, PDF, SVG.

* ``multipliers``: lambda_n by sample (NNLS on the near-support set) and the normalized margins
  f_n(theta_hat) with the constraint level f_n = 1 and the near-support threshold 1 + tol drawn;
* ``margin`` (checkpoints): the normalized margin min_n f_n(theta) / ||theta||^alpha against the
  iteration (or rho), with the certificate's normalized margin drawn when one was compared;
* ``angle`` (checkpoints): the angle to the reference and the Theorem 3 misalignment
  1 - cos(-grad L, theta), in distinct styles.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .figures import (
    draw_bound,
    integer_ticks,
    legend,
    log_scale,
    log_ticks,
    new_figure,
    plot_series,
    save_figure,
    style,
)

_AXIS_LABELS = {"iteration": r"iteration $t$", "rho": r"$\rho$", "step": r"step $t$"}


def axis_label(axis: str) -> str:
    """Mathtext label of a trajectory's axis (``"rho"`` -> ``$\\rho$``)."""
    return _AXIS_LABELS.get(axis, axis)


def plot_multipliers(report, stem, formats=("png",)) -> list[str]:
    """lambda_n and the normalized margins by sample; returns the files written (one per format)."""
    with style():
        fig, (ax1, ax2) = new_figure(2, width=10.0, height=3.6)
        n = np.arange(report.multipliers.size)
        ax1.stem(n, report.multipliers, basefmt=" ")
        rows = getattr(report, "margin_rows", None) is not None
        xlabel = r"margin row $(n, j)$, sample-major" if rows else r"sample $n$"
        ax1.set(xlabel=xlabel, ylabel=r"$\lambda_{n,j}$" if rows else r"$\lambda_n$",
                title="multipliers (NNLS on the near-support set)")
        on = np.zeros(n.size, dtype=bool)
        on[report.support] = True
        ax2.scatter(n[~on], report.margins[~on], s=12, marker="o", color="C0", label="off support", zorder=3)
        ax2.scatter(n[on], report.margins[on], s=22, marker="D", color="C3", label="near-support", zorder=4)
        level = report.constraint_level
        draw_bound(ax2, level, rf"$f_n = {level:g}$ (constraint)", color="k", linestyle="-")
        threshold = level + report.support_tol * max(1.0, abs(level))
        draw_bound(ax2, threshold, rf"near-support threshold ({threshold:g})")
        ax2.set(xlabel=xlabel, ylabel=r"$f_{n,j}(\hat\theta)$" if rows else r"$f_n(\hat\theta)$",
                title="margins after normalization")
        for ax in (ax1, ax2):
            integer_ticks(ax)
        legend(ax2)
        return save_figure(fig, stem, formats)


def _certificate_margin(report) -> float | None:
    c = report.comparison
    if c is None or not c.margin_ratio or report.normalized_margin is None:
        return None
    return report.normalized_margin / c.margin_ratio


def plot_margin(trajectory, stem, formats=("png",), reference_margin: float | None = None) -> list[str]:
    """Margin against the iteration (log axis; iteration 0 left out); returns the files written."""
    with style():
        fig, ax = new_figure()
        pos = trajectory.iterations > 0
        x = trajectory.iterations[pos]
        plot_series(ax, x, trajectory.margins[pos], f"{trajectory.margin_kind} margin", 0)
        if reference_margin is not None:
            draw_bound(ax, reference_margin, rf"certificate $\gamma^* = {reference_margin:.4g}$")
        ylabel = (r"$\min_n f_n(\theta) / \|\theta\|^\alpha$" if trajectory.margin_kind == "normalized"
                  else r"$\min_n f_n(\theta)$")
        ax.set(xlabel=axis_label(trajectory.axis), ylabel=ylabel, title=f"{trajectory.margin_kind} margin vs {trajectory.axis}")
        log_scale(ax, x=x)
        log_ticks(ax, x)
        legend(ax, loc="lower right")
        return save_figure(fig, stem, formats)


def plot_angle(trajectory, stem, formats=("png",)) -> list[str]:
    """Angle to the reference and 1 - cos(-grad L, theta) (log-log); returns the files written."""
    with style():
        fig, ax = new_figure()
        pos = trajectory.iterations > 0
        keep = pos & (trajectory.angles > 0)
        plot_series(ax, trajectory.iterations[keep], trajectory.angles[keep],
                    rf"$\angle(\theta, \theta_{{\mathrm{{ref}}}})$ (to {trajectory.reference}), rad", 0)
        misalign = 1.0 - trajectory.alignment
        ok = pos & (misalign > 0)
        plot_series(ax, trajectory.iterations[ok], misalign[ok], r"$1 - \cos(-\nabla L(\theta), \theta)$", 1)
        ax.set(xlabel=axis_label(trajectory.axis), ylabel="angle / misalignment", title=f"direction vs {trajectory.axis}")
        log_scale(ax, x=trajectory.iterations[keep | ok], y=np.concatenate([trajectory.angles[keep], misalign[ok]]))
        log_ticks(ax, trajectory.iterations[pos])
        legend(ax)
        return save_figure(fig, stem, formats)


def save_plots(report, directory, formats=("png",)) -> dict[str, list[str]]:
    """Write multipliers.* and, with a trajectory, margin.* and angle.*; returns name -> files written.

    Args:
        report: a StationarityReport.
        directory: the output folder.
        formats: figure formats (``lexmargin.report.figures.FORMATS``), each figure in every one.

    Returns:
        ``{"multipliers": [...], "margin": [...], "angle": [...]}`` (the last two with checkpoints only),
        each list in the order of ``formats``.
    """
    directory = Path(directory)
    paths = {"multipliers": plot_multipliers(report, directory / "multipliers", formats)}
    if report.trajectory is not None:
        paths["margin"] = plot_margin(report.trajectory, directory / "margin", formats, _certificate_margin(report))
        paths["angle"] = plot_angle(report.trajectory, directory / "angle", formats)
    return paths


__all__ = ["axis_label", "plot_angle", "plot_margin", "plot_multipliers", "save_plots"]
