"""Command line: ``lexmargin`` / ``python -m lexmargin``.

    lexmargin models                                   bundled models with their margin formulas
    lexmargin solve MODEL DATA [--norm l2] [-o k=v]    exact max-margin solution + certificate
    lexmargin report MODEL DATA THETA.npz [--certificate cert.json] [--out DIR]
    lexmargin suite paper|perf [--quick] [--out DIR]   benchmark suites (JSON + Markdown + plots)

Errors in the inputs (missing files, bad options, malformed data) print one line and exit with 2.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import os
import sys
from pathlib import Path

from .errors import LexmarginError

EXIT_USAGE = 2
SUITES = ("paper", "perf")


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
    except (ValueError, SyntaxError):
        return text


def parse_options(pairs) -> dict:
    options = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise CLIError(f"option {pair!r} must look like key=value (e.g. -o width=4)")
        options[key.strip()] = parse_value(value)
    return options


def load_data(path):
    from .modeling.data import Dataset

    return Dataset.load(path)


def build_model(spec: str, data, options: dict):
    from .modeling.loading import load_model

    options = dict(options)
    options.setdefault("input_dim", data.n_features)
    try:
        return load_model(spec, **options)
    except TypeError as exc:  # build() got an unexpected keyword argument
        raise CLIError(f"model {spec!r}: {exc}") from None


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


def say(message: str) -> None:
    print(message, file=sys.stderr)


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
    from .problems.maxmargin import max_margin

    data = load_data(args.data)
    model = build_model(args.model, data, parse_options(args.option))
    extra = {"p": args.p} if args.p is not None else {}
    if args.init:
        from .report import load_theta_npz
        extra["init"] = load_theta_npz(args.init, run=args.run).theta
    if args.activation_region != "auto":
        extra["activation_region"] = args.activation_region == "on"
    say(f"solving max-margin for {model.name} on {data.n_samples} samples ({model.n_params} parameters) ...")
    cert = max_margin(model, data, norm=args.norm, starts=args.starts, seed=args.seed,
                      raise_on_failure=False, **extra)
    print(cert.summary())
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(cert.to_json(indent=2))
        print(f"certificate written to {out}")
    return 0 if cert.success else 1


def cmd_report(args) -> int:
    from .report import load_certificate, load_theta_npz, stationarity_report

    source = load_theta_npz(args.theta, run=args.run)
    data = source.data if args.data == "-" else load_data(args.data)
    if data is None:
        raise CLIError(f"DATA is '-' but {args.theta} holds no X and y")
    model = build_model(args.model, data, parse_options(args.option))
    certificate = load_certificate(args.certificate) if args.certificate else None
    report = stationarity_report(model, data, source, certificate=certificate, support_tol=args.support_tol,
                                 progress=not args.no_progress)
    files = report.save(args.out)
    print(report.to_markdown())
    print(f"report written to {files['markdown']} (+ report.json, plots)")
    return 0


def cmd_suite(args) -> int:
    module = load_suite_module(args.name)
    out = args.out or f"{args.name}_suite_results"
    runner = module.run_paper_suite if args.name == "paper" else module.run_perf_suite
    result = runner(out, quick=args.quick, progress=not args.no_progress, only=args.only)
    print(result.to_markdown())
    print(f"results written to {Path(out) / 'report.md'} and report.json")
    return 0 if getattr(result, "all_available_passed", True) else 1


# ---- parser ---------------------------------------------------------------------------------------
def _add_model_arguments(p) -> None:
    p.add_argument("model", help="bundled model name (see `lexmargin models`), a declaration file or a module")
    p.add_argument("-o", "--option", action="append", metavar="KEY=VALUE",
                   help="model option passed to build(), repeatable (e.g. -o width=4 -o activation=relu)")


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    from .nlp.norms import NORMS

    parser = argparse.ArgumentParser(prog="lexmargin", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"lexmargin {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("models", help="list the bundled models and their margin formulas")
    p.add_argument("--input-dim", type=int, default=2, help="input dimension used to display formulas")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("solve", help="max-margin solution of MODEL on DATA with a certificate")
    _add_model_arguments(p)
    p.add_argument("data", help="data file: .npz with X, y or .csv with the label in the last column")
    p.add_argument("--norm", default="l2", choices=tuple(NORMS))
    p.add_argument("--p", type=float, default=None, help="exponent of the lp norm")
    p.add_argument("--starts", type=int, default=None, help="random starts (non-convex models)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--init", help="start from a trained theta (.npz with theta, thetas or a numeric History); "
                                  "for ReLU nets, certify in its activation region")
    p.add_argument("--run", type=int, default=0, help="which run of a batched History to start from")
    p.add_argument("--activation-region", choices=("auto", "on", "off"), default="auto",
                   help="restrict relu/leaky_relu nets to activation regions (auto: when the model uses them)")
    p.add_argument("--out", help="write the certificate as JSON to this file")
    p.set_defaults(func=cmd_solve)

    p = sub.add_parser("report", help="stationarity report of a parameter vector (theta in an .npz)")
    _add_model_arguments(p)
    p.add_argument("data", help="data file (.npz/.csv), or '-' to use X, y stored in THETA")
    p.add_argument("theta", help=".npz with theta (P,) or thetas (K, P) [+ iterations], or a numeric History .npz")
    p.add_argument("--certificate", help="certificate JSON (from `lexmargin solve --out`) to compare with")
    p.add_argument("--support-tol", type=float, default=0.1, help="near-support set: f_n <= 1 + tol (default 0.1)")
    p.add_argument("--run", type=int, default=0, help="run index for batched histories")
    p.add_argument("--out", default="report", help="output folder (default ./report)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("suite", help="run a benchmark suite: paper (claims) or perf (timings vs peers)")
    p.add_argument("name", choices=SUITES)
    p.add_argument("--out", help="output folder (default ./<name>_suite_results)")
    p.add_argument("--quick", action="store_true", help="small sizes (CI, under a minute)")
    p.add_argument("--only", nargs="+", metavar="CHECK", help="run only these checks / benchmarks")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_suite)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (LexmarginError, OSError, ValueError) as exc:
        say(f"lexmargin {args.command}: error: {exc}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        say("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
