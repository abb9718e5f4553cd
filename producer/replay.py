"""Replay 3W instances into Kinesis as if live.

Schedule: every instance is put on one replay clock. ``align="start"`` (default) shifts each
instance so its first row plays when it is opened: the first ``max_open`` instances start together
at replay time 0, and each further one starts when a slot frees up. ``align="original"`` keeps the
original timestamps' relative timing (one global shift: the earliest selected row plays at replay
time 0, instances that overlapped in reality overlap in the replay); when no instance is playing,
the idle gap until the next one is skipped. Rows are sent when ``replay time / speed`` has elapsed
on the wall clock (``speed="max"``: no waiting). Payload timestamps are always the ORIGINAL 3W
timestamps (the identity of a row); ``sent_at`` carries the wall-clock send time.

Memory stays bounded: instances are merged with a heap over per-instance cursors and only the
(at most ``max_open``) instances currently playing are held in memory.
"""

from __future__ import annotations

import heapq
import logging
import math
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from petrostream.dataset import DataError, InstanceInfo, parse_instance_path, read_instance
from petrostream.errors import UserError
from petrostream.progress import Progress
from petrostream.schema import TIMESTAMP
from producer.checkpoint import Checkpoint, default_path
from producer.kinesis_writer import (
    SHARD_BYTES_PER_S,
    SHARD_RECORDS_PER_S,
    KinesisWriter,
    ProducerError,
    RecordMeta,
    ShardBudget,
    ShardMap,
    backoff_delay,
    error_code,
)

log = logging.getLogger(__name__)

ALIGNS = ("start", "original")
TICK_S = 0.1  # wall-clock precision of the interleaving at finite speeds


class NoInstancesError(UserError, ValueError):
    """Nothing to replay."""


# ------------------------------------------------------------------ summary


@dataclass
class ReplaySummary:
    stream: str
    mode: str = "aggregated"  # aggregated | per-row
    speed: str = "max"
    align: str = "start"
    instances: int = 0  # instances that had rows to send in this run
    rows: int = 0  # rows acknowledged by Kinesis in this run
    records: int = 0
    bytes: int = 0
    calls: int = 0
    retries: int = 0
    failed_entries: int = 0
    throttled_calls: int = 0
    budget_wait_s: float = 0.0
    elapsed_s: float = 0.0
    skipped_rows: int = 0  # rows not re-sent thanks to --resume
    interrupted: bool = False
    checkpoint: str | None = None
    bad_files: list[dict] = field(default_factory=list)  # {"path", "reason"}

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def aggregation(self) -> float:
        """Rows per Kinesis record."""
        return self.rows / self.records if self.records else 0.0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["rows_per_s"] = round(self.rows_per_s, 1)
        d["aggregation"] = round(self.aggregation, 2)
        d["elapsed_s"] = round(self.elapsed_s, 3)
        d["budget_wait_s"] = round(self.budget_wait_s, 3)
        return d

    def text(self) -> str:
        lines = [
            f"{'interrupted: ' if self.interrupted else ''}sent {self.rows:,} rows from {self.instances} instances "
            f"to stream {self.stream} ({self.mode}, speed {self.speed}, align {self.align})",
            f"  records {self.records:,}  aggregation {self.aggregation:,.1f} rows/record  bytes {self.bytes:,}",
            f"  calls {self.calls:,}  retries {self.retries:,} (failed entries {self.failed_entries:,}, "
            f"throttled calls {self.throttled_calls:,})  budget wait {self.budget_wait_s:,.1f}s",
            f"  elapsed {self.elapsed_s:,.1f}s  {self.rows_per_s:,.0f} rows/s",
        ]
        if self.skipped_rows:
            lines.append(f"  resumed: skipped {self.skipped_rows:,} rows already acknowledged")
        if self.checkpoint:
            lines.append(f"  checkpoint {self.checkpoint}")
        if self.bad_files:
            lines.append(f"  bad files skipped: {len(self.bad_files)}")
        return "\n".join(lines)


# ------------------------------------------------------------------ sources


BadFileHandler = Callable[[str, str], None]


def _log_bad(path: str, reason: str) -> None:
    log.warning("skipped bad file: %s", reason, extra={"path": path})


def _parse_speed(speed: float | str) -> float:
    if isinstance(speed, str):
        if speed.strip().lower() in ("max", "inf", "0"):
            return math.inf
        try:
            speed = float(speed)
        except ValueError:
            raise UserError(f"--speed must be a positive number or 'max', not {speed!r}") from None
    if not speed > 0:
        raise UserError(f"--speed must be a positive number or 'max', not {speed!r}")
    return float(speed)


def _speed_label(speed: float) -> str:
    return "max" if math.isinf(speed) else f"{speed:g}"


def resolve_sources(
    sources: str | Path | Iterable[str | Path],
    classes: Iterable[int] | None = None,
    limit_instances: int | None = None,
    on_bad: BadFileHandler = _log_bad,
) -> list[InstanceInfo]:
    """Instances named by directories (3W layout, or one class folder) and/or explicit files.

    Unusable paths are reported through ``on_bad`` and skipped. ``limit_instances`` takes instances
    round-robin over the event classes (deterministic), so a small replay still mixes event types.
    """
    items = [sources] if isinstance(sources, str | Path) else list(sources)
    wanted = set(classes) if classes is not None else None
    found: dict[str, InstanceInfo] = {}
    for item in items:
        p = Path(item)
        if p.is_dir():
            paths = sorted(p.glob("*.parquet")) if p.name.isdigit() else sorted(
                (q for q in p.glob("*/*.parquet") if q.parent.name.isdigit()),
                key=lambda q: (int(q.parent.name), q.name),
            )
        elif p.is_file():
            paths = [p]
        else:
            on_bad(str(p), f"{p}: no such file or directory")
            continue
        for path in paths:
            try:
                info = parse_instance_path(path)
            except DataError as exc:
                on_bad(str(path), str(exc))
                continue
            if wanted is None or info.event_class in wanted:
                found.setdefault(info.instance_id, info)
    infos = list(found.values())
    if limit_instances is not None:
        by_class: dict[int, list[InstanceInfo]] = {}
        for info in infos:
            by_class.setdefault(info.event_class, []).append(info)
        queues = [by_class[c] for c in sorted(by_class)]
        picked: list[InstanceInfo] = []
        while len(picked) < limit_instances and any(queues):
            for q in queues:
                if q and len(picked) < limit_instances:
                    picked.append(q.pop(0))
        infos = picked
    return infos


def _prescan(info: InstanceInfo, need_start: bool) -> tuple[int, float | None]:
    """Row count (and first timestamp, epoch seconds) from the parquet footer, without reading data."""
    import pyarrow.parquet as pq

    try:
        md = pq.ParquetFile(info.path).metadata
    except Exception as exc:  # pyarrow raises several types for corrupt files
        msg = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{info.path}: not a readable parquet file ({msg})") from None
    start = None
    if need_start:
        names = md.schema.names
        if TIMESTAMP in names and md.num_row_groups:
            col = names.index(TIMESTAMP)
            mins: list[pd.Timestamp] = []
            for g in range(md.num_row_groups):
                st = md.row_group(g).column(col).statistics
                if st is None or not st.has_min_max:
                    mins = []
                    break
                mins.append(pd.Timestamp(st.min))
            if mins:
                ts = min(mins)
                start = (ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo else ts).value / 1e9
        if start is None and info.start is not None:
            start = pd.Timestamp(info.start).value / 1e9
    return md.num_rows, start


# ------------------------------------------------------------------ scheduling


class _Cursor:
    """The remaining rows of one open instance, on the replay clock from ``open_at``."""

    def __init__(self, info: InstanceInfo, frame: pd.DataFrame, open_at: float):
        self.info = info
        self.meta = RecordMeta.of(info)
        self.frame = frame
        ts_ns = frame.index.asi8
        self.first_s = ts_ns[0] / 1e9
        self.rel = (ts_ns - ts_ns[0]) / 1e9  # seconds since this cursor's first row
        self.open_at = open_at
        self.pos = 0

    @property
    def n(self) -> int:
        return len(self.frame)

    def time_at(self, i: int) -> float:
        return self.open_at + float(self.rel[i])


@dataclass
class _Pending:
    info: InstanceInfo
    rows: int
    start_s: float | None  # original first timestamp (epoch s), align=original only


class Scheduler:
    """Heap merge over per-instance cursors: yields (cursor, frame chunk, replay time due).

    ``open_fn(info, open_at)`` returns a cursor (or None for a bad/empty instance); ``on_close``
    is told when a cursor is exhausted (its memory can go).
    """

    def __init__(self, pending: list[_Pending], *, align: str, max_open: int, quantum_s: float,
                 max_chunk: int, open_fn: Callable[[InstanceInfo, float], _Cursor | None]):
        if align not in ALIGNS:
            raise UserError(f"--align must be one of {', '.join(ALIGNS)}, not {align!r}")
        self.align, self.max_open, self.quantum, self.max_chunk = align, max(1, max_open), quantum_s, max_chunk
        self.open_fn = open_fn
        if align == "original":
            known = [p.start_s for p in pending if p.start_s is not None]
            self.origin = min(known, default=0.0)
            pending = sorted(pending, key=lambda p: (p.start_s is None, p.start_s or 0.0))
        else:
            self.origin = 0.0
        self.pending = pending
        self._next_pending = 0
        self.skipped = 0.0  # idle replay time skipped (align=original)
        self.clock = 0.0  # replay time of the latest row handed out
        self.heap: list[tuple[float, int, _Cursor]] = []
        self._seq = 0
        self.opened = 0

    def _has_pending(self) -> bool:
        return self._next_pending < len(self.pending)

    def _open(self, open_at: float) -> None:
        p = self.pending[self._next_pending]
        self._next_pending += 1
        cur = self.open_fn(p.info, open_at)
        if cur is None or cur.n == 0:
            return
        self.opened += 1
        self._seq += 1
        heapq.heappush(self.heap, (cur.time_at(0), self._seq, cur))

    def _planned(self, p: _Pending) -> float:
        return (p.start_s - self.origin - self.skipped) if p.start_s is not None else self.clock

    def _open_due(self) -> None:
        while self._has_pending() and len(self.heap) < self.max_open:
            if self.align == "start":
                self._open(self.clock)
                continue
            planned = self._planned(self.pending[self._next_pending])
            if not self.heap:
                if planned > self.clock:  # nothing playing: skip the idle gap
                    self.skipped += planned - self.clock
                    planned = self.clock
            elif planned > self.heap[0][0]:
                return
            self._open(max(self.clock, planned))

    def __iter__(self) -> Iterator[tuple[_Cursor, pd.DataFrame, float]]:
        while True:
            self._open_due()
            if not self.heap:
                if not self._has_pending():
                    return
                continue
            t, seq, cur = heapq.heappop(self.heap)
            a = cur.pos
            b = int(np.searchsorted(cur.rel, t + self.quantum - cur.open_at, side="left"))
            b = min(max(b, a + 1), a + self.max_chunk, cur.n)
            due = cur.time_at(b - 1)
            cur.pos = b
            self.clock = max(self.clock, due)
            if b < cur.n:
                heapq.heappush(self.heap, (cur.time_at(b), seq, cur))
            yield cur, cur.frame.iloc[a:b], due


# ------------------------------------------------------------------ signals


class _Stop:
    def __init__(self, external: threading.Event | None = None):
        self.flag = False
        self.signal: str | None = None
        self.external = external

    def __bool__(self) -> bool:
        return self.flag or (self.external is not None and self.external.is_set())


@contextmanager
def _signals(stop: _Stop, enabled: bool):
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield
        return
    sigs = (signal.SIGINT, signal.SIGTERM)
    prev = {s: signal.getsignal(s) for s in sigs}

    def handler(signum, _frame):
        stop.flag = True
        stop.signal = signal.Signals(signum).name
        for s in sigs:  # a second signal aborts the flush
            signal.signal(s, prev[s] if s == signal.SIGINT else signal.SIG_DFL)

    for s in sigs:
        signal.signal(s, handler)
    try:
        yield
    finally:
        for s in sigs:
            signal.signal(s, prev[s])


# ------------------------------------------------------------------ replay


def _prepare_frame(info: InstanceInfo, max_rows: int | None, after_ms: int | None) -> tuple[pd.DataFrame, int]:
    """The rows of an instance still to send: truncated to ``max_rows``, then after the checkpoint."""
    frame = read_instance(info)
    if not frame.index.is_monotonic_increasing:
        frame = frame.sort_index(kind="stable")
    if frame.index.has_duplicates:
        frame = frame[~frame.index.duplicated(keep="first")]
    if max_rows is not None:
        frame = frame.iloc[:max_rows]
    skipped = 0
    if after_ms is not None:
        cut = int(np.searchsorted(frame.index.asi8, after_ms * 1_000_000, side="right"))
        skipped = cut
        frame = frame.iloc[cut:]
    return frame, skipped


def replay(
    sources: str | Path | Iterable[str | Path],
    *,
    stream: str | None = None,
    speed: float | str = 1.0,
    align: str = "start",
    classes: Iterable[int] | None = None,
    limit_instances: int | None = None,
    max_rows_per_instance: int | None = None,
    rows_per_record: int = 60,
    linger_ms: float = 1000.0,
    max_open: int = 32,
    resume: bool = False,
    checkpoint: bool = True,
    checkpoint_path: str | Path | None = None,
    checkpoint_every_s: float = 2.0,
    max_attempts: int = 8,
    backoff_base_s: float = 0.1,
    backoff_cap_s: float = 5.0,
    shard_budget: bool = True,
    shard_records_per_s: float = SHARD_RECORDS_PER_S,
    shard_bytes_per_s: float = SHARD_BYTES_PER_S,
    strict_order: bool = False,
    client: Any = None,
    progress: bool = True,
    handle_signals: bool = False,
    stop: threading.Event | None = None,
    on_bad_file: BadFileHandler = _log_bad,
    seed: int | None = None,
) -> ReplaySummary:
    """Replay 3W instances into a Kinesis stream; returns what was sent.

    ``sources``: a 3W-layout directory, a class folder, instance files, or a list of those.
    ``speed``: 1 = real time, N = N times faster, ``"max"`` = as fast as possible.
    Stops early (flushing, checkpointing) when ``stop`` is set or, with ``handle_signals``, on
    SIGINT/SIGTERM; ``summary.interrupted`` tells. Raises :class:`NoInstancesError` when nothing is
    found and :class:`ProducerError` when Kinesis keeps refusing (after checkpointing the acked rows).
    """
    from petrostream.settings import get_settings

    settings = get_settings()
    stream = stream or settings.stream_name
    speed_f = _parse_speed(speed)
    if align not in ALIGNS:
        raise UserError(f"--align must be one of {', '.join(ALIGNS)}, not {align!r}")
    if max_rows_per_instance is not None and max_rows_per_instance < 1:
        raise UserError("--max-rows-per-instance must be >= 1")
    summary = ReplaySummary(stream=stream, speed=_speed_label(speed_f), align=align)

    def bad(path: str, reason: str) -> None:
        summary.bad_files.append({"path": path, "reason": reason})
        on_bad_file(path, reason)

    infos = resolve_sources(sources, classes, limit_instances, bad)
    if not infos:
        raise NoInstancesError(f"no 3W instance found in {_describe(sources)}"
                               + (f" for classes {sorted(set(classes))}" if classes is not None else ""))

    cp_path = Path(checkpoint_path) if checkpoint_path else default_path(stream, settings.state_dir)
    if resume:
        cp = Checkpoint.load(cp_path, stream)
    else:
        if checkpoint and cp_path.exists():
            log.info("starting over: existing checkpoint will be replaced (use --resume to continue it)",
                     extra={"checkpoint": str(cp_path)})
        cp = Checkpoint(cp_path, stream)
    summary.checkpoint = str(cp_path) if checkpoint else None

    writer = KinesisWriter(
        stream, client=client, rows_per_record=rows_per_record, linger_ms=linger_ms, max_attempts=max_attempts,
        shard_budget=shard_budget, shard_records_per_s=shard_records_per_s, shard_bytes_per_s=shard_bytes_per_s,
        strict_order=strict_order, seed=seed, backoff_base_s=backoff_base_s, backoff_cap_s=backoff_cap_s,
    )
    pending, total = _plan(infos, align, max_rows_per_instance, cp if resume else None, bad)
    if not pending:
        raise NoInstancesError(f"no readable 3W instance in {_describe(sources)}")

    run = _Run(summary, writer, cp, speed_f, checkpoint, checkpoint_every_s,
               Progress(f"produce -> {stream}", total=total or None, unit="rows", enabled=progress), _Stop(stop))

    def open_fn(info: InstanceInfo, open_at: float) -> _Cursor | None:
        try:
            frame, skipped = _prepare_frame(info, max_rows_per_instance, cp.last_ts_ms(info.instance_id))
        except DataError as exc:
            bad(str(info.path), str(exc))
            return None
        summary.skipped_rows += skipped
        return _Cursor(info, frame, open_at) if len(frame) else None

    quantum = math.inf if math.isinf(speed_f) else max(1.0, speed_f * TICK_S)
    sched = Scheduler(pending, align=align, max_open=max_open, quantum_s=quantum, max_chunk=rows_per_record,
                      open_fn=open_fn)
    run.run(sched, handle_signals)
    return summary


def _plan(infos: list[InstanceInfo], align: str, max_rows: int | None, cp: Checkpoint | None,
          bad: BadFileHandler) -> tuple[list[_Pending], int]:
    """Footer prescan: readable instances and the number of rows still to send (for the progress)."""
    pending: list[_Pending] = []
    total = 0
    for info in infos:
        try:
            rows, start = _prescan(info, need_start=(align == "original"))
        except DataError as exc:
            bad(str(info.path), str(exc))
            continue
        rows = min(rows, max_rows) if max_rows else rows
        done = int(cp.instances.get(info.instance_id, {}).get("rows", 0)) if cp is not None else 0
        total += max(0, rows - done)
        pending.append(_Pending(info, rows, start))
    return pending, total


class _Run:
    """One replay: pacing, writer polling, checkpoint sync, progress, stop handling."""

    def __init__(self, summary: ReplaySummary, writer: KinesisWriter, cp: Checkpoint, speed: float,
                 checkpoint: bool, checkpoint_every_s: float, bar: Progress, stopper: _Stop):
        self.summary, self.writer, self.cp, self.speed = summary, writer, cp, speed
        self.checkpoint, self.every = checkpoint, checkpoint_every_s
        self.bar, self.stopper = bar, stopper
        self.t0 = self.last_save = time.monotonic()

    def sync(self, force: bool = False) -> None:
        """Acked watermarks -> checkpoint (saved every ``every`` seconds, or now with ``force``)."""
        acked = self.writer.drain_acked()
        for iid, (last_ts, rows) in acked.items():
            self.cp.advance(iid, last_ts, rows)
        n = sum(r for _, r in acked.values())
        if n:
            self.bar.update(n)
        now = time.monotonic()
        if self.checkpoint and (force or (acked and now - self.last_save >= self.every)):
            self.cp.save()
            self.last_save = now

    def wait_until(self, due_wall: float) -> bool:
        """Sleep until ``due_wall`` while sending lingering records; False if asked to stop."""
        while not self.stopper:
            now = time.monotonic()
            if now >= due_wall:
                return True
            self.writer.poll(now)
            self.sync()
            nd = self.writer.next_deadline()
            target = min(due_wall, now + TICK_S, nd if nd is not None else math.inf)
            if target > now:
                time.sleep(target - now)
        return False

    def run(self, sched: Scheduler, handle_signals: bool) -> None:
        self.t0 = time.monotonic()
        paced = not math.isinf(self.speed)
        try:
            with _signals(self.stopper, handle_signals):
                for cur, chunk, due in sched:
                    if self.stopper or (paced and not self.wait_until(self.t0 + due / self.speed)):
                        break
                    self.writer.add(cur.meta, chunk)
                    self.sync()
                if self.stopper:
                    self.summary.interrupted = True
                    log.info("stopping: flushing buffered records and writing the checkpoint",
                             extra={"signal": self.stopper.signal, "buffered_rows": self.writer.buffered_rows})
                self.writer.close()
        finally:
            self.summary.elapsed_s = time.monotonic() - self.t0
            _fill(self.summary, self.writer)
            self.summary.instances = sched.opened
            self.sync(force=True)  # also after a ProducerError: the acked rows are kept
            self.bar.close()


def _fill(summary: ReplaySummary, writer: KinesisWriter) -> None:
    st = writer.stats
    summary.rows, summary.records, summary.bytes, summary.calls = st.rows, st.records, st.bytes, st.calls
    summary.retries, summary.failed_entries, summary.throttled_calls = st.retries, st.failed_entries, st.throttled_calls
    summary.budget_wait_s = st.budget_wait_s


def _describe(sources: Any) -> str:
    items = [sources] if isinstance(sources, str | Path) else list(sources)
    names = [str(x) for x in items[:3]]
    return ", ".join(names) + (f" (+{len(items) - 3} more)" if len(items) > 3 else "") if names else "(no input)"


# ------------------------------------------------------------------ baseline


def put_record_per_row(
    sources: str | Path | Iterable[str | Path],
    *,
    stream: str | None = None,
    classes: Iterable[int] | None = None,
    limit_instances: int | None = None,
    max_rows_per_instance: int | None = None,
    client: Any = None,
    shard_budget: bool = True,
    max_attempts: int = 8,
    progress: bool = False,
    on_bad_file: BadFileHandler = _log_bad,
) -> ReplaySummary:
    """Baseline for benchmarks: one PutRecord call per row (no aggregation, no batching), as fast as
    possible, instance after instance. Same wire format, partition key and summary as :func:`replay`."""
    from petrostream import wire
    from petrostream.settings import get_settings

    stream = stream or get_settings().stream_name
    summary = ReplaySummary(stream=stream, mode="per-row", speed="max", align="start")

    def bad(path: str, reason: str) -> None:
        summary.bad_files.append({"path": path, "reason": reason})
        on_bad_file(path, reason)

    infos = resolve_sources(sources, classes, limit_instances, bad)
    if not infos:
        raise NoInstancesError(f"no 3W instance found in {_describe(sources)}")
    if client is None:
        from petrostream.aws import client as make_client

        client = make_client("kinesis")
    from botocore.exceptions import ClientError

    shards = ShardMap.from_stream(client, stream)
    budget = ShardBudget(shards.shard_ids) if shard_budget else None
    import random

    rng = random.Random()
    bar = Progress(f"put_record -> {stream}", unit="rows", enabled=progress)
    t0 = time.monotonic()
    for info in infos:
        try:
            frame, _ = _prepare_frame(info, max_rows_per_instance, None)
        except DataError as exc:
            bad(str(info.path), str(exc))
            continue
        summary.instances += 1
        key = info.well_id
        shard = shards.shard_for(key)
        for i in range(len(frame)):
            data = wire.encode(instance_id=info.instance_id, well_id=info.well_id, source=info.source,
                               event_class=info.event_class, frame=frame.iloc[i : i + 1])
            size = len(data) + len(key.encode())
            for attempt in range(1, max_attempts + 1):
                if budget is not None:
                    summary.budget_wait_s += budget.acquire({shard: (1, size)})
                summary.calls += 1
                try:
                    client.put_record(StreamName=stream, Data=data, PartitionKey=key)
                    break
                except ClientError as exc:
                    code, msg = error_code(exc)
                    if code not in {"ProvisionedThroughputExceededException", "ThrottlingException"} or (
                        attempt == max_attempts
                    ):
                        raise ProducerError(f"PutRecord to {stream!r} failed: {code}: {msg}") from None
                    summary.retries += 1
                    time.sleep(backoff_delay(attempt, 0.1, 5.0, rng))
            summary.rows += 1
            summary.records += 1
            summary.bytes += size
            bar.update(1)
    summary.elapsed_s = time.monotonic() - t0
    bar.close()
    return summary
