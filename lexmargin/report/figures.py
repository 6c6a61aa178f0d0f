"""Figures a paper can use: PNG (200 dpi), PDF and SVG; mathtext labels; drawn bounds; distinct styles.

Shared by the stationarity report's plots and the benchmark suites' figures:

* ``save_figure(fig, stem, formats)`` writes ``stem.<fmt>`` for each requested format in ``FORMATS``
  (PNG at ``DPI`` = 200 with its resolution in the file, vector PDF with TrueType fonts, SVG), each
  atomically (``lexmargin.fileio.atomic_write``) and without creation dates, so the same figure gives
  the same bytes;
* ``series_style(k)``: the k-th curve of an axes gets its own colour, line style, marker and z-order,
  so two curves that coincide (a numeric result on its analytic prediction) both stay visible: the
  later one is drawn on top, dashed, with open markers;
* ``draw_bound(ax, value, label)``: a claimed bound (log N in Lemma 3, a tolerance) as a labelled
  horizontal line -- every bound a check claims is drawn;
* ``log_ticks(ax, values)``: on a log axis spanning less than two decades, major ticks at the data's
  own values (at most ``max_ticks``, thinned evenly) labelled plainly (2, 4, 8, 16) and the minor labels
  that crowd such an axis (``3x10^0 4x10^0``) removed; ``integer_ticks(ax)`` for sample indices;
* ``new_figure`` uses constrained layout, so titles, labels and legends never overlap; ``style()`` is
  the context (font sizes, grid, TrueType fonts in PDF) a figure is built and saved in.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

#: Formats ``save_figure`` writes; ``--format`` on the command line chooses among them.
FORMATS = ("png", "pdf", "svg")
#: Raster resolution of PNG figures (dots per inch), recorded in the file's pHYs chunk.
DPI = 200

# cycles of coprime lengths (6, 5, 7): no two of the first 210 curves share colour, dash pattern and marker
_COLORS = ("C0", "C1", "C2", "C3", "C4", "C5")
_LINES = ("-", "--", ":", "-.", (0, (5, 1, 1, 1)))
_MARKERS = ("o", "s", "^", "D", "v", "P", "X")

_RC = {
    "font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9, "legend.fontsize": 8, "xtick.labelsize": 8,
    "ytick.labelsize": 8, "lines.linewidth": 1.5, "lines.markersize": 4, "axes.grid": True, "grid.alpha": 0.3,
    "pdf.fonttype": 42, "svg.fonttype": "path", "svg.hashsalt": "lexmargin", "mathtext.fontset": "dejavusans",
}


def check_formats(formats) -> tuple[str, ...]:
    """The requested figure formats, validated, lower-cased and without repeats (order kept).

    Args:
        formats: a format name or an iterable of them (``"png"``, ``"pdf"``, ``"svg"``).

    Returns:
        A non-empty tuple of format names.

    Raises:
        ValueError: an unknown format, or none at all.
    """
    if isinstance(formats, str):
        formats = (formats,)
    chosen = []
    for fmt in formats or ():
        name = str(fmt).lower().lstrip(".")
        if name not in FORMATS:
            raise ValueError(f"unknown figure format {fmt!r}; choose from {', '.join(FORMATS)}")
        if name not in chosen:
            chosen.append(name)
    if not chosen:
        raise ValueError(f"no figure format given; choose from {', '.join(FORMATS)}")
    return tuple(chosen)


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def new_figure(ncols: int = 1, width: float = 5.5, height: float = 3.6):
    """A figure with ``ncols`` axes side by side in constrained layout (call it inside ``style()``).

    Args:
        ncols: number of axes in one row.
        width, height: figure size in inches.

    Returns:
        (fig, axes): ``axes`` is one Axes for ``ncols == 1``, else an array of them.
    """
    return pyplot().subplots(1, ncols, figsize=(width, height), layout="constrained")


def style():
    """A context in which figures get the paper style (font sizes, grid, TrueType fonts in PDF).

    Build and save a figure inside it: matplotlib reads the style when an artist is created.
    """
    return pyplot().rc_context(_RC)


def series_style(k: int) -> dict:
    """Plot keywords of the k-th curve: colour, line style, marker, z-order (later curves on top).

    Args:
        k: the curve's index on its axes (0 first).

    Returns:
        Keywords for ``Axes.plot``; each curve is thinner than the one before (down to a floor), on top of
        it, in another dash pattern with open markers of a smaller size, so a curve drawn exactly on an
        earlier one leaves that one's edges and markers visible (Path-SGD from balanced and unbalanced
        starts: the same curve).
    """
    style = {"color": _COLORS[k % len(_COLORS)], "linestyle": _LINES[k % len(_LINES)],
             "marker": _MARKERS[k % len(_MARKERS)], "zorder": 3 + k,
             "linewidth": max(2.4 - 0.3 * k, 0.9), "markersize": max(6.0 - 0.5 * k, 3.5)}
    if k:
        style["markerfacecolor"] = "none"
    return style


def plot_series(ax, x, y, label: str, k: int, **overrides):
    """Draw curve number ``k`` with ``series_style(k)``; returns the Line2D."""
    (line,) = ax.plot(np.asarray(x, dtype=float), np.asarray(y, dtype=float), label=label,
                      **(series_style(k) | overrides))
    return line


def draw_bound(ax, value: float, label: str, *, color: str = "0.25", linestyle=(0, (4, 2)), vertical: bool = False):
    """A claimed bound as a labelled line across the axes (gray, dashed, beneath the curves).

    Args:
        ax: the axes.
        value: where the bound lies (a y value; an x value with ``vertical``).
        label: its legend entry, e.g. ``r"$\\log N$ (Lemma 3 bound)"``.

    Returns:
        The Line2D (its ``get_label()`` is ``label``), or None for a non-finite value.
    """
    if value is None or not np.isfinite(value):
        return None
    draw = ax.axvline if vertical else ax.axhline
    return draw(value, color=color, linestyle=linestyle, linewidth=1.2, label=label, zorder=2)


def log_ticks(ax, values, axis: str = "x", max_ticks: int = 7) -> None:
    """Readable ticks on a log axis: plain labels at the data's values when it spans < 2 decades.

    Args:
        ax: the axes (its ``axis`` must already be on a log scale).
        values: the data's coordinates along that axis (positive ones are used).
        axis: ``"x"`` or ``"y"``.
        max_ticks: most major ticks; the values are thinned evenly (first and last kept).
    """
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    target = ax.xaxis if axis == "x" else ax.yaxis
    if target.get_scale() != "log":
        return
    target.set_minor_formatter(NullFormatter())
    v = np.unique(np.asarray(values, dtype=float))
    v = v[np.isfinite(v) & (v > 0)]
    if v.size < 2 or np.log10(v[-1] / v[0]) >= 2:
        return   # the default decade ticks (10^1, 10^2, ...) are readable; minor labels stay off
    if v.size > max_ticks:
        v = v[np.unique(np.round(np.linspace(0, v.size - 1, max_ticks)).astype(int))]
    target.set_major_locator(FixedLocator(v))
    target.set_major_formatter(FuncFormatter(lambda value, _pos: f"{value:g}"))


def log_scale(ax, x=None, y=None) -> None:
    """Log scale on the axes given values for, where those values hold a positive finite number.

    An axis with none stays linear (matplotlib cannot place log ticks without data), and axes without
    any drawable point say so, so a degenerate trajectory (one checkpoint, theta = 0) still gives a figure.

    Args:
        ax: the axes.
        x, y: the values drawn along each axis (None: leave that axis alone).
    """
    drawable = True
    for name, values in (("x", x), ("y", y)):
        if values is None:
            continue
        v = np.asarray(values, dtype=float).ravel()
        if np.any(np.isfinite(v) & (v > 0)):
            (ax.set_xscale if name == "x" else ax.set_yscale)("log")
        else:
            drawable = False
    if not drawable:
        ax.text(0.5, 0.5, "no positive values to show on a log axis", transform=ax.transAxes, ha="center",
                va="center", color="0.4")


def integer_ticks(ax, axis: str = "x") -> None:
    """Only whole numbers as ticks (sample indices n, counts)."""
    from matplotlib.ticker import MaxNLocator

    (ax.xaxis if axis == "x" else ax.yaxis).set_major_locator(MaxNLocator(integer=True, nbins="auto"))


def legend(ax, outside: bool | None = None, **kwargs) -> None:
    """A legend of the labelled artists (none when there are none).

    Args:
        ax: the axes.
        outside: put it below the axes, outside them (the figure's constrained layout makes room), so it
            can hide no data; default: when there are more than three entries and the figure has one axes.
        **kwargs: passed to ``Axes.legend`` (inside placement).
    """
    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return
    if outside is None:
        outside = len(handles) > 3 and len(ax.figure.axes) == 1
    if outside:
        fig = ax.figure
        box = fig.legend(handles, labels, loc="outside lower center", ncols=2, fontsize=8, frameon=False)
        if box.get_window_extent(fig.canvas.get_renderer()).width > 0.98 * fig.bbox.width:
            box.remove()   # two columns of long labels would be cut at the figure's edges: one column
            fig.legend(handles, labels, loc="outside lower center", ncols=1, fontsize=8, frameon=False)
    else:
        ax.legend(**({"fontsize": 8, "framealpha": 0.9} | kwargs))


def save_figure(fig, stem, formats: Sequence[str] = ("png",), close: bool = True) -> list[str]:
    """Write ``fig`` as ``stem.<format>`` for each format, atomically, then close it.

    Args:
        fig: the figure.
        stem: the path without suffix (a suffix given is replaced).
        formats: names from ``FORMATS`` (see ``check_formats``).
        close: close the figure afterwards (keep it open to inspect it).

    Returns:
        The paths written, in the order of ``formats``.
    """
    from ..fileio import atomic_write

    plt = pyplot()
    stem = Path(stem)
    paths = []
    try:
        with plt.rc_context(_RC), _quiet_font_subsetting():
            for k, fmt in enumerate(check_formats(formats)):
                path = stem.with_suffix(f".{fmt}")
                with atomic_write(path, "wb") as fh:
                    fig.savefig(fh, format=fmt, dpi=DPI, metadata=_METADATA[fmt])
                paths.append(str(path))
                if k == 0:   # the layout is solved; later formats reuse it instead of solving it again
                    fig.set_layout_engine("none")
    finally:
        if close:
            plt.close(fig)
    return paths


# no creation dates or software versions in the files: the same figure gives the same bytes
_METADATA = {"png": {"Software": None}, "pdf": {"CreationDate": None, "ModDate": None, "Producer": None},
             "svg": {"Date": None}}


@contextlib.contextmanager
def _quiet_font_subsetting():
    """fontTools logs a warning about DejaVu's zero timestamps while subsetting fonts for PDF; hush it."""
    logger = logging.getLogger("fontTools")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def primary(paths: Iterable[str]) -> list[str]:
    """One path per figure: its PNG, else SVG, else PDF (what Markdown embeds)."""
    by_stem: dict[str, list[str]] = {}
    for p in paths:
        by_stem.setdefault(str(Path(p).with_suffix("")), []).append(str(p))
    rank = {"png": 0, "svg": 1, "pdf": 2}
    return [min(group, key=lambda p: rank.get(Path(p).suffix.lstrip("."), 3)) for group in by_stem.values()]


def figure_markdown(name: str, paths: Iterable[str], relative_to=None) -> list[str]:
    """Markdown for one figure's files: the PNG (else SVG) embedded, the other formats linked.

    Args:
        name: the image's alt text.
        paths: the figure's files (one stem, several formats) -- or several figures' files.
        relative_to: folder the Markdown file lies in (paths are written relative to it).

    Returns:
        Markdown lines.
    """
    import os

    def rel(p):
        return os.path.relpath(p, relative_to) if relative_to is not None else str(p)

    paths = [str(p) for p in paths]
    lines = []
    for shown in primary(paths):
        stem = Path(shown).with_suffix("")
        others = [p for p in paths if Path(p).with_suffix("") == stem and p != shown]
        if Path(shown).suffix == ".pdf":
            lines.append(f"[{name} (PDF)]({rel(shown)})")
        else:
            lines.append(f"![{name}]({rel(shown)})")
        if others:
            lines.append("also as " + ", ".join(f"[{Path(p).suffix.lstrip('.').upper()}]({rel(p)})" for p in others))
    return lines


__all__ = ["DPI", "FORMATS", "check_formats", "draw_bound", "figure_markdown", "integer_ticks", "legend",
           "log_scale", "log_ticks", "new_figure", "plot_series", "primary", "pyplot", "save_figure", "series_style", "style"]
