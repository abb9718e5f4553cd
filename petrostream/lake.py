"""Lake layout and I/O: table schemas, deterministic object keys, Parquet writes to S3 or a folder.

Layout (Hive-style, partition values are strings as Athena sees them)::

    s3://<raw bucket>/raw/dt=YYYY-MM-DD/well=<well>/<name>.parquet         raw_readings
    s3://<curated bucket>/scored/dt=YYYY-MM-DD/well=<well>/<name>.parquet  scored_readings
    s3://<curated bucket>/events/dt=YYYY-MM-DD/well=<well>/<name>.parquet  anomaly_events
    s3://<curated bucket>/quarantine/dt=YYYY-MM-DD/<name>.jsonl            quarantined records

``<name>`` is deterministic (e.g. ``<shard>-<first seq>-<last seq>``), so writing the same batch
twice overwrites the same object: at-least-once delivery gives exactly-once rows.
Partition columns are never stored inside the files.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from petrostream.schema import VARIABLES
from petrostream.settings import Settings, get_settings

SENSOR_COLUMNS: tuple[str, ...] = tuple(v.column for v in VARIABLES)
PARTITION_KEYS: tuple[str, ...] = ("dt", "well")
_TS = pa.timestamp("ms")

_IDENTITY = [("instance_id", pa.string()), ("source", pa.string()), ("event_class", pa.int32()), ("ts", _TS)]
_SENSORS = [(c, pa.float64()) for c in SENSOR_COLUMNS]
_STREAM = [("shard_id", pa.string()), ("sequence_number", pa.string()), ("sent_at", _TS)]

RAW_SCHEMA = pa.schema([*_IDENTITY, *_SENSORS, ("label", pa.int32()), *_STREAM, ("arrived_at", _TS)])
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

    def list(self, bucket: str, prefix: str = "") -> list[str]:
        if self.lake_dir is not None:
            root = Path(self.lake_dir) / bucket
            if not root.exists():
                return []
            keys = [p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()]
            return sorted(k for k in keys if k.startswith(prefix) and not k.endswith(".tmp"))
        found: list[str] = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            found.extend(obj["Key"] for obj in page.get("Contents", []))
        return found

    def uri(self, bucket: str, key: str = "") -> str:
        if self.lake_dir is not None:
            return str(Path(self.lake_dir) / bucket / key)
        return f"s3://{bucket}/{key}"


def partition_key(table: Table, dt: str, well: str, name: str) -> str:
    return f"{table.prefix}/dt={dt}/well={well}/{name}.parquet"


def to_arrow(df: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    """Conform a frame to a table schema: missing columns become nulls, extra columns are dropped."""
    arrays = []
    n = len(df)
    for field in schema:
        if field.name in df.columns:
            col = df[field.name]
            if pa.types.is_timestamp(field.type):
                col = pd.to_datetime(col)
            arrays.append(pa.array(col, type=field.type, from_pandas=True))
        else:
            arrays.append(pa.nulls(n, type=field.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def parquet_bytes(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue()


def write_partitioned(
    table: Table, df: pd.DataFrame, name: str, store: LakeStore | None = None, well_column: str = "well_id"
) -> list[str]:
    """Write rows to ``dt=/well=`` partitions, one object per partition named ``name``. Returns keys."""
    if df.empty:
        return []
    store = store or LakeStore()
    bucket = table.bucket(store.settings)
    dts = pd.to_datetime(df[table.time_column]).dt.strftime("%Y-%m-%d")
    keys = []
    for (dt, well), part in df.groupby([dts, df[well_column]], sort=True):
        key = partition_key(table, dt, str(well), name)
        store.put(bucket, key, parquet_bytes(to_arrow(part, table.schema)))
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
