"""Stationarity reports: is a parameter vector (near) a KKT point of the max-margin problem?

``stationarity_report(model, data, theta, certificate=None)`` -> ``StationarityReport`` with
``to_dict``/``to_json``/``to_markdown`` and ``save(dir, formats)`` (report.json, report.md, figures).

``schema``: the versioned strict JSON every report.json follows (docs/schema/report.schema.json: schema
version, kind, seed, environment); ``figures``: PNG (200 dpi) / PDF / SVG figures with mathtext labels,
drawn bounds and distinct curve styles, shared with the benchmark suites.
"""

from .compare import CertificateComparison, Trajectory
from .inputs import ThetaSource, as_theta_source, certificate_from_dict, load_certificate, load_theta_npz
from .report import StationarityReport, stationarity_report
from .schema import SCHEMA_VERSION
from .stationarity import CONVENTION, KKTNumbers, angle_between, loss_gradient_alignment

__all__ = [
    "CONVENTION",
    "SCHEMA_VERSION",
    "CertificateComparison",
    "KKTNumbers",
    "StationarityReport",
    "ThetaSource",
    "Trajectory",
    "angle_between",
    "as_theta_source",
    "certificate_from_dict",
    "load_certificate",
    "load_theta_npz",
    "loss_gradient_alignment",
    "stationarity_report",
]
