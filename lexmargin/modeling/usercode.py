"""Errors raised inside a user's model code, reported as ``ModelError`` naming the user's file and line.

A model declaration is ordinary Python: ``build()`` and the ``output`` / ``margin`` / ``summands``
functions run with numpy arrays, CasADi and SymPy symbols and Pyomo expressions in turn.  When they
raise, the user needs the line of *their* file, not a CasADi-internal frame, and a hint when the cause
is the usual one: Python control flow (``if``, ``max``, comparisons) on a symbolic parameter, which only
``lexmargin.ops`` functions can express on every backend.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Callable

from ..errors import LexmarginError, ModelError

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# messages of the symbolic backends when Python asks a symbolic expression for its truth value
_TRUTH_VALUE_MESSAGES = (
    "truth value of a casadi",          # CasADi SX/MX __bool__
    "cannot determine truth value",     # SymPy relational
    "truth value of an array",          # numpy object arrays of symbols
    "cannot convert expression to float",   # SymPy float() of a symbol
    "cannot convert symbolic",
)

SYMBOLIC_HINT = ("Python control flow (if, and/or, max, min, comparisons, float()) on a parameter fails when the "
                 "model is traced symbolically: use lexmargin.ops (ops.relu, ops.maximum, ops.minimum, "
                 "ops.leaky_relu, ...) instead")


def _is_library_file(filename: str) -> bool:
    path = os.path.abspath(filename)
    return (path.startswith(_PACKAGE_DIR + os.sep) or "site-packages" in path or "dist-packages" in path
            or path.startswith(os.path.abspath(os.path.dirname(os.__file__))) or filename.startswith("<frozen"))


def user_frame(exc: BaseException, preferred: str | None = None) -> tuple[str, int] | None:
    """(file, line) of the innermost traceback frame in the user's code (``preferred`` file first)."""
    frames = traceback.extract_tb(exc.__traceback__)
    if preferred is not None:
        mine = [f for f in frames if os.path.abspath(f.filename) == os.path.abspath(preferred)]
        if mine:
            return mine[-1].filename, mine[-1].lineno
    outside = [f for f in frames if not _is_library_file(f.filename)]
    if outside:
        return outside[-1].filename, outside[-1].lineno
    return None


def is_symbolic_truth_value_error(exc: BaseException) -> bool:
    text = str(exc).lower()
    return isinstance(exc, (TypeError, RuntimeError, ValueError)) and any(m in text for m in _TRUTH_VALUE_MESSAGES)


def model_code_error(exc: BaseException, what: str, fn: Callable | None = None) -> ModelError:
    """A ``ModelError`` for ``exc`` raised in user code: "<file>:<line>: <what> raised <Type>: <message>"."""
    code = getattr(fn, "__code__", None)
    where = user_frame(exc, code.co_filename if code is not None else None)
    prefix = f"{where[0]}:{where[1]}: " if where else ""
    message = str(exc).strip().splitlines()[-1] if str(exc).strip() else ""
    if is_symbolic_truth_value_error(exc):
        text = f"{prefix}{what} asks a symbolic {_backend(exc)} value for True/False. {SYMBOLIC_HINT}"
    else:
        text = f"{prefix}{what} raised {type(exc).__name__}: {_short(message)}"
    error = ModelError(text)
    error.__cause__ = exc
    return error


def _backend(exc: BaseException) -> str:
    text = str(exc).lower()
    return "CasADi" if "casadi" in text else "SymPy" if ("relational" in text or "expression" in text) else "parameter"


def _short(message: str, limit: int = 300) -> str:
    message = " ".join(message.split())
    return message if len(message) <= limit else message[:limit - 3] + "..."


def call_user(fn: Callable, what: str, owner: str, *args):
    """Call a user's model function ``fn(*args)``; anything but a lexmargin error becomes a ``ModelError``.

    Args:
        fn: the user's function.
        what: what it is, for the message (``"output(p, x)"``).
        owner: the model's name.
    """
    try:
        return fn(*args)
    except LexmarginError:
        raise
    except Exception as exc:  # noqa: BLE001 - user code can raise anything; reported with its line
        raise model_code_error(exc, f"{what} of model {owner!r}", fn) from exc


def syntax_error(exc: SyntaxError, path) -> ModelError:
    """A ``ModelError`` for a model file that does not parse."""
    line = f":{exc.lineno}" if exc.lineno else ""
    detail = f": {exc.text.strip()}" if exc.text and exc.text.strip() else ""
    return ModelError(f"{path}{line}: syntax error in the model file ({exc.msg}){detail}")


__all__ = ["SYMBOLIC_HINT", "call_user", "is_symbolic_truth_value_error", "model_code_error", "syntax_error",
           "user_frame"]
