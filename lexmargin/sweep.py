"""Sweeps: a grid of models x datasets x seeds x problems, one Dask task per grid point, one report.

A sweep is declared in a JSON or TOML file (``docs/sweeps.md``, ``docs/examples/sweep.toml``)::

    name = "demo"
    seeds = [0, 1]
    [[models]]                 # a bundled model, a declaration file or a module, with its build() options
    name = "linear"
    [[datasets]]               # drawn per seed (kind "separable"), or read from a file (path, .npz / .csv)
    name = "gauss20"
    kind = "separable"
    n = 20
    d = 2
    [[problems]]               # max_margin, margin_path, constrained_path, regularization_path,
    type = "max_margin"        # lexicographic, depth_sensitive, train
    options = {starts = 2}     # SolveOptions fields (train: its own keys, see PROBLEMS)

The grid is the product models x datasets x seeds x problems in that order (the last varies fastest);
a point's ``index`` is its place in it.  ``run_sweep`` computes every point (or one shard of them,
``shard=(k, n)``: the indices i with i % n == k) with ``lexmargin.parallel.run_tasks`` -- serially, on a
local Dask scheduler (processes or threads, ``jobs`` workers) or on a distributed cluster -- and
returns a ``SweepResult`` whose ``to_dict()`` is a report of kind ``"sweep"`` (schema_version,
environment, ``docs/schema/report.schema.json``), its points ordered by index.

Every point is recorded: a solve that ends without certification carries its status (``max_time``,
``inaccurate``, ...; solves run with ``raise_on_failure=False`` unless the problem's options say
otherwise), and a point that raises is recorded with ``status: "error"`` and its error
(``"DataError: ..."``) -- the others are never lost.  Reports of shards of one sweep (the same
``config_sha256``) merge into one (``merge_reports``, ``lexmargin sweep merge A.json B.json --out
C.json``): points by index, a failed point replaced by a completed run of it, conflicting results
refused.  Apart from timings and the environment, the report does not depend on the scheduler, the
number of jobs or the sharding.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import time
import tomllib
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import SweepError
from .fileio import dumps_strict, read_json, write_text_atomic
from .parallel import SCHEDULERS, check_run_options, needs_dask, run_tasks
from .progress import bar, bars_enabled, get_logger, verbosity
from .report.schema import header, plain

log = get_logger(__name__)

#: Problem types and the keys each takes besides ``type`` and ``options`` (SolveOptions fields).
PROBLEMS = {
    "max_margin": ("norm", "p"),
    "margin_path": ("rhos", "norm"),
    "constrained_path": ("rhos", "norm", "loss"),
    "regularization_path": ("lambdas", "loss"),
    "lexicographic": ("rho", "norm"),
    "depth_sensitive": (),
    "train": ("steps", "lr", "rule", "geometry", "p", "checkpoints", "runs"),
}
#: Dataset kinds drawn in the sweep (a ``path`` reads a file instead).
DATASET_KINDS = ("separable",)
#: A point's status when it raised (every other status is a certificate's, or ``completed`` for train).
ERROR = "error"
COMPLETED = "completed"
_TOP_KEYS = {"name", "description", "models", "datasets", "seeds", "problems"}


# ---- configuration ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class SweepConfig:
    """A validated sweep: the axes of the grid, as plain JSON-able dicts.

    Attributes:
        name: the sweep's name (the report's ``sweep``).
        models: ``{"name": spec, "options": {...}}`` each (spec: bundled name, file or module).
        datasets: ``{"name": ..., "kind": "separable", "n", "d", "gap"}`` or ``{"name": ..., "path": ...}``
            (a path relative to the configuration file is resolved against its folder).
        seeds: the seeds (data of drawn datasets, random starts, training's start).
        problems: ``{"type": ..., "options": {...}, ...}`` each (keys of ``PROBLEMS``).
        description: free text.
    """

    name: str
    models: tuple
    datasets: tuple
    seeds: tuple
    problems: tuple
    description: str = ""

    def to_dict(self) -> dict:
        """The grid as plain JSON (what the report records and ``config_sha256`` hashes)."""
        return {"name": self.name, "description": self.description, "models": list(self.models),
                "datasets": list(self.datasets), "seeds": list(self.seeds), "problems": list(self.problems)}

    @property
    def sha256(self) -> str:
        """SHA-256 of the canonical JSON of ``to_dict()``: reports of one sweep share it (merge checks it)."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":")).encode()).hexdigest()

    def points(self) -> list[dict]:
        """Every grid point in grid order: ``{"index", "model", "dataset", "seed", "problem"}``."""
        grid = itertools.product(self.models, self.datasets, self.seeds, self.problems)
        return [{"index": i, "model": m, "dataset": d, "seed": s, "problem": p} for i, (m, d, s, p) in enumerate(grid)]

    @property
    def size(self) -> int:
        """The number of grid points."""
        return len(self.models) * len(self.datasets) * len(self.seeds) * len(self.problems)


def _fail(where: str, message: str):
    raise SweepError(f"sweep config {where}: {message}")


def _axis(raw: dict, key: str, where: str) -> list:
    value = raw.get(key)
    if not isinstance(value, list) or not value:
        _fail(where, f"'{key}' must be a non-empty list")
    return value


def _model_entry(entry, where: str) -> dict:
    if isinstance(entry, str):
        entry = {"name": entry}
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not entry["name"].strip():
        _fail(where, f"a model must be a name or a table with 'name' (and 'options'); got {entry!r}")
    unknown = sorted(set(entry) - {"name", "options", "label"})
    if unknown:
        _fail(where, f"model {entry['name']!r} has unknown keys {unknown} (use 'options' for build() options)")
    options = entry.get("options", {})
    if not isinstance(options, dict):
        _fail(where, f"options of model {entry['name']!r} must be a table")
    return {"name": entry["name"], "label": str(entry.get("label", entry["name"])), "options": dict(options)}


def _dataset_entry(entry, where: str, folder: Path | None) -> dict:
    if not isinstance(entry, dict):
        _fail(where, f"a dataset must be a table; got {entry!r}")
    if "path" in entry:
        unknown = sorted(set(entry) - {"name", "path"})
        if unknown:
            _fail(where, f"dataset {entry.get('name', entry['path'])!r} has unknown keys {unknown}")
        path = Path(str(entry["path"]))
        if not path.is_absolute() and folder is not None:
            path = folder / path
        return {"name": str(entry.get("name", path.stem)), "path": str(path)}
    kind = entry.get("kind", "separable")
    if kind not in DATASET_KINDS:
        _fail(where, f"dataset kind must be one of {DATASET_KINDS} (or give a 'path'); got {kind!r}")
    unknown = sorted(set(entry) - {"name", "kind", "n", "d", "gap"})
    if unknown:
        _fail(where, f"dataset {entry.get('name', kind)!r} has unknown keys {unknown}")
    n, d, gap = entry.get("n", 20), entry.get("d", 2), entry.get("gap", 0.3)
    if not (isinstance(n, int) and not isinstance(n, bool) and n >= 2) or not (
            isinstance(d, int) and not isinstance(d, bool) and d >= 1):
        _fail(where, f"dataset {entry.get('name', kind)!r}: n must be an integer >= 2 and d >= 1; got n={n!r}, d={d!r}")
    if not (isinstance(gap, (int, float)) and not isinstance(gap, bool) and math.isfinite(gap) and gap >= 0):
        _fail(where, f"dataset {entry.get('name', kind)!r}: gap must be a finite number >= 0; got {gap!r}")
    return {"name": str(entry.get("name", f"{kind}_{n}x{d}")), "kind": kind, "n": n, "d": d, "gap": float(gap)}


def _problem_entry(entry, where: str) -> dict:
    if isinstance(entry, str):
        entry = {"type": entry}
    if not isinstance(entry, dict) or entry.get("type") not in PROBLEMS:
        _fail(where, f"a problem must have a 'type' among {sorted(PROBLEMS)}; got {entry!r}")
    kind = entry["type"]
    unknown = sorted(set(entry) - {"type", "options", "label", *PROBLEMS[kind]})
    if unknown:
        _fail(where, f"problem {kind!r} has unknown keys {unknown}; it takes {sorted(PROBLEMS[kind])} and 'options'")
    options = entry.get("options", {})
    if not isinstance(options, dict):
        _fail(where, f"options of problem {kind!r} must be a table")
    if kind != "train":
        from .nlp.options import SolveOptions

        try:   # unknown option names and bad values are refused now, not in every grid point
            SolveOptions.resolve(None, **{k: v for k, v in options.items() if k != "tolerances"})
        except Exception as exc:  # noqa: BLE001
            _fail(where, f"options of problem {kind!r}: {exc}")
    for key in ("rhos", "lambdas"):
        if key in entry and (not isinstance(entry[key], list) or not entry[key]):
            _fail(where, f"problem {kind!r}: '{key}' must be a non-empty list of numbers")
    if "loss" in entry:
        from .problems.crossentropy import LOSSES

        if entry["loss"] not in LOSSES:
            _fail(where, f"problem {kind!r}: loss must be one of {LOSSES}; got {entry['loss']!r}")
    out = {k: v for k, v in entry.items() if k != "options"}
    out["label"] = str(entry.get("label", kind))
    out["options"] = dict(options)
    return out


def config_from_dict(raw: dict, source: str | Path | None = None) -> SweepConfig:
    """A ``SweepConfig`` from the parsed JSON / TOML of a configuration.

    Args:
        raw: the parsed document.
        source: the file it came from (relative dataset paths are resolved against its folder).

    Returns:
        The validated configuration.

    Raises:
        SweepError: a missing or malformed axis, an unknown key, problem type, dataset kind or option.
    """
    where = str(source) if source is not None else "<dict>"
    if not isinstance(raw, dict):
        _fail(where, "must be a table / object at the top level")
    unknown = sorted(set(raw) - _TOP_KEYS)
    if unknown:
        _fail(where, f"unknown top-level keys {unknown}; expected {sorted(_TOP_KEYS)}")
    folder = Path(source).resolve().parent if source is not None else None
    seeds = _axis(raw, "seeds", where) if "seeds" in raw else [0]
    if not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
        _fail(where, f"seeds must be integers >= 0; got {seeds!r}")
    name = raw.get("name", Path(source).stem if source is not None else "sweep")
    return SweepConfig(str(name), tuple(_model_entry(m, where) for m in _axis(raw, "models", where)),
                       tuple(_dataset_entry(d, where, folder) for d in _axis(raw, "datasets", where)),
                       tuple(int(s) for s in seeds),
                       tuple(_problem_entry(p, where) for p in _axis(raw, "problems", where)),
                       str(raw.get("description", "")))


def load_config(path) -> SweepConfig:
    """Read a sweep configuration (``.toml``, else JSON).

    Args:
        path: the file.

    Returns:
        The validated ``SweepConfig``.

    Raises:
        FileNotFoundError: no such file.
        SweepError: the file does not parse or is not a valid sweep.
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    try:
        raw = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise SweepError(f"sweep config {path} does not parse as {'TOML' if path.suffix.lower() == '.toml' else 'JSON'}: "
                         f"{exc}") from None
    return config_from_dict(raw, path)


# ---- one grid point -----------------------------------------------------------------------------------
def separable_data(n: int, d: int, seed: int, gap: float = 0.3):
    """Linearly separable Gaussian data: N(0, I) points pushed ``gap`` away from a random hyperplane through 0.

    The same draw as the benchmark suites' ``separable_data``: same (n, d, seed, gap), same data.

    Returns:
        A ``Dataset``.
    """
    from .modeling.data import Dataset

    rng = np.random.default_rng(seed)
    w = rng.standard_normal(d)
    w /= np.linalg.norm(w)
    X = rng.standard_normal((n, d))
    y = np.where(X @ w >= 0, 1.0, -1.0)
    return Dataset(X + gap * y[:, None] * w, y)


def multiclass_separable_data(n: int, d: int, n_classes: int, seed: int, gap: float = 0.3):
    """K-class data separable by a linear K-output model through 0: N(0, I) points whose best class under a random
    W (K, d) beats the second best by more than ``gap`` (4 n points drawn, the first n kept; fewer if fewer qualify).

    Returns:
        A ``Dataset`` with integer labels 0..K-1.
    """
    from .modeling.data import Dataset

    rng = np.random.default_rng(seed)
    W = rng.standard_normal((n_classes, d))
    X = rng.standard_normal((4 * n, d))
    scores = np.sort(X @ W.T, axis=1)
    X = X[np.nonzero(scores[:, -1] - scores[:, -2] > gap)[0][:n]]
    return Dataset(X, np.argmax(X @ W.T, axis=1), n_classes=n_classes)


def relu_teacher_data(n: int, d: int = 5, width: int = 8, seed: int = 0, draws: int = 3, balanced: bool = False):
    """Data separable by a two-layer ReLU net: N(0, I) inputs labelled by a random teacher of that shape.

    ``draws * n`` inputs are drawn; those whose teacher output is within 0.1 of its standard deviation of 0
    are dropped, and the first ``n`` of the rest are kept (fewer when too few remain).

    Args:
        n: samples wanted.
        d: input dimension.
        width: the teacher's hidden units (first layer N(0, 1), output weights N(0, 1)).
        seed: the draw's seed.
        draws: inputs drawn per sample wanted.
        balanced: the teacher's output weights alternate in sign (+|b_1|, -|b_2|, ...), so both labels are common;
            otherwise they are N(0, 1), which at seed 0 labels 98-100 % of the samples +1 (a net with positive
            output weights then separates them almost alone).

    Returns:
        A ``Dataset`` with labels sign(teacher output).
    """
    from .modeling.data import Dataset

    rng = np.random.default_rng(seed)
    T, b = rng.standard_normal((width, d)), rng.standard_normal(width)
    if balanced:
        b = np.abs(b) * np.where(np.arange(width) % 2 == 0, 1.0, -1.0)
    X = rng.standard_normal((draws * n, d))
    g = np.maximum(X @ T.T, 0.0) @ b
    keep = np.abs(g) > 0.1 * np.std(g)
    return Dataset(X[keep][:n], np.sign(g[keep][:n]))


def _dataset(spec: dict, seed: int):
    from .modeling.data import Dataset

    if "path" in spec:
        return Dataset.load(spec["path"])
    return separable_data(spec["n"], spec["d"], seed, spec["gap"])


def _model(spec: dict, data):
    from .modeling.loading import load_model

    options = dict(spec["options"])
    options.setdefault("input_dim", data.n_features)
    return load_model(spec["name"], **options)


def _solve_options(problem: dict, seed: int):
    from .nlp.options import SolveOptions

    options = {"raise_on_failure": False, "seed": seed, **problem["options"]}
    return SolveOptions.resolve(None, **options)


def _worst(statuses) -> str:
    """``optimal`` when every certificate is, else the first status that is not."""
    statuses = [str(s) for s in statuses]
    return next((s for s in statuses if s != "optimal"), "optimal")


def _certificate_numbers(cert) -> dict:
    return {"status": str(cert.status), "objective": cert.objective, "normalized_margin": cert.normalized_margin,
            "kkt_max": cert.kkt.max, "support": cert.support, "theta": cert.theta,
            "iterations": cert.solver.iterations}


def _path_numbers(path) -> tuple[str, dict]:
    statuses = [str(p.certificate.status) for p in path.points]
    return _worst(statuses), {"parameter_name": path.parameter_name,
                              "parameters": path.parameters, "margins": path.margins, "statuses": statuses,
                              "theta_last": path.points[-1].theta}


def _run_problem(problem: dict, model, data, seed: int) -> tuple[str, dict]:
    kind = problem["type"]
    if kind == "train":
        return _train(problem, model, data, seed)
    opts = _solve_options(problem, seed)
    if kind == "max_margin":
        from .problems.maxmargin import max_margin

        cert = max_margin(model, data, problem.get("norm", "l2"), p=problem.get("p"), options=opts)
        return str(cert.status), _certificate_numbers(cert)
    if kind in ("margin_path", "constrained_path"):
        from .problems import paths

        solve = getattr(paths, kind)
        loss = {"loss": problem.get("loss", "exp")} if kind == "constrained_path" else {}   # the margin path has none
        return _path_numbers(solve(model, data, problem.get("rhos", [1.0, 2.0, 4.0]), norm=problem.get("norm", "l2"),
                                   options=opts, **loss))
    if kind == "regularization_path":
        from .problems.paths import regularization_path

        return _path_numbers(regularization_path(model, data, problem.get("lambdas", [1.0, 0.1, 0.01]),
                                                 loss=problem.get("loss", "exp"), options=opts))
    if kind == "lexicographic":
        from .problems.lexicographic import lexicographic_max_margin

        result = lexicographic_max_margin(model, data, norm=problem.get("norm", "l2"), rho=problem.get("rho", 1.0),
                                          options=opts)
        statuses = [str(s.certificate.status) for s in result.stages]
        return _worst(statuses), {"levels": [s.level for s in result.stages], "statuses": statuses,
                                  "unique": bool(result.stages[-1].unique), "theta": result.stages[-1].certificate.theta}
    from .problems.depth import depth_sensitive  # the last of PROBLEMS

    result = depth_sensitive(model, data, options=opts)
    statuses = [str(s.certificate.status) for s in result.stages]
    return _worst(statuses), {"discarded": list(result.discarded), "block_names": list(result.block_names),
                              "block_squared_norms": list(result.block_squared_norms), "statuses": statuses}


def _train_rule(problem: dict):
    """The step rule of a train problem: a registered rule (``numeric.steps.RULES``) with step size ``lr``, in the
    named ``geometry`` (``numeric.geometry.Steepest``; ``p`` for "lp" and "mirror_lp") when one is given."""
    from .numeric.geometry import GEOMETRIES, Steepest
    from .numeric.steps import RULES

    name = problem.get("rule", "constant")
    if name not in RULES or name == "steepest":
        raise SweepError(f"train: rule must be one of {sorted(set(RULES) - {'steepest'})}; got {name!r}")
    rule = RULES[name](eta=float(problem.get("lr", 0.1)))
    geometry = problem.get("geometry")
    if geometry is None:
        return rule
    if geometry not in GEOMETRIES:
        raise SweepError(f"train: geometry must be one of {sorted(GEOMETRIES)}; got {geometry!r}")
    if not rule.fusable:
        raise SweepError(f"train: a geometry takes a step-size rule (constant, normalized, adaptive); got {name!r}")
    try:
        return Steepest(geometry, rule, p=problem.get("p"))
    except ValueError as exc:                       # "lp" without p, p with another geometry
        raise SweepError(f"train: {exc}") from None


def _train(problem: dict, model, data, seed: int) -> tuple[str, dict]:
    from .numeric import kernel_for, train

    rule = _train_rule(problem)
    runs = int(problem.get("runs", 1))
    theta0 = np.stack([model.random_params(seed + r) for r in range(runs)])
    history = train(kernel_for(model, data.X, data.y), theta0, rule=rule,
                    n_steps=int(problem.get("steps", 1000)), checkpoints=int(problem.get("checkpoints", 20)),
                    seed=seed, **problem["options"])
    return COMPLETED, {"steps": history.steps, "log_loss": history.log_loss[-1], "normalized_margin":
                       history.normalized_margin[-1], "min_margin": history.min_margin[-1], "theta": history.theta}


def _describe(point: dict) -> dict:
    return {"index": point["index"], "model": point["model"]["label"], "dataset": point["dataset"]["name"],
            "seed": point["seed"], "problem": point["problem"]["label"], "type": point["problem"]["type"]}


def run_point(point: dict, verbose: bool | int = False) -> dict:
    """Compute one grid point; never raises (an exception is recorded as ``status: "error"``).

    Args:
        point: an item of ``SweepConfig.points()``.
        verbose: ``lexmargin.progress`` verbosity inside the task (in a worker process too: its records go
            to the worker's stderr, which a local process scheduler shares with this one).

    Returns:
        ``{"index", "model", "dataset", "seed", "problem", "type", "status", "ok", "error", "seconds",
        "result"}`` in plain JSON types; ``ok`` is True for a certified solve (every certificate
        ``optimal``) or a completed training run.
    """
    with verbosity(verbose):
        return _run_point(point)


def _run_point(point: dict) -> dict:
    start = time.perf_counter()
    out = _describe(point)
    try:
        data = _dataset(point["dataset"], point["seed"])
        model = _model(point["model"], data)
        status, numbers = _run_problem(point["problem"], model, data, point["seed"])
        out |= {"status": status, "ok": status in ("optimal", COMPLETED), "error": None, "result": plain(numbers)}
    except Exception as exc:  # noqa: BLE001 - a failed grid point must not lose the others
        out |= error_record(exc)
    out["seconds"] = time.perf_counter() - start
    log.info("sweep point %d (%s, %s, seed %d, %s): %s in %.2f s", out["index"], out["model"], out["dataset"],
             out["seed"], out["problem"], out["status"], out["seconds"])
    return out


def error_record(exc: BaseException) -> dict:
    """The fields of a point that raised: ``status: "error"``, the error on one line and where it arose."""
    text = " ".join(part.strip() for part in str(exc).splitlines() if part.strip())
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" ({Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    return {"status": ERROR, "ok": False, "error": f"{type(exc).__name__}: {text}{where}", "result": None}


def _point_crashed(call: tuple, exc: BaseException) -> dict:
    """``on_error`` of run_tasks: the scheduler lost the point (a worker died); recorded, not raised."""
    return _describe(call[0]) | error_record(exc) | {"seconds": 0.0}


# ---- the sweep and its report ---------------------------------------------------------------------------
@dataclass(frozen=True)
class SweepResult:
    """The points computed by ``run_sweep`` (or merged by ``merge_reports``) and how they were run.

    ``to_dict()`` is the report (kind ``"sweep"``); ``points`` are ordered by index.
    """

    config: SweepConfig | dict
    points: tuple
    runs: tuple = ()
    environment: dict = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def config_dict(self) -> dict:
        return self.config.to_dict() if isinstance(self.config, SweepConfig) else dict(self.config)

    @property
    def config_sha256(self) -> str:
        return hashlib.sha256(json.dumps(self.config_dict, sort_keys=True, separators=(",", ":")).encode()).hexdigest()

    @property
    def size(self) -> int:
        c = self.config_dict
        return len(c["models"]) * len(c["datasets"]) * len(c["seeds"]) * len(c["problems"])

    def summary(self) -> dict:
        """Counts: points of the grid, computed, ok, failed (not ok, not error), error; missing indices."""
        done = {p["index"] for p in self.points}
        return {"points": self.size, "computed": len(self.points), "ok": sum(p["ok"] for p in self.points),
                "not_ok": sum(not p["ok"] and p["status"] != ERROR for p in self.points),
                "error": sum(p["status"] == ERROR for p in self.points),
                "missing": [i for i in range(self.size) if i not in done]}

    @property
    def all_ok(self) -> bool:
        """Every grid point was computed and is ok."""
        s = self.summary()
        return s["ok"] == s["points"]

    def to_dict(self) -> dict:
        seeds = self.config_dict["seeds"]
        return header("sweep", seeds[0] if len(seeds) == 1 else None, self.environment) | {
            "sweep": self.config_dict["name"], "config": self.config_dict, "config_sha256": self.config_sha256,
            "seconds": self.seconds, "summary": self.summary(), "runs": [plain(r) for r in self.runs],
            "points": [plain(p) for p in self.points]}

    def to_markdown(self) -> str:
        s = self.summary()
        lines = [f"# Sweep {self.config_dict['name']}", "",
                 f"{s['computed']} of {s['points']} points computed: {s['ok']} ok, {s['not_ok']} not certified, "
                 f"{s['error']} errors" + (f"; missing {s['missing']}" if s["missing"] else "") + ".", "",
                 "| index | model | dataset | seed | problem | status | seconds | error |",
                 "|---|---|---|---|---|---|---|---|"]
        for p in self.points:
            error = (p.get("error") or "").replace("|", "\\|")
            lines.append(f"| {p['index']} | {p['model']} | {p['dataset']} | {p['seed']} | {p['problem']} | "
                         f"{p['status']} | {p['seconds']:.2f} | {error} |")
        return "\n".join(lines) + "\n"

    def save(self, path) -> Path:
        """Write the report as strict JSON (atomically; a ``.md`` beside it with the table).

        Args:
            path: the JSON file.

        Returns:
            The JSON file's path.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, dumps_strict(self.to_dict(), indent=2))
        write_text_atomic(path.with_suffix(".md"), self.to_markdown())
        return path


def parse_shard(text) -> tuple[int, int] | None:
    """``"K/N"`` (0 <= K < N) as (K, N); None for None.

    Raises:
        SweepError: not of that form.
    """
    if text is None:
        return None
    if isinstance(text, tuple):
        k, n = text
    else:
        k_text, sep, n_text = str(text).partition("/")
        try:
            k, n = int(k_text), int(n_text)
        except ValueError:
            k, n, sep = -1, 0, ""
        if not sep:
            raise SweepError(f"shard must look like K/N with 0 <= K < N (e.g. 0/2); got {text!r}")
    if not (isinstance(k, int) and isinstance(n, int) and 0 <= k < n):
        raise SweepError(f"shard must look like K/N with 0 <= K < N (e.g. 0/2); got {text!r}")
    return k, n


def run_sweep(config: SweepConfig | dict | str | Path, *, jobs: int = 1, scheduler: str = "processes",
              address: str | None = None, shard=None, verbose: bool | int = False,
              progress: bool = False) -> SweepResult:
    """Compute the grid points of a sweep as Dask tasks and collect them in grid order.

    Args:
        config: a ``SweepConfig``, its dict, or a configuration file.
        jobs: local workers (1: serially in this process, no Dask needed).
        scheduler: ``"processes"``, ``"threads"`` or ``"sync"`` (``lexmargin.parallel``).
        address: a dask.distributed scheduler address (``tcp://host:8786``) instead of a local scheduler.
        shard: ``(k, n)`` or ``"k/n"``: only the points whose index is k modulo n (merge the shards' reports
            with ``merge_reports``).
        verbose: log each point (and inside it, its solve's progress) at INFO (True / 1) or DEBUG (2).
        progress: a progress bar over the points when stderr is a terminal (``lexmargin.progress``; for a
            local Dask scheduler, Dask's own bar).

    Returns:
        The ``SweepResult`` (``to_dict()``: the report; ``save(path)``: write it).

    Raises:
        SweepError: an invalid configuration or shard.
        MissingDependencyError: Dask is needed (jobs > 1 or an address) and not installed.
    """
    if isinstance(config, (str, Path)):
        config = load_config(config)
    elif isinstance(config, dict):
        config = config_from_dict(config)
    chosen = parse_shard(shard)
    points = [p for p in config.points() if chosen is None or p["index"] % chosen[1] == chosen[0]]
    from .environment import environment

    start = time.perf_counter()
    check_run_options(jobs, scheduler, address)
    with verbosity(verbose):
        if needs_dask(jobs, scheduler, address):
            with _dask_bar(progress and address is None):
                results = run_tasks(run_point, [(p, verbose) for p in points], jobs=jobs, scheduler=scheduler,
                                    address=address, on_error=_point_crashed)
        else:   # in this process, one after the other (run_point never raises)
            results = [run_point(p, verbose) for p in bar(points, wanted=progress, desc=f"sweep {config.name}",
                                                           unit="point")]
    seconds = time.perf_counter() - start
    env = environment() | {"time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    run = {"shard": None if chosen is None else f"{chosen[0]}/{chosen[1]}", "jobs": jobs,
           "scheduler": "distributed" if address else scheduler, "indices": [p["index"] for p in points],
           "seconds": seconds, "environment": env}
    return SweepResult(config, tuple(sorted(results, key=lambda p: p["index"])), (run,), env, seconds)


def _dask_bar(wanted: bool):
    """Dask's progress bar of a local scheduler on stderr when ``bars_enabled(wanted)``, else nothing."""
    import contextlib
    import sys

    if not bars_enabled(wanted):
        return contextlib.nullcontext()
    from dask.diagnostics import ProgressBar

    return ProgressBar(out=sys.stderr)


# ---- merging ------------------------------------------------------------------------------------------
_VOLATILE = ("seconds",)


def _stable(point: dict) -> str:
    """A point as canonical strict JSON without its timings (two runs of one point must agree on it)."""
    return dumps_strict({k: v for k, v in point.items() if k not in _VOLATILE}, sort_keys=True)


def _same(a: dict, b: dict) -> bool:
    return _stable(a) == _stable(b)


def load_report(path) -> dict:
    """Read a sweep report (``SweepResult.save``), checking its kind and schema version.

    Raises:
        SweepError: not a sweep report (or of another schema version).
    """
    from .report.schema import SCHEMA_VERSION

    doc = read_json(path, "sweep report")
    if not isinstance(doc, dict) or doc.get("kind") != "sweep":
        raise SweepError(f"{path} is not a sweep report (its kind is {doc.get('kind') if isinstance(doc, dict) else None!r})")
    if doc.get("schema_version") != SCHEMA_VERSION:
        raise SweepError(f"{path} has schema_version {doc.get('schema_version')!r}; this lexmargin reads {SCHEMA_VERSION}")
    for key in ("config", "config_sha256", "points", "runs"):
        if key not in doc:
            raise SweepError(f"{path} is a damaged sweep report: it lacks {key!r}")
    return doc


def merge_reports(reports) -> SweepResult:
    """Merge reports of the same sweep (shards, or a rerun of failed points) into one.

    Points are taken by index: a point present in several reports must agree (timings aside), except that
    an ``error`` point is replaced by a computed run of the same point.  The merged report lists every
    run it came from (``runs``), in the order given; its environment is the first report's.

    Args:
        reports: report dicts (``SweepResult.to_dict()``) or paths of report files, at least one.

    Returns:
        The merged ``SweepResult``, points ordered by index.

    Raises:
        SweepError: reports of different sweeps (another ``config_sha256``) or conflicting points.
    """
    docs = [load_report(r) if isinstance(r, (str, Path)) else r for r in reports]
    if not docs:
        raise SweepError("nothing to merge: give at least one sweep report")
    first = docs[0]
    points: dict[int, dict] = {}
    for doc in docs:
        if doc["config_sha256"] != first["config_sha256"]:
            raise SweepError(f"cannot merge reports of different sweeps: {first.get('sweep')!r} "
                             f"(config {first['config_sha256'][:12]}) and {doc.get('sweep')!r} "
                             f"(config {doc['config_sha256'][:12]})")
        for point in doc["points"]:
            index = point["index"]
            held = points.get(index)
            if held is None or (held["status"] == ERROR and point["status"] != ERROR):
                points[index] = point
            elif point["status"] != ERROR and not _same(held, point):
                raise SweepError(f"conflicting results for grid point {index}: {held['status']} vs {point['status']} "
                                 "(reports of different code or settings?)")
    runs = tuple(run for doc in docs for run in doc["runs"])
    return SweepResult(dict(first["config"]), tuple(points[i] for i in sorted(points)), runs,
                       dict(first["environment"]), float(sum(doc.get("seconds", 0.0) for doc in docs)))


__all__ = ["COMPLETED", "DATASET_KINDS", "ERROR", "PROBLEMS", "SCHEDULERS", "SweepConfig", "SweepResult",
           "config_from_dict", "error_record", "load_config", "load_report", "merge_reports", "parse_shard",
           "run_point", "run_sweep", "separable_data"]
