"""Compaction: a day's many small flush objects -> a few large ones, rows sorted by well.

The live service writes one object per shard flush (``lake.py``: a flush holds every well of its shard), so a
day at 1x has thousands of objects of a few thousand rows. Athena prefers fewer, larger files, and per-well
reads only skip data when a file's row groups each hold few wells. ``compact`` rewrites a QUIET day
partition (no object written for ``quiet_s``: a replay or a late flush is not writing into it) into objects
of about ``target_bytes`` each, rows sorted by (well, instance, time) in row groups of ``row_group_rows``, so
the ``well`` min/max statistics of each row group prune per-well reads.

Objects of the earlier layout (``dt=<day>/well=<well>/<name>``, the well only in the path) are compacted
with the rest, ``well`` filled from the path: running ``compact`` once migrates a lake written by earlier
versions.

Crash safety without row-level deduplication: an output object is named by a hash of its sources and lists
them in its Parquet metadata (``petrostream.compacted_from``). It is written before its sources are
deleted; a run that finds an output whose sources still exist (an earlier run stopped in between) deletes
those sources first, so a reader sees duplicates only between the two steps of one run, never for longer.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import time
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from petrostream import lake
from petrostream.progress import Progress

log = logging.getLogger(__name__)

SOURCES_KEY = b"petrostream.compacted_from"
PREFIX = "compacted-"
DEFAULT_QUIET_S = 6 * 3600.0  # longer than a flush, a lease handoff or a restart's replay of a pending range
DEFAULT_TARGET_BYTES = 128 * 1024 * 1024  # AWS's advice for Athena: files of ~128 MB or more
DEFAULT_ROW_GROUP_ROWS = 128 * 1024
SORT_KEYS = ("well", "instance_id")
_FOOTER_GUESS = 256 * 1024  # one ranged read usually holds a compacted object's whole footer


@dataclass
class DayResult:
    dt: str
    sources: int = 0
    outputs: list[str] = field(default_factory=list)
    rows: int = 0
    bytes_before: int = 0
    bytes_after: int = 0
    skipped: str = ""  # why nothing was done ("" when compacted)
    recovered: int = 0  # sources of an interrupted earlier run deleted


def _dt(key: str) -> str | None:
    """The day of ``<prefix>/dt=<day>/<name>`` or of the earlier layout's ``<prefix>/dt=<day>/well=<well>/<name>``."""
    parts = key.split("/")
    if len(parts) == 4 and not parts[2].startswith("well="):
        return None
    return parts[1][3:] if len(parts) in (3, 4) and parts[1].startswith("dt=") else None


def _path_well(key: str) -> str | None:
    """``<well>`` of the earlier layout's ``.../well=<well>/<name>`` (whose files do not hold the well)."""
    seg = key.split("/")[-2]
    return seg[5:] if seg.startswith("well=") else None


def _is_output(key: str) -> bool:
    return key.rsplit("/", 1)[-1].startswith(PREFIX)


def _groups(objs: list[lake.ObjectInfo], target_bytes: int) -> list[list[lake.ObjectInfo]]:
    """Consecutive objects (by key) in groups of about ``target_bytes`` of Parquet."""
    groups: list[list[lake.ObjectInfo]] = [[]]
    size = 0
    for o in objs:
        if groups[-1] and size + o.size > target_bytes:
            groups.append([])
            size = 0
        groups[-1].append(o)
        size += o.size
    return [g for g in groups if g]


def _read(store: lake.LakeStore, bucket: str, key: str, schema: pa.Schema) -> pa.Table:
    t = pq.read_table(io.BytesIO(store.get(bucket, key)))
    t = t.replace_schema_metadata(None)
    well = _path_well(key)
    cols = []
    for f in schema:
        if f.name in t.column_names:
            cols.append(t.column(f.name).cast(f.type))
        elif f.name == "well" and well is not None:  # the earlier layout kept the well in the path only
            cols.append(pa.array([well] * len(t), f.type))
        else:
            cols.append(pa.nulls(len(t), f.type))
    return pa.Table.from_arrays(cols, schema=schema)


def _sorted(t: pa.Table, time_column: str) -> pa.Table:
    keys = [(k, "ascending", "at_end") for k in (*SORT_KEYS, time_column) if k in t.column_names]
    return t.take(pc.sort_indices(t, sort_keys=keys))


def _output_name(keys: list[str]) -> str:
    return PREFIX + hashlib.sha1("\n".join(sorted(keys)).encode()).hexdigest()[:20]


def _sources_of(store: lake.LakeStore, bucket: str, key: str) -> list[str]:
    """The source list of a compacted object, from its Parquet footer alone (ranged reads, not ~128 MB)."""
    tail = store.get_tail(bucket, key, _FOOTER_GUESS)
    need = int.from_bytes(tail[-8:-4], "little") + 8  # footer length + itself + the closing magic
    if need > len(tail):
        tail = store.get_tail(bucket, key, need)
    meta = pq.read_metadata(io.BytesIO(b"PAR1" + tail[-need:])).metadata or {}  # a footer-only "file"
    raw = meta.get(SOURCES_KEY)
    return json.loads(raw) if raw else []


def compact(
    table: lake.Table = lake.SCORED,
    store: lake.LakeStore | None = None,
    *,
    quiet_s: float = DEFAULT_QUIET_S,
    days: list[str] | None = None,
    target_bytes: int = DEFAULT_TARGET_BYTES,
    row_group_rows: int = DEFAULT_ROW_GROUP_ROWS,
    dry_run: bool = False,
    now: float | None = None,
    progress: Progress | None = None,
) -> list[DayResult]:
    """Compact every quiet ``dt=`` partition of ``table`` (or only ``days``). Returns one result per day seen.
    ``progress`` counts the objects looked at (its total is set here)."""
    store = store or lake.LakeStore()
    bucket = table.bucket(store.settings)
    now = time.time() if now is None else now
    by_day: dict[str, list[lake.ObjectInfo]] = {}
    for o in store.list_objects(bucket, f"{table.prefix}/"):
        d = _dt(o.key)
        if d is not None and o.key.endswith(".parquet") and (days is None or d in days):
            by_day.setdefault(d, []).append(o)
    results = []
    if progress is not None:
        progress.total = sum(len(v) for v in by_day.values())
    for d in sorted(by_day):
        objs = sorted(by_day[d], key=lambda o: o.key)
        res = DayResult(d, sources=len(objs), bytes_before=sum(o.size for o in objs))
        results.append(res)
        if progress is not None:
            progress.update(len(objs))
        if all(_is_output(o.key) for o in objs):  # nothing new and nothing to recover: no object is read
            res.skipped = "already compact"
            continue
        names = {o.key for o in objs}
        # finish an interrupted run first: an output whose sources are still there
        for o in objs:
            if _is_output(o.key):
                left = [k for k in _sources_of(store, bucket, o.key) if k in names and k != o.key]
                if left and not dry_run:
                    store.delete(bucket, left)
                    log.warning("finished an interrupted compaction", extra={"dt": d, "deleted": len(left)})
                res.recovered += len(left)
                names -= set(left)
        objs = [o for o in objs if o.key in names]
        if any(now - o.mtime < quiet_s for o in objs if not _is_output(o.key)):
            res.skipped = f"written to in the last {quiet_s:g} s"
            continue
        small = [o for o in objs if not (_is_output(o.key) and o.size >= target_bytes // 2)]
        if len(small) < 2 and not any(_path_well(o.key) for o in small):  # one object of the earlier layout: migrate
            res.skipped = "already compact"
            continue
        for group in _groups(small, target_bytes):
            keys = [o.key for o in group]
            name = _output_name(keys)
            out_key = lake.partition_key(table, d, name)
            if dry_run:
                res.outputs.append(out_key)
                continue
            rows = pa.concat_tables([_read(store, bucket, k, table.schema) for k in keys])
            rows = _sorted(rows, table.time_column)
            rows = rows.replace_schema_metadata({SOURCES_KEY: json.dumps(keys).encode()})
            data = lake.parquet_bytes(rows, row_group_size=row_group_rows)
            store.put(bucket, out_key, data)
            store.delete(bucket, [k for k in keys if k != out_key])
            res.outputs.append(out_key)
            res.rows += len(rows)
            res.bytes_after += len(data)
            log.info("compacted", extra={"table": table.name, "dt": d, "sources": len(keys), "rows": len(rows),
                                         "key": out_key})
    return results
