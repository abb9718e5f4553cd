"""Compaction: quiet days of flush objects -> few objects sorted by well, same rows, crash-safe, via the CLI."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from petrostream import compaction, lake
from petrostream.query.duckdb_backend import DuckDBBackend
from petrostream.settings import Settings

WELLS = ("WELL-00001", "WELL-00002", "WELL-00003")


def _flush(i: int, n: int = 300, day: str = "2021-03-04") -> pd.DataFrame:
    """One flush of a shard: rows of every well, interleaved, 10 s of data per well."""
    rng = np.random.default_rng(i)
    well = np.array(WELLS)[np.arange(n) % len(WELLS)]
    return pd.DataFrame({
        "instance_id": [f"4_{w}_x" for w in well],
        "well_id": well,
        "source": "REAL",
        "event_class": 4,
        "ts": pd.Timestamp(f"{day} 10:00:00") + pd.to_timedelta(i * 100 + np.arange(n) // len(WELLS), unit="s"),
        "p_pdg": rng.normal(size=n),
        "anomaly_score": rng.random(n),
        "is_anomaly": rng.integers(0, 2, n).astype("int32"),
        "threshold": 0.5,
        "model_version": "1",
        "shard_id": "shardId-000000000000",
        "sequence_number": str(i),
    })


def _lake(tmp_path, flushes: int = 6) -> lake.LakeStore:
    store = lake.LakeStore(Settings(lake_dir=tmp_path))
    for i in range(flushes):
        lake.write_partitioned(lake.SCORED, _flush(i), f"shardId-000000000000-{i}", store)
    lake.write_partitioned(lake.SCORED, _flush(99, day="2021-03-05"), "shardId-000000000000-99", store)
    return store


def _keys(store: lake.LakeStore) -> list[str]:
    return store.list(store.settings.curated_bucket, "scored/")


def _rows(store: lake.LakeStore) -> pd.DataFrame:
    df = lake.read_table(lake.SCORED, store)
    return df.sort_values(["instance_id", "ts"]).reset_index(drop=True)[["well", "instance_id", "ts", "p_pdg",
                                                                         "anomaly_score", "dt"]]


def test_a_quiet_day_becomes_one_object_sorted_by_well_with_the_same_rows(tmp_path):
    store = _lake(tmp_path)
    before = _rows(store)
    results = compaction.compact(lake.SCORED, store, quiet_s=0, row_group_rows=200)
    assert [(r.dt, r.sources, len(r.outputs), r.skipped) for r in results] == [
        ("2021-03-04", 6, 1, ""), ("2021-03-05", 1, 0, "already compact")]
    pd.testing.assert_frame_equal(_rows(store), before)  # same rows, no loss, no duplicate
    (day_key,) = [k for k in _keys(store) if "dt=2021-03-04" in k]
    assert day_key.rsplit("/", 1)[-1].startswith(compaction.PREFIX)
    meta = pq.ParquetFile(io.BytesIO(store.get(store.settings.curated_bucket, day_key))).metadata
    assert meta.num_rows == 1800 and meta.num_row_groups == 9
    col = meta.schema.to_arrow_schema().get_field_index("well")
    ranges = [(meta.row_group(g).column(col).statistics.min, meta.row_group(g).column(col).statistics.max)
              for g in range(meta.num_row_groups)]
    assert ranges == sorted(ranges) and all(lo == hi for lo, hi in ranges)  # one well per row group: prunable
    # a second run has nothing to do, and reads no object to find that out (cost stays flat as the lake grows)
    reads = []
    get = store.get
    store.get = lambda bucket, key: reads.append(key) or get(bucket, key)  # type: ignore[method-assign]
    again = compaction.compact(lake.SCORED, store, quiet_s=0)
    assert [r.skipped for r in again] == ["already compact", "already compact"]
    assert reads == []


def test_a_day_written_to_recently_is_left_alone(tmp_path):
    store = _lake(tmp_path)
    keys = _keys(store)
    results = compaction.compact(lake.SCORED, store, quiet_s=3600)
    assert all(r.skipped.startswith("written to in the last") for r in results)
    assert _keys(store) == keys
    later = time.time() + 7200  # two hours on, the service has not written there: quiet
    assert compaction.compact(lake.SCORED, store, quiet_s=3600, now=later)[0].outputs


def test_an_interrupted_compaction_is_finished_by_the_next_run(tmp_path, monkeypatch):
    store = _lake(tmp_path)
    before = _rows(store)

    def crash(self, bucket, keys):  # the output is written, the process dies before deleting its sources
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(lake.LakeStore, "delete", crash)
        with pytest.raises(KeyboardInterrupt):
            compaction.compact(lake.SCORED, store, quiet_s=0, days=["2021-03-04"])
    assert len(lake.read_table(lake.SCORED, store)) == 2 * len(before) - 300  # duplicates meanwhile
    res = compaction.compact(lake.SCORED, store, quiet_s=0, days=["2021-03-04"])
    assert res[0].recovered == 6
    pd.testing.assert_frame_equal(_rows(store), before)


def test_finishing_an_interrupted_run_reads_only_the_outputs_footer(tmp_path, monkeypatch):
    """Recovery needs the source list of a compacted object (~128 MB in production): its footer, not the object."""
    store = _lake(tmp_path)
    with monkeypatch.context() as m:
        m.setattr(lake.LakeStore, "delete", lambda self, bucket, keys: (_ for _ in ()).throw(KeyboardInterrupt))
        with pytest.raises(KeyboardInterrupt):
            compaction.compact(lake.SCORED, store, quiet_s=0, days=["2021-03-04"])
    (output,) = [k for k in _keys(store) if compaction.PREFIX in k]
    reads, tails = [], []
    get, get_tail = store.get, store.get_tail
    store.get = lambda bucket, key: reads.append(key) or get(bucket, key)  # type: ignore[method-assign]
    store.get_tail = lambda bucket, key, n: tails.append(n) or get_tail(bucket, key, n)  # type: ignore[method-assign]
    compaction.compact(lake.SCORED, store, quiet_s=0, days=["2021-03-04"])
    assert reads == []  # no whole object was read
    assert tails == [compaction._FOOTER_GUESS]  # one ranged read of the output's end
    monkeypatch.setattr(compaction, "_FOOTER_GUESS", 16)  # a footer longer than the first read: a second one
    assert compaction._sources_of(store, store.settings.curated_bucket, output)


def test_queries_see_the_same_lake_after_compaction(tmp_path):
    store = _lake(tmp_path, flushes=4)
    sql = "SELECT well, count(*) AS n, sum(is_anomaly) AS alarms FROM scored_readings GROUP BY well ORDER BY well"
    backend = DuckDBBackend(store.settings, refresh_seconds=0)
    try:
        before = backend.query(sql)
        compaction.compact(lake.SCORED, store, quiet_s=0)
        after = backend.query(sql)
    finally:
        backend.close()
    pd.testing.assert_frame_equal(before, after)
    assert before["well"].tolist() == list(WELLS)


def test_compact_on_the_emulators_s3(emulator):
    import uuid

    import boto3

    bucket = f"t-compact-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=emulator.endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
    store = lake.LakeStore(Settings(curated_bucket=bucket), lake_dir=None)
    for i in range(3):
        lake.write_partitioned(lake.SCORED, _flush(i), f"s-{i}", store)
    (res,) = compaction.compact(lake.SCORED, store, quiet_s=0)
    assert res.sources == 3 and len(res.outputs) == 1 and res.rows == 900
    assert _keys(store) == res.outputs
    # the ranged footer read against S3 gives the compacted object's source list
    assert len(compaction._sources_of(store, bucket, res.outputs[0])) == 3
    assert store.get_tail(bucket, res.outputs[0], 4) == b"PAR1"


def _cli(*args: str, lake_dir) -> subprocess.CompletedProcess:
    env = {**os.environ, "PETROSTREAM_LAKE_DIR": str(lake_dir)}
    return subprocess.run([sys.executable, "-m", "petrostream.cli", "compact", *args], capture_output=True,
                          text=True, timeout=120, env=env)


def test_cli_dry_run_then_compact_and_bad_input(tmp_path):
    store = _lake(tmp_path)
    keys = _keys(store)
    dry = _cli("--quiet-hours", "0", "--dry-run", lake_dir=tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert "scored_readings dt=2021-03-04: 6 objects -> 1 (dry run)" in dry.stdout
    assert _keys(store) == keys
    run = _cli("--quiet-hours", "0", lake_dir=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "1 of 2 days compacted" in run.stdout
    assert "compact scored_readings: 7 objects in" in run.stderr  # progress with a rate on stderr
    assert len(_keys(store)) == 2
    bad = _cli("--table", "nope", lake_dir=tmp_path)
    assert bad.returncode == 1
    assert bad.stderr.strip().splitlines() == [
        "error: --table must be one of scored_readings, raw_readings, not 'nope'"]
    assert _cli("--day", "4 March", lake_dir=tmp_path).returncode == 1


def test_objects_of_the_earlier_dt_well_layout_are_migrated(tmp_path):
    """A lake written by earlier versions (dt=/well=/ objects, the well only in the path) becomes the new layout."""
    store = lake.LakeStore(Settings(lake_dir=tmp_path))
    bucket = store.settings.curated_bucket
    old = lake.to_arrow(_flush(1), lake.SCORED.schema).drop_columns(["well"])  # as the earlier sink wrote them
    for w in WELLS:
        rows = old.filter(pc.equal(old.column("instance_id"), f"4_{w}_x"))
        store.put(bucket, f"scored/dt=2021-03-04/well={w}/shardId-000000000000-1.parquet", lake.parquet_bytes(rows))
    lake.write_partitioned(lake.SCORED, _flush(2), "shardId-000000000000-2", store)  # and one new-layout object
    (res,) = compaction.compact(lake.SCORED, store, quiet_s=0)
    assert res.sources == 4 and len(res.outputs) == 1
    assert _keys(store) == res.outputs
    assert not list((tmp_path / bucket / "scored").rglob("well=*"))  # the well= folders are gone too
    back = lake.read_table(lake.SCORED, store)
    assert len(back) == 600 and back["well"].notna().all()
    assert (back["instance_id"] == "4_" + back["well"] + "_x").all()  # each row got its own well back


def test_a_lone_object_of_the_earlier_layout_is_migrated_too(tmp_path):
    store = lake.LakeStore(Settings(lake_dir=tmp_path))
    rows = lake.to_arrow(_flush(1), lake.SCORED.schema).drop_columns(["well"])
    rows = rows.filter(pc.equal(rows.column("instance_id"), "4_WELL-00002_x"))
    store.put(store.settings.curated_bucket, "scored/dt=2021-03-04/well=WELL-00002/s-1.parquet",
              lake.parquet_bytes(rows))
    (res,) = compaction.compact(lake.SCORED, store, quiet_s=0)
    assert res.sources == 1 and len(res.outputs) == 1
    assert set(lake.read_table(lake.SCORED, store)["well"]) == {"WELL-00002"}
