"""Lake writes (via ``petrostream.lake``) and the two shard processors that buffer for them.

* ``ScoringProcessor`` (``petrostream serve``): decode -> quarantine rejects -> score (one model call per
  micro-batch) -> buffer; ``flush(name)`` writes the scored rows (``SCORED``, one object per ``dt=``), the episodes
  changed since the last flush (``EVENTS``: an episode that was ever open at a flush has its own object named
  by its id, so a later version overwrites the earlier one; one that opened and closed between two flushes is
  written once, closed, in the flush's object ``name``; see ``LakeSink.events``) and the quarantined records
  (JSON lines with reason, shard and sequence number).
* ``ArchiveProcessor`` (``petrostream archive``): decode -> buffer raw rows -> ``RAW``.

Object names come from the consumer (``<shard>-<first seq>-<last seq>``), so re-writing a batch
overwrites the same objects.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from inference.metrics import Metrics
from inference.scoring import ShardScorer
from petrostream import lake, wire
from petrostream.schema import VARIABLES

log = logging.getLogger(__name__)

_RENAME = {v.name: v.column for v in VARIABLES}
MAX_QUARANTINE_DATA = 256 * 1024  # bytes of payload kept per quarantined record


def _floor_ms(col: pd.Series) -> pd.Series | np.ndarray:
    """Naive datetimes floored to milliseconds (as the lake stores them); anything else via pd.to_datetime."""
    if pd.api.types.is_datetime64_dtype(col.dtype):
        return col.to_numpy().astype("datetime64[ms]")
    return pd.to_datetime(col).dt.floor("ms")


def to_lake_frame(rows: pd.DataFrame) -> pd.DataFrame:
    """Decoded wire rows -> lake column names (``ts``, snake-case sensors, timestamps for sent_at), timestamps
    in milliseconds (the lake stores milliseconds)."""
    df = rows.rename(columns={"timestamp": "ts", **_RENAME})
    if "sent_at" in df.columns:
        sent = pd.to_numeric(df["sent_at"], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        with np.errstate(invalid="ignore"):
            ms = np.where(sent > 0, np.round(sent * 1000), np.nan)
        df["sent_at"] = pd.to_datetime(ms, unit="ms").to_numpy().astype("datetime64[ms]")
    for col in ("ts", "arrived_at", "scored_at"):
        if col in df.columns:
            df[col] = _floor_ms(df[col])
    return df


def quarantine_entry(record: dict, reason: str, shard: str, consumer: str) -> dict:
    data = record.get("Data", b"") or b""
    arrived: Any = record.get("ApproximateArrivalTimestamp")  # datetime from boto3, anything from tests
    return {
        "reason": reason,
        "consumer": consumer,
        "shard_id": shard,
        "sequence_number": record.get("SequenceNumber"),
        "partition_key": record.get("PartitionKey"),
        "arrived_at": arrived.isoformat() if hasattr(arrived, "isoformat") else arrived,
        "size": len(data),
        "data_b64": base64.b64encode(data[:MAX_QUARANTINE_DATA]).decode(),
        "truncated": len(data) > MAX_QUARANTINE_DATA,
    }


def _arrival_dt(record: dict) -> str:
    arrived = record.get("ApproximateArrivalTimestamp")
    if isinstance(arrived, datetime):
        return arrived.astimezone(UTC).strftime("%Y-%m-%d")
    return datetime.now(UTC).strftime("%Y-%m-%d")


class LakeSink:
    """The writes, in one place (thread-safe: LakeStore only holds a boto3 client)."""

    def __init__(self, store: lake.LakeStore | None = None):
        self.store = store or lake.LakeStore()

    def scored(self, rows: pd.DataFrame, name: str) -> list[str]:
        return lake.write_partitioned(lake.SCORED, to_lake_frame(rows), name, self.store)

    def raw(self, rows: pd.DataFrame, name: str) -> list[str]:
        return lake.write_partitioned(lake.RAW, to_lake_frame(rows), name, self.store)

    def events(self, episodes: pd.DataFrame, name: str | None = None) -> list[str]:
        """Write episodes (``EpisodeTracker.touched_frame``) so that the lake holds each episode once, as readers
        of the raw table (``anomaly_events``, the dashboard, tests) expect:

        * ``own_object`` True (or no such column): the episode's own object, named by its id
          (``events/dt=<start day>/<episode_id>.parquet``); a later version (partial, then
          closed) overwrites the earlier one;
        * ``own_object`` False (an episode that opened and closed since the previous flush, never written
          before and final): one object per ``dt=`` partition for all of them, named ``name`` (the
          flush's ``<shard>-<first seq>-<last seq>``, so a replayed flush overwrites it) or, without a name,
          by a hash of their ids.

        The frame is converted to Arrow once and sliced per object (no per-object pandas work)."""
        if episodes.empty:
            return []
        episodes = episodes.drop_duplicates("episode_id", keep="last").sort_values("episode_id", kind="stable")
        table = lake.to_arrow(episodes, lake.EVENTS.schema)
        ids = episodes["episode_id"].astype(str).tolist()
        bucket = lake.EVENTS.bucket(self.store.settings)
        keys: list[str] = []
        own = episodes["own_object"].fillna(True).to_numpy(dtype=bool) if "own_object" in episodes else None
        if own is not None and not own.all():
            if name is None:
                name = "episodes-" + hashlib.sha1("|".join(np.asarray(ids)[~own]).encode()).hexdigest()[:20]
            for dt, rows in lake.split_days(table.filter(pa.array(~own)), lake.EVENTS.time_column):
                key = lake.partition_key(lake.EVENTS, dt, name)
                self.store.put(bucket, key, lake.parquet_bytes(rows))
                keys.append(key)
        days = table.column(lake.EVENTS.time_column).cast(pa.int64()).to_numpy(zero_copy_only=False) // 86_400_000
        dts = np.array(days, dtype="datetime64[D]").astype(str).tolist()
        for i in range(len(ids)) if own is None else np.flatnonzero(own).tolist():
            key = lake.partition_key(lake.EVENTS, dts[i], ids[i])
            self.store.put(bucket, key, lake.parquet_bytes(table.slice(i, 1)))
            keys.append(key)
        return keys

    def quarantine(self, entries: list[dict], name: str, dt: str) -> str | None:
        return lake.write_quarantine(entries, name, dt, self.store)


class _Buffer:
    def __init__(self) -> None:
        self.frames: list[pd.DataFrame] = []
        self.rows = 0
        self.quarantine: list[dict] = []
        self.quarantine_dt: str | None = None

    def add_quarantine(self, entries: list[dict], first_record: dict) -> None:
        if entries and self.quarantine_dt is None:
            self.quarantine_dt = _arrival_dt(first_record)
        self.quarantine += entries

    def frame(self) -> pd.DataFrame:
        return pd.concat(self.frames, ignore_index=True) if self.frames else pd.DataFrame()


def _per_row(values: list[str], idx: np.ndarray) -> Any:
    """One string per record -> one per row (``idx``: record of each row), as an Arrow-backed ``str`` array
    (no Python string per row; numpy fallback where pandas cannot wrap Arrow arrays)."""
    taken = pa.array(values, type=pa.large_string()).take(pa.array(idx))
    try:
        return pd.array(taken, dtype="str")
    except (TypeError, ValueError):
        return np.asarray(values, dtype=object)[idx]


def _decode(records: list[dict], shard: str) -> wire.DecodedBatch:
    batch = wire.decode_batch([r.get("Data", b"") for r in records])
    rows = batch.rows
    if len(rows):
        idx = rows["record"].to_numpy()
        rows["shard_id"] = shard
        rows["sequence_number"] = _per_row([str(r["SequenceNumber"]) for r in records], idx)
        arrivals = [r.get("ApproximateArrivalTimestamp") for r in records]
        arr = pd.to_datetime(pd.Series(arrivals), utc=True).dt.tz_localize(None).to_numpy()
        rows["arrived_at"] = arr[idx]
    return batch


class ScoringProcessor:
    consumer = "serve"

    def __init__(self, shard: str, scorer: ShardScorer, sink: LakeSink, metrics: Metrics,
                 clock: Callable[[], float] = time.time):
        self.shard = shard
        self.scorer = scorer
        self.sink = sink
        self.metrics = metrics
        self.clock = clock
        self.buf = _Buffer()

    # Processor protocol -------------------------------------------------------------------------

    def restore(self, state: dict | None) -> None:
        self.scorer.restore(state)

    def warm(self, records: list[dict]) -> None:
        rows = _decode(records, self.shard).rows
        self.scorer.warm(rows)

    def process(self, records: list[dict]) -> int:
        t0 = time.perf_counter()
        batch = _decode(records, self.shard)
        entries = [quarantine_entry(records[i], reason, self.shard, self.consumer) for i, reason in batch.rejected]
        rows = batch.rows
        self.metrics.rows_in.inc(len(rows), consumer=self.consumer)
        kept = 0
        if len(rows):
            try:
                result = self.scorer.score(rows)
            except Exception as exc:  # a poison batch must not stop the shard: quarantine it, with why
                if self.scorer.ref is None:
                    raise
                reason = f"scoring failed: {type(exc).__name__}: {str(exc)[:200]}"
                log.exception("scoring failed; records quarantined", extra={"shard": self.shard})
                bad = sorted(set(rows["record"].tolist()))
                entries += [quarantine_entry(records[i], reason, self.shard, self.consumer) for i in bad]
            else:
                scored = result.scored
                scored["scored_at"] = pd.Timestamp(round(self.clock() * 1000), unit="ms")
                kept = len(scored)
                if kept:
                    self.buf.frames.append(scored)
                    self.buf.rows += kept
                    codes, sources = pd.factorize(scored["source"], use_na_sentinel=False)
                    sizes = np.bincount(codes, minlength=len(sources))
                    alarms = np.bincount(codes, weights=scored["is_anomaly"].to_numpy(), minlength=len(sources))
                    for src, size, alarm in zip(sources.tolist(), sizes.tolist(), alarms.tolist(), strict=True):
                        self.metrics.rows_scored.inc(int(size), source=str(src))
                        self.metrics.anomalies.inc(int(alarm), source=str(src))
                if result.duplicates:
                    self.metrics.rows_dropped.inc(result.duplicates, reason="duplicate")
                if result.stale:
                    self.metrics.rows_dropped.inc(result.stale, reason="stale")
        if entries:
            self.buf.add_quarantine(entries, records[batch.rejected[0][0]] if batch.rejected else records[0])
            self.metrics.quarantined.inc(len(entries), consumer=self.consumer)
            log.warning("records quarantined", extra={"shard": self.shard, "n": len(entries),
                                                      "reason": entries[0]["reason"]})
        self.metrics.batch_latency.observe(time.perf_counter() - t0)
        return kept

    def buffered_rows(self) -> int:
        return self.buf.rows

    def flush(self, name: str) -> int:
        df = self.buf.frame()
        if len(df):
            self.sink.scored(df, name)
        self._write_events(name)
        if self.buf.quarantine:
            self.sink.quarantine(self.buf.quarantine, name, self.buf.quarantine_dt or _arrival_dt({}))
        rows = len(df)
        self.buf = _Buffer()
        return rows

    def _write_events(self, name: str | None = None, drain: bool = False) -> int:
        episodes = self.scorer.episodes.touched_frame(drain=drain)
        if len(episodes):
            self.sink.events(episodes, name)
            closed = int(episodes["closed_at"].notna().sum())
            if closed:
                self.metrics.episodes.inc(closed)
        self.scorer.episodes.clear_touched()
        return len(episodes)

    def maintain(self) -> bool:
        return self.scorer.maintain()

    def write_state_only(self) -> None:
        self._write_events()

    def drain(self, fence: Callable[[], object] | None = None) -> int:
        """Graceful stop, after the final flush (nothing buffered): write every episode version still unwritten,
        the open ones held back by ``EpisodeTracker.write_interval_s`` included. ``fence`` runs first, only if
        there is something to write (the consumer checks it still holds the lease). Returns episodes written."""
        if self.buf.rows or not self.scorer.episodes.unwritten():
            return 0
        if fence is not None:
            fence()
        return self._write_events(drain=True)

    def state(self) -> dict | None:
        return self.scorer.state()

    def warm_rows_target(self) -> int:
        now = self.clock()
        active = sum(1 for t in self.scorer.seen_wall.values() if now - t < 600)
        return self.scorer.tail_rows * max(1, active)


class ArchiveProcessor:
    """Raw records -> ``raw_readings`` (what arrived, as it arrived; malformed ones to quarantine)."""

    consumer = "archive"

    def __init__(self, shard: str, sink: LakeSink, metrics: Metrics):
        self.shard = shard
        self.sink = sink
        self.metrics = metrics
        self.buf = _Buffer()

    def restore(self, state: dict | None) -> None:
        pass

    def warm(self, records: list[dict]) -> None:
        pass

    def process(self, records: list[dict]) -> int:
        batch = _decode(records, self.shard)
        rows = batch.rows
        self.metrics.rows_in.inc(len(rows), consumer=self.consumer)
        if len(rows):
            self.buf.frames.append(rows)
            self.buf.rows += len(rows)
        if batch.rejected:
            entries = [quarantine_entry(records[i], reason, self.shard, self.consumer) for i, reason in batch.rejected]
            self.buf.add_quarantine(entries, records[batch.rejected[0][0]])
            self.metrics.quarantined.inc(len(entries), consumer=self.consumer)
        return len(rows)

    def buffered_rows(self) -> int:
        return self.buf.rows

    def flush(self, name: str) -> int:
        df = self.buf.frame()
        if len(df):
            self.sink.raw(df, name)
        if self.buf.quarantine:
            self.sink.quarantine(self.buf.quarantine, f"archive-{name}", self.buf.quarantine_dt or _arrival_dt({}))
        self.buf = _Buffer()
        return len(df)

    def maintain(self) -> bool:
        return False

    def write_state_only(self) -> None:
        pass

    def state(self) -> dict | None:
        return None

    def warm_rows_target(self) -> int:
        return 0
