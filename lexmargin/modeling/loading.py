"""Load model declaration files by path, module name or bundled name.

A model file is a Python script: loading it runs its code with your permissions, like ``python
file.py`` would (docs/reliability.md).  Load only files you trust.  A file that does not parse, or whose
code or ``build()`` raises, gives a ``ModelError`` naming the file and line.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from pathlib import Path

from ..errors import LexmarginError, ModelError
from .model import Model
from .usercode import model_code_error, syntax_error

BUNDLED = ("linear", "svm_bias", "deep_linear", "two_layer", "mlp", "ensemble", "log_predictor", "multiclass_linear")


def _module_from_path(path: Path):
    if not path.exists():
        raise ModelError(f"model file not found: {path}")
    if not path.is_file() or path.suffix != ".py":
        raise ModelError(f"a model declaration must be a Python file (.py); got {path}")
    spec = importlib.util.spec_from_file_location(f"lexmargin_user_model_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses and pickling look the module up by name
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        del sys.modules[spec.name]
        raise syntax_error(exc, path) from None
    except LexmarginError:
        del sys.modules[spec.name]
        raise
    except Exception as exc:  # noqa: BLE001 - a model file is a script; any error is reported with its line
        del sys.modules[spec.name]
        raise model_code_error(exc, f"loading model file {path}") from exc
    return module


def _resolve_module(spec: str):
    if spec.endswith(".py") or "/" in spec or "\\" in spec:
        return _module_from_path(Path(spec))
    name = f"lexmargin.models.{spec}" if spec in BUNDLED else spec
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name and not name.startswith(f"{exc.name}."):
            raise model_code_error(exc, f"importing model module {name}") from exc   # the module's own import failed
        raise ModelError(f"cannot find model {spec!r}: not a file, a bundled model {BUNDLED} "
                         f"or an importable module ({exc})") from None
    except SyntaxError as exc:
        raise syntax_error(exc, exc.filename or name) from None
    except LexmarginError:
        raise
    except Exception as exc:  # noqa: BLE001 - importing runs the module's code
        raise model_code_error(exc, f"importing model module {name}") from exc


def load_model(spec, **options) -> Model:
    """Build a Model from a declaration file or module exposing ``build(input_dim, **options)``.

    Loading a file runs it as Python (only load files you trust).

    Args:
        spec: a path (``models/two_layer.py``), a bundled name (``"two_layer"``), a module name,
            or a module/callable object.
        **options: passed on to ``build`` (``input_dim`` and the model's own options, e.g. ``width``).

    Returns:
        The Model (``ModelError`` naming the file and line when its code fails).
    """
    if isinstance(spec, Model):
        return spec
    build = spec if callable(spec) else getattr(_resolve_module(str(spec)) if isinstance(spec, (str, Path))
                                                else spec, "build", None)
    if build is None:
        raise ModelError(f"model declaration {spec!r} defines no build(input_dim, **options) function")
    model = _call_build(build, spec, options)
    if not isinstance(model, Model):
        raise ModelError(f"build() of {spec!r} returned {type(model).__name__}, not a lexmargin Model")
    return model


def _call_build(build, spec, options: dict) -> Model:
    """``build(**options)`` with unknown options and errors in the user's code reported as ``ModelError``."""
    try:
        inspect.signature(build).bind(**options)
    except TypeError as exc:
        raise ModelError(f"build() of {spec!r} does not accept these options ({exc}); its signature is "
                         f"build{inspect.signature(build)}") from None
    except ValueError:  # no signature (a builtin): let the call decide
        pass
    try:
        return build(**options)
    except LexmarginError:
        raise
    except Exception as exc:  # noqa: BLE001 - user code can raise anything; reported with its line
        raise model_code_error(exc, f"build() of {spec!r}", build) from exc
