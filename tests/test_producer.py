"""Producer: replay of real 3W instances into a (moto) Kinesis stream, read back and compared with the source.

Moto never fails a put, so failures are injected by wrapping the real client. Volumes stay at a few
thousand rows per test (moto slows down as a stream fills).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys

import pandas as pd
import pytest
from botocore.exceptions import ClientError
from stream_helpers import shard_records

from petrostream.aws import client as aws_client
from petrostream.dataset import parse_instance_path, read_instance
from petrostream.wire import decode_batch
from producer.checkpoint import Checkpoint, CheckpointError, default_path
from producer.kinesis_writer import (
    MAX_BYTES_PER_CALL,
    MAX_BYTES_PER_RECORD,
    MAX_RECORDS_PER_CALL,
    KinesisWriter,
    ProducerError,
    ShardBudget,
    ShardMap,
    TokenBucket,
)
from producer.replay import NoInstancesError, Scheduler, _Cursor, _Pending, put_record_per_row, replay, resolve_sources

WELL5_A = "4/WELL-00005_20170625040228.parquet"  # 04:02:28 - 06:00:00
WELL5_B = "4/WELL-00005_20170625060103.parquet"  # 06:01:03 - 08:00:00 (same well, next instance)
WELL4 = "6/WELL-00004_20171031193025.parquet"  # 1,079 rows
WELL3 = "2/WELL-00003_20180206182917.parquet"


# ------------------------------------------------------------------ helpers


class FlakyKinesis:
    """A real (moto) Kinesis client whose put_records fails a seeded random subset of entries with
    ProvisionedThroughputExceededException, and whose every ``throttle_every``-th call raises a
    ThrottlingException ClientError (nothing written). ``fail_all_after`` makes every entry of every
    later call fail. Records the size of every call."""

    def __init__(self, real, fail_ratio=0.15, throttle_every=5, seed=7, fail_all_after=None):
        self.real, self.fail_ratio, self.throttle_every = real, fail_ratio, throttle_every
        self.rng = random.Random(seed)
        self.fail_all_after = fail_all_after
        self.calls: list[dict] = []

    def __getattr__(self, name):
        return getattr(self.real, name)

    def put_records(self, StreamName, Records):  # noqa: N803 - boto3 signature
        sizes = [len(r["Data"]) + len(r["PartitionKey"].encode()) for r in Records]
        self.calls.append({"records": len(Records), "bytes": sum(sizes), "max_record": max(sizes),
                           "keys": [r["PartitionKey"] for r in Records]})
        n = len(self.calls)
        if self.throttle_every and n % self.throttle_every == 0:
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "PutRecords")
        if self.fail_all_after is not None and n > self.fail_all_after:
            fail = [True] * len(Records)
        else:
            fail = [self.rng.random() < self.fail_ratio for _ in Records]
        ok = [r for r, f in zip(Records, fail, strict=True) if not f]
        done = iter(self.real.put_records(StreamName=StreamName, Records=ok)["Records"] if ok else [])
        out = [
            {"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "Rate exceeded for shard"}
            if f else next(done)
            for f in fail
        ]
        return {"FailedRecordCount": sum(fail), "Records": out}


def read_stream(stream: str) -> pd.DataFrame:
    """Every row in the stream (all shards, from the start), decoded; column ``shard`` and the read order kept."""
    frames = []
    for shard, data in shard_records(stream).items():
        batch = decode_batch(data)
        assert not batch.rejected
        frames.append(batch.rows.assign(shard=shard))
    return pd.concat(frames, ignore_index=True)


def source_rows(paths, max_rows=None) -> pd.DataFrame:
    parts = []
    for p in paths:
        info = parse_instance_path(p)
        df = read_instance(info)
        df = df.iloc[:max_rows] if max_rows else df
        parts.append(pd.DataFrame({"instance_id": info.instance_id, "timestamp": df.index.to_numpy(),
                                   "P-TPT": df["P-TPT"].to_numpy()}))
    return pd.concat(parts, ignore_index=True)


def assert_exactly_once(stream: str, expected: pd.DataFrame) -> pd.DataFrame:
    got = read_stream(stream)
    assert not got.duplicated(["instance_id", "timestamp"]).any(), "a row was delivered twice"
    assert got.groupby("instance_id").size().to_dict() == expected.groupby("instance_id").size().to_dict()
    merged = expected.merge(got, on=["instance_id", "timestamp"], how="left", suffixes=("", "_got"), indicator=True)
    assert (merged["_merge"] == "both").all(), "a source row is missing from the stream"
    pd.testing.assert_series_equal(merged["P-TPT"], merged["P-TPT_got"], check_names=False)
    return got


class FakeClock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t

    def sleep(self, s):
        self.t += s


def run_cli(args, env, timeout=180):
    return subprocess.run([sys.executable, "-m", "petrostream.cli", "produce", *args], env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def cli_env(tmp_path, emulator):
    return {**os.environ, "PETROSTREAM_STATE_DIR": str(tmp_path / "state"), "PETROSTREAM_LOG_FORMAT": "text"}


# ------------------------------------------------------------------ delivery


def test_every_row_exactly_once_despite_partial_failures_and_throttling(fresh_stream, threew_dir, tmp_path):
    stream = fresh_stream(2)
    paths = [threew_dir / p for p in (WELL5_A, WELL4, WELL3)]
    flaky = FlakyKinesis(aws_client("kinesis"))
    summary = replay(paths, stream=stream, speed="max", max_rows_per_instance=1500, rows_per_record=5,
                     client=flaky, max_attempts=10, backoff_base_s=0.01, checkpoint_path=tmp_path / "cp.json",
                     progress=False, seed=1)
    expected = source_rows(paths, 1500)
    assert_exactly_once(stream, expected)
    assert summary.rows == len(expected)
    assert summary.retries > 0 and summary.failed_entries > 0 and summary.throttled_calls > 0
    assert 4.9 < summary.aggregation <= 5  # rows of one instance packed 5 to a record
    assert all(c["records"] <= MAX_RECORDS_PER_CALL and c["bytes"] <= MAX_BYTES_PER_CALL for c in flaky.calls)
    assert max(c["records"] for c in flaky.calls) > 100  # batching really happened
    cp = json.loads((tmp_path / "cp.json").read_text())
    last = expected.groupby("instance_id")["timestamp"].max()
    assert {k: v["last_ts_ms"] for k, v in cp["instances"].items()} == {
        k: int(v.value // 1_000_000) for k, v in last.items()
    }


def test_strict_order_keeps_each_well_in_order_across_retries(fresh_stream, threew_dir):
    stream = fresh_stream(2)
    paths = [threew_dir / p for p in (WELL5_A, WELL4)]
    flaky = FlakyKinesis(aws_client("kinesis"), fail_ratio=0.3, throttle_every=4, seed=3)
    summary = replay(paths, stream=stream, speed="max", max_rows_per_instance=300, rows_per_record=10,
                     strict_order=True, client=flaky, max_attempts=12, backoff_base_s=0.01, checkpoint=False,
                     progress=False, seed=2)
    assert summary.retries > 0 and summary.throttled_calls > 0
    assert all(len(c["keys"]) == len(set(c["keys"])) for c in flaky.calls)  # one record per well per call
    got = assert_exactly_once(stream, source_rows(paths, 300))
    for _, rows in got.groupby("instance_id", sort=False):  # read order within the well's shard
        assert rows["timestamp"].is_monotonic_increasing
        assert rows["shard"].nunique() == 1


def test_exhausted_retries_fail_clearly_and_resume_completes(fresh_stream, threew_dir, tmp_path):
    stream = fresh_stream(2)
    paths = [threew_dir / p for p in (WELL5_A, WELL4)]
    cp_path = tmp_path / "cp.json"
    broken = FlakyKinesis(aws_client("kinesis"), fail_ratio=0.0, throttle_every=0, fail_all_after=1)
    kwargs = dict(stream=stream, speed="max", max_rows_per_instance=400, rows_per_record=20, linger_ms=0,
                  checkpoint_path=cp_path, progress=False, backoff_base_s=0.01)
    with pytest.raises(ProducerError, match="still failing after 3 attempts") as err:
        replay(paths, client=broken, max_attempts=3, **kwargs)
    assert "ProvisionedThroughputExceededException" in str(err.value) and "\n" not in str(err.value)
    first = read_stream(stream)
    assert 0 < len(first) < 800
    cp = Checkpoint.load(cp_path, stream)
    assert cp.rows == len(first)  # the checkpoint holds exactly what Kinesis acknowledged
    again = replay(paths, resume=True, **kwargs)
    assert again.skipped_rows == len(first) and again.rows == 800 - len(first)
    assert_exactly_once(stream, source_rows(paths, 400))


def test_put_record_per_row_baseline(fresh_stream, threew_dir):
    stream = fresh_stream(2)
    paths = [threew_dir / WELL4, threew_dir / WELL3]
    summary = put_record_per_row(paths, stream=stream, max_rows_per_instance=40)
    assert (summary.rows, summary.records, summary.calls, summary.mode) == (80, 80, 80, "per-row")
    got = assert_exactly_once(stream, source_rows(paths, 40))
    assert got.groupby(["shard", "record"]).size().max() == 1  # one row per record


# ------------------------------------------------------------------ writer internals on the real stream


def test_writer_linger_and_record_size_limit(fresh_stream, threew_dir):
    stream = fresh_stream(1)
    clock = FakeClock()
    flaky = FlakyKinesis(aws_client("kinesis"), fail_ratio=0.0, throttle_every=0)
    w = KinesisWriter(stream, client=flaky, rows_per_record=60, linger_ms=500, clock=clock, sleep=clock.sleep)
    info = parse_instance_path(threew_dir / "1" / "DRAWN_00003.parquet")  # 21,600 rows
    frame = read_instance(info)
    w.add(info, frame.iloc[:5])
    clock.t += 0.4
    w.poll()
    assert flaky.calls == []  # still lingering
    assert w.next_deadline() == pytest.approx(clock.t + 0.1)
    clock.t += 0.1
    w.poll()
    assert [c["records"] for c in flaky.calls] == [1]  # the partial record left at the linger deadline

    big = KinesisWriter(stream, client=flaky, rows_per_record=30_000, linger_ms=0, clock=clock, sleep=clock.sleep)
    big.add(info, frame.iloc[5:])  # 21,595 rows, ~1.08 MB encoded (wire v2): split into records <= 1 MiB
    big.close()
    assert all(c["max_record"] <= MAX_BYTES_PER_RECORD for c in flaky.calls)
    assert big.stats.records >= 2 and big.stats.rows == 21_595
    assert big.stats.budget_wait_s > 0  # one shard cannot take 1.1 MB within one second
    got = read_stream(stream)
    assert len(got) == 21_600 and not got.duplicated(["instance_id", "timestamp"]).any()


def test_linger_batches_many_wells_into_few_calls(fresh_stream, threew_dir):
    """At speed 1 rows of 20 wells arrive spread over each second: calls are batched across wells."""
    stream = fresh_stream(2)
    clock = FakeClock()
    flaky = FlakyKinesis(aws_client("kinesis"), fail_ratio=0.0, throttle_every=0)
    w = KinesisWriter(stream, client=flaky, linger_ms=1000, clock=clock, sleep=clock.sleep)
    frame = read_instance(threew_dir / WELL4).iloc[:3]
    metas = [{"instance_id": f"4_WELL-{i:05d}_x", "well_id": f"WELL-{i:05d}", "source": "REAL", "event_class": 4}
             for i in range(20)]
    for second in range(3):
        for i, meta in enumerate(metas):  # well i reports at second + i/20
            clock.t = 1000.0 + second + i / 20
            w.add(meta, frame.iloc[second : second + 1])
    w.close()
    assert w.stats.rows == 60
    assert len(flaky.calls) <= 2 * 3 + 1  # about one call per half linger, not one per well
    got = read_stream(stream)
    assert len(got) == 60 and got.groupby("instance_id").size().eq(3).all()


class RoutedAfterReshard(FlakyKinesis):
    """Moto keeps writing into the closed parent shard after a reshard; report the shard real Kinesis would
    use (from the current hash-key ranges) instead."""

    def put_records(self, StreamName, Records):  # noqa: N803 - boto3 signature
        resp = super().put_records(StreamName, Records)
        current = ShardMap.from_stream(self.real, StreamName)
        for rec, res in zip(Records, resp["Records"], strict=True):
            res["ShardId"] = current.shard_for(rec["PartitionKey"])
        return resp


def test_writer_follows_a_reshard(fresh_stream, threew_dir):
    stream = fresh_stream(1)
    k = aws_client("kinesis")
    w = KinesisWriter(stream, client=RoutedAfterReshard(k, fail_ratio=0.0, throttle_every=0), rows_per_record=10,
                      linger_ms=0)
    info = parse_instance_path(threew_dir / WELL4)
    frame = read_instance(info)
    w.add(info, frame.iloc[:10])
    k.update_shard_count(StreamName=stream, TargetShardCount=2, ScalingType="UNIFORM_SCALING")
    for a in range(10, 60, 10):
        w.add(info, frame.iloc[a : a + 10])
    w.close()
    assert len(w.shards.shard_ids) == 2  # the writer re-read the hash-key ranges
    assert w.shards.shard_for(info.well_id) in w.budget.buckets  # budget kept on the new child shard
    assert w.stats.rows == 60


def test_shard_map_predicts_kinesis_placement(fresh_stream):
    stream = fresh_stream(4)
    k = aws_client("kinesis")
    keys = [f"WELL-{i:05d}" for i in range(1, 41)] + ["2_SIMULATED_00001", "1_DRAWN_00003"]
    resp = k.put_records(StreamName=stream, Records=[{"Data": b"{}", "PartitionKey": key} for key in keys])
    shards = ShardMap.from_stream(k, stream)
    assert [shards.shard_for(key) for key in keys] == [r["ShardId"] for r in resp["Records"]]
    assert len({r["ShardId"] for r in resp["Records"]}) == 4


def test_token_bucket_budget_math():
    clock = FakeClock()
    b = TokenBucket(1000, 1024 * 1024, clock)
    assert b.wait_time(1000, 0) == 0
    b.take(1000, 512 * 1024)
    assert b.wait_time(500, 0) == pytest.approx(0.5)
    assert b.wait_time(1, 1024 * 1024) == pytest.approx(0.5)  # 512 KiB left, refills at 1 MiB/s
    budget = ShardBudget(["s0", "s1"], clock=clock, sleep=clock.sleep)
    assert budget.acquire({"s0": (1000, 100)}) == 0
    waited = budget.acquire({"s0": (250, 100), "s1": (1000, 100)})  # s1 is full, s0 must refill 250
    assert waited == pytest.approx(0.25)


# ------------------------------------------------------------------ scheduling and inputs


def _schedule(threew_dir, align, max_open=8):
    infos = [parse_instance_path(threew_dir / p) for p in (WELL5_A, WELL5_B)]
    starts = {i.instance_id: pd.Timestamp(i.start).value / 1e9 for i in infos}
    pending = [_Pending(i, 0, starts[i.instance_id]) for i in infos]
    sched = Scheduler(pending, align=align, max_open=max_open, quantum_s=float("inf"), max_chunk=60,
                      open_fn=lambda info, at: _Cursor(info, read_instance(info), at))
    return [(cur.info.instance_id, chunk.index[0], due) for cur, chunk, due in sched]


def test_schedule_align_start_interleaves_and_original_keeps_real_time(threew_dir):
    a, b = (parse_instance_path(threew_dir / p).instance_id for p in (WELL5_A, WELL5_B))
    together = _schedule(threew_dir, "start")
    assert [d for _, _, d in together] == sorted(d for _, _, d in together)  # merged by replay time
    assert [i for i, _, _ in together[:4]] == [a, b, a, b]  # both start at replay time 0, interleaved
    n_a, n_b = (-(-len(read_instance(threew_dir / p)) // 60) for p in (WELL5_A, WELL5_B))  # chunks of 60 rows
    original = _schedule(threew_dir, "original")
    assert [i for i, _, _ in original] == [a] * n_a + [b] * n_b  # b starts after a ended, as in reality
    a_end = max(d for i, _, d in original if i == a)
    b_first_row = next(d - 59 for i, _, d in original if i == b)
    assert a_end <= b_first_row < a_end + 63  # the 63 s idle gap between the two instances is skipped
    one_slot = _schedule(threew_dir, "start", max_open=1)
    assert [i for i, _, _ in one_slot] == [a] * n_a + [b] * n_b


def test_sources_classes_limit_and_bad_names(threew_dir, tmp_path):
    infos = resolve_sources(threew_dir, classes=[2, 3], limit_instances=4)
    assert [i.event_class for i in infos] == [2, 3, 2, 3]
    bad = []
    (tmp_path / "4").mkdir()
    (tmp_path / "4" / "whatever.parquet").write_bytes(b"x")
    assert resolve_sources([tmp_path, tmp_path / "missing.parquet"], on_bad=lambda p, r: bad.append(r)) == []
    assert len(bad) == 2 and "whatever.parquet" in bad[0] and "missing.parquet" in bad[1]
    with pytest.raises(NoInstancesError, match="no 3W instance found"):
        replay(threew_dir, classes=[9], stream="unused", progress=False)


def test_corrupt_checkpoint_is_one_clear_line(tmp_path):
    p = default_path("my/stream", tmp_path)
    assert p.name == "my_stream.json"
    p.parent.mkdir(parents=True)
    p.write_text("{not json")
    with pytest.raises(CheckpointError, match="not a usable producer checkpoint") as err:
        Checkpoint.load(p, "my/stream")
    assert "\n" not in str(err.value)


# ------------------------------------------------------------------ CLI


def test_cli_sigterm_flushes_checkpoints_and_resume_sends_the_rest(fresh_stream, threew_dir, cli_env):
    stream = fresh_stream(2)
    files = [str(threew_dir / WELL5_A), str(threew_dir / WELL4)]
    args = [*files, "--stream", stream, "--speed", "20", "--max-rows-per-instance", "300", "--json-summary"]
    proc = subprocess.Popen([sys.executable, "-m", "petrostream.cli", "produce", *args], env=cli_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = []
    try:
        for line in proc.stderr:  # progress lines ("... 123/600 rows ...") once a second
            seen.append(line)
            if "rows (" in line and int(line.split(": ")[1].split("/")[0].replace(",", "")) >= 40:
                break
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, "".join(seen) + err
    first = json.loads(out)
    assert first["interrupted"] is True and 40 <= first["rows"] < 600
    cp = json.loads(default_path(stream, cli_env["PETROSTREAM_STATE_DIR"]).read_text())
    assert sum(v["rows"] for v in cp["instances"].values()) == first["rows"]

    second = run_cli([*files, "--stream", stream, "--max-rows-per-instance", "300", "--speed", "max", "--resume",
                      "--json-summary", "--no-progress"], cli_env)
    assert second.returncode == 0, second.stderr
    rest = json.loads(second.stdout)
    assert rest["skipped_rows"] == first["rows"] and rest["rows"] == 600 - first["rows"]
    assert rest["interrupted"] is False
    assert_exactly_once(stream, source_rows(files, 300))


def test_cli_bad_file_is_named_skipped_and_exit_is_nonzero(fresh_stream, threew_dir, cli_env, tmp_path):
    stream = fresh_stream(2)
    data = tmp_path / "data"
    for rel in (WELL4, WELL3):
        (data / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(threew_dir / rel, data / rel)
    corrupt = data / "4" / "WELL-00001_20990101000000.parquet"
    corrupt.parent.mkdir(parents=True, exist_ok=True)
    corrupt.write_bytes(b"PAR1 this is not parquet")
    r = run_cli([str(data), "--stream", stream, "--speed", "max", "--max-rows-per-instance", "100", "--json-summary"],
                cli_env)
    assert r.returncode == 2, r.stderr
    bad_lines = [line for line in r.stderr.splitlines() if str(corrupt) in line]
    assert len(bad_lines) == 1 and "not a readable parquet file" in bad_lines[0]
    summary = json.loads(r.stdout)
    assert summary["rows"] == 200 and [b["path"] for b in summary["bad_files"]] == [str(corrupt)]
    assert_exactly_once(stream, source_rows([data / WELL4, data / WELL3], 100))


def test_cli_no_instance_is_one_line_exit_1(cli_env, tmp_path):
    r = run_cli([str(tmp_path), "--speed", "max"], cli_env)
    assert r.returncode == 1
    assert r.stderr.strip().count("\n") == 0 and "no 3W instance found" in r.stderr
