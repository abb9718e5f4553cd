# ruff: noqa: F811 - pytest fixtures are imported from test_inference_support
"""Pure scoring logic: micro-batches, duplicates, hot swap with warm windows, episodes, metrics text."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from test_inference_support import loaded_model, model_dirs, slices  # noqa: F401 - fixtures

from inference.metrics import Metrics
from inference.scoring import EpisodeTracker, ModelRef, ShardScorer, episode_id
from petrostream import wire


def _decoded(parts, rows_per_record=50) -> list[pd.DataFrame]:
    """Micro-batches of decoded wire rows (what the consumer hands the scorer), instances interleaved."""
    from test_inference_support import encode_records

    records = [d for _, d in encode_records(parts, rows_per_record)]
    return [wire.decode_batch(records[i : i + 3]).rows for i in range(0, len(records), 3)]


def _whole(parts) -> pd.DataFrame:
    frames = [df.drop(columns=["class"]).reset_index().assign(instance_id=info.instance_id) for info, df in parts]
    return pd.concat(frames, ignore_index=True)


@pytest.fixture
def parts(threew_dir):
    return slices(threew_dir, rows=700)


def test_micro_batches_equal_batch_prediction(loaded_model, parts):
    scorer = ShardScorer(lambda: ModelRef(loaded_model, "1"))
    out = pd.concat([scorer.score(b).scored for b in _decoded(parts)], ignore_index=True)
    whole = _whole(parts)
    expected = whole.assign(**loaded_model.predict(whole))
    merged = out.merge(expected, on=["instance_id", "timestamp"], suffixes=("", "_batch"))
    assert len(merged) == len(whole) == len(out)
    np.testing.assert_array_equal(merged["anomaly_score"], merged["anomaly_score_batch"])
    assert (merged["model_version"] == "1").all()


def test_duplicates_and_stale_rows_are_dropped(loaded_model, parts):
    scorer = ShardScorer(lambda: ModelRef(loaded_model, "1"))
    batches = _decoded(parts)
    first = scorer.score(batches[0])
    again = scorer.score(batches[0])  # a redelivered micro-batch
    assert again.stale == len(batches[0]) and again.scored.empty
    doubled = pd.concat([batches[1], batches[1].iloc[:7]], ignore_index=True)  # repeats inside one batch
    res = scorer.score(doubled)
    assert res.duplicates == 7 and len(res.scored) == len(batches[1])
    # late rows (older than what was scored for that instance) are stale too
    late = batches[1].iloc[:5].copy()
    assert scorer.score(late).stale == 5
    assert len(first.scored) == len(batches[0])


def test_state_survives_restore(loaded_model, parts):
    a = ShardScorer(lambda: ModelRef(loaded_model, "1"), gap_s=5)
    batches = _decoded(parts)
    for b in batches[:4]:
        a.score(b)
    b = ShardScorer(lambda: ModelRef(loaded_model, "1"), gap_s=5)
    b.restore(a.state())
    assert b.watermarks == a.watermarks
    assert b.score(batches[3]).stale == len(batches[3])  # redelivery after a restart is still recognised
    assert set(b.episodes.open) == set(a.episodes.open)


def test_hot_swap_between_micro_batches_with_warm_windows(loaded_model, parts):
    v2 = loaded_model.with_threshold(loaded_model.threshold * 0.9)
    current = {"ref": ModelRef(loaded_model, "1")}
    scorer = ShardScorer(lambda: current["ref"])
    batches = _decoded(parts)
    outs = []
    for i, b in enumerate(batches):
        if i == len(batches) // 2:
            current["ref"] = ModelRef(v2, "2")
        outs.append(scorer.score(b).scored)
    out = pd.concat(outs, ignore_index=True)
    cut = len(pd.concat(outs[: len(batches) // 2]))
    assert set(out["model_version"].iloc[:cut]) == {"1"} and set(out["model_version"].iloc[cut:]) == {"2"}
    assert scorer.swaps == 1
    # v2's windows were warmed from the retained tail: its scores equal v2 on the whole history
    whole = _whole(parts)
    expected = whole.assign(**v2.predict(whole))
    merged = out.iloc[cut:].merge(expected, on=["instance_id", "timestamp"], suffixes=("", "_batch"))
    np.testing.assert_allclose(merged["anomaly_score"], merged["anomaly_score_batch"], rtol=1e-6, atol=1e-9)
    assert (merged["threshold"] == v2.threshold).all()


def test_kept_tails_are_the_last_window_of_each_instance(loaded_model, parts):
    """What a swapped-in model is warmed with: per instance, its last tail_rows rows of all 3W variables, also
    when a micro-batch brings an instance fewer new rows than the window (old and new rows joined)."""
    scorer = ShardScorer(lambda: ModelRef(loaded_model, "1"), tail_rows=60)
    batches = _decoded(parts, rows_per_record=7)  # 7-row records: many batches bring < 60 rows of an instance
    for b in batches:
        scorer.score(b)
    kept = scorer.tail_frame()
    whole = _whole(parts).sort_values(["instance_id", "timestamp"])
    expected = whole.groupby("instance_id").tail(60).reset_index(drop=True)
    assert set(kept["instance_id"]) == set(whole["instance_id"])
    kept = kept.sort_values(["instance_id", "timestamp"]).reset_index(drop=True)
    pd.testing.assert_series_equal(kept["timestamp"], expected["timestamp"].astype(kept["timestamp"].dtype))
    for name in loaded_model.feature_config.variables:
        want = expected[name] if name in expected else pd.Series(np.nan, index=expected.index)
        np.testing.assert_array_equal(kept[name].to_numpy(), want.to_numpy(dtype=float, na_value=np.nan))


def _scored(instance: str, ts_s: list[int], alarms: list[int], scores=None) -> pd.DataFrame:
    n = len(ts_s)
    return pd.DataFrame({
        "instance_id": instance, "well_id": "WELL-1", "source": "REAL", "event_class": 2,
        "timestamp": pd.to_datetime(np.array(ts_s) * 1000, unit="ms"),
        "is_anomaly": alarms, "anomaly_score": scores if scores is not None else [0.5 + a for a in alarms],
        "label": [2] * n, "model_version": "1",
    })


def test_episodes_merge_gaps_close_and_keep_ids():
    clock = {"t": 1000.0}
    tr = EpisodeTracker(gap_s=10, idle_close_s=60, clock=lambda: clock["t"])
    # alarms at 0-2 and 8-9 (gap 6 < 10: one episode), then quiet rows up to 15 (< 10 s after 9: still open)
    tr.update(_scored("i1", list(range(16)), [1, 1, 1, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0]))
    assert list(tr.open) == ["i1"] and tr.open["i1"].n == 5
    ep_id = tr.open["i1"].id
    assert ep_id == episode_id("i1", 0)
    rows = tr.touched_frame()
    assert len(rows) == 1 and rows["closed_at"].isna().all()  # partial: written at flush, still open
    tr.clear_touched()
    # a row 10 s after the last alarm closes it; a later alarm starts a new episode
    tr.update(_scored("i1", [19, 30, 31], [0, 1, 1]))
    rows = tr.touched_frame().set_index("episode_id")
    assert rows.loc[ep_id, "closed_at"] is not None and rows.loc[ep_id, "n_rows"] == 5
    assert rows.loc[ep_id, "end_ts"] == pd.Timestamp(9, unit="s") and rows.loc[ep_id, "duration_s"] == 9.0
    new_id = episode_id("i1", 30_000)
    assert new_id in rows.index and pd.isna(rows.loc[new_id, "closed_at"])
    assert tr.closed_count == 1
    # idle instances close on wall time
    clock["t"] += 61
    assert tr.close_idle() == 1 and not tr.open


def test_episode_state_roundtrip_continues_the_same_episode():
    tr = EpisodeTracker(gap_s=10)
    tr.update(_scored("i1", [0, 1, 2], [1, 1, 1]))
    other = EpisodeTracker(gap_s=10)
    other.restore(tr.state())
    other.update(_scored("i1", [3, 4], [1, 0]))
    frame = other.touched_frame()
    assert list(frame["episode_id"]) == [episode_id("i1", 0)] and frame["n_rows"].iloc[0] == 4


def test_metrics_text_format():
    m = Metrics()
    m.rows_scored.inc(3, source="REAL")
    m.batch_latency.observe(0.02)
    m.batch_latency.observe(100)
    m.millis_behind.set(5, consumer="serve", shard='we"ird')
    text = m.render()
    assert 'petrostream_rows_scored_total{source="REAL"} 3' in text
    assert 'petrostream_batch_latency_seconds_bucket{le="0.025"} 1' in text
    assert 'petrostream_batch_latency_seconds_bucket{le="+Inf"} 2' in text
    assert "petrostream_batch_latency_seconds_count 2" in text
    assert 'shard="we\\"ird"' in text
    with pytest.raises(ValueError):
        m.rows_scored.inc(-1, source="REAL")


def test_a_batch_the_model_cannot_score_is_quarantined_not_dropped(loaded_model, parts, tmp_path):
    from test_inference_support import encode_records

    from inference.sink import LakeSink, ScoringProcessor
    from petrostream import lake

    class Broken:
        threshold = 1.0
        feature_config = loaded_model.feature_config

        def stream_scorer(self):
            return self

        def score(self, df):
            raise FloatingPointError("detector exploded")

    store = lake.LakeStore(lake_dir=tmp_path)
    metrics = Metrics()
    proc = ScoringProcessor("shardId-9", ShardScorer(lambda: ModelRef(Broken(), "9")), LakeSink(store), metrics)
    records = [{"Data": d, "SequenceNumber": str(i + 1), "PartitionKey": pk, "ApproximateArrivalTimestamp": None}
               for i, (pk, d) in enumerate(encode_records(parts[:1])[:3])]
    assert proc.process(records) == 0
    proc.flush("shardId-9-1-3")
    (key,) = store.list(store.settings.curated_bucket, "quarantine/")
    lines = [json.loads(x) for x in store.get(store.settings.curated_bucket, key).decode().splitlines()]
    assert [x["sequence_number"] for x in lines] == ["1", "2", "3"]
    assert all("scoring failed: FloatingPointError: detector exploded" in x["reason"] for x in lines)
    assert metrics.quarantined.total() == 3


def _flusher(tracker, sink):
    def flush(name=None):
        frame = tracker.touched_frame()
        if len(frame):
            sink.events(frame, name)
        tracker.clear_touched()

    return flush


def _events(store) -> pd.DataFrame:
    from petrostream import lake

    return lake.read_table(lake.EVENTS, store).set_index("episode_id")


def test_episodes_between_flushes_share_the_flush_object_and_each_episode_is_in_the_lake_once(tmp_path):
    from inference.sink import LakeSink
    from petrostream import lake

    store = lake.LakeStore(lake_dir=tmp_path)
    clock = {"t": 1000.0}
    tr = EpisodeTracker(gap_s=10, idle_close_s=600, clock=lambda: clock["t"])
    flush = _flusher(tr, LakeSink(store))
    # window 1: A (alarms 0-2) opens and closes on rows; B (20-24) is still open at the flush
    tr.update(_scored("i1", list(range(25)), [1, 1, 1] + [0] * 17 + [1] * 5))
    a, b = episode_id("i1", 0), episode_id("i1", 20_000)
    assert tr.touched_frame().set_index("episode_id")["own_object"].to_dict() == {a: False, b: True}
    flush("shardId-1-1-5")
    after_first = tr.state()
    # window 2: B goes on (25-29) and closes; C (45-46) opens and closes
    window2 = _scored("i1", list(range(25, 60)), [1] * 5 + [0] * 15 + [1, 1] + [0] * 13)
    tr.update(window2)
    c = episode_id("i1", 45_000)
    flush("shardId-1-6-9")

    keys = sorted(k.rsplit("/", 1)[-1] for k in store.list(store.settings.curated_bucket, "events/"))
    assert keys == sorted([f"{b}.parquet", "shardId-1-1-5.parquet", "shardId-1-6-9.parquet"])
    ev = _events(store)
    assert sorted(ev.index) == sorted([a, b, c])  # each episode once
    assert ev.loc[a, "n_rows"] == 3 and ev.loc[b, "n_rows"] == 10 and ev.loc[c, "n_rows"] == 2
    assert ev["closed_at"].notna().all()  # B's own object now holds its closed version

    # a crash before the checkpoint: a new owner restores the state of flush 1 and replays window 2 under the
    # same object name -> the same objects again, still each episode once
    clock["t"] += 100
    again = EpisodeTracker(gap_s=10, idle_close_s=600, clock=lambda: clock["t"])
    again.restore(after_first)
    again.update(window2)
    _flusher(again, LakeSink(store))("shardId-1-6-9")
    assert len(store.list(store.settings.curated_bucket, "events/")) == 3
    replayed = _events(store)
    assert sorted(replayed.index) == sorted([a, b, c]) and replayed["n_rows"].sum() == 15


def test_episode_closed_on_wall_time_gets_its_own_object(tmp_path):
    from inference.sink import LakeSink
    from petrostream import lake

    store = lake.LakeStore(lake_dir=tmp_path)
    clock = {"t": 1000.0}
    tr = EpisodeTracker(gap_s=10, idle_close_s=60, clock=lambda: clock["t"])
    tr.update(_scored("i1", [0, 1], [1, 1]))
    clock["t"] += 61
    assert tr.close_idle() == 1
    _flusher(tr, LakeSink(store))()  # write_state_only: no flush name
    (key,) = store.list(store.settings.curated_bucket, "events/")
    assert key.endswith(f"/{episode_id('i1', 0)}.parquet")


def test_open_episode_writes_are_throttled_and_a_restart_rewrites_them(tmp_path):
    from inference.sink import LakeSink
    from petrostream import lake

    store = lake.LakeStore(lake_dir=tmp_path)
    clock = {"t": 1000.0}

    def scorer():
        return ShardScorer(lambda: None, gap_s=10, idle_close_s=600, clock=lambda: clock["t"], episode_write_s=30)

    def n_rows():
        ev = _events(store)
        return None if ev.empty else int(ev.loc[ep, "n_rows"])

    first = scorer()
    tr = first.episodes
    flush = _flusher(tr, LakeSink(store))
    ep = episode_id("i1", 0)
    tr.update(_scored("i1", [0, 1, 2], [1, 1, 1]))
    flush("f1")
    assert n_rows() == 3  # a new alarm is written at the next flush, never held back
    clock["t"] += 10
    tr.update(_scored("i1", [3, 4], [1, 1]))
    flush("f2")
    assert n_rows() == 3 and not first.maintain()  # written 10 s ago: the re-write waits
    clock["t"] += 20  # 30 s since the last write: housekeeping asks for a write (the service's write_state_only)
    assert first.maintain()
    flush()
    assert n_rows() == 5
    clock["t"] += 1
    tr.update(_scored("i1", [5, 6], [1, 0]))
    flush("f3")
    assert n_rows() == 5  # written 1 s ago: the change waits
    state = first.state()

    # a restart (or a new lease owner): the restored open episode is written at the first flush, changed or not
    clock["t"] += 1
    second = scorer()
    second.restore(state)
    flush2 = _flusher(second.episodes, LakeSink(store))
    flush2("f4")
    assert n_rows() == 6
    # closing is never held back, and the episode stays in the lake once
    clock["t"] += 1
    second.episodes.update(_scored("i1", [20], [0]))
    flush2("f5")
    ev = _events(store)
    assert list(ev.index) == [ep] and ev.loc[ep, "n_rows"] == 6 and pd.notna(ev.loc[ep, "closed_at"])
    assert len(store.list(store.settings.curated_bucket, "events/")) == 1
    # a short episode that opens and closes between two flushes is written at once (in the flush's object)
    clock["t"] += 1
    second.episodes.update(_scored("i1", [40, 41, 60], [1, 1, 0]))
    flush2("f6")
    assert episode_id("i1", 40_000) in _events(store).index


def test_unsorted_batch_is_scored_sorted_without_touching_the_input(loaded_model, parts):
    scorer = ShardScorer(lambda: ModelRef(loaded_model, "1"))
    batch = _decoded(parts)[0]
    shuffled = batch.sample(frac=1.0, random_state=1)
    before = shuffled.copy()
    res = scorer.score(shuffled)
    pd.testing.assert_frame_equal(shuffled, before)
    expected = before.sort_values(["instance_id", "timestamp"], kind="stable")
    assert list(res.scored.index) == list(expected.index)
    assert res.duplicates == 0 and res.stale == 0 and len(res.scored) == len(batch)
    assert {"anomaly_score", "is_anomaly", "threshold", "model_version"} <= set(res.scored.columns)
