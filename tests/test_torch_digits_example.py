"""docs/examples/torch_digits.py, run through its main() with small settings (a few seconds)."""

import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "docs" / "examples"))
import torch_digits  # noqa: E402

from lexmargin.nlp.status import Status  # noqa: E402


@pytest.fixture(scope="module")
def run():
    return torch_digits.main(hidden=4, per_class=12, gd_steps=500, time_limit=5.0, verbose=False, show=False)


def test_the_trained_net_separates_the_digits(run):
    model, data, theta = run["model"], run["data"], run["theta"]
    assert data.n_samples == 24 and set(np.unique(data.y)) == {-1.0, 1.0}
    assert np.min(model.margins(theta, data)) > 0 and run["torch_loss"] < 1e-3
    assert run["trained_margin"] == pytest.approx(np.min(model.margins(theta, data)) / np.sum(theta**2))


def test_max_margin_keeps_the_start_and_says_how_it_ended(run):
    cert, model, data = run["certificate"], run["model"], run["data"]
    assert cert.status.value in torch_digits.STATUSES
    if cert.status == Status.OPTIMAL:        # only with residuals the certificate recomputed within tolerance
        assert cert.kkt.max <= cert.tolerances.kkt
    assert cert.normalized_margin >= run["trained_margin"] * (1 - 1e-9)
    # the certificate's number is the model's own, recomputed from its theta
    assert cert.normalized_margin == pytest.approx(np.min(model.margins(cert.theta, data)) / np.sum(cert.theta**2),
                                                   rel=1e-9)
    assert cert.diagnostics.region is not None


def test_the_report_is_consistent_with_the_trained_net(run):
    report, model, data, theta = run["report"], run["model"], run["data"], run["theta"]
    assert report.n_params == model.n_params == theta.size and report.n_samples == data.n_samples
    assert report.normalized_margin == pytest.approx(run["trained_margin"], rel=1e-12)
    q = np.min(model.margins(theta, data))
    theta_hat = theta / q ** (1 / model.degree)
    margins = model.margins(theta_hat, data)
    assert np.min(margins) == pytest.approx(1.0, rel=1e-12)
    near = np.nonzero(margins <= 1.0 + report.support_tol)[0]
    assert np.array_equal(np.sort(report.support), near)
    assert np.all(report.multipliers >= 0) and np.all(report.multipliers[np.setdiff1d(np.arange(data.n_samples), near)] == 0)
    # eps = ||theta_hat - J^T lambda||, recomputed here from the model's gradients
    eps = np.linalg.norm(theta_hat - model.margin_jacobian(theta_hat, data).T @ report.multipliers)
    assert report.kkt.epsilon == pytest.approx(eps, rel=1e-8, abs=1e-12)
    assert report.kkt.relative_epsilon == pytest.approx(eps / np.linalg.norm(theta_hat), rel=1e-8)


def test_the_table_rows_and_numeric_gd(run):
    names = [r[0] for r in run["rows"]]
    assert names[0].startswith("PyTorch") and names[1].startswith("max_margin") and names[2].startswith("lexmargin")
    assert run["rows"][1][2] == str(run["certificate"].status)
    assert run["gd_margin"] > 0 and np.isfinite(run["gd_margin"])
