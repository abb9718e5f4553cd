"""The versioned wire format between producer and inference (they meet only on the stream).

One Kinesis record carries several consecutive rows of ONE instance (KPL-style aggregation),
column-oriented so decoding a batch into a DataFrame is cheap::

    {"v": 1, "instance_id": "4_WELL-00001_20170316120203", "well_id": "WELL-00001",
     "source": "REAL", "event_class": 4, "ts": [epoch_ms, ...],
     "values": {"P-PDG": [float|null, ...], ...}, "label": [int|null, ...], "sent_at": epoch_s}

``label`` is the 3W label, carried for evaluation only; it is never a model feature.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from petrostream.errors import UserError
from petrostream.schema import EVENTS, SOURCES, VALID_LABELS, VARIABLE_NAMES

SCHEMA_VERSION = 1
META_COLUMNS = ("instance_id", "well_id", "source", "event_class")
_VARS = frozenset(VARIABLE_NAMES)
# Exact types accepted without looking at each value (bool is a subclass of int, so it is NOT in these sets:
# a column holding a bool falls back to the value-by-value rule and is rejected with the usual reason).
_NUMBER_TYPES = frozenset({int, float, type(None)})
_INT_TYPE = frozenset({int})
_TS_LIMIT_MS = 9_000_000_000_000  # pandas datetime64[ns] spans +-9.2e12 ms around 1970


class WireError(UserError, ValueError):
    """A record that does not follow the wire format; the message says why (one line)."""


def encode(
    *,
    instance_id: str,
    well_id: str,
    source: str,
    event_class: int,
    frame: pd.DataFrame,
    sent_at: float | None = None,
) -> bytes:
    """Encode consecutive rows of one instance (timestamp index, variables, optional ``class``)."""
    ts = (frame.index.to_numpy(dtype="datetime64[ms]").astype("int64")).tolist()
    values = {}
    for col in frame.columns:
        if col in _VARS:
            arr = frame[col].to_numpy(dtype="float64", na_value=np.nan)
            values[col] = [None if math.isnan(x) else x for x in arr.tolist()]
    labels: list[int | None] = [None] * len(frame)
    if "class" in frame.columns:
        labels = [None if pd.isna(x) else int(x) for x in frame["class"].tolist()]
    doc = {
        "v": SCHEMA_VERSION,
        "instance_id": instance_id,
        "well_id": well_id,
        "source": source,
        "event_class": int(event_class),
        "ts": ts,
        "values": values,
        "label": labels,
        "sent_at": time.time() if sent_at is None else sent_at,
    }
    return json.dumps(doc, separators=(",", ":"), allow_nan=False).encode()


@dataclass
class DecodedBatch:
    """Rows decoded from many records, plus the records that were refused and why."""

    rows: pd.DataFrame  # one row per observation; column ``record`` = index of its source record
    rejected: list[tuple[int, str]]  # (record index, reason)


def _reject_constant(token: str):
    raise WireError(f"non-finite number {token}")


def _check(doc: object) -> dict:
    if not isinstance(doc, dict):
        raise WireError("record is not a JSON object")
    if doc.get("v") != SCHEMA_VERSION:
        raise WireError(f"unsupported schema version {doc.get('v')!r} (expected {SCHEMA_VERSION})")
    for key in ("instance_id", "well_id", "source", "event_class", "ts", "values"):
        if key not in doc:
            raise WireError(f"missing field {key!r}")
    if not isinstance(doc["instance_id"], str) or not doc["instance_id"]:
        raise WireError("instance_id must be a non-empty string")
    if not isinstance(doc["well_id"], str) or not doc["well_id"] or "/" in doc["well_id"]:
        raise WireError("well_id must be a non-empty string without '/'")
    _check_meta(doc)
    n = len(doc["ts"]) if isinstance(doc["ts"], list) else -1
    if n <= 0:
        raise WireError("ts must be a non-empty list")
    if not set(map(type, doc["ts"])) <= _INT_TYPE and not all(
        isinstance(t, int) and not isinstance(t, bool) for t in doc["ts"]
    ):  # fast path: one type check per distinct type (json.loads gives exact types); else the exact rule
        raise WireError("ts must hold integer epoch milliseconds")
    if min(doc["ts"]) < -_TS_LIMIT_MS or max(doc["ts"]) > _TS_LIMIT_MS:
        raise WireError("ts out of range (epoch milliseconds between 1677 and 2262)")
    _check_values(doc["values"], n)
    labels = doc.get("label")
    if labels is None:
        labels = [None] * n
    if not isinstance(labels, list) or len(labels) != n:
        raise WireError(f"label must be a list of {n} values")
    if not _labels_ok(labels):
        for x in labels:  # the slow path only finds the first offender (same reason as ever)
            if x is not None and (isinstance(x, bool) or not isinstance(x, int) or x not in VALID_LABELS):
                raise WireError(f"label {x!r} is not a 3W label")
    doc["label"] = labels
    return doc


def _check_meta(doc: dict) -> None:
    if doc["source"] not in SOURCES:
        raise WireError(f"unknown source {doc['source']!r}")
    ec = doc["event_class"]
    if isinstance(ec, bool) or not isinstance(ec, int) or ec not in EVENTS:
        raise WireError(f"event_class {ec!r} is not a 3W event class (0-9)")
    sent_at = doc.get("sent_at")
    if sent_at is not None and (isinstance(sent_at, bool) or not isinstance(sent_at, int | float)):
        raise WireError(f"sent_at {sent_at!r} is not epoch seconds")


def _check_finite(name: str, col: list) -> None:
    """JSON has no NaN/Infinity tokens, but ``1e999`` parses to inf and huge integers overflow float64."""
    try:
        arr = np.array(col, dtype="float64")  # None -> nan (missing), which is allowed
    except OverflowError:
        raise WireError(f"values[{name!r}] holds a number too large for float64") from None
    if np.isinf(arr).any():
        raise WireError(f"values[{name!r}] holds a non-finite number")


def _check_values(values: object, n: int) -> None:
    if not isinstance(values, dict):
        raise WireError("values must be an object of variable -> list")
    for name, col in values.items():
        if name not in _VARS:
            raise WireError(f"unknown variable {name!r}")
        if not isinstance(col, list) or len(col) != n:
            raise WireError(f"values[{name!r}] must be a list of {n} numbers")
        if set(map(type, col)) <= _NUMBER_TYPES:  # per column, not per value (json.loads gives exact types)
            _check_finite(name, col)
            continue
        for x in col:  # the exact rule, value by value, only to name the first offender (or accept subclasses)
            if x is not None and (isinstance(x, bool) or not isinstance(x, int | float)):
                raise WireError(f"values[{name!r}] holds a non-numeric value {x!r}")


def _labels_ok(labels: list) -> bool:
    """True when every label is None or a 3W label (set arithmetic over distinct values, not per value)."""
    try:
        distinct = set(labels)
    except TypeError:  # an unhashable value: let the value-by-value rule decide
        return False
    distinct.discard(None)
    return distinct <= VALID_LABELS and not any(isinstance(x, bool) for x in distinct)


def decode_one(data: bytes) -> dict:
    """Parse and validate one record; raises WireError with a one-line reason."""
    try:
        doc = json.loads(data, parse_constant=_reject_constant)
    except WireError:
        raise
    except (ValueError, UnicodeDecodeError) as exc:
        raise WireError(f"not valid JSON ({str(exc).splitlines()[0][:80]})") from None
    return _check(doc)


def decode_batch(records: Sequence[bytes]) -> DecodedBatch:
    """Decode many records into one column-oriented frame (per batch, not per row)."""
    rejected: list[tuple[int, str]] = []
    parts: dict[str, list] = {k: [] for k in ("record", *META_COLUMNS, "ts", "label", "sent_at")}
    names: dict[str, None] = {}  # variables in order of first appearance (the frame's column order)
    values: list[tuple[dict, int]] = []  # (values, rows) per accepted record
    total = 0
    for i, data in enumerate(records):
        try:
            doc = decode_one(data)
        except WireError as exc:
            rejected.append((i, str(exc)))
            continue
        n = len(doc["ts"])
        parts["record"].append(np.full(n, i, dtype="int64"))
        for key in META_COLUMNS:
            parts[key].append([doc[key]] * n)
        parts["ts"].append(np.asarray(doc["ts"], dtype="int64"))
        parts["label"].append(doc["label"])
        parts["sent_at"].append(np.full(n, float(doc.get("sent_at") or 0.0)))
        names.update(dict.fromkeys(doc["values"]))
        values.append((doc["values"], n))
        total += n
    if total == 0:
        return DecodedBatch(_empty_rows(), rejected)
    out = {
        "record": np.concatenate(parts["record"]),
        **{k: [x for chunk in parts[k] for x in chunk] for k in META_COLUMNS},
        "timestamp": pd.to_datetime(np.concatenate(parts["ts"]), unit="ms"),
        "label": pd.array([x for chunk in parts["label"] for x in chunk], dtype="Int64"),
        "sent_at": np.concatenate(parts["sent_at"]),
    }
    for name in names:  # one conversion per column of the batch, not per (record, column)
        flat: list = []
        for vals, n in values:
            col = vals.get(name)
            flat += col if col is not None else [None] * n  # a variable a record does not carry: nan
        out[name] = np.array(flat, dtype="float64")  # None -> nan
    rows = pd.DataFrame(out)
    rows["event_class"] = rows["event_class"].astype("int64")
    return DecodedBatch(rows, rejected)


def _empty_rows() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "record": pd.Series(dtype="int64"),
            **{k: pd.Series(dtype="object") for k in META_COLUMNS},
            "timestamp": pd.Series(dtype="datetime64[ns]"),
            "label": pd.Series(dtype="Int64"),
            "sent_at": pd.Series(dtype="float64"),
        }
    )
