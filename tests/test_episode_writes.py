# ruff: noqa: F811 - pytest fixtures are imported from test_inference_support
"""Open-episode writes: the throttle (``--episode-write-s``) and the drain of held-back versions on a graceful stop.

The consumer tests run a real ``Consumer`` / ``ShardWorker`` against the emulator (Kinesis, DynamoDB leases,
S3 lake) with real 3W rows; the detector is a stub that alarms on every row, so the whole slice is one open
episode whose latest state is known, and a fake wall clock decides when a held-back version falls due.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from test_inference_support import encode_records, fresh_lake, put, slices, wait_until  # noqa: F401 - fixtures

from inference.consumer import Consumer, ConsumerConfig
from inference.leases import LeaseTable
from inference.metrics import Metrics
from inference.scoring import ModelRef, ShardScorer
from inference.service import ServeOptions, Service
from inference.sink import LakeSink, ScoringProcessor
from petrostream import lake
from petrostream.errors import UserError

INSTANCE = ("2/WELL-00009_20170313160804",)


class _AlarmEverywhere:
    """A detector that flags every row (anomaly_score 1 > threshold 0.5): one episode per instance."""

    threshold = 0.5

    def stream_scorer(self):
        return self

    def score(self, df: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"anomaly_score": np.ones(len(df)), "is_anomaly": np.ones(len(df), dtype="int32")},
                            index=df.index)

    def forget(self, instance_id) -> None:
        pass


REF = ModelRef(_AlarmEverywhere(), "stub-1")


def _scorer(clock: dict, write_s: float) -> ShardScorer:
    return ShardScorer(lambda: REF, gap_s=60, idle_close_s=1e9, tail_rows=0, clock=lambda: clock["t"],
                       episode_write_s=write_s)


def _events(instance_id: str, store: lake.LakeStore | None = None) -> pd.DataFrame:
    ev = lake.read_table(lake.EVENTS, store)
    return ev[ev["instance_id"] == instance_id].reset_index(drop=True)


def _n_rows(instance_id: str, store: lake.LakeStore | None = None) -> int | None:
    ev = _events(instance_id, store)
    assert len(ev) <= 1  # the lake holds an episode once
    return None if ev.empty else int(ev["n_rows"].iloc[0])


def _ms(value) -> int:
    return int(pd.Timestamp(value).value // 1_000_000)


# ---------------------------------------------------------------------------------------------- graceful stop


def test_graceful_stop_writes_the_held_back_version_of_an_open_episode(fresh_stream, fresh_lake, threew_dir):
    stream = fresh_stream(1)
    parts = slices(threew_dir, rows=300, instances=INSTANCE)
    info, frame = parts[0]
    records = encode_records(parts, rows_per_record=20)  # 15 records
    first, second = records[:8], records[8:]

    clock = {"t": 1_000_000.0}  # wall clock of the scorer: moves only when the test says so
    scorers: dict[str, ShardScorer] = {}

    def factory(shard: str) -> ScoringProcessor:
        scorers[shard] = _scorer(clock, write_s=30)
        return ScoringProcessor(shard, scorers[shard], LakeSink(), Metrics(), clock=lambda: clock["t"])

    cfg = ConsumerConfig(stream=stream, worker_id="w-drain", limit=3, flush_s=0.2, max_rows=40, lease_s=3.0,
                         poll_s=0.05, shard_sync_s=0.5, maintain_s=0.1, shutdown_s=60)
    consumer = Consumer(cfg, factory, Metrics())
    observer = LeaseTable(stream, "observer")

    def checkpointed(results: list[dict]) -> bool:
        leases = observer.list()
        return bool(leases) and leases[0].checkpoint == results[-1]["SequenceNumber"]

    consumer.start()
    try:
        # phase 1: 160 rows in several flushes (max_rows): the new alarm goes out at the first flush, the
        # versions of the later flushes (0 s of wall time later) are held back
        sent = put(stream, first)
        wait_until(lambda: checkpointed(sent), what="phase 1 checkpointed")
        first_version = _n_rows(info.instance_id)
        assert first_version is not None and 0 < first_version < 160
        # 31 s later (no new records): housekeeping writes the held-back version
        clock["t"] += 31
        wait_until(lambda: _n_rows(info.instance_id) == 160, what="held-back version written by maintain")
        # phase 2: 140 more rows, flushed and checkpointed; the episode was written 0 s ago: the change waits
        sent = put(stream, second)
        wait_until(lambda: checkpointed(sent), what="phase 2 checkpointed")
        (shard,) = scorers
        episode = scorers[shard].episodes.open[info.instance_id]
        assert episode.n == 300
        assert _n_rows(info.instance_id) == 160  # the lake still shows phase 1
    finally:
        consumer.stop()  # the service's shutdown (SIGTERM, --exit-when-idle) does exactly this
        assert consumer.join(120)

    # the graceful stop wrote the latest version after the final flush, before releasing the lease
    ev = _events(info.instance_id)
    assert len(ev) == 1  # once
    row = ev.iloc[0]
    assert row["episode_id"] == episode.id
    assert int(row["n_rows"]) == episode.n == len(frame)
    assert _ms(row["end_ts"]) == episode.last == _ms(frame.index.max())
    assert pd.isna(row["closed_at"])  # still open: the next owner continues it
    (lease,) = observer.list()
    assert lease.owner is None and lease.pending is None  # released, nothing pending
    assert lease.state["episodes"][info.instance_id]["n"] == episode.n  # the lake matches the checkpoint
    assert lease.state["episodes"][info.instance_id]["last"] == episode.last


# ---------------------------------------------------------------------------------------------- processor


def _records(parts, seq0: int = 1) -> list[dict]:
    return [{"Data": d, "SequenceNumber": str(seq0 + i), "PartitionKey": pk, "ApproximateArrivalTimestamp": None}
            for i, (pk, d) in enumerate(encode_records(parts, rows_per_record=20))]


def test_drain_waits_for_the_final_flush_and_writes_only_what_is_held_back(threew_dir, tmp_path):
    store = lake.LakeStore(lake_dir=tmp_path)
    parts = slices(threew_dir, rows=100, instances=INSTANCE)
    info = parts[0][0]
    clock = {"t": 1_000_000.0}
    scorer = _scorer(clock, write_s=30)
    proc = ScoringProcessor("shardId-1", scorer, LakeSink(store), Metrics(), clock=lambda: clock["t"])
    records = _records(parts)
    proc.process(records[:2])
    proc.flush("shardId-1-1-2")
    assert _n_rows(info.instance_id, store) == 40  # a new alarm is written at once
    proc.process(records[2:])
    fenced: list[bool] = []
    # rows still buffered: their episode versions are ahead of any checkpoint -> nothing is drained
    assert proc.drain(lambda: fenced.append(True)) == 0 and not fenced
    assert _n_rows(info.instance_id, store) == 40
    proc.flush("shardId-1-3-5")
    assert _n_rows(info.instance_id, store) == 40  # the re-write is held back at the flush
    assert proc.drain(lambda: fenced.append(True)) == 1 and fenced == [True]
    ev = _events(info.instance_id, store)
    assert len(ev) == 1 and int(ev["n_rows"].iloc[0]) == scorer.episodes.open[info.instance_id].n == 100
    # nothing left: a second drain writes nothing and does not even check the lease
    assert proc.drain(lambda: fenced.append(True)) == 0 and fenced == [True]


def test_without_a_throttle_every_flush_writes_and_there_is_nothing_to_drain(threew_dir, tmp_path):
    store = lake.LakeStore(lake_dir=tmp_path)
    parts = slices(threew_dir, rows=60, instances=INSTANCE)
    info = parts[0][0]
    scorer = _scorer({"t": 1_000_000.0}, write_s=0)
    proc = ScoringProcessor("shardId-1", scorer, LakeSink(store), Metrics())
    proc.process(_records(parts))
    proc.flush("shardId-1-1-3")
    assert int(_events(info.instance_id, store)["n_rows"].iloc[0]) == 60
    assert proc.drain() == 0


# ---------------------------------------------------------------------------------------------- options


def test_the_service_defaults_the_episode_write_interval_to_the_flush_interval(emulator, fresh_stream):
    stream = fresh_stream(1)

    def interval(**kw) -> float:
        svc = Service(ServeOptions(stream=stream, api=False, **kw), metrics=Metrics())
        svc.build()
        assert svc.consumer is not None
        return svc.consumer.factory("shardId-000000000000").scorer.episodes.write_interval_s

    assert interval() == 10.0
    assert interval(flush_s=2.5) == 2.5
    assert interval(flush_s=2.5, episode_write_s=0) == 0.0  # every flush
    assert interval(episode_write_s=60) == 60.0
    # the pure-logic constructors keep their meaning: no throttle unless asked
    assert ShardScorer(lambda: REF).episodes.write_interval_s == 0.0


@pytest.mark.parametrize("value", [-1.0, float("nan"), float("inf")])
def test_invalid_episode_write_interval_is_refused(value):
    opts = ServeOptions(stream="unused", api=False, episode_write_s=value)
    with pytest.raises(UserError, match=r"--episode-write-s must be a number >= 0"):
        opts.episode_write_interval()
    with pytest.raises(UserError, match=r"--episode-write-s"):
        Service(opts, metrics=Metrics()).build()  # before touching AWS


def test_serve_rejects_a_negative_episode_write_interval_in_one_line():
    res = subprocess.run([sys.executable, "-m", "petrostream.cli", "serve", "--no-api", "--episode-write-s=-1"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 1
    assert res.stderr.strip().splitlines() == ["error: --episode-write-s must be a number >= 0 (0: at every flush), "
                                               "got -1.0"]


def test_lambda_episode_write_interval_from_the_environment(emulator, monkeypatch):
    from inference import lambda_handler

    event = {"Records": [{"kinesis": {"data": "", "sequenceNumber": "1"}, "eventID": "shardId-1:1"}]}
    lambda_handler.reset()
    try:
        assert lambda_handler._new_scorer(lambda_handler._state()).episodes.write_interval_s == 0.0  # default
        for bad in ("-5", "soon"):
            lambda_handler.reset()
            monkeypatch.setenv("PETROSTREAM_LAMBDA_EPISODE_WRITE_S", bad)
            with pytest.raises(UserError, match="PETROSTREAM_LAMBDA_EPISODE_WRITE_S must be a number >= 0"):
                lambda_handler.handler(event)
        lambda_handler.reset()
        monkeypatch.setenv("PETROSTREAM_LAMBDA_EPISODE_WRITE_S", "30")
        assert lambda_handler._new_scorer(lambda_handler._state()).episodes.write_interval_s == 30.0
    finally:
        lambda_handler.reset()
