"""Load model declaration files by path, module name or bundled name."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

from ..errors import ModelError
from .model import Model

BUNDLED = ("linear", "svm_bias", "deep_linear", "two_layer", "ensemble", "log_predictor")


def _module_from_path(path: Path):
    if not path.exists():
        raise ModelError(f"model file not found: {path}")
    if not path.is_file() or path.suffix != ".py":
        raise ModelError(f"a model declaration must be a Python file (.py); got {path}")
    spec = importlib.util.spec_from_file_location(f"lexmargin_user_model_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses and pickling look the module up by name
    spec.loader.exec_module(module)
    return module


def _resolve_module(spec: str):
    if spec.endswith(".py") or "/" in spec or "\\" in spec:
        return _module_from_path(Path(spec))
    name = f"lexmargin.models.{spec}" if spec in BUNDLED else spec
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        raise ModelError(f"cannot find model {spec!r}: not a file, a bundled model {BUNDLED} "
                         f"or an importable module ({exc})") from None


def load_model(spec, **options) -> Model:
    """Build a Model from a declaration file or module exposing ``build(input_dim, **options)``.

    ``spec`` is a path (``models/two_layer.py``), a bundled name (``"two_layer"``), a module name,
    or a module/callable object.  Options are passed on to ``build``.
    """
    if isinstance(spec, Model):
        return spec
    build = spec if callable(spec) else getattr(_resolve_module(str(spec)) if isinstance(spec, (str, Path))
                                                else spec, "build", None)
    if build is None:
        raise ModelError(f"model declaration {spec!r} defines no build(input_dim, **options) function")
    model = build(**options)
    if not isinstance(model, Model):
        raise ModelError(f"build() of {spec!r} returned {type(model).__name__}, not a lexmargin Model")
    return model
