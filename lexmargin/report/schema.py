"""The versioned, strict JSON of every report.json lexmargin writes.

Four kinds of report share one JSON Schema (``docs/schema/report.schema.json``, draft 2020-12),
told apart by ``kind``:

* ``"stationarity_report"`` -- ``StationarityReport.save`` / ``lexmargin report``;
* ``"paper_suite"`` and ``"perf_suite"`` -- ``lexmargin suite paper|perf``;
* ``"sweep"`` -- ``lexmargin sweep CONFIG`` / ``lexmargin.sweep.run_sweep`` and ``merge_reports``.

Each carries ``schema_version`` (``SCHEMA_VERSION``; raised when a field is removed or changes meaning,
not when one is added), ``seed`` (the seed of the random numbers behind the results, null when none
were drawn) and ``environment`` (``lexmargin.environment.environment()``: versions, commit, CPU,
compiled GD kernel).  Numbers are JSON numbers: ``plain`` keeps non-finite floats as floats and
``lexmargin.fileio.dumps_strict`` writes them as ``null`` (RFC 8259 has no NaN or Infinity), so a
field the schema types as a number is a number or null, never the string ``"inf"``.
"""

from __future__ import annotations

import enum
import math

import numpy as np

#: Version of the report.json layout (docs/schema/report.schema.json).
SCHEMA_VERSION = 1
#: The values of ``kind``.
KINDS = ("stationarity_report", "paper_suite", "perf_suite", "seeds_suite", "sweep")


def plain(value):
    """``value`` as plain JSON types: arrays to lists, numpy scalars to Python, enums to their values.

    Unlike ``lexmargin.nlp.jsonable`` (certificates), non-finite floats stay floats, for
    ``dumps_strict`` to write as ``null``.  Objects with ``to_dict()`` are converted through it.

    Args:
        value: nested dicts, lists, tuples, arrays, numpy scalars, dataclasses with ``to_dict``.

    Returns:
        The same structure in dict, list, str, int, float, bool and None.
    """
    if isinstance(value, enum.Enum):
        return plain(value.value)
    if isinstance(value, np.ndarray):
        return plain(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if hasattr(value, "to_dict") and not isinstance(value, type):
        return plain(value.to_dict())
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(v) for v in value]
    if isinstance(value, str) and value in ("inf", "-inf", "nan"):   # a certificate's jsonable() spelling
        return math.nan if value == "nan" else float(value)
    return value


def header(kind: str, seed: int | None, environment: dict) -> dict:
    """The leading fields of a report.json: schema_version, kind, seed, environment.

    Args:
        kind: one of ``KINDS``.
        seed: the seed behind the report's random numbers (None: none drawn).
        environment: an ``environment()`` block.

    Returns:
        A dict to merge into the report's payload.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown report kind {kind!r}; expected one of {KINDS}")
    return {"schema_version": SCHEMA_VERSION, "kind": kind, "seed": None if seed is None else int(seed),
            "environment": plain(environment)}


__all__ = ["KINDS", "SCHEMA_VERSION", "header", "plain"]
