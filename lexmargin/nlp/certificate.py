"""The certificate every solve returns: one frozen type, built once from ``certify``'s report.

Per-sample fields (``margins``, ``multipliers``, ``support``, ``active``) refer to the rows that
carry a sample index (margin rows f_n(theta) >= 1, the margin-path rows f_n(rho theta)/s >= tau, the
fixed rows of lexicographic stages, ...); ``rows`` summarizes every row kind, bounds included.
Problem-specific numbers live in ``diagnostics``, a small frozen dataclass per problem kind
(registered by ``kind`` so that ``Certificate.from_dict`` rebuilds it).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import ClassVar

import numpy as np

from ..fileio import dumps_strict
from .certify import LICQ, KKTReport, Residuals, SecondOrder
from .finish import NOT_RUN, FinishInfo
from .options import Tolerances
from .status import Status


def jsonable(value):
    """Plain JSON types: arrays to lists, numpy scalars to Python, non-finite floats to strings."""
    if isinstance(value, Status):
        return value.value
    if isinstance(value, np.ndarray):
        return [jsonable(v) for v in value.tolist()] if value.dtype.kind == "f" else value.tolist()
    if isinstance(value, np.generic):
        value = value.item()
    if hasattr(value, "to_dict"):
        return jsonable(value.to_dict())
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def _float(value) -> float:
    """A float read from JSON: numbers, the strings "inf"/"-inf"/"nan" of ``jsonable``, null as NaN."""
    return float("nan") if value is None else float(value)


def residuals_from(d: dict) -> Residuals:
    """``Residuals`` from their ``to_dict`` (``max`` is recomputed); files written before the decrement existed read
    it as 0 (not computed)."""
    return Residuals(**{k: _float(d[k]) for k in ("stationarity", "primal_feasibility", "dual_feasibility",
                                                  "complementarity")}, decrement=_float(d.get("decrement", 0.0)))


# statuses written by lexmargin 0.1 before the one pipeline (read back, never written)
LEGACY_STATUS = {"acceptable": Status.INACCURATE}


def _status(value) -> Status:
    return LEGACY_STATUS.get(value, None) or Status(value)


# ---- diagnostics ----------------------------------------------------------------------------------
_DIAGNOSTICS: dict[str, type] = {}


@dataclass(frozen=True)
class Diagnostics:
    """Base of the problem-specific numbers of a certificate (a frozen dataclass per problem kind)."""

    kind: ClassVar[str] = "none"

    def __init_subclass__(cls, register: bool = True, **kwargs):
        super().__init_subclass__(**kwargs)
        if not register:
            return
        if cls.kind in _DIAGNOSTICS and _DIAGNOSTICS[cls.kind] is not cls:
            raise TypeError(f"diagnostics kind {cls.kind!r} registered twice")
        _DIAGNOSTICS[cls.kind] = cls

    def to_dict(self) -> dict:
        return {"kind": self.kind, **{f.name: jsonable(getattr(self, f.name)) for f in fields(self)}}

    @classmethod
    def from_dict(cls, d: dict) -> Diagnostics:
        """Rebuild from ``to_dict`` output (a registered kind; unknown kinds give ``Unparsed``)."""
        d = dict(d or {})
        kind = d.pop("kind", "none")
        target = _DIAGNOSTICS.get(kind)
        if target is None or target is Diagnostics:
            return NO_DIAGNOSTICS if kind == "none" else Unparsed(name=kind, values=d)
        names = {f.name for f in fields(target)}
        return target._from_fields({k: v for k, v in d.items() if k in names})

    @classmethod
    def _from_fields(cls, d: dict) -> Diagnostics:
        return cls(**d)


_DIAGNOSTICS["none"] = Diagnostics
NO_DIAGNOSTICS = Diagnostics()


@dataclass(frozen=True)
class Unparsed(Diagnostics, register=False):
    """Diagnostics of a kind this version does not know (read from a file), kept as read."""

    name: str = ""
    values: dict | None = None

    def to_dict(self) -> dict:
        return {"kind": self.name, **(self.values or {})}


# ---- pieces -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SolverInfo:
    """The solver's own account: ``status`` is its verdict mapped once (not the certificate's)."""

    name: str
    status: Status
    return_status: str
    iterations: int
    seconds: float
    message: str = ""

    def to_dict(self) -> dict:
        return {**asdict(self), "status": self.status.value}


@dataclass(frozen=True)
class RowSummary:
    """One kind of row: how many, how many active / in the support / degenerate, and its largest
    |multiplier| relative to the largest of all rows (scale-free)."""

    kind: str
    size: int
    equality: bool
    active: int
    support: int
    degenerate: int
    relative_max_multiplier: float

    def to_dict(self) -> dict:
        return asdict(self)


def row_summaries(report: KKTReport) -> tuple[RowSummary, ...]:
    ext, out = report.extended, []
    top = max(float(np.max(np.abs(report.multipliers), initial=0.0)), np.finfo(float).tiny)
    for kind in ext.kind_names():
        mask = ext.kind_mask(kind)
        lam = np.abs(report.multipliers[mask])
        out.append(RowSummary(str(kind), int(mask.sum()), bool(ext.equality[mask].all()),
                              int(report.active[mask].sum()), int(report.support[mask].sum()),
                              int(report.degenerate[mask].sum()), float(np.max(lam, initial=0.0)) / top))
    return tuple(out)


def per_sample(report: KKTReport, n_samples: int):
    """(multipliers, active samples, support samples) over the rows that carry a sample index (a sample's
    multiplier sums its rows' in row order, as ``np.add.at`` would; the sample lists are sorted)."""
    samples = report.extended.samples
    rows = samples >= 0
    index = samples[rows]
    if index.size and int(index.max()) >= n_samples:
        raise IndexError(f"a row of sample {int(index.max())} in a problem of {n_samples} samples")
    multipliers = np.bincount(index, weights=report.multipliers[rows], minlength=n_samples)
    return multipliers, _samples_of(samples[rows & report.active], n_samples), \
        _samples_of(samples[rows & report.support], n_samples)


def _samples_of(index, n_samples: int) -> np.ndarray:
    """The distinct entries of ``index`` (in [0, n_samples)), sorted: ``np.unique`` without the sort."""
    marked = np.zeros(n_samples, dtype=bool)
    marked[index] = True
    return np.flatnonzero(marked)


# ---- the certificate ----------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Certificate:
    """Outcome of an exact solve with its independently recomputed optimality evidence.

    status: a ``Status``; ``optimal`` only when ``kkt.max <= tolerances.kkt``.
    theta: the parameters (user units).  objective: the problem's objective at theta.
    norm: the norm's label.  margins: f_n at theta (N,; the problem's own scaling, e.g. f_n(rho theta)
    on paths).  normalized_margin: min_n f_n / ||theta||^degree for homogeneous models (else None).
    multipliers: per sample, lambda_n >= 0 of its margin row (0 for samples without one).
    support: samples with lambda_n > 0.  active: samples whose margin row is active.
    kkt: relative residuals.  licq: on the whole active set (all row kinds).  second_order: reduced
    Hessian check.  rows: a summary per row kind.  solver: the solver's own account.  finish: what the
    exact finish did.  constraints: the formulation in words.  diagnostics: problem-specific numbers.
    margin_rows: multi-class problems (a model with K outputs): the (n, j) of each margin row (R, 2), so that
    ``multipliers[r]``, ``margins[r]`` and the row indices in ``support`` / ``active`` belong to the margin
    f_{n,j} = g_{y_n} - g_j of sample n against class j = ``margin_rows[r]``; None for binary problems (one row
    per sample).
    """

    problem: str
    status: Status
    theta: np.ndarray
    objective: float
    norm: str
    margins: np.ndarray
    normalized_margin: float | None
    multipliers: np.ndarray
    support: np.ndarray
    active: np.ndarray
    kkt: Residuals
    licq: LICQ
    second_order: SecondOrder
    rows: tuple[RowSummary, ...]
    solver: SolverInfo
    finish: FinishInfo
    tolerances: Tolerances
    constraints: str
    diagnostics: Diagnostics = NO_DIAGNOSTICS
    margin_rows: np.ndarray | None = None

    def __post_init__(self):
        object.__setattr__(self, "status", Status(self.status))
        for name in ("theta", "margins", "multipliers"):
            arr = np.array(getattr(self, name), dtype=float)
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        for name in ("support", "active"):
            arr = np.array(getattr(self, name), dtype=int).reshape(-1)
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        object.__setattr__(self, "rows", tuple(self.rows))
        if self.margin_rows is not None:
            pairs = np.array(self.margin_rows, dtype=int).reshape(-1, 2)
            pairs.setflags(write=False)
            object.__setattr__(self, "margin_rows", pairs)

    @property
    def success(self) -> bool:
        """True when the status is ``optimal``."""
        return self.status.success

    @property
    def degenerate(self) -> np.ndarray:
        """Active samples outside the support (lambda_n = 0 on an active margin row)."""
        return np.setdiff1d(self.active, self.support)

    @property
    def strictly_complementary(self) -> bool:
        """No active inequality row of any kind has a zero multiplier."""
        return all(r.degenerate == 0 for r in self.rows)

    @property
    def direction(self) -> np.ndarray:
        """theta / ||theta||_2 (theta itself when it is 0)."""
        n = np.linalg.norm(self.theta)
        return self.theta / n if n > 0 else self.theta

    def to_dict(self) -> dict:
        """JSON-ready form: every field, the row summaries, ``success``, ``strictly_complementary``, ``degenerate``.

        Returns:
            The dict (non-finite numbers as the strings "inf", "nan"; ``from_dict`` reads it back).
        """
        out = {f.name: jsonable(getattr(self, f.name)) for f in fields(self)}
        if self.margin_rows is None:        # binary problems: the dict of before
            del out["margin_rows"]
        out["rows"] = [jsonable(r.to_dict()) for r in self.rows]
        return out | {"success": self.success, "strictly_complementary": self.strictly_complementary,
                      "degenerate": self.degenerate.tolist()}

    def to_json(self, **kwargs) -> str:
        """Strict JSON (RFC 8259): non-finite numbers are written as strings ("inf", "nan") by ``to_dict``
        and any other non-finite float as ``null``; ``from_dict`` reads both back.

        Args:
            **kwargs: passed to ``json.dumps`` (e.g. ``indent``).

        Returns:
            The JSON text.
        """
        return dumps_strict(self.to_dict(), **kwargs)

    @classmethod
    def from_dict(cls, d: dict) -> Certificate:
        """Rebuild from ``to_dict`` output (KeyError/TypeError/ValueError on a malformed dict).

        Files of lexmargin 0.1 load too: ``acceptable`` reads as ``inaccurate``, their ``extras`` are kept as
        ``Unparsed("legacy_extras")`` diagnostics, and their residuals were absolute, not relative.

        Args:
            d: a dict from ``to_dict`` (or parsed ``to_json``).

        Returns:
            The Certificate.
        """
        return cls(
            problem=str(d["problem"]), status=_status(d["status"]), theta=np.array(d["theta"], dtype=float),
            objective=_float(d["objective"]), norm=str(d["norm"]), margins=np.array(d["margins"], dtype=float),
            normalized_margin=None if d.get("normalized_margin") is None else _float(d["normalized_margin"]),
            multipliers=np.array(d["multipliers"], dtype=float), support=np.array(d["support"], dtype=int),
            active=np.array(d.get("active", d["support"]), dtype=int),
            kkt=residuals_from(d["kkt"]),
            licq=LICQ(int(d["licq"]["n_active"]), int(d["licq"]["rank"]),
                      _float(d["licq"]["smallest_singular_value"]), bool(d["licq"]["holds"])),
            second_order=_second_order_from(d.get("second_order")),
            rows=tuple(RowSummary(**{**r, "relative_max_multiplier": _float(r["relative_max_multiplier"])})
                       for r in d.get("rows", ())),
            solver=_solver_from(d["solver"]), finish=_finish_from(d.get("finish")),
            tolerances=Tolerances(**d["tolerances"]) if d.get("tolerances") else Tolerances(),
            constraints=str(d.get("constraints", "")), diagnostics=_diagnostics_from(d),
            margin_rows=None if d.get("margin_rows") is None else np.array(d["margin_rows"], dtype=int))

    def summary(self) -> str:
        """One line: problem, status, objective, normalized margin, support, residual, LICQ, second order, time.

        Returns:
            The line.
        """
        nm = "n/a" if self.normalized_margin is None else f"{self.normalized_margin:.6g}"
        so = {True: "strict", False: "fails", None: "inconclusive"}[self.second_order.strict]
        return (f"{self.problem}: {self.status.value}; objective {self.objective:.10g}; normalized margin {nm}; "
                f"support {len(self.support)} of {len(self.active)} active; relative KKT residual "
                f"{self.kkt.max:.2e} (tol {self.tolerances.kkt:.0e}); LICQ rank {self.licq.rank}/"
                f"{self.licq.n_active}; second order {so}; {self.solver.iterations} iterations in "
                f"{self.solver.seconds:.3f}s")


def _second_order_from(d) -> SecondOrder:
    if not d:
        return SecondOrder(False, -1, float("nan"), None, "not recorded")
    return SecondOrder(bool(d["checked"]), int(d["null_space_dimension"]), _float(d["min_eigenvalue"]),
                       d["strict"], str(d.get("reason", "")))


def _solver_from(d) -> SolverInfo:
    return SolverInfo(str(d["name"]), _status(d["status"]), str(d["return_status"]), int(d["iterations"]),
                      _float(d["seconds"]), str(d.get("message", "")))


def _diagnostics_from(d: dict) -> Diagnostics:
    """Typed diagnostics; a 0.1 file's open ``extras`` dict is kept as read (Unparsed "legacy_extras")."""
    if d.get("diagnostics") is None and d.get("extras"):
        return Unparsed(name="legacy_extras", values=dict(d["extras"]))
    return Diagnostics.from_dict(d.get("diagnostics"))


def _finish_from(d) -> FinishInfo:
    if not d:
        return NOT_RUN
    return FinishInfo(**{k: (_float(v) if k.startswith("residual") else v) for k, v in d.items()})


def assemble(problem: str, report: KKTReport, *, status: Status, theta, objective: float, norm: str, margins,
             normalized_margin, n_samples: int, solver: SolverInfo, finish: FinishInfo, tolerances: Tolerances,
             constraints: str, diagnostics: Diagnostics = NO_DIAGNOSTICS) -> Certificate:
    """A Certificate from ``certify``'s report and the problem's own numbers."""
    multipliers, active, support = per_sample(report, n_samples)
    return Certificate(problem=problem, status=status, theta=theta, objective=float(objective), norm=norm,
                       margins=margins, normalized_margin=normalized_margin, multipliers=multipliers,
                       support=support, active=active, kkt=report.residuals, licq=report.licq,
                       second_order=report.second_order, rows=row_summaries(report), solver=solver,
                       finish=finish, tolerances=tolerances, constraints=constraints, diagnostics=diagnostics)
