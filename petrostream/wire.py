"""The versioned wire format between producer and inference (they meet only on the stream).

One Kinesis record carries several consecutive rows of ONE instance (KPL-style aggregation), column by
column so decoding a batch into a DataFrame is cheap. Two versions; the decoder reads both, told apart by
the first bytes (v2 starts with the magic ``b"PSW2"``, v1 with ``{``):

**v2 (binary, what ``encode`` writes)**, all numbers little-endian::

    b"PSW2" | uint32 H (header bytes) | uint32 n (rows) | float64 sent_at (epoch s, 0 = unknown) |
    header: H bytes of UTF-8 JSON | ts int64[n] (epoch ms) | label int16[n] (-1 = none) |
    values: float64[n] per carried variable, in ``vars`` order (NaN = missing)

    header = {"instance_id": "4_WELL-00001_20170316120203", "well_id": "WELL-00001", "source": "REAL",
              "event_class": 4, "vars": ["P-PDG", ...], "nan_vars": ["QGL"]}

``vars`` lists the record's variables in column order; the ones in ``nan_vars`` (optional) are missing in
every row and carry no bytes, so the values block holds ``len(vars) - len(nan_vars)`` columns of ``n``.
The record is exactly ``20 + H + n * (10 + 8 * carried)`` bytes. The header holds only what is the same for
every record of an instance (``n`` and ``sent_at`` sit in the fixed prefix), so a decoder checks each distinct
header once and caches it. No per-value Python on either side.

**v1 (JSON, still decoded; ``encode(..., version=1)`` writes it)**::

    {"v": 1, "instance_id": "4_WELL-00001_20170316120203", "well_id": "WELL-00001",
     "source": "REAL", "event_class": 4, "ts": [epoch_ms, ...],
     "values": {"P-PDG": [float|null, ...], ...}, "label": [int|null, ...], "sent_at": epoch_s}

``label`` is the 3W label, carried for evaluation only; it is never a model feature. Both versions follow the
same rules (checked by ``decode_one``/``decode_batch``; a record that breaks one is refused with a one-line
reason): known source, event class, labels and variables; well id without ``/``; at least one row; finite
values; timestamps pandas can hold.
"""

from __future__ import annotations

import json
import math
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from petrostream.errors import UserError
from petrostream.schema import EVENTS, SOURCES, VALID_LABELS, VARIABLE_NAMES

SCHEMA_VERSION = 1  # the JSON format's version ("v" field); the binary format is version 2
WIRE_VERSION = 2  # what ``encode`` writes by default
MAGIC = b"PSW2"
META_COLUMNS = ("instance_id", "well_id", "source", "event_class")
_VARS = frozenset(VARIABLE_NAMES)
# Exact types accepted without looking at each value (bool is a subclass of int, so it is NOT in these sets:
# a column holding a bool falls back to the value-by-value rule and is rejected with the usual reason).
_NUMBER_TYPES = frozenset({int, float, type(None)})
_INT_TYPE = frozenset({int})
_TS_LIMIT_MS = 9_000_000_000_000  # pandas datetime64[ns] spans +-9.2e12 ms around 1970
_TS_RANGE_REASON = "ts out of range (epoch milliseconds between 1677 and 2262)"
_PREFIX = struct.Struct("<4sIId")  # magic, header length, n rows, sent_at (epoch s; 0 = unknown)
_HEADERS: dict[bytes, tuple[str, str, str, int, tuple[str, ...], frozenset[str]]] = {}
_HEADER_CACHE_SIZE = 4096
_NO_LABEL = -1
_LABEL_MAX = np.iinfo(np.int16).max
_LABEL_OK = np.zeros(1 << 16, dtype=bool)  # indexed by the label's uint16 bit pattern: valid label or -1 (none)
_LABEL_OK[sorted(VALID_LABELS)] = True
_LABEL_OK[np.array([_NO_LABEL], dtype=np.int16).view(np.uint16)] = True
_NAN8 = np.array([np.nan], dtype="<f8").tobytes()
_NAN_CACHE: dict[int, bytes] = {}
# What pandas builds from epoch ms and from a list of str (datetime64[us] and str in pandas 3): the decoded
# frame keeps the exact dtypes it always had.
_TS_DTYPE = pd.to_datetime(np.zeros(1, dtype=np.int64), unit="ms").dtype
_STR_DTYPE = pd.Series(["x"]).dtype


class WireError(UserError, ValueError):
    """A record that does not follow the wire format; the message says why (one line)."""


def _reject_constant(token: str):
    raise WireError(f"non-finite number {token}")


_HEADER_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def encode(
    *,
    instance_id: str,
    well_id: str,
    source: str,
    event_class: int,
    frame: pd.DataFrame,
    sent_at: float | None = None,
    version: int = WIRE_VERSION,
) -> bytes:
    """Encode consecutive rows of one instance (timestamp index, variables, optional ``class``).

    ``version=2`` (default) writes the binary format, ``version=1`` the JSON one; ``decode_*`` read both.
    """
    if version == WIRE_VERSION:
        return _encode_v2(instance_id, well_id, source, event_class, frame, sent_at)
    if version != SCHEMA_VERSION:
        raise ValueError(f"unknown wire version {version!r} (1 = JSON, 2 = binary)")
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


def _encode_v2(instance_id: str, well_id: str, source: str, event_class: int, frame: pd.DataFrame,
               sent_at: float | None) -> bytes:
    n = len(frame)
    ts = frame.index.to_numpy(dtype="datetime64[ms]").astype("<i8")
    columns = list(frame.columns)
    pos = [i for i, col in enumerate(columns) if col in _VARS]
    names = [columns[i] for i in pos]
    try:  # the whole frame in one conversion (variables and label are numbers); ~10x cheaper than per column
        whole = frame.to_numpy(dtype="<f8", na_value=np.nan)
    except (TypeError, ValueError):  # another column is not numeric
        whole = None
    if whole is not None:
        block = whole[:, pos].T  # (variables, rows)
    else:
        block = np.array([frame.iloc[:, i].to_numpy(dtype="<f8", na_value=np.nan) for i in pos]).reshape(len(pos), n)
    if np.isinf(block).any():
        col = names[int(np.flatnonzero(np.isinf(block).any(axis=1))[0])]
        raise WireError(f"{instance_id}: {col} holds a non-finite value (the wire carries finite numbers or NaN)")
    empty = np.isnan(block).all(axis=1)  # all-NaN variables: named, no bytes (the decoder fills NaN)
    nan_vars = [name for name, e in zip(names, empty.tolist(), strict=True) if e]
    values = np.ascontiguousarray(block[~empty] if nan_vars else block).tobytes()  # column after column
    label = np.full(n, _NO_LABEL, dtype="<i2")
    if "class" in columns:
        i = columns.index("class")
        cls = whole[:, i] if whole is not None else frame.iloc[:, i].to_numpy(dtype="float64", na_value=np.nan)
        known = ~np.isnan(cls)
        vals = cls[known]
        wrong = (vals < 0) | (vals > _LABEL_MAX) | (vals != np.floor(vals))
        if wrong.any():
            bad = float(vals[wrong][0])
            raise WireError(f"{instance_id}: label {bad:g} cannot be carried (a non-negative integer up to 32767)")
        label[known] = vals.astype("<i2")
    header: dict[str, Any] = {
        "instance_id": instance_id,
        "well_id": well_id,
        "source": source,
        "event_class": int(event_class),
        "vars": names,
    }
    if nan_vars:
        header["nan_vars"] = nan_vars
    head = json.dumps(header, separators=(",", ":"), allow_nan=False).encode()
    sent = time.time() if sent_at is None else float(sent_at)
    if not math.isfinite(sent):
        raise WireError(f"{instance_id}: sent_at {sent!r} is not epoch seconds")
    return b"".join((_PREFIX.pack(MAGIC, len(head), n, sent), head, ts.tobytes(), label.tobytes(), values))


@dataclass
class DecodedBatch:
    """Rows decoded from many records, plus the records that were refused and why."""

    rows: pd.DataFrame  # one row per observation; column ``record`` = index of its source record
    rejected: list[tuple[int, str]]  # (record index, reason)


def _check(doc: object) -> dict:
    if not isinstance(doc, dict):
        raise WireError("record is not a JSON object")
    if doc.get("v") != SCHEMA_VERSION:
        raise WireError(f"unsupported schema version {doc.get('v')!r} (expected {SCHEMA_VERSION})")
    for key in ("instance_id", "well_id", "source", "event_class", "ts", "values"):
        if key not in doc:
            raise WireError(f"missing field {key!r}")
    _check_ids(doc)
    _check_meta(doc)
    n = len(doc["ts"]) if isinstance(doc["ts"], list) else -1
    if n <= 0:
        raise WireError("ts must be a non-empty list")
    if not set(map(type, doc["ts"])) <= _INT_TYPE and not all(
        isinstance(t, int) and not isinstance(t, bool) for t in doc["ts"]
    ):  # fast path: one type check per distinct type (json.loads gives exact types); else the exact rule
        raise WireError("ts must hold integer epoch milliseconds")
    if min(doc["ts"]) < -_TS_LIMIT_MS or max(doc["ts"]) > _TS_LIMIT_MS:
        raise WireError(_TS_RANGE_REASON)
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


def _check_ids(doc: dict) -> None:
    if not isinstance(doc["instance_id"], str) or not doc["instance_id"]:
        raise WireError("instance_id must be a non-empty string")
    if not isinstance(doc["well_id"], str) or not doc["well_id"] or "/" in doc["well_id"]:
        raise WireError("well_id must be a non-empty string without '/'")


def _check_meta(doc: dict) -> None:
    source = doc["source"]
    if not isinstance(source, str) or source not in SOURCES:
        raise WireError(f"unknown source {source!r}")
    ec = doc["event_class"]
    if isinstance(ec, bool) or not isinstance(ec, int) or ec not in EVENTS:
        raise WireError(f"event_class {ec!r} is not a 3W event class (0-9)")
    sent_at = doc.get("sent_at")
    if sent_at is not None and (isinstance(sent_at, bool) or not isinstance(sent_at, int | float)
                                or not math.isfinite(sent_at)):
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


def _decode_json(data: bytes | bytearray | str) -> dict:
    """A v1 record: parse and validate (raises WireError with a one-line reason)."""
    try:
        doc = json.loads(data, parse_constant=_reject_constant)
    except WireError:
        raise
    except (ValueError, UnicodeDecodeError) as exc:
        reason = f"not valid JSON ({str(exc).splitlines()[0][:80]})"
        head = data.lstrip()[:1] if isinstance(data, bytes | bytearray) else b"{"
        if head != b"{":
            reason += f"; not a v2 record either (no {MAGIC!r} magic)"
        raise WireError(reason) from None
    return _check(doc)


# --------------------------------------------------------------------------------------------- decoding
# A record decodes to a "piece": (record index, instance_id, well_id, source, event_class, sent_at, n rows,
# buffer, offset of the arrays in it, variables in order, variables not carried). The arrays in the buffer
# follow the v2 layout (ts, label, then one column per carried variable). A batch joins them column by column
# and checks the array rules (ts range, finite values, labels) once over the whole batch, then refuses the
# records that broke one and assembles the rest. Pieces hold no per-record containers (few objects for the
# garbage collector to track: a micro-batch of a thousand records must not trigger full collections).
_Piece = tuple[int, str, str, str, int, float, int, bytes | bytearray, int, tuple[str, ...], frozenset[str]]
_NO_NAN_VARS: frozenset[str] = frozenset()


def _nan_bytes(n: int) -> bytes:
    """``n`` float64 NaNs (a variable a record does not carry)."""
    if n > 4096:
        return _NAN8 * n
    b = _NAN_CACHE.get(n)
    if b is None:
        b = _NAN_CACHE[n] = _NAN8 * n
    return b


def _as_bytes(data: object) -> bytes | bytearray | str:
    if isinstance(data, bytes | bytearray | str):
        return data
    try:
        return bytes(data)  # type: ignore[call-overload]  # memoryview and friends
    except TypeError:
        raise WireError(f"record is {type(data).__name__}, not bytes") from None


def _is_binary(data: bytes | bytearray | str) -> bool:
    """Starts like a binary record (any version): ``PSW``."""
    if isinstance(data, str):
        return False
    if data[:3] != MAGIC[:3]:
        return False
    if data[:4] != MAGIC:
        raise WireError(f"unsupported binary wire version {bytes(data[:4])!r} (this decoder reads {MAGIC!r} "
                        "and v1 JSON)")
    return True


def _piece(pos: int, data: object) -> _Piece:
    data = _as_bytes(data)
    if _is_binary(data):
        return _piece_v2(pos, data)  # type: ignore[arg-type]
    return _piece_v1(pos, _decode_json(data))


def _piece_v1(pos: int, doc: dict) -> _Piece:
    n = len(doc["ts"])
    lab = np.array(doc["label"], dtype="float64")  # None -> nan; the labels are valid (checked)
    label = np.where(np.isnan(lab), _NO_LABEL, lab).astype("<i2")
    values = doc["values"]
    buf = b"".join((np.array(doc["ts"], dtype="<i8").tobytes(), label.tobytes(),
                    *(np.array(col, dtype="<f8").tobytes() for col in values.values())))
    return (pos, doc["instance_id"], doc["well_id"], doc["source"], doc["event_class"],
            float(doc.get("sent_at") or 0.0), n, buf, 0, tuple(values), _NO_NAN_VARS)


def _piece_v2(pos: int, data: bytes | bytearray) -> _Piece:
    size = len(data)
    if size < _PREFIX.size:
        raise WireError(f"truncated v2 record: {size} bytes, shorter than its {_PREFIX.size}-byte prefix")
    _, hlen, n, sent_at = _PREFIX.unpack_from(data)
    end = _PREFIX.size + hlen
    if end > size:
        raise WireError(f"truncated v2 record: header of {hlen} bytes, only {size - _PREFIX.size} bytes follow the "
                        "prefix")
    if n == 0:
        raise WireError("v2 record has n = 0 rows (at least one expected)")
    if not math.isfinite(sent_at):
        raise WireError(f"sent_at {sent_at!r} is not epoch seconds")
    iid, wid, src, ec, names, nan_vars = _header(bytes(data[_PREFIX.size : end]))
    carried = len(names) - len(nan_vars)
    expected = end + n * (10 + 8 * carried)
    if size != expected:
        raise WireError(f"v2 record is {size} bytes, its header announces {n} rows x {carried} variables = "
                        f"{expected} bytes (truncated or corrupt)")
    return (pos, iid, wid, src, ec, sent_at, n, data, end, names, nan_vars)


def _header(raw: bytes) -> tuple[str, str, str, int, tuple[str, ...], frozenset[str]]:
    """The checked identity of a v2 record from its JSON header, cached: every record of an instance (with the
    same missing variables) carries the same header bytes, so a batch parses each distinct header once."""
    got = _HEADERS.get(raw)
    if got is None:
        got = _parse_header(raw)
        if len(_HEADERS) >= _HEADER_CACHE_SIZE:
            _HEADERS.clear()
        _HEADERS[raw] = got
    return got


def _parse_header(raw: bytes) -> tuple[str, str, str, int, tuple[str, ...], frozenset[str]]:
    try:
        h = _HEADER_DECODER.decode(raw.decode())
    except WireError as exc:
        raise WireError(f"v2 header: {exc}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise WireError(f"v2 header is not valid JSON ({str(exc).splitlines()[0][:80]})") from None
    if type(h) is not dict:
        raise WireError("v2 header is not a JSON object")
    try:
        names = h["vars"]
        _check_ids(h)
        _check_meta(h)
    except KeyError as exc:
        raise WireError(f"v2 header: missing field {exc.args[0]!r}") from None
    if type(names) is not list:
        raise WireError("v2 header: vars must be a list of variable names")
    for x in names:
        if not isinstance(x, str) or x not in _VARS:
            raise WireError(f"unknown variable {x!r}")
    if len(set(names)) != len(names):
        raise WireError("v2 header: a variable is listed twice in vars")
    nan_vars = h.get("nan_vars") or []
    if (type(nan_vars) is not list or not all(isinstance(x, str) and x in names for x in nan_vars)
            or len(set(nan_vars)) != len(nan_vars)):
        raise WireError("v2 header: nan_vars must list variables of vars, each once")
    return h["instance_id"], h["well_id"], h["source"], h["event_class"], tuple(names), frozenset(nan_vars)


def _join(parts: list, dtype: str) -> np.ndarray:
    """One writable array from many buffers (one copy, no per-value Python)."""
    return np.frombuffer(bytearray().join(parts), dtype=dtype)


def _columns(pieces: list[_Piece]) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """ts, labels and one float64 array per variable (order of first appearance; NaN where not carried)."""
    ts_parts = []
    label_parts = []
    cols: dict[str, list] = {}
    rows = 0
    for p in pieces:
        n = p[6]
        data = p[7]
        o = p[8]
        w = 8 * n
        ts_parts.append(data[o : o + w])  # small bytes slices: copies, but untracked by the GC (memoryviews are)
        o += w
        label_parts.append(data[o : o + 2 * n])
        o += 2 * n
        names = p[9]
        nan_vars = p[10]
        for name in names:
            parts = cols.get(name)
            if parts is None:  # first appearance: NaN for the rows before
                parts = cols[name] = [_nan_bytes(rows)] if rows else []
            if nan_vars and name in nan_vars:
                parts.append(_nan_bytes(n))
            else:
                parts.append(data[o : o + w])
                o += w
        if len(names) != len(cols):  # some variables of the batch are not in this record: NaN
            for name, parts in cols.items():
                if name not in names:
                    parts.append(_nan_bytes(n))
        rows += n
    values = {name: _join(parts, "<f8") for name, parts in cols.items()}
    return _join(ts_parts, "<i8"), _join(label_parts, "<i2"), values


def _violations(ts: np.ndarray, label: np.ndarray, values: dict[str, np.ndarray],
                starts: np.ndarray) -> dict[int, str]:
    """Piece index -> reason, for the pieces whose arrays break a rule (whole-batch checks, v1's order)."""
    bad: dict[int, str] = {}

    def flag(mask: np.ndarray, reason) -> None:
        if mask.any():
            rows = np.flatnonzero(mask)
            which, first = np.unique(np.searchsorted(starts, rows, side="right") - 1, return_index=True)
            for p, r in zip(which.tolist(), rows[first].tolist(), strict=True):
                bad.setdefault(p, reason(r))

    flag((ts < -_TS_LIMIT_MS) | (ts > _TS_LIMIT_MS), lambda r: _TS_RANGE_REASON)
    for name, col in values.items():
        flag(np.isinf(col), lambda r, name=name: f"values[{name!r}] holds a non-finite number")
    flag(~_LABEL_OK[label.view("<u2")], lambda r: f"label {int(label[r])!r} is not a 3W label")
    return bad


def _repeat_str(per_piece: list[str], index: np.ndarray) -> Any:
    """Row strings from one value per piece (``index`` = piece of each row), as pandas' default str column."""
    if getattr(_STR_DTYPE, "storage", None) == "pyarrow":
        import pyarrow as pa

        return _STR_DTYPE.__from_arrow__(pa.array(per_piece, type=pa.large_string()).take(index))
    return np.asarray(per_piece, dtype=object)[index]


def decode_one(data: bytes) -> dict:
    """Parse and validate one record (v1 JSON or v2 binary); raises WireError with a one-line reason.

    A v1 record gives its JSON document. A v2 record gives the same keys (``"v": 2``) with arrays: ``ts`` int64
    epoch ms, ``values`` variable -> float64 (NaN = missing, all-NaN variables included), ``label`` Int64.
    """
    data = _as_bytes(data)  # type: ignore[assignment]
    if not _is_binary(data):
        return _decode_json(data)
    p = _piece_v2(0, data)
    ts, label, values = _columns([p])
    bad = _violations(ts, label, values, np.zeros(1, dtype=np.int64))
    if bad:
        raise WireError(bad[0])
    return {"v": WIRE_VERSION, "instance_id": p[1], "well_id": p[2], "source": p[3], "event_class": p[4],
            "sent_at": p[5], "ts": ts, "values": values,
            "label": pd.arrays.IntegerArray(label.astype(np.int64), label == _NO_LABEL)}


def decode_batch(records: Sequence[bytes]) -> DecodedBatch:
    """Decode many records (v1 and v2 mixed) into one column-oriented frame (per batch, not per row)."""
    rejected: list[tuple[int, str]] = []
    pieces: list[_Piece] = []
    for i, data in enumerate(records):
        try:
            pieces.append(_piece(i, data))
        except WireError as exc:
            rejected.append((i, str(exc)))
    rows = None
    while pieces:
        ns = np.fromiter((p[6] for p in pieces), dtype=np.int64, count=len(pieces))
        starts = np.zeros(len(pieces), dtype=np.int64)
        np.cumsum(ns[:-1], out=starts[1:])
        ts, label, values = _columns(pieces)
        bad = _violations(ts, label, values, starts)
        if bad:  # rare: refuse those records and assemble the others again
            rejected += [(pieces[k][0], reason) for k, reason in bad.items()]
            pieces = [p for k, p in enumerate(pieces) if k not in bad]
            continue
        rows = _frame(pieces, ns, ts, label, values)
        break
    rejected.sort()
    return DecodedBatch(_empty_rows() if rows is None else rows, rejected)


def _frame(pieces: list[_Piece], ns: np.ndarray, ts: np.ndarray, label: np.ndarray,
           values: dict[str, np.ndarray]) -> pd.DataFrame:
    index = np.repeat(np.arange(len(pieces)), ns)  # piece of each row
    out: dict[str, Any] = {
        "record": np.fromiter((p[0] for p in pieces), dtype=np.int64, count=len(pieces))[index],
        "instance_id": _repeat_str([p[1] for p in pieces], index),
        "well_id": _repeat_str([p[2] for p in pieces], index),
        "source": _repeat_str([p[3] for p in pieces], index),
        "event_class": np.fromiter((p[4] for p in pieces), dtype=np.int64, count=len(pieces))[index],
        "timestamp": ts.astype("datetime64[ms]").astype(_TS_DTYPE),
        "label": pd.arrays.IntegerArray(label.astype(np.int64), label == _NO_LABEL),
        "sent_at": np.fromiter((p[5] for p in pieces), dtype=np.float64, count=len(pieces))[index],
        **values,
    }
    return pd.DataFrame(out)


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
