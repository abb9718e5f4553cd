# ruff: noqa: F811 - pytest fixtures are imported from test_inference_support
"""The consumer + scoring + sink in one process against the emulator, with real 3W rows and a real model."""

from __future__ import annotations

import io
import json
import threading

import pandas as pd
import pyarrow.parquet as pq
import pytest
from test_inference_support import (  # noqa: F401 - fixtures
    assert_exactly_once,
    assert_scores_match_batch,
    champion,
    encode_records,
    export_version,
    fresh_lake,
    loaded_model,
    model_dirs,
    model_name,
    put,
    rows_for,
    scored_table,
    slices,
    wait_until,
)

from inference.leases import SHARD_END, LeaseTable
from inference.metrics import Metrics
from inference.service import ServeOptions, Service
from petrostream import lake


def _opts(stream: str, **kw) -> ServeOptions:
    base = dict(stream=stream, worker_id=f"w-{stream[-4:]}", flush_s=0.5, max_rows=700, limit=50, api=False,
                exit_when_idle=1.5, model_poll_s=0.3, lease_s=2.0, poll_s=0.1, shard_sync_s=0.5, gap_s=30,
                episode_idle_s=3600)
    base.update(kw)
    return ServeOptions(**base)


def _quarantine(stream_shards: set[str] | None = None) -> list[dict]:
    store = lake.LakeStore()
    bucket = store.settings.curated_bucket
    out = []
    for key in store.list(bucket, lake.QUARANTINE_PREFIX + "/"):
        for line in store.get(bucket, key).decode().splitlines():
            out.append({**json.loads(line), "key": key})
    return out


def test_every_row_lands_exactly_once_with_quarantine_and_episodes(fresh_stream, champion, threew_dir,
                                                                   loaded_model):
    stream = fresh_stream(2)
    parts = slices(threew_dir, rows=700)
    records = encode_records(parts)
    bad = [("bad-1", b"{not json"), ("bad-2", json.dumps({"v": 99}).encode()),
           ("bad-3", json.dumps({"v": 1, "instance_id": "x", "well_id": "W", "source": "REAL", "event_class": 2,
                                 "ts": [1, 2], "values": {"P-PDG": [1.0, "oops"]}}).encode())]
    records = records[:10] + bad[:2] + records[10:30] + bad[2:] + records[30:]
    put(stream, records)

    metrics = Metrics()
    svc = Service(_opts(stream), metrics=metrics)
    assert svc.run() == 0

    df = scored_table()
    assert_exactly_once(df, parts)
    got = rows_for(df, parts)
    assert set(got["model_version"]) == {"1"}
    assert got["threshold"].notna().all() and got["anomaly_score"].notna().all()
    assert_scores_match_batch(df, parts, loaded_model)  # micro-batches + per-instance state == whole-series
    assert set(got["is_anomaly"].unique()) <= {0, 1}
    assert {"dt", "well"} <= set(got.columns)
    assert set(got["well"]) == {info.well_id for info, _ in parts}
    # sensors in lake columns, stream position kept
    assert got["p_pdg"].notna().any() and got["sequence_number"].notna().all() and got["shard_id"].notna().all()

    # malformed records: quarantined with reason, shard and sequence number; the stream went on
    q = [e for e in _quarantine() if e["shard_id"] and e["consumer"] == "serve"
         and e["partition_key"] in {"bad-1", "bad-2", "bad-3"}]
    assert sorted(e["partition_key"] for e in q) == ["bad-1", "bad-2", "bad-3"]
    reasons = {e["partition_key"]: e["reason"] for e in q}
    assert "not valid JSON" in reasons["bad-1"]
    assert "schema version" in reasons["bad-2"]
    assert "non-numeric" in reasons["bad-3"]
    assert all(e["sequence_number"] for e in q)
    assert metrics.quarantined.total() == 3

    # episodes: one row per episode, ids unique, inside the alarms of that instance
    events = lake.read_table(lake.EVENTS)
    events = events[events["instance_id"].isin({info.instance_id for info, _ in parts})]
    if got["is_anomaly"].sum() > 0:
        assert len(events) >= 1
    assert events["episode_id"].is_unique
    assert (events["n_rows"] >= 1).all() and (events["end_ts"] >= events["start_ts"]).all()
    assert events["n_rows"].sum() == got["is_anomaly"].sum()

    # leases: every shard checkpointed at its last record, released
    leases = LeaseTable(stream, "observer").list()
    assert len(leases) == 2 and all(lease.owner is None for lease in leases)
    assert all(lease.checkpoint.isdigit() and lease.pending is None for lease in leases)
    assert metrics.rows_out.value(consumer="serve") == len(got)


def test_objects_are_named_by_shard_and_sequence_range(fresh_stream, champion, threew_dir):
    stream = fresh_stream(1)
    parts = slices(threew_dir, rows=400, instances=("2/WELL-00003_20180206182917",))
    results = put(stream, encode_records(parts))
    assert Service(_opts(stream, max_rows=150, limit=2)).run() == 0
    df = scored_table()
    assert_exactly_once(df, parts)
    store = lake.LakeStore()
    bucket = store.settings.curated_bucket

    def holds_this_well(key: str) -> bool:  # the bucket is shared with other tests: objects of this well
        wells = pq.read_table(io.BytesIO(store.get(bucket, key)), columns=["well"]).column("well").to_pylist()
        return parts[0][0].well_id in wells

    names = sorted({k.rsplit("/", 1)[-1][: -len(".parquet")] for k in store.list(bucket, "scored/")
                    if results[0]["ShardId"] in k and holds_this_well(k)})
    ranges = sorted((int(n.split("-")[-2]), int(n.split("-")[-1])) for n in names)
    assert len(ranges) >= 2  # several flushes (max_rows)
    for (a1, b1), (a2, _) in zip(ranges, ranges[1:], strict=False):
        assert a1 <= b1 < a2  # contiguous, non-overlapping sequence ranges


def test_duplicates_and_redelivered_records_are_dropped_and_counted(fresh_stream, champion, threew_dir):
    stream = fresh_stream(1)
    parts = slices(threew_dir, rows=300, instances=("2/WELL-00010_20171218200131",))
    records = encode_records(parts, rows_per_record=30)
    # a producer retry re-sends three records later in the stream
    put(stream, records + records[2:5])
    metrics = Metrics()
    assert Service(_opts(stream, limit=5), metrics=metrics).run() == 0
    assert_exactly_once(scored_table(), parts)
    assert metrics.rows_dropped.value(reason="stale") == 90  # not newer than what was scored: dropped, counted


def test_shard_split_children_after_parent(fresh_stream, champion, threew_dir):
    from petrostream.aws import client

    stream = fresh_stream(1)
    parts = slices(threew_dir, rows=600)
    first, second = [], []
    for info, df in parts:
        first.append((info, df.iloc[:300]))
        second.append((info, df.iloc[300:]))
    first_records = encode_records(first)
    put(stream, first_records)
    k = client("kinesis")
    shard = k.list_shards(StreamName=stream)["Shards"][0]
    mid = (int(shard["HashKeyRange"]["StartingHashKey"]) + int(shard["HashKeyRange"]["EndingHashKey"])) // 2
    k.split_shard(StreamName=stream, ShardToSplit=shard["ShardId"], NewStartingHashKey=str(mid))
    wait_until(lambda: k.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]["StreamStatus"]
               == "ACTIVE", what="split")
    # a producer retry re-sends an old record after the split: recognised as already scored
    put(stream, encode_records(second) + first_records[:1])
    metrics = Metrics()
    assert Service(_opts(stream), metrics=metrics).run() == 0
    assert_exactly_once(scored_table(), parts)
    assert metrics.rows_dropped.total() == 40
    # (moto keeps routing puts to the closed parent, so here the children stay empty; on AWS they get
    # the new records and start from the parent's watermarks: test_child_inherits_parent_state)
    leases = {lease.shard: lease for lease in LeaseTable(stream, "observer").list()}
    assert len(leases) == 3
    assert leases[shard["ShardId"]].checkpoint == SHARD_END
    children = [lease for lease in leases.values() if lease.parents == [shard["ShardId"]]]
    assert len(children) == 2


def test_archive_writes_raw_records_exactly_once(fresh_stream, fresh_lake, threew_dir):
    stream = fresh_stream(2)
    parts = slices(threew_dir, rows=300)
    put(stream, encode_records(parts) + [("bad", b"\xff\xfe")])
    metrics = Metrics()
    svc = Service(_opts(stream, max_rows=250), metrics=metrics, archive=True)
    assert svc.run() == 0
    raw = lake.read_table(lake.RAW)
    got = rows_for(raw, parts)
    keys = got[["instance_id", "ts"]]
    assert not keys.duplicated().any() and len(got) == sum(len(df) for _, df in parts)
    assert got["arrived_at"].notna().all() and got["sequence_number"].notna().all()
    assert metrics.quarantined.value(consumer="archive") == 1
    # its own lease namespace: the scoring consumer's leases are untouched
    assert LeaseTable(stream, "o", namespace="archive:").list()
    assert LeaseTable(stream, "o").list() == []


def test_champion_change_mid_stream_hot_reload(fresh_stream, champion, model_dirs, threew_dir):
    stream = fresh_stream(2)
    parts = slices(threew_dir, rows=700)
    before = [(info, df.iloc[:350]) for info, df in parts]
    after = [(info, df.iloc[350:]) for info, df in parts]
    put(stream, encode_records(before))
    svc = Service(_opts(stream, exit_when_idle=None))
    t = threading.Thread(target=svc.run, daemon=True)
    t.start()
    try:
        wait_until(lambda: len(rows_for(scored_table(), before)) == 3 * 350, what="first half in the lake")
        export_version(model_dirs, champion, "2")
        wait_until(lambda: svc.holder.current() is not None and svc.holder.current().version == "2",
                   what="hot reload")
        put(stream, encode_records(after))
        wait_until(lambda: len(rows_for(scored_table(), parts)) == 3 * 700, what="second half in the lake")
    finally:
        svc.stop()
        t.join(120)
    df = scored_table()
    assert_exactly_once(df, parts)
    got = rows_for(df, parts)
    first_keys = pd.concat([pd.DataFrame({"instance_id": i.instance_id, "ts": d.index}) for i, d in before])
    later = got.merge(first_keys, how="left", indicator=True)
    assert set(later.loc[later["_merge"] == "left_only", "model_version"]) == {"2"}
    assert set(later.loc[later["_merge"] == "both", "model_version"]) == {"1"}
    assert svc.metrics.model_reloads.total() >= 1


@pytest.mark.parametrize("bad_model", ["corrupt"])
def test_corrupt_champion_is_refused_and_old_one_keeps_serving(fresh_stream, champion, model_dirs, bad_model):
    from inference.model_loader import ModelHolder
    from petrostream import model_store
    from petrostream.aws import client
    from petrostream.settings import get_settings

    holder = ModelHolder(poll_s=0.1, metrics=Metrics())
    assert holder.refresh() and holder.current().version == "1"
    manifest = export_version(model_dirs, champion, "2")
    s = get_settings()
    victim = next(iter(manifest["files"]))
    client("s3").put_object(Bucket=s.models_bucket, Key=manifest["prefix"] + victim, Body=b"tampered")
    assert holder.refresh() is False
    assert holder.current().version == "1"
    assert "sha256" in (holder.last_error or "") or "size" in (holder.last_error or "")
    assert model_store.read_manifest(champion)["version"] == "2"


def test_a_new_worker_counts_a_lease_nobody_is_seen_renewing_as_unworked(fresh_stream):
    """``--exit-when-idle`` stops only when no eligible lease is left unworked. A worker that has just started
    must count a lease owned by a worker it has not yet seen renew (maybe dead: SIGKILL) as unworked, not as
    alive, or a slow start makes it exit before it ever takes the dead worker's leases."""
    from inference.consumer import Consumer, ConsumerConfig

    stream = fresh_stream(1)
    ghost = LeaseTable(stream, "ghost")
    ghost.create("shardId-000000000000", [])
    (lease,) = ghost.list()
    lease = ghost.take(lease)
    assert lease is not None
    consumer = Consumer(ConsumerConfig(stream=stream, worker_id="late", lease_s=30.0), lambda shard: None, Metrics())
    consumer._balance(take=False)
    assert consumer.suspects == 1  # owned, but never seen renewing: not known to be alive
    lease = ghost.renew(lease)
    consumer._balance(take=False)
    assert consumer.suspects == 0  # seen renewing: alive, its shard is worked on
