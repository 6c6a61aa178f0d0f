"""PNG plots of a stationarity report (matplotlib, Agg backend, no display needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _pyplot().close(fig)
    return str(path)


def plot_multipliers(report, path: Path) -> str:
    plt = _pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    n = np.arange(report.multipliers.size)
    ax1.stem(n, report.multipliers, basefmt=" ")
    ax1.set(xlabel="sample n", ylabel="lambda_n", title="multipliers (NNLS on near-support set)")
    on = np.zeros(n.size, dtype=bool)
    on[report.support] = True
    ax2.scatter(n[~on], report.margins[~on], s=10, label="off support")
    ax2.scatter(n[on], report.margins[on], s=16, color="C3", label="near-support")
    ax2.axhline(report.constraint_level, color="k", lw=0.8)
    ax2.set(xlabel="sample n", ylabel="f_n(theta_hat)", title="margins after normalization")
    ax2.legend(fontsize=8)
    return _save(fig, path)


def plot_margin(trajectory, path: Path) -> str:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    pos = trajectory.iterations > 0  # log axis: the initial point (iteration 0) is left out
    ax.semilogx(trajectory.iterations[pos], trajectory.margins[pos], marker=".")
    ax.set(xlabel=trajectory.axis, ylabel=f"{trajectory.margin_kind} margin", title=f"margin vs {trajectory.axis}")
    ax.grid(True, which="both", alpha=0.3)
    return _save(fig, path)


def plot_angle(trajectory, path: Path) -> str:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    pos = trajectory.iterations > 0
    keep = pos & (trajectory.angles > 0)
    ax.loglog(trajectory.iterations[keep], trajectory.angles[keep], marker=".", label=f"to {trajectory.reference}")
    misalign = 1.0 - trajectory.alignment
    ok = pos & (misalign > 0)
    ax.loglog(trajectory.iterations[ok], misalign[ok], marker=".", label="1 - cos(-grad L, theta)")
    ax.set(xlabel=trajectory.axis, ylabel="angle (rad)", title=f"angle vs {trajectory.axis}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def save_plots(report, directory) -> dict[str, str]:
    """Write multipliers.png and, with a trajectory, margin.png and angle.png; returns name -> path."""
    directory = Path(directory)
    paths = {"multipliers": plot_multipliers(report, directory / "multipliers.png")}
    if report.trajectory is not None:
        paths["margin"] = plot_margin(report.trajectory, directory / "margin.png")
        paths["angle"] = plot_angle(report.trajectory, directory / "angle.png")
    return paths
