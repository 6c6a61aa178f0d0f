"""Figures a paper can use: formats, resolution, drawn bounds, distinct styles, readable ticks and labels.

Properties of the figures (artists, tick positions, text extents, file headers), never pixels.
"""

import hashlib
import itertools
import math
import struct
from pathlib import Path

import numpy as np
import pytest

from lexmargin import Dataset, load_model
from lexmargin.cli import load_suite_module
from lexmargin.report import figures, stationarity_report
from lexmargin.report.plots import plot_angle, plot_margin, plot_multipliers


def png_dpi(path) -> float:
    """The resolution in a PNG's pHYs chunk (pixels per metre -> dots per inch)."""
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos = 8
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"pHYs":
            x, y, unit = struct.unpack(">IIB", data[pos + 8:pos + 17])
            assert unit == 1 and x == y   # metres, square pixels
            return x * 0.0254
        pos += 12 + length
    raise AssertionError("no pHYs chunk")


def _drawn_tick_labels(axis):
    """Tick labels matplotlib draws: visible, non-empty, at a tick inside the view interval."""
    low, high = sorted(axis.get_view_interval())
    for tick in itertools.chain(axis.get_major_ticks(), axis.get_minor_ticks()):
        if low - 1e-12 * abs(low) <= tick.get_loc() <= high + 1e-12 * abs(high):
            for label in (tick.label1, tick.label2):
                if label.get_visible() and label.get_text():
                    yield label


def text_boxes(fig):
    """Window extents of the drawn texts of each axes: tick labels, axis labels, title."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    out = []
    for ax in fig.axes:
        ticks = list(_drawn_tick_labels(ax.xaxis)) + list(_drawn_tick_labels(ax.yaxis))
        others = [t for t in (ax.xaxis.label, ax.yaxis.label, ax.title) if t.get_visible() and t.get_text()]
        out.append([(t.get_text(), t.get_window_extent(renderer), t in ticks) for t in ticks + others])
    return out


def assert_no_overlapping_text(fig, gap_points: float = 6.0):
    """No two texts of an axes overlap, and no two tick labels lie closer than ``gap_points``."""
    pad = gap_points / 2 * fig.dpi / 72
    for boxes in text_boxes(fig):
        for (a, box_a, tick_a), (b, box_b, tick_b) in itertools.combinations(boxes, 2):
            p = pad if tick_a and tick_b else 0.0
            assert not box_a.padded(p).overlaps(box_b.padded(p)), f"{a!r} crowds {b!r}"


def test_the_overlap_check_catches_the_old_theorem1_ticks():
    """The defect reported: default log ticks on rho in [2, 16] label 3x10^0 and 4x10^0 side by side."""
    plt = figures.pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    rho = np.array([2.0, 4.0, 8.0, 16.0])
    ax.plot(rho, 1 / rho, "o-")
    ax.set(xscale="log", yscale="log")
    fig.tight_layout()
    with pytest.raises(AssertionError, match="crowds"):
        assert_no_overlapping_text(fig)
    plt.close(fig)


@pytest.fixture(scope="module")
def paper():
    return load_suite_module("paper")


@pytest.fixture(scope="module")
def captured(paper, tmp_path_factory):
    """The figures of three quick checks, kept open (save_figure is wrapped to record them first)."""
    out = tmp_path_factory.mktemp("paper")
    kept = {}
    original = figures.save_figure

    def keep(fig, stem, formats=("png",), close=True):
        kept[str(stem).rsplit("/", 1)[-1]] = fig
        return original(fig, stem, formats, close=False)

    mp = pytest.MonkeyPatch()
    mp.setattr(figures, "save_figure", keep)
    try:
        cfg = paper.SuiteConfig(out, quick=True, formats=("png",))
        results = {check.__name__: check(cfg) for check in (paper.check_lemma3_bound,
                                                            paper.check_theorem1_shallow_discarded,
                                                            paper.check_theorem4_lexicographic)}
    finally:
        mp.undo()
    yield kept, results
    for fig in kept.values():
        figures.pyplot().close(fig)


def test_save_figure_writes_every_format_at_200_dpi_reproducibly(tmp_path):
    paths = []
    for k in range(2):
        with figures.style():
            fig, ax = figures.new_figure()
            ax.plot([1, 2, 3], [1, 4, 9], label=r"$\gamma^*(\rho)$")
            figures.legend(ax)
            paths.append(figures.save_figure(fig, tmp_path / f"f{k}", ["svg", "PNG", "pdf", "png"]))
    assert [p.rsplit(".", 1)[1] for p in paths[0]] == ["svg", "png", "pdf"]   # lower-cased, no repeats
    png, pdf, svg = (tmp_path / "f0.png", tmp_path / "f0.pdf", tmp_path / "f0.svg")
    assert png_dpi(png) == pytest.approx(figures.DPI, abs=0.01) and figures.DPI >= 200
    assert pdf.read_bytes()[:5] == b"%PDF-" and b"<svg" in svg.read_bytes()[:1000]
    digest = [[hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in group] for group in paths]
    assert digest[0] == digest[1]                     # no dates in the files: same figure, same bytes
    assert not list(tmp_path.glob(".*.tmp"))          # written atomically, no temporaries left
    with pytest.raises(ValueError, match="unknown figure format 'gif'; choose from png, pdf, svg"):
        figures.check_formats(["png", "gif"])
    with pytest.raises(ValueError, match="no figure format"):
        figures.check_formats([])


def test_series_styles_differ_in_line_marker_and_order():
    styles = [figures.series_style(k) for k in range(4)]
    for a, b in itertools.combinations(styles, 2):
        assert a["linestyle"] != b["linestyle"] and a["marker"] != b["marker"] and a["zorder"] != b["zorder"]
    assert styles[1]["zorder"] > styles[0]["zorder"] and styles[1]["markerfacecolor"] == "none"
    # many curves (several runs of several algorithms on one axes): no two look alike
    looks = [(st["color"], str(st["linestyle"]), st["marker"]) for st in map(figures.series_style, range(60))]
    assert len(set(looks)) == len(looks)
    # a curve drawn on the one before is thinner with smaller markers (the earlier one's edges stay visible)
    for a, b in zip(styles, styles[1:]):
        assert b["linewidth"] < a["linewidth"] and b["markersize"] < a["markersize"]


def test_log_ticks_on_a_narrow_range_are_the_data_values(tmp_path):
    with figures.style():
        fig, ax = figures.new_figure()
        assert type(fig.get_layout_engine()).__name__ == "ConstrainedLayoutEngine"
        rho = [2.0, 4.0, 8.0, 16.0, 32.0, 64.0]
        ax.plot(rho, np.reciprocal(rho))
        ax.set(xscale="log", yscale="log")
        figures.log_ticks(ax, rho)
        fig.canvas.draw()
        assert [t.get_text() for t in ax.get_xticklabels()] == ["2", "4", "8", "16", "32", "64"]
        assert all(not t.get_text() for t in ax.get_xticklabels(minor=True))
        assert_no_overlapping_text(fig)
        figures.pyplot().close(fig)


def test_lemma3_figure_draws_the_log_n_bound(captured):
    kept, results = captured
    result = results["check_lemma3_bound"]
    assert result.passed
    fig = kept["lemma3_bound"]
    ax = fig.axes[0]
    bound = [line for line in ax.get_lines() if r"\log N" in line.get_label()]
    assert len(bound) == 1
    assert np.allclose(bound[0].get_ydata(), np.log(20))
    assert ax.get_ylim()[1] >= np.log(20)                       # the bound is inside the view
    gaps = [line for line in ax.get_lines() if "gamma" in line.get_label()]
    assert gaps and all(np.all(line.get_ydata() <= np.log(20)) for line in gaps)
    assert "$" in ax.get_ylabel() and r"\gamma^*(\rho)" in ax.get_ylabel()     # mathtext, not ASCII
    right = fig.axes[1]                                          # the normalized gap and its bound
    assert any("bound" in line.get_label() for line in right.get_lines())
    assert [p.rsplit("/", 1)[1] for p in result.plots] == ["lemma3_bound.png"]


def test_theorem1_ticks_do_not_overlap(captured):
    kept, results = captured
    fig = kept["theorem1_shallow_discarded"]
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["2", "4", "8", "16"]
    assert_no_overlapping_text(fig)
    ratio = results["check_theorem1_shallow_discarded"].numbers["shallow_fraction"]
    bound = [line for line in ax.get_lines() if "claimed" in line.get_label()]
    assert len(bound) == 1 and np.allclose(bound[0].get_ydata(), ratio[0] / 4)


def test_theorem4_numeric_and_analytic_curves_are_both_visible(captured):
    kept, _ = captured
    ax = kept["theorem4_lexicographic"].axes[0]
    numeric = next(line for line in ax.get_lines() if "numeric" in line.get_label())
    analytic = next(line for line in ax.get_lines() if "analytic" in line.get_label())
    assert np.allclose(numeric.get_ydata(), analytic.get_ydata(), rtol=0.05)   # they do coincide ...
    assert numeric.get_linestyle() != analytic.get_linestyle()                  # ... yet look different
    assert numeric.get_marker() != analytic.get_marker()
    assert analytic.get_zorder() > numeric.get_zorder() and analytic.get_markerfacecolor() == "none"
    assert numeric.get_linewidth() > analytic.get_linewidth()                   # the one below shows around it
    assert any("claimed" in line.get_label() for line in ax.get_lines())


def test_no_captured_paper_figure_has_overlapping_text(captured):
    kept, _ = captured
    assert sorted(kept) == ["lemma3_bound", "theorem1_shallow_discarded", "theorem4_lexicographic"]
    for fig in kept.values():
        assert_no_overlapping_text(fig)


@pytest.fixture(scope="module")
def report():
    model = load_model("linear", input_dim=2)
    rng = np.random.default_rng(3)
    X = rng.standard_normal((30, 2))
    y = np.where(X @ np.array([1.0, -0.5]) >= 0, 1.0, -1.0)
    data = Dataset(X + 0.2 * y[:, None] * np.array([1.0, -0.5]), y)
    from lexmargin.problems.maxmargin import max_margin

    cert = max_margin(model, data)
    thetas = np.array([cert.theta * s + 0.3 / s for s in (1.0, 3.0, 10.0, 30.0)])
    return stationarity_report(model, data, thetas, certificate=cert)


def _open_figure(plot, *args):
    """Run a report plot, keeping its figure open for inspection."""
    kept = []
    original = figures.save_figure

    def keep(fig, stem, formats=("png",), close=True):
        kept.append(fig)
        return [str(stem) + ".png"]

    mp = pytest.MonkeyPatch()
    mp.setattr("lexmargin.report.plots.save_figure", keep)
    try:
        plot(*args)
    finally:
        mp.undo()
    assert original is figures.save_figure
    return kept[0]


def test_report_figures_integer_sample_ticks_bounds_and_labels(report, tmp_path):
    fig = _open_figure(plot_multipliers, report, tmp_path / "m")
    fig.canvas.draw()
    for ax in fig.axes:
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks)
    right = fig.axes[1]
    labels = [line.get_label() for line in right.get_lines()]
    assert any("constraint" in label for label in labels) and any("threshold" in label for label in labels)
    assert right.get_ylabel() == r"$f_n(\hat\theta)$"
    assert_no_overlapping_text(fig)

    fig = _open_figure(plot_margin, report.trajectory, tmp_path / "g", ("png",), report.normalized_margin)
    assert any(r"\gamma^*" in line.get_label() for line in fig.axes[0].get_lines())
    assert_no_overlapping_text(fig)
    fig = _open_figure(plot_angle, report.trajectory, tmp_path / "a")
    lines = fig.axes[0].get_lines()
    assert len(lines) == 2 and lines[0].get_linestyle() != lines[1].get_linestyle()
    assert_no_overlapping_text(fig)
    for f in figures.pyplot().get_fignums():
        figures.pyplot().close(f)


def test_report_save_in_every_format(report, tmp_path):
    single = stationarity_report("linear", (report.margins[:, None] * [1.0, 0.0] + [0.0, 1.0], np.ones(30)),
                                 np.array([1.0, 1.0]))
    files = single.save(tmp_path, formats=("svg", "pdf"))
    assert sorted(files) == ["json", "markdown", "multipliers"] and files["multipliers"].endswith("multipliers.svg")
    assert (tmp_path / "multipliers.pdf").read_bytes()[:5] == b"%PDF-"
    assert not (tmp_path / "multipliers.png").exists()
    md = (tmp_path / "report.md").read_text()
    assert "![multipliers](multipliers.svg)" in md and "[PDF](multipliers.pdf)" in md
    with pytest.raises(ValueError, match="unknown figure format"):
        single.save(tmp_path / "other", formats=("jpg",))
    assert not (tmp_path / "other").exists()


def test_figure_markdown_embeds_png_and_links_the_rest(tmp_path):
    lines = figures.figure_markdown("lemma3", [str(tmp_path / "a.pdf"), str(tmp_path / "a.png"),
                                               str(tmp_path / "a.svg")], relative_to=tmp_path)
    assert lines == ["![lemma3](a.png)", "also as [PDF](a.pdf), [SVG](a.svg)"]
    assert figures.figure_markdown("x", ["b.pdf"]) == ["[x (PDF)](b.pdf)"]
    assert math.isclose(figures.DPI, 200)


def test_degenerate_trajectory_still_gives_figures(tmp_path):
    """theta = 0 first, then the final point itself: no positive angle anywhere for a log axis."""
    report = stationarity_report("linear", (np.eye(2), np.ones(2)), np.array([[0.0, 0.0], [1.0, 1.0]]))
    fig = _open_figure(plot_angle, report.trajectory, tmp_path / "a")
    assert fig.axes[0].get_yscale() == "linear"
    assert any("no positive values" in t.get_text() for t in fig.axes[0].texts)
    figures.pyplot().close(fig)
    files = report.save(tmp_path)
    assert Path(files["angle"]).read_bytes()[:4] == b"\x89PNG"
