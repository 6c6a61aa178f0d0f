"""Registers ``SolverFactory('lexmargin')`` with Pyomo without importing Pyomo (run by ``import lexmargin``).

Pyomo has no entry-point group for solvers: its SolverFactory (``pyomo.opt.base.solvers``) is a plain
registry that plugin modules fill with ``SolverFactory.register`` when they are imported.  And ``import
lexmargin`` must stay cheap and must not import Pyomo.  So ``install()`` registers at once when Pyomo's
SolverFactory module has already been imported, and otherwise puts ``PyomoImportHook`` first on
``sys.meta_path``: it lets the other finders find ``pyomo.opt.base.solvers`` (and ``pyomo.opt``,
``pyomo.environ``, in case that one was half-imported), wraps the loader so that the plugin is registered right
after the module has executed, and removes itself once registered.  Other imports pass through untouched.

What is registered is ``LazySolver``, a class whose instances are ``interop.pyomo.LexmarginSolver`` (the
solver itself, docs/pyomo.md), imported only when ``SolverFactory('lexmargin')`` is called: registering costs
neither CasADi nor numpy, and this module imports nothing but ``sys``.
"""

from __future__ import annotations

import sys

NAME = "lexmargin"
DOC = "IPOPT (bundled with CasADi) on any continuous NLP, with lexmargin's recomputed KKT certificate"
FACTORY_MODULE = "pyomo.opt.base.solvers"
WATCHED = frozenset({FACTORY_MODULE, "pyomo.opt", "pyomo.environ"})


class LazySolver:
    """What SolverFactory holds under 'lexmargin': instantiating it imports ``lexmargin.interop.pyomo`` and
    returns a ``LexmarginSolver`` built with the same arguments."""

    def __new__(cls, *args, **kwds):
        from .pyomo import LexmarginSolver

        return LexmarginSolver(*args, **kwds)


def register() -> bool:
    """Register ``SolverFactory('lexmargin')`` if Pyomo's SolverFactory module has been imported (this never
    imports Pyomo); a name already registered is left alone.

    Returns:
        True when the name is registered (now or before), False when Pyomo's SolverFactory does not exist yet.
    """
    factory = getattr(sys.modules.get(FACTORY_MODULE), "SolverFactory", None)
    if factory is None:
        return False
    if NAME not in factory:
        factory.register(NAME, doc=DOC)(LazySolver)
    return True


class _RegisteringLoader:
    """Runs a watched module with its own loader (restored on the module first), then registers."""

    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        module.__loader__ = self.loader
        if getattr(module, "__spec__", None) is not None:
            module.__spec__.loader = self.loader
        self.loader.exec_module(module)
        _after_import()

    def __getattr__(self, name):
        return getattr(self.loader, name)


class PyomoImportHook:
    """A ``sys.meta_path`` finder that registers the plugin once Pyomo's SolverFactory module has executed."""

    lexmargin_pyomo_hook = True

    def __init__(self):
        self.searching: set[str] = set()

    def find_spec(self, fullname, path=None, target=None):
        """The other finders' spec for a watched module, its loader wrapped; None for every other module.

        Args:
            fullname, path, target: as ``importlib.abc.MetaPathFinder.find_spec``.
        Returns:
            A ModuleSpec or None.
        """
        if fullname not in WATCHED or fullname in self.searching:
            return None
        self.searching.add(fullname)
        try:
            spec = next((s for s in (f.find_spec(fullname, path, target) for f in list(sys.meta_path)
                                     if f is not self and hasattr(f, "find_spec")) if s is not None), None)
        finally:
            self.searching.discard(fullname)
        if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _RegisteringLoader(spec.loader)
        return spec


def _hooks() -> list:
    return [f for f in sys.meta_path if getattr(f, "lexmargin_pyomo_hook", False)]


def _after_import() -> None:
    try:
        done = register()
    except Exception as exc:  # noqa: BLE001 - never break the user's import of Pyomo
        import warnings

        warnings.warn(f"lexmargin could not register SolverFactory('lexmargin'): {exc!r}", stacklevel=2)
        done = True
    if done:
        uninstall()


def install() -> bool:
    """Register now if Pyomo's SolverFactory is imported, otherwise install the import hook (once).

    Returns:
        True if registered now, False if the hook waits for Pyomo's import.
    """
    if register():
        return True
    if not _hooks():
        sys.meta_path.insert(0, PyomoImportHook())
    return False


def uninstall() -> None:
    """Remove the import hook from ``sys.meta_path`` (a registration stays)."""
    for hook in _hooks():
        sys.meta_path.remove(hook)


__all__ = ["LazySolver", "PyomoImportHook", "install", "register", "uninstall"]
