"""The lake write path: one Arrow conversion per call, one object per dt= partition, same schema and rows."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from inference.sink import to_lake_frame
from petrostream import lake


def _rows(n: int = 600, seed: int = 3) -> pd.DataFrame:
    """Scored rows of three instances on two wells over a day boundary, interleaved, sub-ms timestamps."""
    rng = np.random.default_rng(seed)
    base = pd.Timestamp("2021-03-04 23:40:00.000250")
    inst = rng.choice(["i-a", "i-b", "i-c"], n)
    return pd.DataFrame({
        "instance_id": inst,
        "well_id": np.where(inst == "i-c", "WELL-2", "WELL-1"),
        "source": "REAL",
        "event_class": 4,
        "ts": base + pd.to_timedelta(rng.integers(0, 3600, n), unit="s"),
        "p_pdg": np.where(rng.random(n) < 0.2, np.nan, rng.normal(size=n)),
        "label": pd.array(rng.choice([0, 4, None], n), dtype="Int64"),
        "anomaly_score": rng.random(n),
        "is_anomaly": rng.integers(0, 2, n).astype("int32"),
        "threshold": 0.5,
        "model_version": "3",
        "shard_id": "shardId-000000000001",
        "sequence_number": [str(10**20 + i // 7) for i in range(n)],
        "scored_at": pd.Timestamp("2024-05-06 07:08:09.123456"),
    })


def _read(store: lake.LakeStore, key: str):
    return pq.read_table(io.BytesIO(store.get(store.settings.curated_bucket, key)))


def test_one_object_per_day_holds_every_well_in_input_order_with_the_table_schema(tmp_path):
    store = lake.LakeStore(lake_dir=tmp_path)
    df = _rows()
    df.loc[df.index[:4], "well_id"] = None  # a row without a well is kept (well is null), never dropped
    df.loc[df.index[4:6], "ts"] = pd.NaT  # a row without a time belongs to no partition
    keys = lake.write_partitioned(lake.SCORED, df, "shardId-000000000001-1-9", store)

    ok = df[df["ts"].notna()]
    dt = ok["ts"].dt.strftime("%Y-%m-%d")
    assert keys == [f"scored/dt={d}/shardId-000000000001-1-9.parquet" for d in ("2021-03-04", "2021-03-05")]
    for d, key in zip(("2021-03-04", "2021-03-05"), keys, strict=True):
        table = _read(store, key)
        assert table.schema.equals(lake.SCORED_SCHEMA)  # same columns and types, the partition column not stored
        got = table.to_pandas()
        want = ok[dt == d]
        assert got["instance_id"].tolist() == want["instance_id"].tolist()  # rows in their input order
        assert got["well"].tolist() == want["well_id"].tolist()  # well is a column: both wells in one object
        assert got["ts"].tolist() == want["ts"].dt.floor("ms").tolist()  # the lake stores milliseconds
        np.testing.assert_array_equal(got["anomaly_score"].to_numpy(), want["anomaly_score"].to_numpy())
        assert got["p_pdg"].isna().tolist() == want["p_pdg"].isna().tolist()
        assert got["label"].isna().tolist() == want["label"].isna().tolist()
        assert got["sequence_number"].tolist() == want["sequence_number"].tolist()
        assert got["scored_at"].eq(pd.Timestamp("2024-05-06 07:08:09.123")).all()
        assert got["p_mon_ckp"].isna().all()  # a schema column missing from the frame: nulls
    back = lake.read_table(lake.SCORED, store)
    assert len(back) == len(ok) and set(back["well"].dropna()) == {"WELL-1", "WELL-2"}
    assert sorted(set(back["dt"])) == ["2021-03-04", "2021-03-05"]


def test_rows_without_a_time_write_nothing(tmp_path):
    store = lake.LakeStore(lake_dir=tmp_path)
    df = _rows(n=5).assign(ts=pd.NaT)
    assert lake.write_partitioned(lake.SCORED, df, "none", store) == []


def test_grouped_and_shuffled_input_give_the_same_objects(tmp_path):
    df = _rows(seed=5)
    grouped = df.sort_values(["instance_id", "ts"], kind="stable")
    a, b = lake.LakeStore(lake_dir=tmp_path / "a"), lake.LakeStore(lake_dir=tmp_path / "b")
    keys = lake.write_partitioned(lake.SCORED, grouped, "n", a)
    assert lake.write_partitioned(lake.SCORED, grouped.sample(frac=1.0, random_state=2), "n", b) == keys
    for key in keys:
        order = ["instance_id", "ts", "anomaly_score"]  # (instance, ts) repeats in these random rows
        x = _read(a, key).to_pandas().sort_values(order).reset_index(drop=True)
        y = _read(b, key).to_pandas().sort_values(order).reset_index(drop=True)
        pd.testing.assert_frame_equal(x, y)


def test_wire_rows_to_lake_frame_and_back(tmp_path):
    """Wire names -> lake names; sent_at seconds -> ms timestamp (0 or missing -> null); tz-aware -> UTC."""
    store = lake.LakeStore(lake_dir=tmp_path)
    rows = pd.DataFrame({
        "instance_id": "i-a", "well_id": "WELL-1", "source": "REAL", "event_class": 0,
        "timestamp": pd.to_datetime(["2022-01-01 00:00:00.0004", "2022-01-01 00:00:01.0000"]),
        "P-PDG": [1.5, np.nan], "sent_at": [1_640_995_200.0015, 0.0],
        "arrived_at": pd.to_datetime(["2022-01-01 00:00:02.0009", None]),
    })
    (key,) = lake.write_partitioned(lake.RAW, to_lake_frame(rows), "r", store)
    got = pq.read_table(io.BytesIO(store.get(store.settings.raw_bucket, key))).to_pandas()
    assert got["ts"].tolist() == [pd.Timestamp("2022-01-01"), pd.Timestamp("2022-01-01 00:00:01")]
    assert got["p_pdg"].iloc[0] == 1.5 and np.isnan(got["p_pdg"].iloc[1])
    assert got["sent_at"].iloc[0] == pd.Timestamp("2022-01-01 00:00:00.002") and pd.isna(got["sent_at"].iloc[1])
    assert got["arrived_at"].iloc[0] == pd.Timestamp("2022-01-01 00:00:02") and pd.isna(got["arrived_at"].iloc[1])
    tz = rows.assign(timestamp=rows["timestamp"].dt.tz_localize("America/Sao_Paulo"))
    (key,) = lake.write_partitioned(lake.RAW, to_lake_frame(tz), "tz", store)
    got = pq.read_table(io.BytesIO(store.get(store.settings.raw_bucket, key))).to_pandas()
    assert got["ts"].iloc[0] == pd.Timestamp("2022-01-01 03:00:00")
