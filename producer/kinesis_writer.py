"""Batched, aggregated, budgeted Kinesis writer (the producer's hot path).

* Aggregation (KPL style): rows of ONE instance are grouped into one record (``petrostream.wire``
  format) of up to ``rows_per_record`` rows; a partial record is cut when its oldest row has waited
  ``linger_ms`` (so at replay speed 1 a record leaves at least every linger interval).
* Batching: records go out in PutRecords calls of <= 500 records and <= 5 MiB; a record is <= 1 MiB
  (an over-large record is split in halves before it is queued).
* Retries: only the entries a call reports as failed (per-entry ``ErrorCode``, e.g.
  ProvisionedThroughputExceededException) are re-sent, and a whole call is re-sent when it raises a
  throttling/transient error; exponential backoff with full jitter, at most ``max_attempts`` attempts,
  then :class:`ProducerError`.
* Budgets: a token bucket per shard (1,000 records/s and 1 MiB/s, burst = one second) fed by the
  shard each partition key hashes to (MD5 of the key in the shard's hash-key range, from ListShards).
  A call never asks one shard for more than its bucket holds.
* Acks: the writer keeps, per instance, the last timestamp such that every row up to it is
  acknowledged (contiguous watermark); the producer checkpoints exactly that.

Partition key = ``well_id``: rows of a well land on one shard in the order they were put. A partial
failure re-sends the failed records after the ones of the same call that succeeded, which can reorder
records of a well (as with the KPL); ``strict_order=True`` puts at most one record per well in a call,
so a retry always precedes the well's next record (ordered, at the cost of smaller calls).
"""

from __future__ import annotations

import hashlib
import logging
import random
import time
from bisect import bisect_right
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd
from botocore.exceptions import BotoCoreError, ClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from petrostream import wire
from petrostream.errors import UserError

log = logging.getLogger(__name__)

MAX_RECORDS_PER_CALL = 500
MAX_BYTES_PER_CALL = 5 * 1024 * 1024
MAX_BYTES_PER_RECORD = 1024 * 1024  # data + partition key
SHARD_RECORDS_PER_S = 1000
SHARD_BYTES_PER_S = 1024 * 1024
# Error codes worth another attempt (per entry or for the whole call).
RETRYABLE = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "Throttling",
        "LimitExceededException",
        "RequestLimitExceeded",
        "KMSThrottlingException",
        "InternalFailure",
        "InternalFailureException",
        "InternalServerError",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)
_SCAN_LIMIT = 5000  # queue entries looked at to build one call


class ProducerError(UserError, RuntimeError):
    """The producer cannot go on (stream missing, retries exhausted...); the message says why."""


@dataclass
class WriterStats:
    rows: int = 0  # rows acknowledged by Kinesis
    records: int = 0  # records acknowledged
    bytes: int = 0  # acknowledged bytes (data + partition keys)
    calls: int = 0  # PutRecords/PutRecord calls made (retries included)
    retries: int = 0  # entries re-sent after a failure
    failed_entries: int = 0  # entries a call reported as failed
    throttled_calls: int = 0  # calls that raised a retryable error as a whole
    budget_wait_s: float = 0.0  # time spent waiting for shard budget

    def as_dict(self) -> dict:
        return asdict(self)


# ------------------------------------------------------------------ budgets


class TokenBucket:
    """Records and bytes tokens refilled continuously; capacity = one second of budget."""

    def __init__(self, records_per_s: float, bytes_per_s: float, clock: Callable[[], float] = time.monotonic):
        self.records_rate, self.bytes_rate = float(records_per_s), float(bytes_per_s)
        self.records_cap = max(self.records_rate, 1.0)
        self.bytes_cap = max(self.bytes_rate, float(MAX_BYTES_PER_RECORD))  # one max-size record always fits
        self.records, self.bytes = self.records_cap, self.bytes_cap
        self.clock = clock
        self.last = clock()

    def _refill(self, now: float) -> None:
        dt = max(0.0, now - self.last)
        self.last = now
        self.records = min(self.records_cap, self.records + dt * self.records_rate)
        self.bytes = min(self.bytes_cap, self.bytes + dt * self.bytes_rate)

    def wait_time(self, records: int, nbytes: int, now: float | None = None) -> float:
        """Seconds until ``records`` and ``nbytes`` are available (0 if now)."""
        self._refill(self.clock() if now is None else now)
        need_r = max(0.0, min(records, self.records_cap) - self.records) / self.records_rate
        need_b = max(0.0, min(nbytes, self.bytes_cap) - self.bytes) / self.bytes_rate
        return max(need_r, need_b)

    def take(self, records: int, nbytes: int) -> None:
        self.records -= records
        self.bytes -= nbytes


class ShardMap:
    """Partition key -> shard id, from the open shards' hash-key ranges (MD5 of the key, 128-bit)."""

    def __init__(self, shards: list[tuple[int, str]]):
        shards = sorted(shards)
        self._starts = [s for s, _ in shards]
        self._ids = [i for _, i in shards]
        self._cache: dict[str, str] = {}

    @property
    def shard_ids(self) -> list[str]:
        return list(self._ids)

    def shard_for(self, key: str) -> str:
        sid = self._cache.get(key)
        if sid is None:
            h = int.from_bytes(hashlib.md5(key.encode("utf-8")).digest(), "big")  # noqa: S324 - Kinesis' hash
            sid = self._ids[max(0, bisect_right(self._starts, h) - 1)]
            self._cache[key] = sid
        return sid

    @classmethod
    def from_stream(cls, client: Any, stream: str) -> ShardMap:
        shards: list[dict] = []
        kwargs: dict[str, Any] = {"StreamName": stream}
        while True:
            resp = client.list_shards(**kwargs)
            shards += resp.get("Shards", [])
            token = resp.get("NextToken")
            if not token:
                break
            kwargs = {"NextToken": token}
        open_shards = [s for s in shards if "EndingSequenceNumber" not in s.get("SequenceNumberRange", {})]
        if not open_shards:
            raise ProducerError(f"stream {stream!r} has no open shard")
        return cls([(int(s["HashKeyRange"]["StartingHashKey"]), s["ShardId"]) for s in open_shards])


class ShardBudget:
    """One token bucket per shard; ``acquire`` blocks until every shard of a call has budget."""

    def __init__(self, shard_ids: list[str], records_per_s: float = SHARD_RECORDS_PER_S,
                 bytes_per_s: float = SHARD_BYTES_PER_S, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self.records_per_s, self.bytes_per_s = records_per_s, bytes_per_s
        self.clock, self.sleep = clock, sleep
        self.buckets = {sid: TokenBucket(records_per_s, bytes_per_s, clock) for sid in shard_ids}

    def bucket(self, shard: str) -> TokenBucket:
        b = self.buckets.get(shard)
        if b is None:
            b = self.buckets[shard] = TokenBucket(self.records_per_s, self.bytes_per_s, self.clock)
        return b

    def acquire(self, demand: dict[str, tuple[int, int]]) -> float:
        """Take (records, bytes) from each shard's bucket, waiting as needed. Returns seconds waited."""
        waited = 0.0
        while True:
            now = self.clock()
            wait = max((self.bucket(s).wait_time(r, b, now) for s, (r, b) in demand.items()), default=0.0)
            if wait <= 0:
                for s, (r, b) in demand.items():
                    self.bucket(s).take(r, b)
                return waited
            self.sleep(wait)
            waited += wait


# ------------------------------------------------------------------ writer


@dataclass(frozen=True)
class RecordMeta:
    instance_id: str
    well_id: str
    source: str
    event_class: int

    @classmethod
    def of(cls, meta: Any) -> RecordMeta:
        if isinstance(meta, RecordMeta):
            return meta
        get: Callable[[str], Any] = meta.get if isinstance(meta, dict) else lambda k: getattr(meta, k)
        return cls(str(get("instance_id")), str(get("well_id")), str(get("source")), int(get("event_class")))


@dataclass(eq=False)
class _Entry:
    data: bytes
    key: str
    shard: str | None
    meta: RecordMeta
    last_ts_ms: int
    rows: int
    deadline: float
    node: list  # [last_ts_ms, rows, acked] in the instance's outstanding deque

    @property
    def size(self) -> int:
        return len(self.data) + len(self.key.encode())


@dataclass
class _Buffer:
    meta: RecordMeta
    pieces: deque = field(default_factory=deque)  # (frame, added_at)
    rows: int = 0


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Full jitter: uniform(0, min(cap, base * 2**(attempt-1)))."""
    return rng.uniform(0.0, min(cap, base * (2 ** (attempt - 1))))


def error_code(exc: ClientError) -> tuple[str, str]:
    err = exc.response.get("Error", {}) if hasattr(exc, "response") else {}
    return str(err.get("Code", "")), str(err.get("Message", "")).splitlines()[0][:200] if err.get("Message") else ""


class KinesisWriter:
    """Aggregate rows into records, batch records into PutRecords calls, retry failures, keep budgets.

    ``add(meta, frame)`` buffers consecutive rows of one instance (``meta`` has instance_id, well_id,
    source, event_class; ``frame`` is timestamp-indexed like ``dataset.read_instance``). ``poll()``
    sends what the linger time says is due; ``flush()`` sends everything and waits for the acks;
    ``close()`` flushes and closes. ``drain_acked()`` returns watermark advances for the checkpoint.
    """

    def __init__(
        self,
        stream: str | None = None,
        *,
        client: Any = None,
        rows_per_record: int = 60,
        linger_ms: float = 1000.0,
        max_attempts: int = 8,
        backoff_base_s: float = 0.1,
        backoff_cap_s: float = 5.0,
        shard_budget: bool = True,
        shard_records_per_s: float = SHARD_RECORDS_PER_S,
        shard_bytes_per_s: float = SHARD_BYTES_PER_S,
        strict_order: bool = False,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        seed: int | None = None,
    ):
        from petrostream.settings import get_settings

        if rows_per_record < 1:
            raise ValueError("rows_per_record must be >= 1")
        if max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        self.stream = stream or get_settings().stream_name
        if client is None:
            from petrostream.aws import client as make_client

            client = make_client("kinesis")
        self.client = client
        self.rows_per_record = int(rows_per_record)
        self.linger_s = max(0.0, float(linger_ms)) / 1000.0
        self.max_attempts = int(max_attempts)
        self.backoff_base_s, self.backoff_cap_s = backoff_base_s, backoff_cap_s
        self.strict_order = strict_order
        self.clock, self.sleep = clock, sleep
        self.rng = random.Random(seed)
        self.stats = WriterStats()
        self.shards = self._load_shards()
        self.budget = (
            ShardBudget(self.shards.shard_ids, shard_records_per_s, shard_bytes_per_s, clock, sleep)
            if shard_budget else None
        )
        if self.budget:
            b = next(iter(self.budget.buckets.values()))
            self._shard_caps = (min(b.records_cap, MAX_RECORDS_PER_CALL), min(b.bytes_cap, MAX_BYTES_PER_CALL))
            per_call = min(MAX_BYTES_PER_CALL, int(b.bytes_cap) * len(self.shards.shard_ids))
        else:
            self._shard_caps = (MAX_RECORDS_PER_CALL, MAX_BYTES_PER_CALL)
            per_call = MAX_BYTES_PER_CALL
        self._full_bytes = per_call
        self._buffers: dict[str, _Buffer] = {}
        self._queue: deque[_Entry] = deque()
        self._queue_bytes = 0
        self._queue_deadline = float("inf")
        self._outstanding: dict[str, deque] = {}
        self._acked_new: dict[str, list] = {}  # instance_id -> [last_ts_ms, rows] since last drain
        self._shards_stale = False
        self.closed = False

    # ---------------------------------------------------------------- setup

    def _refresh_shards(self) -> None:
        self.shards = self._load_shards()
        for e in self._queue:
            e.shard = self.shards.shard_for(e.key)
        self._shards_stale = False
        log.info("shard map refreshed", extra={"stream": self.stream, "shards": len(self.shards.shard_ids)})

    def _load_shards(self) -> ShardMap:
        try:
            return ShardMap.from_stream(self.client, self.stream)
        except ClientError as exc:
            code, msg = error_code(exc)
            if code == "ResourceNotFoundException":
                raise ProducerError(
                    f"Kinesis stream {self.stream!r} not found (create it: petrostream local up / terraform)"
                ) from None
            raise ProducerError(f"cannot list the shards of stream {self.stream!r}: {code}: {msg}") from None
        except BotoCoreError as exc:
            raise ProducerError(f"cannot reach Kinesis for stream {self.stream!r}: {exc}") from None

    # ---------------------------------------------------------------- input

    def add(self, meta: Any, frame: pd.DataFrame) -> None:
        """Buffer consecutive rows of one instance; full records are queued and sent in batches."""
        if self.closed:
            raise ProducerError("writer is closed")
        if len(frame) == 0:
            return
        m = RecordMeta.of(meta)
        buf = self._buffers.get(m.instance_id)
        if buf is None:
            buf = self._buffers[m.instance_id] = _Buffer(m)
        buf.pieces.append((frame, self.clock()))
        buf.rows += len(frame)
        while buf.rows >= self.rows_per_record:
            self._cut(buf, self.rows_per_record)
        if buf.rows == 0:
            del self._buffers[m.instance_id]
        self.poll()

    def _cut(self, buf: _Buffer, n: int) -> None:
        parts, need = [], n
        first_added = buf.pieces[0][1]
        while need:
            frame, added = buf.pieces[0]
            if len(frame) <= need:
                parts.append(frame)
                buf.pieces.popleft()
                need -= len(frame)
            else:
                parts.append(frame.iloc[:need])
                buf.pieces[0] = (frame.iloc[need:], added)
                need = 0
        buf.rows -= n
        chunk = parts[0] if len(parts) == 1 else pd.concat(parts)
        self._enqueue(buf.meta, chunk, first_added + self.linger_s)

    def _enqueue(self, m: RecordMeta, frame: pd.DataFrame, deadline: float) -> None:
        data = wire.encode(instance_id=m.instance_id, well_id=m.well_id, source=m.source,
                           event_class=m.event_class, frame=frame)
        key = m.well_id
        if len(data) + len(key.encode()) > MAX_BYTES_PER_RECORD:
            if len(frame) == 1:
                raise ProducerError(f"{m.instance_id}: one row encodes to {len(data):,} bytes (> 1 MiB record limit)")
            half = len(frame) // 2
            self._enqueue(m, frame.iloc[:half], deadline)
            self._enqueue(m, frame.iloc[half:], deadline)
            return
        last_ts_ms = int(frame.index[-1].value // 1_000_000)
        node = [last_ts_ms, len(frame), False]
        self._outstanding.setdefault(m.instance_id, deque()).append(node)
        shard = self.shards.shard_for(key) if self.budget else None
        entry = _Entry(data, key, shard, m, last_ts_ms, len(frame), deadline, node)
        self._queue.append(entry)
        self._queue_bytes += entry.size
        self._queue_deadline = min(self._queue_deadline, deadline)

    # ---------------------------------------------------------------- output

    def next_deadline(self) -> float | None:
        """Monotonic time at which buffered rows are due to be sent (None if nothing is buffered)."""
        d = self._queue_deadline if self._queue else float("inf")
        for buf in self._buffers.values():
            d = min(d, buf.pieces[0][1] + self.linger_s)
        return None if d == float("inf") else d

    def poll(self, now: float | None = None) -> None:
        """Send every call that is full, or everything once a row has lingered ``linger_ms``.

        When one buffer is due, the buffers due within the next half linger are cut too and the whole
        queue goes out: with many wells a call leaves at most about every half linger (batched across
        wells), not once per well.
        """
        now = self.clock() if now is None else now
        due = bool(self._queue) and self._queue_deadline <= now
        if not due:
            due = any(b.pieces[0][1] + self.linger_s <= now for b in self._buffers.values())
        if due:
            horizon = now + self.linger_s / 2
            for iid in [i for i, b in self._buffers.items() if b.pieces[0][1] + self.linger_s <= horizon]:
                buf = self._buffers.pop(iid)
                self._cut(buf, buf.rows)
            while self._queue:
                self._send_one_call()
            return
        while self._queue and (len(self._queue) >= MAX_RECORDS_PER_CALL or self._queue_bytes >= self._full_bytes):
            self._send_one_call()

    def flush(self) -> None:
        """Send every buffered row now and wait until all are acknowledged (or raise)."""
        for iid in list(self._buffers):
            buf = self._buffers.pop(iid)
            self._cut(buf, buf.rows)
        while self._queue:
            self._send_one_call()

    def close(self) -> None:
        if not self.closed:
            self.flush()
            self.closed = True

    @property
    def buffered_rows(self) -> int:
        return sum(b.rows for b in self._buffers.values()) + sum(e.rows for e in self._queue)

    def drain_acked(self) -> dict[str, tuple[int, int]]:
        """Watermark advances since the last call: instance_id -> (last contiguous acked ts ms, rows)."""
        out = {k: (v[0], v[1]) for k, v in self._acked_new.items()}
        self._acked_new.clear()
        return out

    # ---------------------------------------------------------------- calls

    def _take_call(self) -> list[_Entry]:
        """Up to 500 records / 5 MiB (and one bucket per shard) from the queue, per-well FIFO kept."""
        cap_r, cap_b = self._shard_caps
        taken: list[_Entry] = []
        keep: deque[_Entry] = deque()
        total = 0
        per_shard: dict[str | None, list[int]] = {}
        keys_in: set[str] = set()
        blocked: set[str] = set()
        scanned = 0
        while self._queue and len(taken) < MAX_RECORDS_PER_CALL and scanned < _SCAN_LIMIT:
            e = self._queue.popleft()
            scanned += 1
            if e.key in blocked or (self.strict_order and e.key in keys_in):
                keep.append(e)
                continue
            r, b = per_shard.get(e.shard, (0, 0))
            if total + e.size > MAX_BYTES_PER_CALL or (
                self.budget is not None and (r + 1 > cap_r or b + e.size > cap_b)
            ):
                blocked.add(e.key)  # later records of this well must not overtake it
                keep.append(e)
                continue
            taken.append(e)
            total += e.size
            per_shard[e.shard] = [r + 1, b + e.size]
            keys_in.add(e.key)
        keep.extend(self._queue)
        self._queue = keep
        self._queue_bytes -= total
        self._queue_deadline = min((x.deadline for x in self._queue), default=float("inf"))
        return taken

    def _send_one_call(self) -> None:
        if self._shards_stale:
            self._refresh_shards()
        entries = self._take_call()
        if entries:
            self._put(entries)

    def _put(self, entries: list[_Entry]) -> None:
        todo, attempt, last = entries, 0, ""
        while todo:
            if self.budget is not None:
                demand: dict[str, list[int]] = {}
                for e in todo:
                    assert e.shard is not None  # set on enqueue / refresh whenever a budget is in use
                    d = demand.setdefault(e.shard, [0, 0])
                    d[0] += 1
                    d[1] += e.size
                self.stats.budget_wait_s += self.budget.acquire({s: (r, b) for s, (r, b) in demand.items()})
            failed: list[_Entry]
            try:
                resp = self.client.put_records(
                    StreamName=self.stream, Records=[{"Data": e.data, "PartitionKey": e.key} for e in todo]
                )
            except ClientError as exc:
                self.stats.calls += 1
                code, msg = error_code(exc)
                if code == "ResourceNotFoundException":
                    raise ProducerError(f"Kinesis stream {self.stream!r} not found") from None
                if code not in RETRYABLE:
                    raise ProducerError(f"PutRecords to {self.stream!r} failed: {code}: {msg}") from None
                self.stats.throttled_calls += 1
                failed, last = todo, f"{code}: {msg}"
            except (BotoConnectionError, BotoCoreError) as exc:
                self.stats.calls += 1
                self.stats.throttled_calls += 1
                failed, last = todo, f"{type(exc).__name__}: {exc}"
            else:
                self.stats.calls += 1
                results = resp.get("Records", [])
                if len(results) != len(todo):
                    raise ProducerError(f"PutRecords returned {len(results)} results for {len(todo)} records")
                failed = []
                for e, r in zip(todo, results, strict=True):
                    if r.get("ErrorCode"):
                        failed.append(e)
                        last = f"{r['ErrorCode']}: {r.get('ErrorMessage', '')}"
                    else:
                        self._ack(e)
                        if e.shard is not None and r.get("ShardId") not in (None, e.shard):
                            self._shards_stale = True  # resharded: re-read the hash-key ranges
                self.stats.failed_entries += len(failed)
            if not failed:
                return
            attempt += 1
            if attempt >= self.max_attempts:
                raise ProducerError(
                    f"{len(failed)} of {len(entries)} records to stream {self.stream!r} still failing after "
                    f"{attempt} attempts (last error {last}); acknowledged rows are checkpointed"
                )
            self.stats.retries += len(failed)
            delay = backoff_delay(attempt, self.backoff_base_s, self.backoff_cap_s, self.rng)
            log.debug("retrying failed records", extra={"failed": len(failed), "attempt": attempt,
                                                        "delay_s": round(delay, 3), "error": last})
            self.sleep(delay)
            todo = failed

    def _ack(self, e: _Entry) -> None:
        self.stats.records += 1
        self.stats.rows += e.rows
        self.stats.bytes += e.size
        e.node[2] = True
        dq = self._outstanding[e.meta.instance_id]
        while dq and dq[0][2]:
            last_ts, rows, _ = dq.popleft()
            acc = self._acked_new.setdefault(e.meta.instance_id, [last_ts, 0])
            acc[0] = last_ts
            acc[1] += rows
        if not dq:
            del self._outstanding[e.meta.instance_id]
