"""Lake layout and I/O: table schemas, deterministic object keys, Parquet writes to S3 or a folder.

Layout (Hive-style ``dt`` partitions, values are strings as Athena sees them)::

    s3://<raw bucket>/raw/dt=YYYY-MM-DD/<name>.parquet         raw_readings
    s3://<curated bucket>/scored/dt=YYYY-MM-DD/<name>.parquet  scored_readings
    s3://<curated bucket>/events/dt=YYYY-MM-DD/<name>.parquet  anomaly_events
    s3://<curated bucket>/quarantine/dt=YYYY-MM-DD/<name>.jsonl  quarantined records

``well`` is a column (the last one of every table), not a partition: a flush writes ONE object per day
it covers, holding every well of its shard. Partitioning by well as well would write one small object per
well per flush (with 380 wells and a 10 s flush: ~38 PUTs/s, ~100 M a month, and millions of tiny files
for Athena to open); a per-well read instead filters the column (dictionary-encoded, so cheap to scan).

``<name>`` is deterministic (e.g. ``<shard>-<first seq>-<last seq>``), so writing the same batch
twice overwrites the same object: at-least-once delivery gives exactly-once rows. Episodes
(``anomaly_events``) are in an object named by their ``episode_id`` (one that was open at a flush:
re-written as it changes) or in the flush's ``<shard>-<first seq>-<last seq>`` object (one that opened
and closed between two flushes); never in both (``inference.sink.LakeSink.events``).
The partition column ``dt`` is never stored inside the files.
"""

from __future__ import annotations

import builtins
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from petrostream.schema import VARIABLES
from petrostream.settings import Settings, get_settings

SENSOR_COLUMNS: tuple[str, ...] = tuple(v.column for v in VARIABLES)
PARTITION_KEYS: tuple[str, ...] = ("dt",)
WELL = ("well", pa.string())  # last column of every table
_TS = pa.timestamp("ms")

_IDENTITY = [("instance_id", pa.string()), ("source", pa.string()), ("event_class", pa.int32()), ("ts", _TS)]
_SENSORS = [(c, pa.float64()) for c in SENSOR_COLUMNS]
_STREAM = [("shard_id", pa.string()), ("sequence_number", pa.string()), ("sent_at", _TS)]

RAW_SCHEMA = pa.schema([*_IDENTITY, *_SENSORS, ("label", pa.int32()), *_STREAM, ("arrived_at", _TS), WELL])
SCORED_SCHEMA = pa.schema(
    [
        *_IDENTITY,
        *_SENSORS,
        ("label", pa.int32()),
        ("anomaly_score", pa.float64()),
        ("is_anomaly", pa.int32()),
        ("threshold", pa.float64()),
        ("model_version", pa.string()),
        *_STREAM,
        ("scored_at", _TS),
        WELL,
    ]
)
EVENTS_SCHEMA = pa.schema(
    [
        ("episode_id", pa.string()),
        ("instance_id", pa.string()),
        ("source", pa.string()),
        ("event_class", pa.int32()),
        ("start_ts", _TS),
        ("end_ts", _TS),
        ("duration_s", pa.float64()),
        ("n_rows", pa.int64()),
        ("peak_score", pa.float64()),
        ("mean_score", pa.float64()),
        ("model_version", pa.string()),
        ("label", pa.int32()),
        ("closed_at", _TS),
        WELL,
    ]
)


@dataclass(frozen=True)
class Table:
    name: str  # logical name, equal to the Glue table name by default
    bucket_attr: str  # Settings attribute holding the bucket
    prefix: str
    schema: pa.Schema
    time_column: str  # column that decides the dt partition

    def bucket(self, settings: Settings | None = None) -> str:
        return getattr(settings or get_settings(), self.bucket_attr)


RAW = Table("raw_readings", "raw_bucket", "raw", RAW_SCHEMA, "ts")
SCORED = Table("scored_readings", "curated_bucket", "scored", SCORED_SCHEMA, "ts")
EVENTS = Table("anomaly_events", "curated_bucket", "events", EVENTS_SCHEMA, "start_ts")
TABLES: dict[str, Table] = {t.name: t for t in (RAW, SCORED, EVENTS)}
QUARANTINE_PREFIX = "quarantine"


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    mtime: float  # seconds since the epoch (S3 LastModified)


class LakeStore:
    """Where lake objects live: S3 (emulator or AWS) or, with ``lake_dir``, a local folder laid out
    as ``<lake_dir>/<bucket>/<key>``. Same keys either way."""

    def __init__(self, settings: Settings | None = None, lake_dir: Path | None = None):
        self.settings = settings or get_settings()
        self.lake_dir = lake_dir if lake_dir is not None else self.settings.lake_dir
        self._s3 = None

    @property
    def s3(self):
        if self._s3 is None:
            from petrostream.aws import client

            self._s3 = client("s3", self.settings)
        return self._s3

    def put(self, bucket: str, key: str, data: bytes) -> None:
        if self.lake_dir is not None:
            path = Path(self.lake_dir) / bucket / key
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(path.suffix + ".tmp")
            tmp.write_bytes(data)
            tmp.replace(path)  # atomic: readers never see half a file
        else:
            self.s3.put_object(Bucket=bucket, Key=key, Body=data)

    def get(self, bucket: str, key: str) -> bytes:
        if self.lake_dir is not None:
            return (Path(self.lake_dir) / bucket / key).read_bytes()
        return self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()

    def get_tail(self, bucket: str, key: str, n: int) -> bytes:
        """The last ``n`` bytes of an object (all of it if it is shorter): one ranged read."""
        if self.lake_dir is not None:
            with (Path(self.lake_dir) / bucket / key).open("rb") as f:
                f.seek(0, io.SEEK_END)
                f.seek(max(0, f.tell() - n))
                return f.read()
        return self.s3.get_object(Bucket=bucket, Key=key, Range=f"bytes=-{n}")["Body"].read()

    def list(self, bucket: str, prefix: str = "") -> list[str]:
        if self.lake_dir is not None:
            root = Path(self.lake_dir) / bucket
            if not root.exists():
                return []
            keys = [p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()]
            return sorted(k for k in keys if k.startswith(prefix) and not k.endswith(".tmp"))
        return [o.key for o in self.list_objects(bucket, prefix)]

    def list_objects(self, bucket: str, prefix: str = "") -> builtins.list[ObjectInfo]:  # `list`: a method here
        """``list`` with sizes and modification times."""
        if self.lake_dir is not None:
            root = Path(self.lake_dir) / bucket
            out = []
            for key in self.list(bucket, prefix):
                st = (root / key).stat()
                out.append(ObjectInfo(key, st.st_size, st.st_mtime))
            return out
        found: builtins.list[ObjectInfo] = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            found.extend(ObjectInfo(o["Key"], int(o["Size"]), o["LastModified"].timestamp())
                         for o in page.get("Contents", []))
        return found

    def delete(self, bucket: str, keys: builtins.list[str]) -> None:
        if self.lake_dir is not None:
            for key in keys:
                path = Path(self.lake_dir) / bucket / key
                path.unlink(missing_ok=True)
                try:
                    path.parent.rmdir()  # a folder left empty (S3 has no folders to leave behind)
                except OSError:
                    pass
            return
        for i in range(0, len(keys), 1000):  # DeleteObjects takes at most 1,000 keys
            resp = self.s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys[i : i + 1000]],
                                                                 "Quiet": True})
            if resp.get("Errors"):
                err = resp["Errors"][0]
                raise OSError(f"s3://{bucket}/{err.get('Key')}: delete failed: {err.get('Code')} {err.get('Message')}")

    def uri(self, bucket: str, key: str = "") -> str:
        if self.lake_dir is not None:
            return str(Path(self.lake_dir) / bucket / key)
        return f"s3://{bucket}/{key}"


def partition_key(table: Table, dt: str, name: str) -> str:
    return f"{table.prefix}/dt={dt}/{name}.parquet"


_DAY_MS = 86_400_000


def _ms(col: pd.Series) -> tuple[np.ndarray, np.ndarray | None]:
    """Timestamps as int64 milliseconds since the epoch, floored (the lake stores ms), and a null mask.

    Naive datetimes are taken as they are; tz-aware ones as their UTC instant; anything else goes through
    ``pd.to_datetime`` first."""
    if isinstance(col.dtype, pd.DatetimeTZDtype):
        col = col.dt.tz_convert("UTC").dt.tz_localize(None)
    elif not pd.api.types.is_datetime64_dtype(col.dtype):
        col = pd.to_datetime(col)
        if isinstance(col.dtype, pd.DatetimeTZDtype):
            col = col.dt.tz_convert("UTC").dt.tz_localize(None)
    values = col.to_numpy()
    nat = np.isnat(values)
    return values.astype("datetime64[ms]").view("int64"), (nat if nat.any() else None)


def _array(col: pd.Series, field: pa.Field) -> pa.Array:
    if pa.types.is_timestamp(field.type):
        ms, mask = _ms(col)
        return pa.array(ms, type=field.type, mask=mask)
    if isinstance(col.dtype, pd.CategoricalDtype):  # e.g. one sequence number per record, repeated per row
        cats = pa.array(col.cat.categories.to_numpy(dtype=object), type=field.type, from_pandas=True)
        codes = col.cat.codes.to_numpy()
        return cats.take(pa.array(codes, mask=codes < 0))
    return pa.array(col, type=field.type, from_pandas=True)


def to_arrow(df: pd.DataFrame, schema: pa.Schema, well_column: str = "well_id") -> pa.Table:
    """Conform a frame to a table schema: missing columns become nulls, extra columns are dropped,
    timestamps are floored to milliseconds (tz-aware ones taken as UTC); ``well`` is taken from
    ``well_column`` when the frame has no ``well`` (decoded rows and episodes carry ``well_id``)."""
    n = len(df)

    def source(name: str) -> str | None:
        if name in df.columns:
            return name
        return well_column if name == "well" and well_column in df.columns else None

    arrays = []
    for f in schema:
        col = source(f.name)
        arrays.append(_array(df[col], f) if col is not None else pa.nulls(n, type=f.type))
    return pa.Table.from_arrays(arrays, schema=schema)


# Parquet settings for small objects (a few thousand rows: one per partition and flush; one row for an episode)
# written on the hot path. Same logical schema and column types as pyarrow's defaults, smaller objects, about
# half the CPU:
# * dictionary pages only for columns with few distinct values per object (strings: ids, versions, sequence
#   numbers; small ints; per-flush timestamps), stored uncompressed (their pages are run-length indices);
# * zstd for the other columns (sensor values, scores, ts) when the chunk holds enough values to gain from it
#   (a zstd call has a fixed cost; an all-null chunk is a few bytes of levels; a tiny one does not shrink);
# * no dictionary pages at all in tiny objects (one-row episodes: the dictionary would only add bytes);
# * min/max statistics for every column but the sensor values (nobody prunes on those).
_MIN_VALUES = 64
_COMPRESSION = "zstd"
_LOW_CARDINALITY = frozenset({"event_class", "label", "is_anomaly", "threshold", "sent_at", "scored_at",
                              "arrived_at"})
_NO_STATISTICS = frozenset(SENSOR_COLUMNS)


def _is_string(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t)


@lru_cache(maxsize=16)
def _layout(schema: pa.Schema) -> tuple[list[str], frozenset[str], list[str]]:
    """(dictionary columns, columns zstd-compressed when they hold values, columns with statistics)."""
    dictionary = [f.name for f in schema if _is_string(f.type) or f.name in _LOW_CARDINALITY]
    compressed = frozenset(schema.names) - frozenset(dictionary)
    return dictionary, compressed, [f.name for f in schema if f.name not in _NO_STATISTICS]


def parquet_bytes(table: pa.Table, row_group_size: int | None = None) -> bytes:
    dictionary, compressed, statistics = _layout(table.schema)
    compression = dict.fromkeys(table.column_names, "none")
    if table.num_rows >= _MIN_VALUES:
        for name in compressed:
            col = table.column(name)
            if len(col) - col.null_count >= _MIN_VALUES:
                compression[name] = _COMPRESSION
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression=compression, write_statistics=statistics, row_group_size=row_group_size,
                   use_dictionary=dictionary if table.num_rows >= _MIN_VALUES else False)
    return sink.getvalue().to_pybytes()


def partitions(table: Table, df: pd.DataFrame, well_column: str = "well_id") -> list[tuple[str, pa.Table]]:
    """``df`` conformed to the table's schema (``to_arrow``, once) and split by ``dt`` partition:
    ``[(dt, rows)]`` sorted by dt, rows in their order in ``df``. Rows without a time belong to no partition
    and are left out."""
    return split_days(to_arrow(df, table.schema, well_column), table.time_column)


def split_days(arrow: pa.Table, time_column: str) -> list[tuple[str, pa.Table]]:
    """``partitions`` of a table already in its schema: ``[(dt, rows)]`` by the day of ``time_column``.

    Rows usually come in a few long runs of one day (a micro-batch spans a few seconds to hours of data), so a
    day is those runs sliced out of the table (zero-copy) rather than a reordered copy of every column."""
    n = len(arrow)
    if n == 0:
        return []
    ts = arrow.column(time_column)
    days = np.floor_divide(ts.cast(pa.int64()).fill_null(0).to_numpy(), _DAY_MS)
    valid = ~ts.is_null().to_numpy(zero_copy_only=False) if ts.null_count else None
    if valid is None and days[0] == days[-1] and bool((days == days[0]).all()):  # the usual case: one day
        return [(str(np.datetime64(int(days[0]), "D")), arrow)]
    if valid is not None:
        days = np.where(valid, days, np.iinfo(np.int64).min)
    cuts = np.flatnonzero(days[1:] != days[:-1]) + 1
    starts, stops = np.r_[0, cuts], np.r_[cuts, n]
    keep = days[starts] != np.iinfo(np.int64).min
    starts, stops = starts[keep], stops[keep]
    if not len(starts):
        return []
    order = np.argsort(days[starts], kind="stable")
    starts, stops = starts[order], stops[order]
    run_days = days[starts]
    firsts = np.flatnonzero(np.r_[True, run_days[1:] != run_days[:-1]])
    if len(starts) > 4 * len(firsts) + 16:
        # many short runs (rows not grouped by day at all): one reordering take is cheaper than many slices
        lengths = stops - starts
        arrow = arrow.take(pa.array(np.repeat(starts - np.r_[0, np.cumsum(lengths)[:-1]], lengths) + np.arange(
            int(lengths.sum()))))
        stops = np.cumsum(lengths)
        starts = stops - lengths
    labels = np.array(run_days[firsts], dtype="datetime64[D]").astype(str).tolist()
    out: list[tuple[str, pa.Table]] = []
    for g, (a, b) in enumerate(zip(firsts.tolist(), np.r_[firsts[1:], len(starts)].tolist(), strict=True)):
        pieces = [arrow.slice(int(x), int(y - x)) for x, y in zip(starts[a:b], stops[a:b], strict=True)]
        out.append((labels[g], pieces[0] if len(pieces) == 1 else pa.concat_tables(pieces)))
    return out


def write_partitioned(
    table: Table, df: pd.DataFrame, name: str, store: LakeStore | None = None, well_column: str = "well_id"
) -> list[str]:
    """Write rows to ``dt=`` partitions, one object per day named ``name``. Returns keys.

    The frame is converted to Arrow once and sliced per day (no per-partition pandas work)."""
    if df.empty:
        return []
    store = store or LakeStore()
    bucket = table.bucket(store.settings)
    keys = []
    for dt, rows in partitions(table, df, well_column):
        key = partition_key(table, dt, name)
        store.put(bucket, key, parquet_bytes(rows))
        keys.append(key)
    return keys


def write_quarantine(
    entries: Iterable[dict], name: str, dt: str, store: LakeStore | None = None
) -> str | None:
    """Quarantined records as JSON lines (each with ``reason``), next to the curated tables."""
    lines = [json.dumps(e, default=str) for e in entries]
    if not lines:
        return None
    store = store or LakeStore()
    key = f"{QUARANTINE_PREFIX}/dt={dt}/{name}.jsonl"
    store.put(store.settings.curated_bucket, key, ("\n".join(lines) + "\n").encode())
    return key


def read_table(table: Table, store: LakeStore | None = None, prefix: str = "") -> pd.DataFrame:
    """Read a whole table back into pandas with its partition columns (small lakes, tests, tools)."""
    store = store or LakeStore()
    bucket = table.bucket(store.settings)
    frames = []
    for key in store.list(bucket, f"{table.prefix}/{prefix}"):
        if not key.endswith(".parquet"):
            continue
        part = pq.read_table(io.BytesIO(store.get(bucket, key))).to_pandas()
        for seg in key.split("/")[1:-1]:
            k, _, v = seg.partition("=")
            part[k] = v
        frames.append(part)
    if not frames:
        empty = table.schema.empty_table().to_pandas()
        for k in PARTITION_KEYS:
            empty[k] = pd.Series(dtype="object")
        return empty
    return pd.concat(frames, ignore_index=True)
