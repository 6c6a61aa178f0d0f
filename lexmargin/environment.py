"""The software and hardware a result was computed on, for reproducible reports (``lexmargin info``).

Every ``report.json`` lexmargin writes (stationarity reports, the paper and perf suites) carries the
block ``environment()`` returns:

* versions of lexmargin, Python, NumPy, SciPy, SymPy, CasADi and matplotlib (from the installed
  distributions' metadata, so nothing heavy is imported), and of IPOPT, read from the ``libipopt``
  CasADi bundles (``GetIpoptVersion`` of the IPOPT C interface) -- when that library cannot be
  loaded, the string says ``"bundled with casadi X"``;
* the git commit of the checkout lexmargin runs from (``git rev-parse HEAD`` in the package's folder,
  only when that folder is the ``lexmargin/`` of a git work tree holding ``pyproject.toml``), and
  whether tracked files differ from it; null outside a checkout;
* the CPU's model name, the number of logical CPUs, the platform;
* whether the compiled gradient-descent kernel (``lexmargin.numeric.fused``: the C extension, built,
  on a CPU with AVX-512F, and ``LEXMARGIN_NUMPY_ONLY`` unset) is active, and if not, why.

Nothing here raises: a value that cannot be found is None (null in JSON), so writing a report never
fails for want of its provenance.
"""

from __future__ import annotations

import copy
import ctypes
import functools
import glob
import importlib.metadata
import importlib.util
import os
import platform
import subprocess
import sys
from pathlib import Path

#: The distributions whose versions every environment block names (None when not installed).
PACKAGES = ("lexmargin", "numpy", "scipy", "sympy", "casadi", "matplotlib")

_PACKAGE_DIR = Path(__file__).resolve().parent


def package_version(name: str) -> str | None:
    """The installed version of distribution ``name`` (lexmargin: ``lexmargin.__version__``), else None.

    Args:
        name: a distribution name, e.g. ``"numpy"``.

    Returns:
        The version string, or None when the distribution is not installed.
    """
    if name == "lexmargin":
        from . import __version__

        return __version__
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        module = sys.modules.get(name)
        return getattr(module, "__version__", None)


def _casadi_folder() -> Path | None:
    try:
        spec = importlib.util.find_spec("casadi")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _ipopt_from_library(folder: Path) -> str | None:
    """``GetIpoptVersion`` of the libipopt in ``folder`` (the IPOPT C interface, IPOPT >= 3.14)."""
    patterns = ("libipopt.so*", "libipopt*.dylib", "ipopt*.dll", "libipopt*.dll")
    for candidate in sorted(p for pattern in patterns for p in glob.glob(str(folder / pattern))):
        try:
            lib = ctypes.CDLL(candidate)
            major, minor, release = ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
            lib.GetIpoptVersion(ctypes.byref(major), ctypes.byref(minor), ctypes.byref(release))
        except (OSError, AttributeError):
            continue
        return f"{major.value}.{minor.value}.{release.value}"
    return None


def ipopt_version() -> str | None:
    """The version of the IPOPT bundled with CasADi.

    Returns:
        ``"3.14.19"`` when the bundled library answers; ``"bundled with casadi X"`` when CasADi is
        installed but its IPOPT library cannot be loaded or asked; None without CasADi.
    """
    folder = _casadi_folder()
    if folder is None:
        return None
    try:
        found = _ipopt_from_library(folder)
    except Exception:  # noqa: BLE001 - provenance must never fail a report
        found = None
    return found or f"bundled with casadi {package_version('casadi')}"


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(_PACKAGE_DIR), *args], capture_output=True, text=True,
                              timeout=5, check=False)
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_commit() -> tuple[str | None, bool | None]:
    """(commit, dirty) of the checkout lexmargin runs from, or (None, None) when it is not one.

    Only a work tree whose top level holds ``pyproject.toml`` and this package as ``lexmargin/`` counts,
    so an installed copy inside some other repository reports None, not that repository's commit.

    Returns:
        The full ``HEAD`` hash and whether tracked files differ from it (``git status``), each None
        when unknown.
    """
    top = _git("rev-parse", "--show-toplevel")
    if not top:
        return None, None
    top_path = Path(top).resolve()
    if top_path / "lexmargin" != _PACKAGE_DIR or not (top_path / "pyproject.toml").is_file():
        return None, None
    commit = _git("rev-parse", "HEAD")
    if not commit:
        return None, None
    status = _git("status", "--porcelain", "--untracked-files=no")
    return commit, None if status is None else bool(status)


def cpu_model() -> str | None:
    """The CPU's model name (``/proc/cpuinfo``, ``sysctl`` on macOS, else ``platform.processor()``)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key, sep, value = line.partition(":")
                if sep and key.strip() in ("model name", "Model", "cpu model", "Processor") and value.strip():
                    return value.strip()
    except OSError:
        pass
    if sys.platform == "darwin":
        try:
            done = subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True,
                                  timeout=5, check=False)
            if done.returncode == 0 and done.stdout.strip():
                return done.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    return platform.processor() or platform.machine() or None


def compiled_gd() -> tuple[bool, str]:
    """Whether the compiled GD kernel (``lexmargin.numeric.fused``) is active, and why (not).

    Returns:
        (active, reason): reason is ``"active"``, ``"LEXMARGIN_NUMPY_ONLY is set"``, ``"not built"``,
        ``"the CPU lacks AVX-512F"`` or ``"unknown (...)"``.
    """
    try:
        from .numeric import fused
    except Exception as exc:  # noqa: BLE001
        return False, f"unknown (lexmargin.numeric does not import: {type(exc).__name__})"
    if os.environ.get("LEXMARGIN_NUMPY_ONLY", "") not in ("", "0"):
        return False, "LEXMARGIN_NUMPY_ONLY is set"
    if getattr(fused, "_c_kernel", None) is None:
        return False, "not built"
    try:
        active = bool(fused.c_kernel_available())
    except Exception as exc:  # noqa: BLE001
        return False, f"unknown ({type(exc).__name__}: {exc})"
    return active, "active" if active else "the CPU lacks AVX-512F"


@functools.lru_cache(maxsize=1)
def _static() -> dict:
    commit, dirty = git_commit()
    versions = {name: package_version(name) for name in PACKAGES}
    return {
        "lexmargin": versions["lexmargin"],
        "python": platform.python_version(),
        "numpy": versions["numpy"], "scipy": versions["scipy"], "sympy": versions["sympy"],
        "casadi": versions["casadi"], "ipopt": ipopt_version(), "matplotlib": versions["matplotlib"],
        "git_commit": commit, "git_dirty": dirty,
        "cpu": cpu_model(), "cpus": os.cpu_count(), "machine": platform.machine(),
        "platform": platform.platform(),
    }


def environment() -> dict:
    """The environment block of a report (see the module docstring); never raises.

    Returns:
        A new dict: lexmargin, python, numpy, scipy, sympy, casadi, ipopt, matplotlib (version strings
        or None), git_commit (str or None), git_dirty (bool or None), cpu (model name), cpus, machine,
        platform, compiled_gd (bool) and compiled_gd_reason (str).  The versions, commit and CPU are
        looked up once per process; the compiled-kernel state each call (it follows
        ``LEXMARGIN_NUMPY_ONLY``).
    """
    out = copy.deepcopy(_static())
    out["compiled_gd"], out["compiled_gd_reason"] = compiled_gd()
    return out


_LABELS = (("lexmargin", "lexmargin"), ("python", "Python"), ("numpy", "NumPy"), ("scipy", "SciPy"),
           ("sympy", "SymPy"), ("casadi", "CasADi"), ("ipopt", "IPOPT"), ("matplotlib", "matplotlib"),
           ("git_commit", "git commit"), ("git_dirty", "uncommitted changes"), ("cpu", "CPU"),
           ("cpus", "logical CPUs"), ("machine", "machine"), ("platform", "platform"),
           ("compiled_gd", "compiled GD kernel"))


def format_environment(env: dict | None = None) -> str:
    """The environment as aligned ``name: value`` lines (what ``lexmargin info`` prints).

    Args:
        env: an ``environment()`` block (default: this process's).

    Returns:
        One line per entry; unknown values read ``unknown``.
    """
    env = environment() if env is None else env
    width = max(len(label) for _, label in _LABELS)
    lines = []
    for key, label in _LABELS:
        value = env.get(key)
        if key == "compiled_gd":
            text = "active" if value else f"inactive ({env.get('compiled_gd_reason', 'unknown')})"
        elif isinstance(value, bool):
            text = "yes" if value else "no"
        else:
            text = "unknown" if value is None else str(value)
        lines.append(f"{label + ':':<{width + 2}}{text}")
    return "\n".join(lines)


__all__ = ["PACKAGES", "compiled_gd", "cpu_model", "environment", "format_environment", "git_commit",
           "ipopt_version", "package_version"]
