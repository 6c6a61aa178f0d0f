"""Command line: ``lexmargin`` / ``python -m lexmargin``.

    lexmargin models                                   bundled models with their margin formulas
    lexmargin solve MODEL DATA [--norm l2] [-o k=v] [--classes K]
                                                       exact max-margin solution + certificate
    lexmargin report MODEL DATA THETA.npz [--certificate cert.json] [--out DIR] [--format png pdf svg] [--classes K]
    lexmargin report --state-dict NET.pt|NET.npz [--activation relu] DATA [...]
                                                       stationarity report (a PyTorch / numpy MLP's weights)
    lexmargin suite paper|perf|seeds [--quick] [--seed S] [--out DIR] [--format png pdf svg]
                                                       benchmark suites (JSON + Markdown + figures)
    lexmargin info [--json]                            versions, commit, CPU, compiled GD kernel
    lexmargin sweep CONFIG [--jobs K] [--scheduler processes|threads|sync] [--address ADDR] [--shard K/N]
                    [--out sweep.json]                 a grid of solves / training runs as Dask tasks, one report
    lexmargin sweep merge A.json B.json ... --out C.json   merge the reports of shards of one sweep

Global flags (before or after the command): ``-v`` shows lexmargin's progress records (INFO; ``-vv``
DEBUG) on stderr, ``-q`` silences everything but errors (notes, progress bars, the printed summaries;
files are still written and the exit status still tells success).

K classes: DATA with integer labels 0..K-1 (an .npz written by ``Dataset.save`` records ``n_classes``; a CSV needs
``--classes K``) and a K-output model (bundled ``multiclass_linear`` and ``mlp`` get n_classes=K by themselves);
certificates and reports then have one margin row and one multiplier per (n, j), j != y_n (docs/multiclass.md).

Every report.json is strict, versioned JSON (docs/schema/report.schema.json) with the seed and the
environment it was computed in; figures are PNG (200 dpi), PDF or SVG.

Errors in the inputs (missing, corrupt or foreign files, bad options, malformed data) print one line on
stderr and exit with 2; an unexpected internal error prints one line and exits with 3 (set LEXMARGIN_DEBUG=1
for its traceback).  ``solve`` exits with 1 when the solve ended without a certified solution.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import importlib.util
import io
import logging
import math
import os
import sys
from pathlib import Path

from .errors import LexmarginError

EXIT_USAGE = 2
EXIT_INTERNAL = 3
SUITES = ("paper", "perf", "seeds")


class CLIError(LexmarginError):
    """A command-line input problem reported as one line."""


# ---- helpers --------------------------------------------------------------------------------------
def parse_value(text: str):
    """'3' -> 3, '0.5' -> 0.5, 'true' -> True, '(1,2)' -> (1, 2), 'relu' -> 'relu'."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text


def parse_options(pairs) -> dict:
    options = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise CLIError(f"option {pair!r} must look like key=value (e.g. -o width=4)")
        options[key.strip()] = parse_value(value)
    return options


def load_data(path, classes: int | None = None):
    """The Dataset of a data file: binary labels +-1, or K classes (integer labels 0..K-1) when the .npz records
    ``n_classes`` or ``classes`` (``--classes K``) is given.

    Args:
        path: the .npz / .csv file.
        classes: K from ``--classes`` (None: as the file says; a CSV is then binary).

    Returns:
        The Dataset.

    Raises:
        CLIError: ``--classes`` disagrees with the file's recorded classes, or integer labels without it.
    """
    from .errors import DataError
    from .modeling.data import Dataset

    try:
        data = Dataset.load(path)
    except DataError as exc:
        if classes is None:
            if "n_classes" in str(exc):
                raise CLIError(f"{exc}; on the command line give --classes K") from None
            raise
        data = None
    if classes is None or (data is not None and data.n_classes == classes):
        return data
    if data is not None and data.n_classes is not None:
        raise CLIError(f"--classes {classes} but {path} records {data.n_classes} classes")
    return Dataset.load(path, n_classes=classes)


def build_model(spec: str, data, options: dict):
    """The Model ``spec`` for ``data``: input_dim from the data; for K-class data a bundled model whose build
    takes ``n_classes`` (multiclass_linear, mlp) gets n_classes=K unless ``-o n_classes=...`` says otherwise.

    Args:
        spec: a bundled name, declaration file or module.
        data: the Dataset.
        options: the ``-o`` options.

    Returns:
        The Model.
    """
    from .modeling.loading import load_model

    options = dict(options)
    options.setdefault("input_dim", data.n_features)
    if data.n_classes is not None and _bundled_takes_classes(spec):
        options.setdefault("n_classes", data.n_classes)
    try:
        model = load_model(spec, **options)
    except TypeError as exc:  # build() got an unexpected keyword argument
        raise CLIError(f"model {spec!r}: {exc}") from None
    _check_classes(model, data)
    return model


def _bundled_takes_classes(spec: str) -> bool:
    import inspect

    from .modeling.loading import BUNDLED

    if spec not in BUNDLED:
        return False
    build = importlib.import_module(f"lexmargin.models.{spec}").build
    return "n_classes" in inspect.signature(build).parameters


def _check_classes(model, data) -> None:
    """One line for a model whose outputs do not fit the data's classes (before any solve)."""
    outputs = int(getattr(model, "n_outputs", 1))
    if data.n_classes is None and outputs > 1:
        raise CLIError(f"model {model.name!r} has {outputs} outputs but the data is binary (labels +-1); give "
                       f"K-class data (integer labels 0..{outputs - 1}: an .npz with n_classes, or --classes {outputs})")
    if data.n_classes is not None and outputs != data.n_classes:
        hint = ("use multiclass_linear (or a model declared with outputs=K)" if outputs == 1
                else f"-o n_classes={data.n_classes}")
        raise CLIError(f"the data has {data.n_classes} classes but model {model.name!r} has {outputs} output(s); "
                       f"{hint}")


def _installed_benchmarks() -> Path:
    """The suites installed with the package (``lexmargin.benchmarks``), else the checkout's folder."""
    try:
        import lexmargin.benchmarks as installed
        return Path(installed.__file__).resolve().parent
    except ImportError:
        return Path(__file__).resolve().parent.parent / "benchmarks"


def benchmarks_dir() -> Path:
    env = os.environ.get("LEXMARGIN_BENCHMARKS")
    path = Path(env) if env else _installed_benchmarks()
    if not (path / "paper_suite.py").exists():
        raise CLIError(f"benchmark suites not found in {path} (set LEXMARGIN_BENCHMARKS to the benchmarks folder "
                       "of a lexmargin checkout)")
    return path


def load_suite_module(name: str):
    folder = benchmarks_dir()
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    spec = importlib.util.spec_from_file_location(f"lexmargin_benchmarks_{name}", folder / f"{name}_suite.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file executes
    spec.loader.exec_module(module)
    return module


_QUIET = False   # -q: say() stays silent (set by main() for the duration of one command)


def say(message: str) -> None:
    """A note for the user on stderr (not an error); silent under -q."""
    if not _QUIET:
        print(message, file=sys.stderr)


def _wants_progress(args) -> bool:
    """Progress bars: not under -q, not with --no-progress (the bars themselves need a terminal)."""
    return not getattr(args, "quiet", False) and not getattr(args, "no_progress", False)


@contextlib.contextmanager
def _output_level(verbose: int, quiet: bool):
    """-v / -vv: lexmargin's log records at INFO / DEBUG on stderr; -q: only errors, stdout discarded.

    Everything is restored on exit (``main`` may run several times in one process, as in the tests).
    """
    global _QUIET
    logger = logging.getLogger("lexmargin")
    old_level, handler, old_quiet = logger.level, None, _QUIET
    if verbose:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO if verbose == 1 else logging.DEBUG)
    elif quiet:
        logger.setLevel(logging.ERROR)
    _QUIET = bool(quiet)
    try:
        if quiet:
            with contextlib.redirect_stdout(io.StringIO()):
                yield
        else:
            yield
    finally:
        _QUIET = old_quiet
        logger.setLevel(old_level)
        if handler is not None:
            logger.removeHandler(handler)


def one_line(exc: BaseException) -> str:
    """An exception's message on one line (messages of other libraries may span several)."""
    text = " ".join(part.strip() for part in str(exc).splitlines() if part.strip())
    return text or type(exc).__name__


def _number(text: str, kind, what: str, low, strict: bool = False):
    """An argparse type: a finite ``kind`` number >= low (> low when ``strict``)."""
    try:
        value = kind(text)
    except (TypeError, ValueError, OverflowError):
        raise argparse.ArgumentTypeError(f"must be {what}; got {text!r}") from None
    if not math.isfinite(value) or value < low or (strict and value == low):
        raise argparse.ArgumentTypeError(f"must be {what}; got {text!r}")
    return value


def positive_int(text: str) -> int:
    return _number(text, int, "an integer >= 1", 1)


def display_dim(text: str) -> int:
    value = _number(text, int, "an integer from 1 to 1000 (it only sizes the displayed formulas)", 1)
    if value > 1000:
        raise argparse.ArgumentTypeError(f"must be an integer from 1 to 1000 (it only sizes the displayed "
                                         f"formulas); got {text!r}")
    return value


def nonnegative_int(text: str) -> int:
    return _number(text, int, "an integer >= 0", 0)


def nonnegative_float(text: str) -> float:
    return _number(text, float, "a finite number >= 0", 0.0)


def lp_exponent(text: str) -> float:
    return _number(text, float, "a finite number > 1 (use --norm l1 for p = 1, --norm linf for p = inf)", 1.0,
                   strict=True)


class ArgumentParser(argparse.ArgumentParser):
    """argparse with one-line usage errors: ``lexmargin solve: error: ...`` on stderr, exit status 2."""

    def error(self, message: str):
        text = " ".join(message.split())
        self.exit(EXIT_USAGE, f"{self.prog}: error: {text} (see {self.prog} --help)\n")


def _check_parent_folders(out: Path) -> None:
    for parent in out.parents:
        if parent.exists():
            if not parent.is_dir():
                raise CLIError(f"--out {out}: {parent} is a file, not a folder")
            return


def _check_output_file(path) -> Path:
    """A file lexmargin will write: refused up front (before long work) when it cannot be one."""
    out = Path(path)
    if out.is_dir():
        raise CLIError(f"--out {out} is a folder; give a file name, e.g. {out / 'certificate.json'}")
    _check_parent_folders(out)
    return out


def _check_output_folder(path) -> Path:
    """A folder lexmargin will write into: refused up front when it cannot be one."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise CLIError(f"--out {out} exists and is not a folder")
    _check_parent_folders(out)
    return out


# ---- commands -------------------------------------------------------------------------------------
def cmd_models(args) -> int:
    from .modeling.loading import BUNDLED, load_model

    for name in BUNDLED:
        try:
            model = load_model(name, input_dim=args.input_dim)
        except LexmarginError as exc:
            print(f"{name}: not available ({exc})")
            continue
        print(f"{name}: {model.description or model.name}  [degree {model.degree}, {model.n_params} parameters "
              f"at input_dim={args.input_dim}]")
        print(f"    f = {model.formula()}")
        options = _options_doc(name)
        if options:
            print("    " + options)
    return 0


def _options_doc(name: str) -> str:
    module = importlib.import_module(f"lexmargin.models.{name}")
    doc = (module.build.__doc__ or "").split("Options:", 1)
    return ("options: " + " ".join(doc[1].split())) if len(doc) == 2 else ""


def cmd_solve(args) -> int:
    from .fileio import write_text_atomic
    from .problems.maxmargin import MaxMarginProblem

    out = _check_output_file(args.out) if args.out else None
    if args.run is not None and not args.init:
        raise CLIError("--run picks a run of the --init file; it needs --init")
    data = load_data(args.data, args.classes)
    model = build_model(args.model, data, parse_options(args.option))
    overrides = {}
    if args.init:
        from .report import load_theta_npz
        init = load_theta_npz(args.init, run=args.run).theta
        if init.shape != (model.n_params,):
            raise CLIError(f"--init {args.init} holds {init.size} parameters but model {model.name!r} has "
                           f"{model.n_params}")
        overrides["init"] = init
    region = None if args.activation_region == "auto" else args.activation_region == "on"
    problem = MaxMarginProblem(model, data, args.norm, args.p)   # checks the norm and p before any work
    rows = "" if data.n_classes is None else f", {data.n_classes} classes: {data.n_samples * (data.n_classes - 1)} margin rows (n, j)"
    say(f"solving max-margin for {model.name} on {data.n_samples} samples{rows} ({model.n_params} parameters) ...")
    cert = problem.solve(None, activation_region=region, starts=args.starts, seed=args.seed,
                         raise_on_failure=False, verbose=args.verbose, **overrides)
    print(cert.summary())
    if out is not None:
        write_text_atomic(out, cert.to_json(indent=2))   # strict JSON; a reader never sees half a file
        print(f"certificate written to {out}")
    return 0 if cert.success else 1


def cmd_info(args) -> int:
    from .environment import environment, format_environment
    from .fileio import dumps_strict

    env = environment()
    print(dumps_strict(env, indent=2) if args.json else format_environment(env))
    return 0


REPORT_USAGE = ("lexmargin report [-h] MODEL DATA THETA [options]\n"
                "       lexmargin report [-h] --state-dict FILE [--activation A] [--slope S] DATA [options]")


def _report_inputs(args):
    """(model, data, theta source or array) of ``report``: MODEL DATA THETA, or DATA with --state-dict."""
    from .report import load_theta_npz

    if args.state_dict is None:
        if args.activation is not None or args.slope is not None:
            raise CLIError("--activation and --slope describe the net of --state-dict; give a model's options "
                           "with -o instead")
        if len(args.inputs) != 3:
            raise CLIError(f"report takes MODEL DATA THETA (or DATA alone with --state-dict); got "
                           f"{len(args.inputs)} argument(s)")
        model_spec, data_path, theta_path = args.inputs
        source = load_theta_npz(theta_path, run=args.run)
        data = source.data if data_path == "-" else load_data(data_path, args.classes)
        if data is None:
            raise CLIError(f"DATA is '-' but {theta_path} holds no X and y")
        if data_path == "-" and args.classes is not None and data.n_classes != args.classes:
            raise CLIError(f"--classes {args.classes} but the data in {theta_path} has "
                           f"{data.n_classes or 'binary'} classes")
        return build_model(model_spec, data, parse_options(args.option)), data, source
    return _state_dict_inputs(args)


def _state_dict_inputs(args):
    """The MLP of a saved state_dict (.npz or PyTorch .pt/.pth) and its weights as theta."""
    from .interop.torch import from_arrays, load_state_dict

    for flag, given in (("-o", args.option), ("--run", args.run is not None)):
        if given:
            raise CLIError(f"{flag} does not apply with --state-dict (the file holds one net; its activation is "
                           "--activation)")
    if len(args.inputs) != 1:
        raise CLIError(f"with --state-dict, report takes DATA only; got {len(args.inputs)} arguments")
    if args.inputs[0] == "-":
        raise CLIError("DATA '-' reads X, y from a THETA file; with --state-dict give the data file")
    if args.slope is not None and args.activation != "leaky_relu":
        raise CLIError("--slope is the negative slope of --activation leaky_relu")
    try:
        arrays = load_state_dict(args.state_dict)
    except ImportError as exc:
        raise CLIError(f"--state-dict {args.state_dict}: {exc}; or save the state_dict as .npz") from None
    data = load_data(args.inputs[0], args.classes)
    model, theta = from_arrays(arrays, activation=args.activation or "relu",
                               slope=0.01 if args.slope is None else args.slope, input_dim=data.n_features)
    _check_classes(model, data)
    return model, data, theta


def cmd_report(args) -> int:
    from .report import load_certificate, stationarity_report

    _check_output_folder(args.out)
    model, data, source = _report_inputs(args)
    certificate = load_certificate(args.certificate) if args.certificate else None
    report = stationarity_report(model, data, source, certificate=certificate, support_tol=args.support_tol,
                                 progress=_wants_progress(args))
    files = report.save(args.out, formats=args.formats)
    print(report.to_markdown())
    print(f"report written to {files['markdown']} (+ report.json, figures as {', '.join(args.formats)})")
    return 0


def cmd_suite(args) -> int:
    module = load_suite_module(args.name)
    out = args.out or f"{args.name}_suite_results"
    _check_output_folder(out)
    _check_parallel(args)
    if args.name == "paper":
        extra = {"formats": args.formats or ["png"]}
        if args.jobs > 1 or args.address:    # a serial run calls the suite as before
            extra |= {"jobs": args.jobs, "scheduler": args.scheduler, "address": args.address}
        runner = module.run_paper_suite
    elif args.name == "seeds":
        if args.jobs > 1 or args.address:
            raise CLIError("the seeds suite runs its experiments serially (batched runs at once); --jobs and "
                           "--address apply to the paper suite and to sweeps")
        extra, runner = {"formats": args.formats or ["png"]}, module.run_seeds_suite
    else:
        if args.formats:
            say("note: the perf suite writes tables only, no figures; --format has no effect")
        if args.jobs > 1 or args.address:
            raise CLIError("the perf suite times its benchmarks one at a time (parallel runs would distort the "
                           "timings); --jobs and --address apply to the paper suite and to sweeps")
        extra, runner = {}, module.run_perf_suite
    result = runner(out, quick=args.quick, progress=_wants_progress(args), only=args.only, seed=args.seed, **extra)
    print(result.to_markdown())
    print(f"results written to {Path(out) / 'report.md'} and report.json")
    return 0 if getattr(result, "all_available_passed", True) else 1


def _check_parallel(args) -> None:
    """--jobs / --scheduler / --address: Dask must be importable when they ask for it (one-line error, exit 2)."""
    from .parallel import needs_dask, require_dask

    if needs_dask(args.jobs, args.scheduler, args.address):
        require_dask(f"--jobs {args.jobs}" if args.address is None else f"--address {args.address}")


def cmd_sweep(args) -> int:
    from .sweep import load_config, merge_reports, run_sweep

    if args.items[0] == "merge":
        reports = args.items[1:]
        if not reports:
            raise CLIError("sweep merge needs the reports to merge: lexmargin sweep merge A.json B.json --out C.json")
        if not args.out:
            raise CLIError("sweep merge needs --out (the merged report's file)")
        out = _check_output_file(args.out)
        result = merge_reports(reports)
        verb = f"merged {len(reports)} reports of"
    else:
        if len(args.items) != 1:
            raise CLIError(f"sweep takes one CONFIG (or `merge A.json B.json ...`); got {len(args.items)} arguments")
        config = load_config(args.items[0])
        out = _check_output_file(args.out or f"sweep_{config.name}.json")
        _check_parallel(args)
        say(f"sweep {config.name}: {config.size} grid points"
            + (f", shard {args.shard}" if args.shard else "")
            + (f" on {args.jobs} {args.scheduler}" if args.jobs > 1 and not args.address else "")
            + (f" on the cluster at {args.address}" if args.address else "") + " ...")
        result = run_sweep(config, jobs=args.jobs, scheduler=args.scheduler, address=args.address, shard=args.shard,
                           verbose=args.verbose, progress=_wants_progress(args))
        verb = "ran"
    result.save(out)
    print(result.to_markdown())
    summary = result.summary()
    print(f"{verb} sweep {result.config_dict['name']}: {summary['ok']} of {summary['points']} points ok; "
          f"report written to {out} (+ {Path(out).with_suffix('.md').name})")
    return 0 if result.all_ok else 1


def _add_parallel_arguments(p, what: str) -> None:
    from .parallel import SCHEDULERS

    p.add_argument("--jobs", type=positive_int, default=1,
                   help=f"run the {what} as this many parallel Dask tasks (default 1: serially, no Dask needed)")
    p.add_argument("--scheduler", choices=SCHEDULERS, default="processes",
                   help="local Dask scheduler for --jobs > 1 (default processes)")
    p.add_argument("--address", default=None,
                   help="a dask.distributed scheduler address (tcp://host:8786) to run on instead")


# ---- parser ---------------------------------------------------------------------------------------
def _add_model_arguments(p) -> None:
    p.add_argument("model", help="bundled model name (see `lexmargin models`), a declaration file or a module")
    p.add_argument("-o", "--option", action="append", metavar="KEY=VALUE",
                   help="model option passed to build(), repeatable (e.g. -o width=4 -o activation=relu)")


def _output_flags(default) -> argparse.ArgumentParser:
    """-v / -q, accepted before the command (defaults set) and after it (``default=SUPPRESS``: not reset)."""
    flags = argparse.ArgumentParser(add_help=False)
    flags.add_argument("-v", "--verbose", action="count", default=0 if default is None else default,
                       help="show progress records on stderr (-v: INFO, -vv: DEBUG)")
    flags.add_argument("-q", "--quiet", action="store_true", default=False if default is None else default,
                       help="print nothing but errors (files are still written; the exit status tells success)")
    return flags


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    from .nlp.norms import NORMS

    parser = ArgumentParser(prog="lexmargin", description=__doc__.splitlines()[0], parents=[_output_flags(None)])
    parser.add_argument("--version", action="version", version=f"lexmargin {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=_subparser_class(_output_flags(argparse.SUPPRESS)))

    p = sub.add_parser("models", help="list the bundled models and their margin formulas")
    p.add_argument("--input-dim", type=display_dim, default=2,
                   help="input dimension used to display formulas (1 to 1000; default 2)")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("solve", help="max-margin solution of MODEL on DATA with a certificate")
    _add_model_arguments(p)
    p.add_argument("data", help="data file: .npz with X, y or .csv with the label in the last column")
    _add_classes_argument(p)
    p.add_argument("--norm", default="l2", choices=tuple(NORMS))
    p.add_argument("--p", type=lp_exponent, default=None, help="exponent of the lp norm (with --norm lp; > 1)")
    p.add_argument("--starts", type=positive_int, default=None, help="random starts (non-convex models; >= 1)")
    p.add_argument("--seed", type=nonnegative_int, default=0)
    p.add_argument("--init", help="start from a trained theta (.npz with theta, thetas or a numeric History); "
                                  "for ReLU nets, certify in its activation region")
    p.add_argument("--run", type=nonnegative_int, default=None,
                   help="which run of a batched History --init holds (default 0)")
    p.add_argument("--activation-region", choices=("auto", "on", "off"), default="auto",
                   help="restrict relu/leaky_relu nets to activation regions (auto: when the model uses them)")
    p.add_argument("--out", help="write the certificate as JSON to this file")
    p.set_defaults(func=cmd_solve)

    p = sub.add_parser("report", help="stationarity report of a parameter vector (theta in an .npz) or of a "
                                      "saved PyTorch / numpy MLP (--state-dict)", usage=REPORT_USAGE)
    p.add_argument("inputs", nargs="+", metavar="ARG",
                   help="MODEL DATA THETA: a bundled model name (see `lexmargin models`), declaration file or module; "
                        "the data (.npz/.csv, or '-' to use X, y stored in THETA); an .npz with theta (P,) or thetas "
                        "(K, P) [+ iterations], or a numeric History .npz.  With --state-dict: DATA only")
    p.add_argument("-o", "--option", action="append", metavar="KEY=VALUE",
                   help="model option passed to build(), repeatable (e.g. -o width=4 -o activation=relu)")
    p.add_argument("--state-dict", metavar="FILE",
                   help="report the MLP saved in FILE instead of MODEL and THETA: an .npz of arrays named as in "
                        "module.state_dict() ('0.weight', '0.bias', ...) or a PyTorch .pt/.pth state_dict "
                        "(read with torch.load(weights_only=True)); docs/torch.md")
    p.add_argument("--activation", choices=("relu", "leaky_relu", "identity"), default=None,
                   help="the activation between the layers of --state-dict (default relu)")
    p.add_argument("--slope", type=nonnegative_float, default=None,
                   help="negative slope of --activation leaky_relu, in [0, 1] (default 0.01, PyTorch's)")
    _add_classes_argument(p)
    p.add_argument("--certificate", help="certificate JSON (from `lexmargin solve --out`) to compare with")
    p.add_argument("--support-tol", type=nonnegative_float, default=0.1,
                   help="near-support set: f_n <= 1 + tol (a finite number >= 0; default 0.1)")
    p.add_argument("--run", type=nonnegative_int, default=None,
                   help="run index for batched histories (default 0; an error for a file with one run)")
    p.add_argument("--out", default="report", help="output folder (default ./report)")
    _add_format_argument(p, default=["png"])
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("suite", help="run a benchmark suite: paper (claims), perf (timings vs peers) or seeds "
                                     "(Path-SGD vs SGD vs AdaGrad on digits)")
    p.add_argument("name", choices=SUITES)
    p.add_argument("--out", help="output folder (default ./<name>_suite_results)")
    p.add_argument("--quick", action="store_true", help="small sizes (CI, under a minute)")
    p.add_argument("--only", nargs="+", metavar="CHECK", help="run only these checks / benchmarks")
    p.add_argument("--seed", type=nonnegative_int, default=0,
                   help="seed of the suite's random data and starts (default 0; recorded in report.json)")
    _add_format_argument(p, default=None)
    _add_parallel_arguments(p, "checks")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_suite)

    p = sub.add_parser("sweep", help="a grid of models x datasets x seeds x problems as Dask tasks, one report; "
                                     "`sweep merge` merges the reports of shards")
    p.add_argument("items", nargs="+", metavar="CONFIG | merge REPORT...",
                   help="a sweep configuration (.toml or .json; docs/sweeps.md), or `merge` and the reports to merge")
    p.add_argument("--out", help="the report's JSON file (default sweep_<name>.json; a .md table beside it)")
    _add_parallel_arguments(p, "grid points")
    p.add_argument("--shard", default=None, metavar="K/N",
                   help="run only the grid points whose index is K modulo N (merge the shards with `sweep merge`)")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("info", help="the environment: versions (IPOPT too), git commit, CPU, compiled GD kernel")
    p.add_argument("--json", action="store_true", help="print it as JSON (the environment block of report.json)")
    p.set_defaults(func=cmd_info)
    return parser


def classes_count(text: str) -> int:
    """An argparse type: the number of classes K, an integer >= 2."""
    return _number(text, int, "an integer >= 2 (the number of classes K)", 2)


def _add_classes_argument(p) -> None:
    p.add_argument("--classes", type=classes_count, default=None, metavar="K",
                   help="K classes: the data's labels are the integers 0..K-1 (an .npz that records n_classes needs "
                        "none); a bundled model that takes n_classes (multiclass_linear, mlp) gets K")


def _add_format_argument(p, default) -> None:
    from .report.figures import FORMATS

    p.add_argument("--format", dest="formats", nargs="+", choices=FORMATS, default=default, metavar="FORMAT",
                   help=f"figure formats, one or more of {', '.join(FORMATS)} (default png; PNG at 200 dpi)")


def _subparser_class(flags: argparse.ArgumentParser):
    """ArgumentParser whose instances (the commands) also take the global -v / -q flags."""

    class Command(ArgumentParser):
        def __init__(self, *args, **kwargs):
            kwargs["parents"] = [*kwargs.get("parents", ()), flags]
            super().__init__(*args, **kwargs)

    return Command


EXIT_BROKEN_PIPE = 141   # 128 + SIGPIPE, what a shell reports for a tool killed by a closed pipe


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail on the closed pipe again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def main(argv=None) -> int:
    """Run the command line; returns the exit status (usage errors raise SystemExit(2) from argparse).

    Every failure prints exactly one line on stderr: ``lexmargin COMMAND: error: ...`` and exit status 2 for
    the user's inputs (files, options, data), ``lexmargin COMMAND: internal error: ...`` and 3 otherwise.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.verbose and args.quiet:
        parser.error("-v/--verbose and -q/--quiet exclude each other")
    try:
        with _output_level(args.verbose, args.quiet):
            return args.func(args)
    except BrokenPipeError:   # the reader went away (`lexmargin ... | head`): stop quietly, like other tools
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except (LexmarginError, OSError, ValueError, UnicodeError) as exc:
        say(f"lexmargin {args.command}: error: {one_line(exc)}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        say("interrupted")
        return 130
    except Exception as exc:   # a bug, not the user's mistake: still one line unless asked for the traceback
        if os.environ.get("LEXMARGIN_DEBUG"):
            raise
        say(f"lexmargin {args.command}: internal error: {type(exc).__name__}: {one_line(exc)} "
            "(please report it; LEXMARGIN_DEBUG=1 shows the traceback)")
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
