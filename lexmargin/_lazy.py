"""Modules imported on first use: ``sp = lazy_module("sympy")`` costs nothing until ``sp.Symbol`` is read.

SymPy (formulas, symbolic homogeneity proofs) and matplotlib (plots) take a quarter of a second or more to
import and most solves never need them.
"""

from __future__ import annotations

import importlib
from types import ModuleType


class _LazyModule:
    __slots__ = ("_name",)

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attribute: str):
        module: ModuleType = importlib.import_module(self._name)
        return getattr(module, attribute)

    def __repr__(self) -> str:
        return f"<lazy module {self._name!r}>"


def lazy_module(name: str) -> _LazyModule:
    """A stand-in for ``import name`` that imports the module when an attribute is first read."""
    return _LazyModule(name)
