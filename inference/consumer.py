"""Kinesis consumer that scales out over processes: shard leases, micro-batches, flushes, checkpoints.

* A **coordinator** thread per process lists the shards (creating a lease per shard, with its parents),
  renews the leases it holds (heartbeat), takes free or expired ones and balances: a worker holds at
  most ``ceil(eligible shards / live workers)`` leases; live workers are the owners of unexpired
  leases. A worker short of its share asks the most loaded worker to hand one over (``handoff_to``);
  the owner finishes its batch, checkpoints and transfers the lease, so a shard is never read by two
  workers at once (a dead owner's lease simply expires).
* A **shard worker** thread per held lease reads with ``GetRecords(Limit=...)`` from the checkpoint
  (``AFTER_SEQUENCE_NUMBER``) or ``TRIM_HORIZON``, hands each micro-batch to a ``Processor`` (scoring,
  or raw archive), and flushes when ``max_rows`` rows are buffered or the oldest is ``flush_s`` old.
* A flush is: record the intent (``pending`` = first/last sequence and object name) in the lease ->
  write the objects (deterministic name ``<shard>-<first seq>-<last seq>``) -> checkpoint ``last``
  in the lease (with the processor state). All three are conditional on holding the lease. A
  successor that finds ``pending`` re-reads exactly that range and re-writes the same objects, so
  at-least-once reads become exactly-once rows.
* Child shards (split/merge) become eligible only when all their parents are at ``SHARD_END``.
* A graceful end of a shard worker (stop, handoff, shard end) is: final flush -> ``drain`` (the processor
  writes what it held back, e.g. throttled open-episode versions) -> release / hand over / ``SHARD_END``.
  Only when the final flush left nothing buffered: then what is drained is the checkpointed state.
"""

from __future__ import annotations

import logging
import math
import os
import random
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from inference.leases import SHARD_END, TRIM_HORIZON, Lease, LeaseLost, LeaseTable
from inference.metrics import Metrics, default_metrics
from petrostream.errors import UserError
from petrostream.settings import Settings, get_settings

log = logging.getLogger(__name__)


def default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class Processor(Protocol):
    """What a shard worker feeds. One instance per shard (its state belongs to that shard)."""

    def restore(self, state: dict | None) -> None: ...
    def warm(self, records: list[dict]) -> None: ...
    def process(self, records: list[dict]) -> int: ...  # returns rows accepted into the buffer
    def buffered_rows(self) -> int: ...
    def flush(self, name: str) -> int: ...  # durably writes what is buffered; returns rows written
    def maintain(self) -> bool: ...  # time-based housekeeping; True if there is state to persist
    def write_state_only(self) -> None: ...  # persist side objects (episodes) without new records
    def state(self) -> dict | None: ...
    def warm_rows_target(self) -> int: ...
    # optional: drain(fence) -> int, on a graceful end after the final flush: write what was held back
    # (ScoringProcessor: throttled open-episode versions); ``fence`` first (raises LeaseLost if not ours)


@dataclass
class ConsumerConfig:
    stream: str
    worker_id: str = field(default_factory=default_worker_id)
    namespace: str = ""  # lease key prefix: "" for scoring, "archive:" for the raw archive
    consumer: str = "serve"  # metric label
    limit: int = 1000  # GetRecords Limit
    flush_s: float = 10.0
    max_rows: int = 5000
    lease_s: float = 10.0
    poll_s: float = 1.0  # wait after an empty GetRecords when caught up
    shard_sync_s: float = 30.0
    maintain_s: float = 5.0
    max_leases: int = 0  # 0 = no cap beyond the fair share
    shutdown_s: float = 90.0  # flush + checkpoint + release must fit the Spot 2-minute notice

    @property
    def renew_s(self) -> float:
        return max(0.2, self.lease_s / 3)


@dataclass
class _Obs:
    counter: int
    owner: str | None
    since: float
    renewing: bool = False  # this owner was seen renewing (a change after our first look): alive


class Consumer:
    """Coordinator: leases, balancing, one ShardWorker thread per held lease."""

    def __init__(self, config: ConsumerConfig, processor_factory: Callable[[str], Processor],
                 metrics: Metrics | None = None, settings: Settings | None = None,
                 ready: Callable[[], bool] | None = None):
        self.cfg = config
        self.settings = settings or get_settings()
        self.metrics = metrics or default_metrics()
        self.factory = processor_factory
        self.table = LeaseTable(config.stream, config.worker_id, config.namespace, self.settings)
        self.ready = ready or (lambda: True)
        self.stop_event = threading.Event()
        self._wake = threading.Event()
        self.workers: dict[str, ShardWorker] = {}
        self._lock = threading.Lock()
        self._observed: dict[str, _Obs] = {}
        self._closed_shards: dict[str, str] = {}  # shard -> ending sequence number (closed by resharding)
        self._known_shards: set[str] = set()
        self._failures: dict[str, int] = {}
        self._cooldown: dict[str, float] = {}
        self._last_sync = 0.0
        self._resync = True
        self.last_activity = time.monotonic()
        self.suspects = -1  # eligible leases nobody works on yet (free, or owner looks dead); -1: not known yet
        self.status = "starting"
        self.error: str | None = None
        self._thread: threading.Thread | None = None
        self._kinesis = None

    # ------------------------------------------------------------------ lifecycle

    @property
    def kinesis(self):
        if self._kinesis is None:
            from petrostream.aws import client

            self._kinesis = client("kinesis", self.settings)
        return self._kinesis

    def start(self) -> None:
        self._check_stream()
        self._thread = threading.Thread(target=self._run, name=f"coordinator-{self.cfg.consumer}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        self._wake.set()

    def join(self, timeout: float | None = None) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and self.status == "running"

    def held(self) -> list[str]:
        with self._lock:
            return sorted(w.lease.shard for w in self.workers.values())

    def lag_ms(self) -> float:
        with self._lock:
            return max((w.millis_behind for w in self.workers.values()), default=0.0)

    def idle_for(self) -> float:
        return time.monotonic() - self.last_activity

    def touch(self) -> None:
        self.last_activity = time.monotonic()

    def busy(self) -> bool:
        """True while any held shard has unflushed rows or unread records."""
        with self._lock:
            return any(w.has_buffer or w.millis_behind > 0 for w in self.workers.values())

    def _check_stream(self) -> None:
        try:
            self.kinesis.describe_stream_summary(StreamName=self.cfg.stream)
        except Exception as exc:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
            if code == "ResourceNotFoundException":
                raise UserError(f"Kinesis stream {self.cfg.stream!r} does not exist (petrostream local up?)") from None
            raise

    def _run(self) -> None:
        self.status = "running"
        try:
            while not self.stop_event.is_set():
                try:
                    self._round()
                except Exception as exc:  # a DynamoDB/Kinesis hiccup must not kill the coordinator
                    self.error = f"{type(exc).__name__}: {exc}"
                    log.warning("coordinator round failed", extra={"error": self.error}, exc_info=True)
                self._wake.wait(self.cfg.renew_s)
                self._wake.clear()
        finally:
            self.status = "stopping"
            self._shutdown()
            self.status = "stopped"

    def _shutdown(self) -> None:
        with self._lock:
            workers = list(self.workers.values())
        for w in workers:
            w.request_stop()
        deadline = time.monotonic() + self.cfg.shutdown_s
        while time.monotonic() < deadline:
            with self._lock:
                alive = [w for w in self.workers.values() if w.is_alive()]
            if not alive:
                break
            # keep heartbeating while workers flush, or a slow final flush could lose its lease
            self._heartbeat(quiet=True)
            for w in alive:
                w.join(min(self.cfg.renew_s, max(0.0, deadline - time.monotonic())))
        with self._lock:
            left = [w.lease.shard for w in self.workers.values() if w.is_alive()]
        if left:
            log.warning("shutdown deadline hit; these shards resume from their last checkpoint",
                        extra={"shards": left})
        self.metrics.leases_held.set(0, consumer=self.cfg.consumer)

    # ------------------------------------------------------------------ one coordination round

    def _round(self) -> None:
        if self._resync or time.monotonic() - self._last_sync >= self.cfg.shard_sync_s:
            self._sync_shards()
        self._reap()
        self._heartbeat()
        ready = self.ready()
        if not ready:
            self.touch()  # waiting for the model is not idleness
        self._balance(take=ready)
        with self._lock:
            self.metrics.leases_held.set(len(self.workers), consumer=self.cfg.consumer)

    def _sync_shards(self) -> None:
        shards: list[dict] = []
        kwargs: dict[str, Any] = {"StreamName": self.cfg.stream}
        while True:
            resp = self.kinesis.list_shards(**kwargs)
            shards += resp.get("Shards", [])
            token = resp.get("NextToken")
            if not token:
                break
            kwargs = {"NextToken": token}
        have = {lease.shard for lease in self.table.list()}
        for sh in shards:
            sid = sh["ShardId"]
            ending = sh.get("SequenceNumberRange", {}).get("EndingSequenceNumber")
            if ending:
                self._closed_shards[sid] = ending
            if sid not in have:
                parents = [p for p in (sh.get("ParentShardId"), sh.get("AdjacentParentShardId")) if p]
                if self.table.create(sid, parents):
                    log.info("lease created", extra={"lease": self.table.key(sid), "parents": parents})
        self._known_shards = {sh["ShardId"] for sh in shards}
        self._last_sync = time.monotonic()
        self._resync = False

    def shard_closed(self, shard: str) -> bool:
        return shard in self._closed_shards

    def shard_ended(self) -> None:
        """A worker reached SHARD_END: look for child shards at once."""
        self._resync = True
        self._wake.set()

    def _reap(self) -> None:
        with self._lock:
            done = [k for k, w in self.workers.items() if not w.is_alive()]
            for k in done:
                w = self.workers.pop(k)
                if w.failed:  # do not retake it in a hot loop: back off 2, 4, ... 60 s
                    self._observed.pop(k, None)
                    n = self._failures.get(k, 0) + 1
                    self._failures[k] = n
                    self._cooldown[k] = time.monotonic() + min(60.0, 2.0**n)

    def _heartbeat(self, quiet: bool = False) -> None:
        with self._lock:
            workers = list(self.workers.values())
        for w in workers:
            if w.lost or w.released or not w.is_alive():
                continue
            try:
                lease = self.table.renew(w.lease)
            except LeaseLost:
                w.lost = True
                self.metrics.lease_events.inc(consumer=self.cfg.consumer, event="lost")
                log.warning("lease lost", extra={"lease": w.lease.key, "worker": self.cfg.worker_id})
                continue
            except Exception as exc:
                if not quiet:
                    log.warning("lease renew failed; retrying", extra={"lease": w.lease.key, "error": str(exc)})
                continue
            if lease.handoff_to and lease.handoff_to != self.cfg.worker_id and not w.handoff_to:
                w.handoff_to = lease.handoff_to
                log.info("handoff requested", extra={"lease": lease.key, "to": lease.handoff_to})

    def _observe(self, leases: list[Lease]) -> None:
        now = time.monotonic()
        for lease in leases:
            prev = self._observed.get(lease.key)
            if prev is None or prev.counter != lease.counter or prev.owner != lease.owner:
                renewing = prev is not None and prev.owner == lease.owner and prev.counter != lease.counter
                self._observed[lease.key] = _Obs(lease.counter, lease.owner, now, renewing)

    def _expired(self, lease: Lease) -> bool:
        if not lease.owner:
            return True
        obs = self._observed.get(lease.key)
        return obs is not None and time.monotonic() - obs.since >= self.cfg.lease_s

    def _stale(self, lease: Lease) -> bool:
        """Owner is not renewing (not yet expired): probably dead. Until an owner has been seen renewing once, it
        counts as stale too, so that a worker that just started does not take "nobody renewing yet" for "all
        leases are alive" (``--exit-when-idle`` would then stop before taking a dead worker's leases)."""
        obs = self._observed.get(lease.key)
        if obs is None:
            return False
        return not obs.renewing or time.monotonic() - obs.since >= 2.5 * self.cfg.renew_s

    def _balance(self, take: bool = True) -> None:
        leases = self.table.list()
        self._observe(leases)
        me = self.cfg.worker_id
        by_shard = {lease.shard: lease for lease in leases}
        with self._lock:
            held = set(self.workers)

        def parents_done(lease: Lease) -> bool:
            return all(p not in by_shard or by_shard[p].finished for p in lease.parents)

        eligible = [lease for lease in leases if not lease.finished and parents_done(lease)]
        live_owner = {lease.key: lease.owner for lease in eligible
                      if lease.key in held or (lease.owner and not self._expired(lease))}
        workers = set(live_owner.values()) | {me}
        target = math.ceil(len(eligible) / len(workers)) if eligible else 0
        if self.cfg.max_leases:
            target = min(target, self.cfg.max_leases)
        self.suspects = sum(
            1 for lease in eligible
            if lease.key not in held and (not lease.owner or lease.owner == me or self._stale(lease))
        )
        if not take:
            return

        # leases handed over to us by their previous owner
        for lease in eligible:
            if lease.owner == me and lease.handed_by and lease.key not in held:
                giver = lease.handed_by
                if self.table.adopt(lease) is not None:
                    self.metrics.lease_events.inc(consumer=self.cfg.consumer, event="adopted")
                    log.info("lease adopted", extra={"lease": lease.key, "from": giver})
                    self._start_worker(lease)
                    held.add(lease.key)

        mine = len(held)
        now = time.monotonic()
        free = [lease for lease in eligible if lease.key not in held and self._expired(lease)
                and self._cooldown.get(lease.key, 0.0) <= now]
        random.shuffle(free)
        for lease in free:
            if mine >= target or self.stop_event.is_set():
                break
            prev_owner = lease.owner
            if self.table.take(lease, steal_from=prev_owner) is not None:
                self.metrics.lease_events.inc(consumer=self.cfg.consumer, event="expired" if prev_owner else "taken")
                self._start_worker(lease)
                mine += 1
                self.touch()
        outstanding = any(lease.handoff_to == me for lease in eligible)  # one request at a time: no overshoot
        if mine < target and not free and not outstanding:
            self._ask_for_one(eligible, live_owner, target, mine)

    def _ask_for_one(self, eligible: list[Lease], live_owner: dict[str, str | None], target: int, mine: int) -> None:
        """Short of our share and nothing free: ask the most loaded worker (above its share) for one lease."""
        me = self.cfg.worker_id
        counts: dict[str, list[Lease]] = {}
        for lease in eligible:
            owner = live_owner.get(lease.key)
            if owner and owner != me:
                counts.setdefault(owner, []).append(lease)
        if not counts:
            return
        victim, theirs = max(counts.items(), key=lambda kv: (len(kv[1]), kv[0]))
        if len(theirs) <= target:
            return
        candidates = [lease for lease in theirs if not lease.handoff_to]
        if candidates and self.table.request_handoff(random.choice(candidates)):
            self.metrics.lease_events.inc(consumer=self.cfg.consumer, event="handoff_requested")
            log.info("asked for a lease", extra={"victim": victim, "target": target, "mine": mine})

    def _start_worker(self, lease: Lease) -> None:
        w = ShardWorker(self, lease, self.factory(lease.shard))
        with self._lock:
            self.workers[lease.key] = w
        w.start()


class ShardWorker(threading.Thread):
    """Reads one shard for as long as this process holds its lease."""

    def __init__(self, consumer: Consumer, lease: Lease, processor: Processor):
        super().__init__(name=f"shard-{lease.shard}", daemon=True)
        self.c = consumer
        self.cfg = consumer.cfg
        self.lease = lease
        self.proc = processor
        self.table = consumer.table
        self.metrics = consumer.metrics
        self._stop_req = threading.Event()
        self.lost = False
        self.released = False  # released / handed over: nothing left to renew
        self.failed = False
        self.handoff_to: str | None = None
        self.millis_behind = 0.0
        self.buffered = 0
        self._first: str | None = None
        self._last: str | None = None
        self._opened = 0.0
        self._last_read: str | None = None
        self._replaying = False
        self._replay_until: str | None = None
        self._recent: deque[tuple[str, int]] = deque(maxlen=10)  # (first seq, rows) of recent flushes
        self._kinesis = None

    @property
    def kinesis(self):
        if self._kinesis is None:
            from petrostream.aws import client

            self._kinesis = client("kinesis", self.c.settings)
        return self._kinesis

    def request_stop(self) -> None:
        self._stop_req.set()

    @property
    def has_buffer(self) -> bool:
        return self._first is not None

    # ------------------------------------------------------------------ main loop

    def run(self) -> None:
        try:
            self._run()
        except LeaseLost as exc:
            log.warning("stopped reading: lease lost (the new owner resumes from the checkpoint)",
                        extra={"shard": self.lease.shard, "error": str(exc)})
        except Exception as exc:
            self.failed = True
            log.exception("shard worker failed; releasing the lease", extra={"shard": self.lease.shard})
            self.c.error = f"{self.lease.shard}: {type(exc).__name__}: {exc}"
            self._release()
        finally:
            self.c.metrics.millis_behind.remove(consumer=self.cfg.consumer, shard=self.lease.shard)

    def _run(self) -> None:
        lease = self.lease
        if lease.finished:
            return
        state = lease.state
        if state is None and lease.checkpoint == TRIM_HORIZON and lease.parents:
            state = self._parents_state(lease.parents)
        self.proc.restore(state)
        start = lease.checkpoint
        if lease.warm_from and start not in (TRIM_HORIZON, SHARD_END):
            self._warm(lease.warm_from, start)
        self._replay_until = lease.pending["last"] if lease.pending else None
        if self._replay_until:
            log.info("re-writing the pending range of the previous owner",
                     extra={"shard": lease.shard, "pending": lease.pending})
        iterator = self._iterator(start)
        last_maintain = time.monotonic()
        while not self._control():
            resp = self._get_records(iterator)
            if resp is None:  # iterator expired: resume after what we have read
                iterator = self._iterator(self._last_read or start)
                continue
            records = resp.get("Records", [])
            self.millis_behind = float(resp.get("MillisBehindLatest", 0) or 0)
            self.metrics.millis_behind.set(self.millis_behind, consumer=self.cfg.consumer, shard=lease.shard)
            self._handle(records)
            next_iterator: str | None = resp.get("NextShardIterator")
            closed_and_drained = not records and self.millis_behind == 0 and self.c.shard_closed(lease.shard)
            if next_iterator is None or closed_and_drained:
                self._finish_shard()
                return
            iterator = next_iterator
            now = time.monotonic()
            if self._replay_until is None and self._due(now):
                self._flush()
            if now - last_maintain >= self.cfg.maintain_s:
                last_maintain = now
                if self.proc.maintain() and self._first is None:
                    self._persist_state()
            if not records and self.millis_behind == 0:
                self._stop_req.wait(self.cfg.poll_s)

    def _control(self) -> bool:
        """Lost / stop / handoff between micro-batches. True when the loop must end."""
        if self.lost:
            raise LeaseLost(self.lease.key)
        if self._stop_req.is_set():
            self._flush()
            self._drain()
            self._release()
            return True
        if self.handoff_to:
            self._flush()
            self._drain()
            self.released = True
            if self.table.transfer(self.lease, self.handoff_to):
                self.metrics.lease_events.inc(consumer=self.cfg.consumer, event="handed_over")
                log.info("lease handed over", extra={"lease": self.lease.key, "to": self.handoff_to})
            return True
        return False

    def _handle(self, records: list[dict]) -> None:
        replay_until = self._replay_until
        if records:
            self.c.touch()
            if replay_until is None:
                self._accept(records)
                return
            cut = _seq(replay_until)
            head = [r for r in records if _seq(r["SequenceNumber"]) <= cut]
            tail = records[len(head):]
            self._replaying = True
            self._accept(head)
            self._replaying = False
            if tail or (head and head[-1]["SequenceNumber"] == replay_until):
                self._replay_until = None
                self._flush()  # exactly the previous owner's pending range: same object names
            self._accept(tail)
        elif replay_until is not None and self.millis_behind == 0:
            log.warning("pending range only partly readable (records expired?)", extra={"shard": self.lease.shard})
            self._replay_until = None
            self._flush()

    def _finish_shard(self) -> None:
        self._flush()
        self._drain()
        self.table.checkpoint(self.lease, SHARD_END, self.proc.state())
        self.released = True
        self.table.release(self.lease)
        self.metrics.lease_events.inc(consumer=self.cfg.consumer, event="shard_end")
        log.info("shard finished", extra={"shard": self.lease.shard})
        self.c.shard_ended()

    def _parents_state(self, parents: list[str]) -> dict | None:
        """A child shard inherits its parents' final state (watermarks, open episodes): after a split or
        merge, an instance keeps its dedup watermark and its open episode in the child."""
        merged: dict = {}
        for p in parents:
            parent = self.table.get(p)
            st = parent.state if parent is not None else None
            if not st:
                continue
            if not merged:
                merged = {"v": st.get("v", 1), "watermarks": {}, "episodes": {}}
            for k, v in (st.get("watermarks") or {}).items():
                merged["watermarks"][k] = max(int(v), int(merged["watermarks"].get(k, v)))
            merged["episodes"].update(st.get("episodes") or {})
        return merged or None

    def _due(self, now: float) -> bool:
        if self._first is None:
            return False
        return self.buffered >= self.cfg.max_rows or now - self._opened >= self.cfg.flush_s

    def _accept(self, records: list[dict]) -> None:
        if not records:
            return
        self.metrics.records_in.inc(len(records), consumer=self.cfg.consumer)
        self.buffered += self.proc.process(records)
        if self._first is None:
            self._first = records[0]["SequenceNumber"]
            self._opened = time.monotonic()
        self._last = records[-1]["SequenceNumber"]
        self._last_read = self._last
        if self.buffered >= self.cfg.max_rows and not self._replaying:
            self._flush()

    # ------------------------------------------------------------------ flush + checkpoint

    def _flush(self) -> None:
        if self._first is None or self._last is None:
            return
        if self._replay_until is not None:
            # never write part of a pending range under another name: leave it to the next owner
            return
        first, last = self._first, self._last
        name = f"{self.lease.shard}-{first}-{last}"
        t0 = time.perf_counter()
        self.table.set_pending(self.lease, first, last, name)
        delay = 0.5
        deadline = time.monotonic() + self.cfg.shutdown_s
        while True:
            try:
                rows = self.proc.flush(name)
                break
            except Exception as exc:
                self.metrics.flush_errors.inc(consumer=self.cfg.consumer)
                log.warning("lake write failed; retrying", extra={"shard": self.lease.shard, "error": str(exc)})
                if self.lost or time.monotonic() > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 10.0)
        self._recent.append((first, max(rows, 1)))
        self.table.checkpoint(self.lease, last, self.proc.state(), self._warm_from())
        self.metrics.rows_out.inc(rows, consumer=self.cfg.consumer)
        self.metrics.flushes.inc(consumer=self.cfg.consumer)
        self.metrics.flush_latency.observe(time.perf_counter() - t0)
        log.info("flushed", extra={"shard": self.lease.shard, "object": name, "rows": rows,
                                   "worker": self.cfg.worker_id})
        self._first = self._last = None
        self.buffered = 0

    def _persist_state(self) -> None:
        """Housekeeping changed the state (e.g. an idle episode closed) with no new records."""
        self.proc.write_state_only()
        if self.lease.checkpoint not in (TRIM_HORIZON, SHARD_END):
            self.table.checkpoint(self.lease, self.lease.checkpoint, self.proc.state(), self.lease.warm_from)

    def _drain(self) -> None:
        """Graceful end, after the final flush and before the lease goes: the processor writes what it held back
        (open-episode versions throttled by ``EpisodeTracker.write_interval_s``), so the lake shows the state
        just checkpointed. Not when rows are still buffered (a pending range left to the next owner): those
        versions are ahead of the checkpoint; the next owner restores the checkpointed open episodes and
        writes them at its first flush. Conditional on still holding the lease (checked before writing); a
        failed write is only logged, for the same reason nothing is lost."""
        drain = getattr(self.proc, "drain", None)
        if drain is None or self._first is not None or self._replay_until is not None:
            return
        if self.lost:
            raise LeaseLost(self.lease.key)
        try:
            n = drain(lambda: self.table.renew(self.lease))
        except LeaseLost:
            raise
        except Exception as exc:
            self.metrics.flush_errors.inc(consumer=self.cfg.consumer)
            log.warning("final write of held-back episodes failed (the next owner writes them)",
                        extra={"shard": self.lease.shard, "error": str(exc)})
            return
        if n:
            log.info("held-back episodes written", extra={"shard": self.lease.shard, "episodes": n})

    def _warm_from(self) -> str | None:
        target = self.proc.warm_rows_target()
        if target <= 0:
            return None
        total = 0
        for first, rows in reversed(self._recent):
            total += rows
            if total >= target:
                return first
        return self._recent[0][0] if self._recent else None

    def _release(self) -> None:
        self.released = True
        try:
            if self.table.release(self.lease):
                self.metrics.lease_events.inc(consumer=self.cfg.consumer, event="released")
        except Exception:
            log.warning("lease release failed (it will expire)", extra={"lease": self.lease.key}, exc_info=True)

    # ------------------------------------------------------------------ Kinesis

    def _iterator(self, position: str) -> str:
        kwargs: dict[str, Any] = {"StreamName": self.cfg.stream, "ShardId": self.lease.shard}
        if position == TRIM_HORIZON:
            kwargs["ShardIteratorType"] = TRIM_HORIZON
        else:
            kwargs.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=position)
        return self.kinesis.get_shard_iterator(**kwargs)["ShardIterator"]

    def _get_records(self, iterator: str) -> dict | None:
        delay = 0.2
        while True:
            try:
                return self.kinesis.get_records(ShardIterator=iterator, Limit=self.cfg.limit)
            except Exception as exc:
                code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
                if code == "ExpiredIteratorException":
                    return None
                if self._stop_req.is_set() or self.lost:
                    raise
                log.warning("GetRecords failed; backing off", extra={"shard": self.lease.shard, "error": code or exc})
                self._stop_req.wait(delay)
                delay = min(delay * 2, 5.0)

    def _warm(self, warm_from: str, checkpoint: str) -> None:
        """Re-read the records just before the checkpoint to rebuild the feature windows (not re-written)."""
        try:
            it = self.kinesis.get_shard_iterator(StreamName=self.cfg.stream, ShardId=self.lease.shard,
                                                 ShardIteratorType="AT_SEQUENCE_NUMBER",
                                                 StartingSequenceNumber=warm_from)["ShardIterator"]
            end = _seq(checkpoint)
            for _ in range(100):
                resp = self.kinesis.get_records(ShardIterator=it, Limit=self.cfg.limit)
                records = [r for r in resp.get("Records", []) if _seq(r["SequenceNumber"]) <= end]
                if records:
                    self.proc.warm(records)
                done = not resp.get("Records") or _seq(resp["Records"][-1]["SequenceNumber"]) >= end
                it = resp.get("NextShardIterator")
                if done or not it:
                    break
            log.info("feature windows warmed from the stream", extra={"shard": self.lease.shard, "from": warm_from})
        except Exception as exc:  # warm-up is best effort: cold windows are still correct rows
            log.warning("warm-up failed; starting with cold windows", extra={"shard": self.lease.shard,
                                                                             "error": str(exc)})


def _seq(s: str) -> int:
    return int(s)
