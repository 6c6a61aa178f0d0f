"""The certificate (lexmargin.nlp.certificate): per-sample numbers summed from the rows, row summaries per kind,
and a lossless JSON round trip (a certificate read back says exactly what it said)."""

import json
import math
import uuid
from dataclasses import dataclass, replace

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from verify_helpers import QP, kkt_qp

from lexmargin.nlp.certificate import (
    NO_DIAGNOSTICS,
    Certificate,
    Diagnostics,
    RowSummary,
    SolverInfo,
    Unparsed,
    assemble,
    jsonable,
    per_sample,
    row_summaries,
)
from lexmargin.nlp.certify import LICQ, Residuals, SecondOrder
from lexmargin.nlp.finish import NOT_RUN, FinishInfo
from lexmargin.nlp.options import Tolerances
from lexmargin.nlp.status import Status


def sample_report():
    """Rows: margin rows of samples (0, 2, 0, 3), a fixed equality row, bounds on z0 (lower) and z1 (upper).
    Row 0 and 1 active with multipliers, row 2 active with multiplier 0 (degenerate), row 3 inactive."""
    rng = np.random.default_rng(3)
    p = kkt_qp(rng, n=5, active=3, inactive=1, equalities=1, bounds=True)
    lam = p.lam.copy()
    lam[:3] = [2.0, 0.5, 0.0]
    q = p.A.T @ lam + p.E.T @ p.mu + p.lo - p.up - p.Q @ p.z
    p = QP(**{**p.__dict__, "lam": lam, "q": q, "samples": np.array([0, 2, 0, 3])})
    return p.report()


def certificate(report=None, **changes):
    report = report or sample_report()
    fields = dict(status=Status.OPTIMAL, theta=np.array([1.0, -2.0]), objective=2.5, norm="l2",
                  margins=np.array([1.0, 1.5, 1.0, 2.0, 7.0]), normalized_margin=0.25, n_samples=5,
                  solver=SolverInfo("ipopt", Status.INACCURATE, "Solved_To_Acceptable_Level", 12, 0.5, "msg"),
                  finish=FinishInfo(True, "", 2, 5, 3, 1e-6, 1e-15), tolerances=Tolerances(kkt=1e-7),
                  constraints="f_n(theta) >= 1")
    fields.update(changes)
    return assemble("max_margin", report, **fields)


def test_per_sample_numbers_are_summed_over_the_sample_rows():
    report = sample_report()
    multipliers, active, support = per_sample(report, 5)
    assert multipliers.tolist() == [2.0, 0.0, 0.5, 0.0, 0.0]       # rows 0 and 2 are sample 0 (2 + 0)
    assert active.tolist() == [0, 2] and support.tolist() == [0, 2]
    # a second row of a sample with a multiplier adds to it
    lam = report.multipliers.copy()
    lam[2] = 0.25
    twice = type(report)(report.residuals, report.licq, report.second_order, lam, report.active,
                         report.support | (np.arange(lam.size) == 2), report.extended)
    multipliers, active, support = per_sample(twice, 5)
    assert multipliers.tolist() == [2.25, 0.0, 0.5, 0.0, 0.0]


def test_per_sample_refuses_a_row_of_a_sample_outside_the_problem():
    report = sample_report()
    with pytest.raises(IndexError, match="sample 3 in a problem of 3 samples"):
        per_sample(report, 3)
    multipliers, active, support = per_sample(report, 4)          # every sample index (0, 2, 3) in range
    assert multipliers.tolist() == [2.0, 0.0, 0.5, 0.0] and active.tolist() == [0, 2]


@given(st.lists(st.tuples(st.integers(-1, 6), st.floats(-1e3, 1e3), st.booleans(), st.booleans()), max_size=30))
def test_per_sample_agrees_with_add_at_and_unique(rows):
    """Samples in any order, repeated or absent (-1): np.add.at's sums bit for bit, np.unique's sorted lists."""
    report = sample_report()
    samples = np.array([r[0] for r in rows], dtype=int)
    lam = np.array([r[1] for r in rows], dtype=float)
    active, support = np.array([r[2] for r in rows], dtype=bool), np.array([r[3] for r in rows], dtype=bool)
    ext = replace(report.extended, samples=samples)
    got = per_sample(type(report)(report.residuals, report.licq, report.second_order, lam, active, support, ext), 7)
    sums = np.zeros(7)
    np.add.at(sums, samples[samples >= 0], lam[samples >= 0])
    assert got[0].tobytes() == sums.tobytes()
    assert got[1].tolist() == np.unique(samples[(samples >= 0) & active]).tolist()
    assert got[2].tolist() == np.unique(samples[(samples >= 0) & support]).tolist()


def test_row_summaries_per_kind():
    report = sample_report()
    rows = {r.kind: r for r in row_summaries(report)}
    assert list(rows) == ["margin", "fixed", "lower_bound", "upper_bound"]
    top = max(abs(report.multipliers))
    margin = rows["margin"]
    assert (margin.size, margin.equality, margin.active, margin.support, margin.degenerate) == (4, False, 3, 2, 1)
    assert margin.relative_max_multiplier == pytest.approx(2.0 / top)
    fixed = rows["fixed"]
    assert (fixed.size, fixed.equality, fixed.active, fixed.support, fixed.degenerate) == (1, True, 1,
                                                                                          int(report.support[4]), 0)
    assert fixed.relative_max_multiplier == pytest.approx(abs(report.multipliers[4]) / top)
    lower = rows["lower_bound"]
    assert (lower.size, lower.active, lower.support, lower.degenerate) == (2, 1, 1, 0)
    assert lower.relative_max_multiplier == pytest.approx(0.7 / top)
    assert rows["upper_bound"].relative_max_multiplier == pytest.approx(1.3 / top)
    assert max(r.relative_max_multiplier for r in rows.values()) == 1.0
    assert margin.to_dict()["degenerate"] == 1


def test_row_summaries_with_all_multipliers_zero_small_or_no_rows():
    p = kkt_qp(np.random.default_rng(4), n=3, active=1, inactive=2)
    rows = row_summaries(p.report(q=-p.Q @ p.z, lam=np.zeros(3)))
    assert [r.relative_max_multiplier for r in rows] == [0.0]
    small = p.objective_scaled(1e-3)
    assert [r.relative_max_multiplier for r in row_summaries(small.report())] == [1.0]
    none = QP(np.eye(2), np.zeros(2), np.zeros((0, 2)), np.zeros(0), np.zeros((0, 2)), np.zeros(0),
              np.full(2, -np.inf), np.full(2, np.inf), np.zeros(2), np.zeros(0), np.zeros(0), np.zeros(2),
              np.zeros(2), np.ones(0), np.ones(0))
    report = none.report()
    assert row_summaries(report) == ()
    cert = certificate(report, n_samples=0, margins=np.zeros(0))
    assert cert.multipliers.shape == (0,) and cert.rows == () and cert.strictly_complementary


def test_assembled_certificate():
    report = sample_report()
    cert = certificate(report)
    assert cert.problem == "max_margin" and cert.status is Status.OPTIMAL and cert.success
    assert cert.multipliers.tolist() == [2.0, 0.0, 0.5, 0.0, 0.0]
    assert cert.support.tolist() == [0, 2] and cert.active.tolist() == [0, 2]
    assert cert.kkt is report.residuals and cert.licq is report.licq and cert.second_order is report.second_order
    assert cert.rows == row_summaries(report)
    assert not cert.strictly_complementary                      # row 2 is active with multiplier 0
    assert cert.degenerate.tolist() == []                       # ... but sample 0 is in the support by row 0
    assert cert.objective == 2.5 and isinstance(cert.objective, float)
    assert cert.direction == pytest.approx(np.array([1.0, -2.0]) / np.sqrt(5.0))
    assert certificate(report, theta=np.zeros(2)).direction.tolist() == [0.0, 0.0]
    assert not certificate(report, status="inaccurate").success
    assert certificate(report, status="inaccurate").status is Status.INACCURATE
    assert cert.diagnostics is NO_DIAGNOSTICS


def test_certificate_arrays_are_read_only_copies():
    theta = np.array([1.0, 2.0])
    cert = certificate(theta=theta, margins=[1, 2, 3, 4, 5])
    theta[0] = 9.0
    assert cert.theta.tolist() == [1.0, 2.0] and cert.margins.dtype == float
    for name in ("theta", "margins", "multipliers", "support", "active"):
        with pytest.raises(ValueError):
            getattr(cert, name)[0] = 1
    cert = Certificate(**{**cert.__dict__, "support": [[1], [3]], "active": (1.0, 3.0), "rows": []})
    assert cert.support.tolist() == [1, 3] and cert.support.dtype.kind == "i" and cert.active.dtype.kind == "i"
    assert cert.rows == () and cert.strictly_complementary
    assert cert.degenerate.tolist() == []
    assert Certificate(**{**cert.__dict__, "active": [1, 2, 3]}).degenerate.tolist() == [2]


@dataclass(frozen=True)
class _TestDiagnostics(Diagnostics):
    kind = "verify_test"

    level: float
    samples: tuple = ()


def test_json_round_trip_is_lossless():
    cert = certificate(diagnostics=_TestDiagnostics(0.5, (1, 2)), normalized_margin=None,
                       objective=float("nan"))
    d = cert.to_dict()
    text = json.dumps(d)
    assert "NaN" not in text and "Infinity" not in text          # strict JSON
    back = Certificate.from_dict(json.loads(text))
    assert back.to_dict() == d
    assert back.status is Status.OPTIMAL and back.solver.status is Status.INACCURATE
    assert back.kkt == cert.kkt and back.licq == cert.licq and back.tolerances == cert.tolerances
    assert back.second_order == cert.second_order and back.finish == cert.finish and back.rows == cert.rows
    assert back.solver == cert.solver and back.normalized_margin is None and math.isnan(back.objective)
    assert back.diagnostics.to_dict() == cert.diagnostics.to_dict() and back.diagnostics.level == 0.5
    assert back.theta.tolist() == cert.theta.tolist() and back.support.tolist() == cert.support.tolist()
    assert d["success"] is True and d["strictly_complementary"] is False and d["degenerate"] == []
    assert json.loads(cert.to_json()) == d
    assert cert.to_json(indent=2).count("\n") > 10
    assert Certificate.from_dict(certificate(normalized_margin=0.25).to_dict()).normalized_margin == 0.25


def test_round_trip_keeps_every_field():
    """Active samples outside the support, LICQ holding, a nan multiplier, a finite objective."""
    p = kkt_qp(np.random.default_rng(8), n=5, active=2, inactive=1)
    lam = p.lam.copy()
    lam[1] = 0.0
    q = p.A.T @ lam - p.Q @ p.z
    report = QP(**{**p.__dict__, "lam": lam, "q": q}).report()
    assert report.licq.holds
    cert = certificate(report, margins=np.ones(3), n_samples=3, objective=1.25)
    assert cert.active.tolist() == [0, 1] and cert.support.tolist() == [0] and cert.degenerate.tolist() == [1]
    cert = Certificate(**{**cert.__dict__, "multipliers": np.array([np.nan, 0.0, 1.0])})
    d = cert.to_dict()
    assert set(d) == {"problem", "status", "theta", "objective", "norm", "margins", "normalized_margin",
                      "multipliers", "support", "active", "kkt", "licq", "second_order", "rows", "solver", "finish",
                      "tolerances", "constraints", "diagnostics", "success", "strictly_complementary", "degenerate"}
    back = Certificate.from_dict(json.loads(json.dumps(d)))
    assert back.active.tolist() == [0, 1] and back.degenerate.tolist() == [1] and back.licq.holds is True
    assert back.objective == 1.25 and np.isnan(back.multipliers[0]) and back.multipliers[1:].tolist() == [0.0, 1.0]
    assert back.to_dict() == d


def test_from_dict_of_an_older_or_partial_record():
    d = certificate().to_dict()
    for key in ("active", "second_order", "rows", "finish", "tolerances", "constraints", "diagnostics"):
        d.pop(key)
    d["normalized_margin"] = None
    d["solver"].pop("message")
    back = Certificate.from_dict(d)
    assert back.active.tolist() == back.support.tolist()
    assert back.second_order == SecondOrder(False, -1, back.second_order.min_eigenvalue, None, "not recorded")
    assert math.isnan(back.second_order.min_eigenvalue)
    assert back.rows == () and back.finish is NOT_RUN and back.tolerances == Tolerances()
    assert back.constraints == "" and back.diagnostics is NO_DIAGNOSTICS and back.solver.message == ""
    d["second_order"] = {"checked": True, "null_space_dimension": 2, "min_eigenvalue": "inf", "strict": None}
    d["finish"] = {"applied": True, "reason": "r", "rounds": 1, "newton_steps": 2, "working_set": 3,
                   "residual_before": "nan", "residual_after": 1e-12}
    d["kkt"]["stationarity"] = "nan"
    d["objective"] = None                       # a null objective reads as nan
    back = Certificate.from_dict(d)
    assert math.isnan(back.objective)
    assert back.second_order == SecondOrder(True, 2, float("inf"), None, "")
    assert back.finish.residual_after == 1e-12 and math.isnan(back.finish.residual_before)
    assert back.finish.rounds == 1 and back.finish.reason == "r"
    assert math.isnan(back.kkt.stationarity)


def test_diagnostics_registry():
    d = _TestDiagnostics(2.0, (1,)).to_dict()
    assert d == {"kind": "verify_test", "level": 2.0, "samples": [1]}
    assert Diagnostics.from_dict({**d, "extra": 1}) == _TestDiagnostics(2.0, [1])
    assert Diagnostics.from_dict(None) is NO_DIAGNOSTICS and Diagnostics.from_dict({"kind": "none"}) is NO_DIAGNOSTICS
    unknown = Diagnostics.from_dict({"kind": "future", "x": 1})
    assert isinstance(unknown, Unparsed) and unknown.to_dict() == {"kind": "future", "x": 1}
    assert Unparsed(name="k").to_dict() == {"kind": "k"}
    assert NO_DIAGNOSTICS.to_dict() == {"kind": "none"}
    with pytest.raises(TypeError, match="diagnostics kind 'verify_test' registered twice"):
        @dataclass(frozen=True)
        class _Again(Diagnostics):
            kind = "verify_test"

    @dataclass(frozen=True)
    class _Unregistered(Diagnostics, register=False):
        kind = "verify_test"
    assert Diagnostics.from_dict({"kind": "verify_test", "level": 1.0}) == _TestDiagnostics(1.0)

    # a kind registered at run time (not at import) is read back as itself (a fresh kind on every run: the
    # mutation run calls each test more than once in one process)
    @dataclass(frozen=True)
    class _Late(Diagnostics):
        kind = f"verify_test_late_{uuid.uuid4().hex}"

        value: int = 0
    assert Diagnostics.from_dict(_Late(3).to_dict()) == _Late(3)


def test_jsonable():
    assert jsonable(Status.MAX_TIME) == "max_time"
    assert jsonable(np.array([1.0, np.inf, -np.inf, np.nan])) == [1.0, "inf", "-inf", "nan"]
    assert jsonable(np.array([1, 2])) == [1, 2] and jsonable(np.array([True])) == [True]
    assert jsonable(np.float64(np.inf)) == "inf" and jsonable(np.int64(3)) == 3 and type(jsonable(np.int64(3))) is int
    assert jsonable({1: (np.float32(0.5), [np.nan])}) == {"1": [0.5, ["nan"]]}
    assert jsonable(LICQ(1, 1, 1.0, True)) == {"n_active": 1, "rank": 1, "smallest_singular_value": 1.0,
                                              "holds": True}
    assert jsonable(float("nan")) == "nan" and jsonable(2.5) == 2.5 and jsonable("x") == "x" and jsonable(None) is None
    assert jsonable(Residuals(0.0, 1.0, 0.0, float("inf")))["max"] == "inf"


def test_summary_states_the_verdict():
    cert = certificate()
    text = cert.summary()
    assert text.startswith("max_margin: optimal; objective 2.5; normalized margin 0.25; support 2 of 2 active;")
    assert f"relative KKT residual {cert.kkt.max:.2e} (tol 1e-07)" in text
    assert f"LICQ rank {cert.licq.rank}/{cert.licq.n_active}" in text
    assert "12 iterations in 0.500s" in text
    for strict, word in ((True, "strict"), (False, "fails"), (None, "inconclusive")):
        so = SecondOrder(True, 1, 0.0, strict)
        assert f"second order {word};" in certificate(normalized_margin=None).__class__(
            **{**cert.__dict__, "second_order": so}).summary()
    assert "normalized margin n/a" in certificate(normalized_margin=None).summary()


def test_solver_info_and_row_summary_records():
    info = SolverInfo("ipopt", Status.MAX_ITERATIONS, "Maximum_Iterations_Exceeded", 3000, 1.5)
    assert info.to_dict() == {"name": "ipopt", "status": "max_iterations", "return_status":
                              "Maximum_Iterations_Exceeded", "iterations": 3000, "seconds": 1.5, "message": ""}
    assert RowSummary("m", 1, False, 1, 1, 0, 1.0).to_dict()["kind"] == "m"
    assert FinishInfo(True, "x").to_dict()["applied"] is True


def test_legacy_records_read_back():
    """lexmargin 0.1 files: status "acceptable" reads as inaccurate, their open "extras" dict is kept."""
    d = certificate().to_dict()
    d["status"] = "acceptable"
    d["solver"]["status"] = "acceptable"
    d.pop("diagnostics")
    d["extras"] = {"note": 1}
    back = Certificate.from_dict(d)
    assert back.status is Status.INACCURATE and back.solver.status is Status.INACCURATE
    assert isinstance(back.diagnostics, Unparsed) and back.diagnostics.to_dict() == {"kind": "legacy_extras",
                                                                                     "note": 1}
    d["diagnostics"] = None
    assert Certificate.from_dict(d).diagnostics.to_dict() == {"kind": "legacy_extras", "note": 1}
    d["diagnostics"] = {"kind": "none"}
    assert Certificate.from_dict(d).diagnostics is NO_DIAGNOSTICS
    d.pop("extras")
    d["diagnostics"] = None
    assert Certificate.from_dict(d).diagnostics is NO_DIAGNOSTICS
    d["status"] = "optimal"
    assert Certificate.from_dict(d).status is Status.OPTIMAL


def test_a_multiclass_certificate_round_trips_its_margin_rows():
    """The (n, j) of each row of a K-class certificate: an (R, 2) int array, read-only like the other arrays,
    written by to_dict and read back by from_dict (a binary certificate has none, in both directions)."""
    import dataclasses

    binary = certificate()
    assert binary.margin_rows is None and "margin_rows" not in binary.to_dict()
    assert Certificate.from_dict(json.loads(binary.to_json())).margin_rows is None
    pairs = [[0, 1], [0, 2], [1, 0], [2, 1], [3, 0]]
    cert = dataclasses.replace(binary, margin_rows=np.array(pairs, dtype=np.int64).reshape(-1))   # flat: reshaped
    assert isinstance(cert.margin_rows, np.ndarray) and cert.margin_rows.shape == (5, 2)
    assert cert.margin_rows.tolist() == pairs and cert.margin_rows.dtype.kind == "i"
    assert not cert.margin_rows.flags.writeable
    with pytest.raises(ValueError):
        cert.margin_rows[0, 0] = 7
    listed = dataclasses.replace(binary, margin_rows=[tuple(p) for p in pairs])
    assert isinstance(listed.margin_rows, np.ndarray) and listed.margin_rows.tolist() == pairs
    d = cert.to_dict()
    assert d["margin_rows"] == pairs
    back = Certificate.from_dict(json.loads(json.dumps(d)))
    assert isinstance(back.margin_rows, np.ndarray) and back.margin_rows.tolist() == pairs
    assert back.margin_rows.shape == (5, 2) and back.margin_rows.dtype.kind == "i"
    assert not back.margin_rows.flags.writeable
    assert back.to_dict() == d
    one = dataclasses.replace(binary, margin_rows=[[4, 2]])
    assert Certificate.from_dict(json.loads(one.to_json())).margin_rows.tolist() == [[4, 2]]


def test_residuals_are_read_back_with_their_decrement():
    """``residuals_from``: the decrement written by ``to_dict`` comes back; a file written before it existed reads 0
    (not computed), never NaN."""
    from lexmargin.nlp.certificate import residuals_from
    from lexmargin.nlp.certify import Residuals
    written = Residuals(1e-9, 2e-9, 0.0, 3e-10, 4e-9).to_dict()
    assert residuals_from(written) == Residuals(1e-9, 2e-9, 0.0, 3e-10, 4e-9)
    old = {k: v for k, v in written.items() if k != "decrement"}
    assert residuals_from(old) == Residuals(1e-9, 2e-9, 0.0, 3e-10, 0.0) and residuals_from(old).max == 2e-9
