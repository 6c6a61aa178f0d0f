"""The StationarityReport: numbers, strict versioned JSON, Markdown and figures for one parameter vector.

``report.json`` follows ``docs/schema/report.schema.json`` (kind ``"stationarity_report"``, see
``lexmargin.report.schema``): every field below, plus ``schema_version``, ``kind``, ``seed`` and the
``environment`` block (``lexmargin.environment``); non-finite numbers are ``null``.

K-class data (``Dataset(X, y, n_classes=K)`` with a K-output model): ``margins``, ``support`` and
``multipliers`` are per margin row f_{n,j} = g_{y_n} - g_j, j != y_n (N (K - 1) rows, sample-major), and
``margin_rows`` gives each row's (n, j); ``n_samples`` stays N.  Binary reports have ``n_classes`` and
``margin_rows`` null.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from ..environment import environment
from ..errors import DataError
from ..fileio import dumps_strict, write_text_atomic
from ..nlp.certify import LICQ
from .compare import CertificateComparison, Trajectory, compare_with_certificate, trajectory
from .inputs import as_theta_source, check_theta, resolve_model
from .schema import header, plain
from .stationarity import CONVENTION, Kinks, KKTNumbers, margin_kernel, stationarity


@dataclass(frozen=True, eq=False)
class StationarityReport:
    """Stationarity of theta for the max-margin problem (see ``lexmargin.report.stationarity``).

    ``kinks``: the near-support rows with units of relu / leaky_relu exactly at their kink, where ``kkt`` and
    ``multipliers`` are the fit over the Clarke subdifferential (``stationarity.Kinks``); None at a smooth point.

    ``n_classes`` and ``margin_rows``: for K-class data, K and the (n, j) of each entry of ``margins``,
    ``multipliers`` (and of the indices in ``support``), (R, 2); None for binary data.

    ``seed``: the seed of the random numbers behind theta when the caller knows it (a training run's),
    else None -- the report itself draws none.  ``environment``: where it was computed
    (``lexmargin.environment.environment()``).
    """

    model: str
    degree: float | None
    n_samples: int
    n_params: int
    source: str
    convention: str
    support_tol: float
    theta: np.ndarray
    scale: float
    constraint_level: float
    margins: np.ndarray
    normalized_margin: float | None
    support: np.ndarray
    multipliers: np.ndarray
    kkt: KKTNumbers
    licq: LICQ
    alignment: float
    kinks: Kinks | None = None
    n_classes: int | None = None
    margin_rows: np.ndarray | None = None
    comparison: CertificateComparison | None = None
    trajectory: Trajectory | None = None
    seed: int | None = None
    environment: dict = field(default_factory=dict)

    def is_approximate_kkt(self, epsilon: float = 1e-3, delta: float = 1e-3) -> bool:
        """Relative (eps, delta)-KKT at the given tolerances (and feasible after normalization).

        Args:
            epsilon: the bound on the relative stationarity residual.
            delta: the bound on |delta| (complementarity).

        Returns:
            True when both hold and the normalized point is feasible.
        """
        return (self.kkt.relative_epsilon <= epsilon and abs(self.kkt.delta) <= delta
                and self.kkt.primal_violation <= 1e-9)

    def to_dict(self) -> dict:
        """The report.json document: schema_version, kind, seed, environment, then the fields."""
        body = {f.name: plain(getattr(self, f.name)) for f in fields(self) if f.name not in ("seed", "environment")}
        return header("stationarity_report", self.seed, self.environment) | body | {
            "approximate_kkt_1e-3": self.is_approximate_kkt()}

    def to_json(self, **kwargs) -> str:
        """Strict JSON (RFC 8259): non-finite numbers are written as null, never as NaN/Infinity tokens.

        Args:
            **kwargs: passed to ``json.dumps`` (e.g. ``indent``).

        Returns:
            The report.json text.
        """
        return dumps_strict(self.to_dict(), **kwargs)

    def to_markdown(self, plots: dict | None = None) -> str:
        """Markdown: the tables, then the figures (``plots``: name -> file or files, relative paths).

        Args:
            plots: the figures to link.

        Returns:
            The Markdown text.
        """
        from .markdown import report_markdown

        return report_markdown(self, plots or {})

    def save(self, directory, formats=("png",)) -> dict[str, str]:
        """Write report.json, report.md and the figures into ``directory``.

        Args:
            directory: the output folder (created when missing).
            formats: figure formats among ``lexmargin.report.figures.FORMATS`` ("png", "pdf", "svg");
                every figure is written in each.

        Returns:
            name -> path: ``json``, ``markdown`` and one entry per figure (``multipliers``, and ``margin``,
            ``angle`` with checkpoints) naming its file in the first format; the other formats lie
            beside it with the same stem.
        """
        from .figures import check_formats
        from .plots import save_plots

        formats = check_formats(formats)
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        plots = save_plots(self, directory, formats)
        # atomic: an interrupted save leaves the previous report.json / report.md intact, never half a file
        write_text_atomic(directory / "report.json", self.to_json(indent=2))
        write_text_atomic(directory / "report.md", self.to_markdown(
            {k: [Path(p).name for p in v] for k, v in plots.items()}))
        return {"json": str(directory / "report.json"), "markdown": str(directory / "report.md"),
                **{name: files[0] for name, files in plots.items()}}


def _dataset(data, source):
    if data is not None:
        from ..modeling.data import Dataset, as_dataset

        return data if isinstance(data, Dataset) else as_dataset(*data)
    if source.data is None:
        raise DataError("no data: pass a Dataset, or an .npz holding X and y next to theta")
    return source.data


def stationarity_report(model, data=None, theta=None, *, certificate=None, support_tol: float = 0.1,
                        model_options: dict | None = None, run: int | None = None, progress: bool = False,
                        seed: int | None = None) -> StationarityReport:
    """Build a StationarityReport: how close theta is to a KKT point of the max-margin problem.

    Args:
        model: a Model, or a bundled name / declaration file (built with ``model_options``, input_dim
            taken from the data).
        data: a Dataset or (X, y); optional when ``theta`` is an .npz with X, y.
        theta: a vector, a (K, P) checkpoint array, a numeric-module History, or an .npz path.
        certificate: optional Certificate to compare with (angles in the trajectory then refer to it).
        support_tol: samples within this relative distance of the smallest margin form the support.
        model_options: options of the model's ``build`` when ``model`` is a name or a file.
        run: the run of a batched source (a History of several runs; None: run 0).
        progress: a progress bar over the checkpoints.
        seed: recorded in the report: the seed behind theta (e.g. of the training run) when known.

    Returns:
        The StationarityReport: (eps, delta)-KKT numbers, multipliers, LICQ, the comparison with the
        certificate and the trajectory over the checkpoints; ``save(dir)`` writes JSON, Markdown and figures.
    """
    if not (isinstance(support_tol, (int, float, np.integer, np.floating)) and not isinstance(support_tol, bool)
            and np.isfinite(support_tol) and support_tol >= 0):
        raise DataError(f"support_tol must be a finite number >= 0; got {support_tol!r}")
    if theta is None:
        raise DataError("theta is required (a vector, checkpoints, a History or an .npz path)")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
        raise DataError(f"seed must be an integer or None; got {seed!r}")
    source = as_theta_source(theta, run=run)
    data = _dataset(data, source)
    model = resolve_model(model, data, model_options)
    check_theta(model, source.theta)
    kernel = margin_kernel(model, data)      # numpy margins, gradients and support Gram (no N x P Jacobian)
    point = stationarity(model, source.theta, data, support_tol=support_tol, kernel=kernel)
    return StationarityReport(
        model=model.name, degree=model.degree, n_samples=data.n_samples, n_params=model.n_params,
        source=source.origin, convention=CONVENTION, support_tol=support_tol, theta=source.theta,
        **{f.name: getattr(point, f.name) for f in fields(point)},
        n_classes=data.n_classes, margin_rows=_margin_rows(data),
        comparison=None if certificate is None else compare_with_certificate(
            model, source.theta, data, point.multipliers, point.support, certificate, kernel=kernel),
        trajectory=None if source.thetas is None else trajectory(
            model, source.thetas, source.iterations, data,
            reference=_reference(certificate, model), progress=progress, axis=source.axis, kernel=kernel),
        seed=None if seed is None else int(seed), environment=environment())


def _margin_rows(data) -> np.ndarray | None:
    """(R, 2) integer (n, j) of K-class data's margin rows, in the kernels' order; None for binary data."""
    if data.n_classes is None:
        return None
    from ..modeling.multiclass import MarginRows

    return MarginRows.of(data).pairs


def _reference(certificate, model):
    if certificate is None or certificate.theta.shape != (model.n_params,):
        return None
    return certificate.theta
