"""Query layer: the Athena SQL views on DuckDB over a lake written through petrostream.lake (local
folder and the emulator's S3), checked against values computed independently with pandas; the
Athena backend against the emulator (canned results, polling, pagination, failures, timeout);
backend choice; the `petrostream query` CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from petrostream import sql as lake_sql
from petrostream.lake import EVENTS, SCORED, LakeStore, write_partitioned, write_quarantine
from petrostream.query import QueryError, backend_kind, get_backend
from petrostream.query.athena_backend import AthenaBackend, classify_failure
from petrostream.query.duckdb_backend import DuckDBBackend
from petrostream.schema import EVENTS as EVENT_DEFS
from petrostream.schema import TRANSIENT_LABELS, event_name
from petrostream.settings import Settings

WELLS = ("WELL-00001", "WELL-00002", "4_SIMULATED_00003")
DAYS = ("2017-03-31", "2017-04-01")  # two days, two months, one year
MODEL_OF_DAY = {"2017-03-31": "1", "2017-04-01": "2"}
# last reading of each well on the last day: lake "now" = 12:00:00; WELL-00002 5 min behind; the
# simulated well 60 min behind (stale with the 10-minute rule)
END = {"WELL-00001": "12:00:00", "WELL-00002": "11:55:00", "4_SIMULATED_00003": "11:00:00"}
ROWS = 900
SENSORS = ("p_pdg", "p_tpt", "t_tpt", "p_mon_ckp", "t_jus_ckp")


# ------------------------------------------------------------------ fixture lake


def make_scored() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    frames = []
    for w, well in enumerate(WELLS):
        for day in DAYS:
            end = pd.Timestamp(f"{day} {END[well]}")
            ts = pd.date_range(end=end, periods=ROWS, freq="s")
            if well == "WELL-00002" and day == DAYS[0]:
                ts = ts[ts < end - pd.Timedelta(minutes=8)].append(ts[ts >= end - pd.Timedelta(minutes=3)])
            n = len(ts)
            inst = np.where(np.arange(n) < n // 2, f"6_{well}_{day}_a", f"6_{well}_{day}_b")
            label = np.where(np.arange(n) < int(n * 0.6), 0, np.where(np.arange(n) % 2 == 0, 6, 106)).astype(float)
            label[rng.random(n) < 0.03] = np.nan  # unlabelled rows
            score = rng.random(n) * 0.7 + np.where(label > 0, 0.25, 0.0)
            df = pd.DataFrame(
                {
                    "well_id": well,
                    "instance_id": inst,
                    "source": "SIMULATED" if well.startswith("4_") else "REAL",
                    "event_class": 6,
                    "ts": ts,
                    "label": pd.Series(label).astype("Int32"),
                    "anomaly_score": score,
                    "threshold": 0.6,
                    "is_anomaly": (score > 0.6).astype(int),
                    "model_version": MODEL_OF_DAY[day],
                    "p_pdg": np.where(rng.random(n) < 0.3, 0.0, 2.0e7 + 1e5 * w + rng.normal(0, 1e4, n)),
                    "p_tpt": 1.0e7 + 1e5 * w + rng.normal(0, 1e4, n),
                    "t_tpt": 80 + w + rng.normal(0, 1, n),
                    "p_mon_ckp": 5.0e6 + rng.normal(0, 1e4, n),
                    "t_jus_ckp": 60 + rng.normal(0, 1, n),
                    "qgl": rng.random(n),
                    "shard_id": "shardId-000000000000",
                    "sequence_number": [f"{i:020d}" for i in range(n)],
                    "sent_at": ts + pd.Timedelta(seconds=1),
                    "scored_at": ts + pd.Timedelta(seconds=2),
                }
            )
            df.loc[rng.random(n) < 0.02, "p_tpt"] = np.nan
            frames.append(df)
    return pd.concat(frames, ignore_index=True)


def make_events() -> pd.DataFrame:
    rows = []
    for well in WELLS:
        for d, day in enumerate(DAYS):
            for k in range(2 if d == 0 else 1):
                start = pd.Timestamp(f"{day} 11:{10 + 10 * k:02d}:00")
                rows.append(
                    {
                        "well_id": well,
                        "episode_id": f"{well}-{day}-{k}",
                        "instance_id": f"6_{well}_{day}_a",
                        "source": "REAL",
                        "event_class": 6,
                        "start_ts": start,
                        "end_ts": start + pd.Timedelta(seconds=90 + 30 * k),
                        "duration_s": 90.0 + 30 * k,
                        "n_rows": 91 + 30 * k,
                        "peak_score": 0.9 - 0.1 * k,
                        "mean_score": 0.7,
                        "model_version": MODEL_OF_DAY[day],
                        "label": 6 if k == 0 else 0,
                        "closed_at": start + pd.Timedelta(minutes=5),
                    }
                )
    return pd.DataFrame(rows)


QUARANTINE = {
    DAYS[0]: [{"reason": "bad json", "consumer": "c1", "shard_id": "s0", "sequence_number": "1", "size": 12}],
    DAYS[1]: [
        {"reason": "unknown variable X", "consumer": "c1", "shard_id": "s1", "sequence_number": "2", "size": 40},
        {"reason": "bad json", "consumer": "c2", "shard_id": "s1", "sequence_number": "3", "size": 7},
    ],
}


def write_lake(store: LakeStore, scored: pd.DataFrame, events: pd.DataFrame) -> None:
    half = len(scored) // 2  # two batches -> several objects per partition
    write_partitioned(SCORED, scored.iloc[:half], "b0", store)
    write_partitioned(SCORED, scored.iloc[half:], "b1", store)
    for _, one in events.groupby("episode_id"):
        write_partitioned(EVENTS, one, str(one["episode_id"].iloc[0]), store)
    for day, entries in QUARANTINE.items():
        write_quarantine(entries, "q0", day, store)


@pytest.fixture(scope="module")
def data():
    return make_scored(), make_events()


@pytest.fixture(scope="module")
def lake(tmp_path_factory, data) -> DuckDBBackend:
    d = tmp_path_factory.mktemp("lake")
    settings = Settings(lake_dir=d)
    write_lake(LakeStore(settings), *data)
    backend = DuckDBBackend(settings)
    yield backend
    backend.close()


@pytest.fixture
def empty_lake(tmp_path) -> DuckDBBackend:
    backend = DuckDBBackend(Settings(lake_dir=tmp_path))
    yield backend
    backend.close()


def _sorted(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    return df.sort_values(keys).reset_index(drop=True)


# ------------------------------------------------------------------ expected values (pandas)


def expected_model_performance(s: pd.DataFrame) -> pd.DataFrame:
    s = s.assign(dt=s["ts"].dt.strftime("%Y-%m-%d")).sort_values(["model_version", "well_id", "instance_id", "ts"])
    g = s.groupby(["model_version", "well_id", "instance_id"])
    prev = g["is_anomaly"].shift(1).fillna(0)
    s["alarm_start"] = ((s["is_anomaly"] == 1) & (prev == 0)).astype(int)
    gap = (g["ts"].shift(-1) - s["ts"]).dt.total_seconds()
    s["dwell"] = gap.clip(upper=60).fillna(1.0)
    pos = s["label"].ne(0).fillna(False).astype(bool)  # 3W event (unlabelled rows are neither)
    neg = s["label"].eq(0).fillna(False).astype(bool)
    alarm = s["is_anomaly"].eq(1)
    s["tp"] = (alarm & pos).astype(int)
    s["fp"] = (alarm & neg).astype(int)
    s["fn"] = (~alarm & pos).astype(int)
    s["tn"] = (~alarm & neg).astype(int)
    s["normal"] = neg
    s["false_alarm"] = s["alarm_start"] * s["normal"]
    s["normal_s"] = s["dwell"] * s["normal"]
    out = s.groupby(["model_version", "dt"]).agg(
        n_rows=("ts", "size"),
        labelled_rows=("label", "count"),
        tp=("tp", "sum"),
        fp=("fp", "sum"),
        fn=("fn", "sum"),
        tn=("tn", "sum"),
        alarms=("alarm_start", "sum"),
        false_alarms=("false_alarm", "sum"),
        normal_hours=("normal_s", "sum"),
    )
    out["normal_hours"] /= 3600.0
    out["precision"] = out.tp / (out.tp + out.fp)
    out["recall"] = out.tp / (out.tp + out.fn)
    out["false_positive_rate"] = out.fp / (out.fp + out.tn)
    out["false_alarms_per_hour"] = out.false_alarms / out.normal_hours
    return out.reset_index()


def expected_daily(s: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
    s = s.assign(dt=s["ts"].dt.strftime("%Y-%m-%d"), p_pdg_live=s["p_pdg"].where(s["p_pdg"] != 0))
    out = s.groupby(["well_id", "dt"]).agg(
        n_rows=("ts", "size"),
        anomaly_rows=("is_anomaly", "sum"),
        p_tpt_avg=("p_tpt", "mean"),
        p_tpt_std=("p_tpt", "std"),
        t_tpt_max=("t_tpt", "max"),
        p_pdg_avg=("p_pdg_live", "mean"),
        p_pdg_dead_rows=("p_pdg", lambda x: int((x == 0).sum())),
    )
    out["anomaly_rate"] = out.anomaly_rows / out.n_rows
    ev = events.assign(dt=events["start_ts"].dt.strftime("%Y-%m-%d")).groupby(["well_id", "dt"]).size()
    out["episodes"] = ev.reindex(out.index).fillna(0).astype(int)
    return out.reset_index().rename(columns={"well_id": "well"})


# ------------------------------------------------------------------ views on DuckDB


def test_every_view_runs_on_an_empty_lake(empty_lake, lake):
    for name in lake_sql.view_names():
        df = empty_lake.view(name)
        if name == "v_event_classes":
            assert len(df) == len(EVENT_DEFS) + len(TRANSIENT_LABELS)
        else:
            assert len(df) == 0, name
        assert list(df.columns) == list(lake.view(name, limit=0).columns), name


def test_event_classes_mirror_the_3w_schema(lake):
    df = lake.view("v_event_classes")
    assert dict(zip(df["label"], df["event_name"], strict=True)) == {
        lab: event_name(lab) for lab in [*EVENT_DEFS, *TRANSIENT_LABELS]
    }
    assert df.loc[df["label"] == 0, "is_event"].tolist() == [False]
    assert df.loc[df["label"] == 102, "event_class"].tolist() == [2]


def test_seed_queries_run_as_written(lake, data):
    scored, _ = data
    flagged = lake.query("SELECT * FROM well_data WHERE anomaly_flag = 1;")
    assert len(flagged) == int(scored["is_anomaly"].sum())
    assert set(flagged["well_id"]) == set(WELLS)
    avg = lake.query("SELECT well_id, AVG(pressure) FROM well_data GROUP BY well_id;")
    got = dict(zip(avg.iloc[:, 0], avg.iloc[:, 1], strict=True))
    want = scored.groupby("well_id")["p_tpt"].mean().to_dict()
    assert got.keys() == want.keys()
    for well, value in want.items():
        assert got[well] == pytest.approx(value, rel=1e-12)


def test_model_performance_matches_pandas(lake, data):
    scored, _ = data
    got = _sorted(lake.view("v_model_performance"), ["model_version", "dt"])
    want = _sorted(expected_model_performance(scored), ["model_version", "dt"])
    assert got[["model_version", "dt"]].values.tolist() == [["1", DAYS[0]], ["2", DAYS[1]]]
    for col in ("n_rows", "labelled_rows", "tp", "fp", "fn", "tn", "alarms", "false_alarms"):
        assert got[col].astype(int).tolist() == want[col].astype(int).tolist(), col
    for col in ("precision", "recall", "false_positive_rate", "normal_hours", "false_alarms_per_hour"):
        np.testing.assert_allclose(got[col].astype(float), want[col], rtol=1e-9, err_msg=col)
    assert got["tp"].sum() > 0 and got["fp"].sum() > 0 and got["fn"].sum() > 0  # the fixture exercises all cells
    # the 5-minute hole in WELL-00002's first day counts 60 s, not 300 s, of normal operation
    assert (got["normal_hours"] < got["n_rows"] / 3600).all()


def test_daily_well_summary_matches_pandas(lake, data):
    scored, events = data
    got = _sorted(lake.view("v_daily_well_summary"), ["well", "dt"])
    want = _sorted(expected_daily(scored, events), ["well", "dt"])
    assert got[["well", "dt"]].values.tolist() == want[["well", "dt"]].values.tolist()
    for col in ("n_rows", "anomaly_rows", "episodes", "p_pdg_dead_rows"):
        assert got[col].astype(int).tolist() == want[col].astype(int).tolist(), col
    for col in ("anomaly_rate", "p_tpt_avg", "p_tpt_std", "t_tpt_max", "p_pdg_avg"):
        np.testing.assert_allclose(got[col].astype(float), want[col], rtol=1e-9, err_msg=col)
    assert (got["day"] == pd.to_datetime(got["dt"])).all()


def test_well_status_uses_the_lakes_latest_timestamp(lake, data):
    scored, _ = data
    got = lake.view("v_well_status").set_index("well")
    lake_now = scored["ts"].max()
    assert set(got.index) == set(WELLS)
    assert (got["lake_now"] == lake_now).all()
    for well in WELLS:
        mine = scored[scored["well_id"] == well].sort_values("ts")
        last = mine.iloc[-1]
        row = got.loc[well]
        assert row["last_ts"] == last["ts"]
        assert row["last_score"] == pytest.approx(last["anomaly_score"])
        assert bool(row["alarm_now"]) == bool(last["is_anomaly"])
        assert row["rows_last_hour"] == int((mine["ts"] > lake_now - pd.Timedelta(hours=1)).sum())
        assert row["seconds_behind"] == int((lake_now - last["ts"]).total_seconds())
    assert got["is_stale"].to_dict() == {"WELL-00001": False, "WELL-00002": False, "4_SIMULATED_00003": True}
    assert got.loc["4_SIMULATED_00003", "status"] == "STALE"
    assert got.loc["WELL-00001", "status"] == ("ALARM" if got.loc["WELL-00001", "alarm_now"] else "OK")


def test_anomalies_feed_rows_and_episodes(lake, data):
    scored, events = data
    df = lake.view("v_anomalies")
    assert (df["kind"] == "row").sum() == int(scored["is_anomaly"].sum())
    assert (df["kind"] == "episode").sum() == len(events)
    ep = df[df["kind"] == "episode"].set_index("episode_id")
    assert ep.loc["WELL-00002-2017-03-31-0", "score"] == pytest.approx(0.9)
    assert ep.loc["WELL-00002-2017-03-31-0", "label_name"] == "Quick Restriction in PCK"
    assert ep.loc["WELL-00002-2017-03-31-1", "is_event"] == False  # noqa: E712 - pandas boolean
    rows = df[df["kind"] == "row"]
    names = {"Normal Operation", "Quick Restriction in PCK", "Quick Restriction in PCK (transient)"}
    assert set(rows["label_name"].dropna()) == names
    assert rows["label_name"].isna().sum() == rows["label"].isna().sum()


def test_executive_trends(lake, data):
    scored, events = data
    monthly = _sorted(lake.view("v_exec_monthly"), ["month"])
    assert monthly["month"].tolist() == ["2017-03", "2017-04"]
    assert monthly["month_start"].tolist() == [pd.Timestamp("2017-03-01"), pd.Timestamp("2017-04-01")]
    by_month = scored.groupby(scored["ts"].dt.strftime("%Y-%m"))
    assert monthly["n_rows"].tolist() == by_month.size().tolist()
    assert monthly["anomaly_rows"].tolist() == by_month["is_anomaly"].sum().tolist()
    assert monthly["wells"].tolist() == [3, 3]
    assert monthly["episodes"].tolist() == [6, 3]
    assert pd.isna(monthly.loc[0, "episodes_change"]) and monthly.loc[1, "episodes_change"] == -3
    perf = expected_model_performance(scored)
    np.testing.assert_allclose(monthly["precision"], perf.tp / (perf.tp + perf.fp))
    yearly = lake.view("v_exec_yearly")
    assert yearly["year"].tolist() == ["2017"] and yearly["n_rows"].tolist() == [len(scored)]
    assert yearly["precision"].iloc[0] == pytest.approx(perf.tp.sum() / (perf.tp.sum() + perf.fp.sum()))


def test_quarantine_view(lake):
    df = _sorted(lake.view("v_quarantine"), ["dt", "sequence_number"])
    assert df["dt"].tolist() == [DAYS[0], DAYS[1], DAYS[1]]
    assert df["reason"].tolist() == ["bad json", "unknown variable X", "bad json"]
    assert df["size_bytes"].tolist() == [12, 40, 7]
    assert json.loads(df["record"].iloc[1])["consumer"] == "c1"


def test_fleet_views_match_the_base_tables(lake, data):
    scored, _ = data
    base = lake.query("SELECT well, dt, count(*) AS n FROM scored_readings GROUP BY well, dt")
    fleet = lake.query("SELECT well, dt, count(*) AS n FROM v_scored GROUP BY well, dt")
    assert _sorted(base, ["well", "dt"]).equals(_sorted(fleet, ["well", "dt"]))
    days = lake.query("""SELECT DISTINCT regexp_extract("$path", '/dt=([^/]+)/', 1) AS d FROM scored_readings""")
    assert sorted(days["d"]) == list(DAYS)  # Athena's idiom for the partition from the object path
    per_well = lake.query("SELECT count(*) AS n FROM scored_readings WHERE well = 'WELL-00002'")["n"].iloc[0]
    assert per_well == (scored["well_id"] == "WELL-00002").sum() > 0  # well is a column: a plain filter
    cols = lake.view("v_scored", limit=0).columns.tolist()
    columns = [c for c in SCORED.schema.names if c != "well"]
    assert cols == [*columns, "dt", "well"]  # the views keep their column order across the layout change
    columns = [c for c in EVENTS.schema.names if c != "well"]
    assert lake.view("v_events", limit=0).columns.tolist() == [*columns, "dt", "well"]


def test_dtypes_are_the_documented_ones(lake):
    df = lake.view("v_well_status")
    assert str(df["rows_last_hour"].dtype) == "Int64" and str(df["alarms_last_hour"].dtype) == "Int64"
    assert str(df["alarm_now"].dtype) == "boolean"
    assert str(df["last_ts"].dtype) == "datetime64[ms]"
    assert df["last_score"].dtype == "float64"
    perf = lake.view("v_model_performance")
    assert str(perf["tp"].dtype) == "Int64"  # DuckDB's 128-bit count_if comes back as Athena's bigint


# ------------------------------------------------------------------ the API


def test_view_api_where_limit_order_columns(lake):
    df = lake.view("v_anomalies", where="well = 'WELL-00001' AND kind = 'episode'", order_by="ts DESC", limit=2)
    assert len(df) == 2 and set(df["well"]) == {"WELL-00001"}
    assert df["ts"].is_monotonic_decreasing
    assert lake.view("v_well_status", columns=["well", "status"]).columns.tolist() == ["well", "status"]
    assert len(lake.view("v_scored", limit=0)) == 0
    for bad in ("v_well_status; DROP VIEW x", "1abc", "a b"):
        with pytest.raises(QueryError, match="not a table or view name"):
            lake.view(bad)
    with pytest.raises(QueryError, match="limit"):
        lake.view("v_scored", limit=-1)


def test_database_qualified_names_work_on_duckdb(lake):
    n = lake.query("SELECT count(*) AS n FROM petrostream.v_well_status")["n"].iloc[0]
    m = lake.query("SELECT count(*) AS n FROM awsdatacatalog.petrostream.v_well_status")["n"].iloc[0]
    assert n == m == len(WELLS)


@pytest.mark.parametrize(
    "sql, message",
    [
        ("SELEC * FROM v_scored", "syntax error"),
        ("SELECT * FROM no_such_table", "missing table: no_such_table"),
        ("SELECT no_such_column FROM v_scored", "missing column: no_such_column"),
        ("SELECT 1; SELECT 2", "one statement at a time"),
        ("SELECT format_datetime(ts, 'yyyy') FROM v_scored", "unknown function"),
    ],
)
def test_errors_are_one_line(lake, sql, message):
    with pytest.raises(QueryError) as info:
        lake.query(sql)
    text = str(info.value)
    assert message in text and "\n" not in text


def test_new_objects_show_up_after_the_refresh_interval(tmp_path, data):
    scored, _ = data
    settings = Settings(lake_dir=tmp_path)
    store = LakeStore(settings)
    backend = DuckDBBackend(settings, refresh_seconds=3600)
    try:
        assert backend.query("SELECT count(*) AS n FROM v_scored")["n"].iloc[0] == 0
        one_well = scored[scored["well_id"] == WELLS[0]]
        write_partitioned(SCORED, one_well, "late", store)
        # within the interval the registrations are reused (cheap repeated dashboard calls)...
        assert backend.query("SELECT count(*) AS n FROM v_scored")["n"].iloc[0] == 0
        backend.refresh_seconds = 0
        # ...after it, the lake is re-listed and the new object is read
        assert backend.query("SELECT count(*) AS n FROM v_scored")["n"].iloc[0] == len(one_well)
        before = dict(backend._registered)
        backend.query("SELECT 1")
        assert backend._registered == before  # unchanged object lists are not re-registered
    finally:
        backend.close()


def test_an_object_removed_between_listings_is_not_an_error(tmp_path, data):
    scored, _ = data
    settings = Settings(lake_dir=tmp_path)
    one_well = scored[scored["well_id"] == WELLS[0]]
    keys = write_partitioned(SCORED, one_well, "b0", LakeStore(settings))
    backend = DuckDBBackend(settings, refresh_seconds=3600)
    try:
        assert backend.query("SELECT count(*) AS n FROM v_scored")["n"].iloc[0] == len(one_well)
        (tmp_path / settings.curated_bucket / keys[0]).unlink()  # e.g. a compaction removed it
        left = one_well[one_well["ts"].dt.strftime("%Y-%m-%d") != keys[0].split("dt=")[1][:10]]
        assert backend.query("SELECT count(*) AS n FROM v_scored")["n"].iloc[0] == len(left)
    finally:
        backend.close()


def test_same_results_on_the_emulators_s3(emulator, lake, data):
    """The S3 path (pyarrow S3FileSystem -> emulator) answers exactly what the folder lake answers."""
    import boto3

    tag = uuid.uuid4().hex[:8]
    settings = Settings(raw_bucket=f"t-raw-{tag}", curated_bucket=f"t-curated-{tag}")
    s3 = boto3.client("s3", endpoint_url=emulator.endpoint, region_name="us-east-1")
    for b in (settings.raw_bucket, settings.curated_bucket):
        s3.create_bucket(Bucket=b)
    assert backend_kind(settings) == "duckdb"  # loopback endpoint -> DuckDB
    write_lake(LakeStore(settings), *data)
    remote = DuckDBBackend(settings)
    try:
        keys = {
            "v_well_status": ["well"],
            "v_daily_well_summary": ["well", "dt"],
            "v_model_performance": ["model_version", "dt"],
            "v_exec_monthly": ["month"],
            "v_exec_yearly": ["year"],
            "v_quarantine": ["dt", "sequence_number"],
            "v_anomalies": ["kind", "well", "ts", "model_version", "episode_id"],
        }
        for view, by in keys.items():
            pd.testing.assert_frame_equal(_sorted(remote.view(view), by), _sorted(lake.view(view), by), obj=view)
    finally:
        remote.close()


# ------------------------------------------------------------------ backend choice


def test_backend_choice(monkeypatch, tmp_path):
    from petrostream import query

    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    assert backend_kind(Settings()) == "athena"  # real AWS
    assert backend_kind(Settings(lake_dir=tmp_path)) == "duckdb"
    assert backend_kind(Settings(query_backend="duckdb")) == "duckdb"
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    assert backend_kind(Settings()) == "duckdb"  # emulator: its Athena runs no SQL
    assert backend_kind(Settings(query_backend="athena")) == "athena"
    monkeypatch.setenv("AWS_ENDPOINT_URL", "https://athena.example.internal")
    assert backend_kind(Settings()) == "athena"
    assert backend_kind(Settings(lake_dir=tmp_path)) == "duckdb"
    monkeypatch.setenv("PETROSTREAM_LAKE_DIR", str(tmp_path))
    a = get_backend()
    assert isinstance(a, DuckDBBackend) and get_backend() is a  # cached: one connection for the dashboard
    assert get_backend(fresh=True) is not a
    query.reset()


# ------------------------------------------------------------------ Athena backend (emulator)


def _moto(endpoint: str, path: str, body: dict) -> None:
    req = urllib.request.Request(
        f"{endpoint}{path}", data=json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status in (200, 201)


def canned(endpoint: str, columns: list[tuple[str, str]], rows: list[list[object]], header: bool = True) -> None:
    """Queue one Athena result in the emulator, shaped like real Athena (header row first for a SELECT)."""

    def datum(v: object) -> dict:
        return {} if v is None else {"VarCharValue": str(v)}

    out = [{"Data": [datum(n) for n, _ in columns]}] if header else []
    out += [{"Data": [datum(v) for v in r]} for r in rows]
    info = [{"Name": n, "Label": n, "Type": t, "CatalogName": "hive", "SchemaName": "", "TableName": "",
             "Nullable": "UNKNOWN", "CaseSensitive": t == "varchar", "Precision": 0, "Scale": 0} for n, t in columns]
    _moto(endpoint, "/moto-api/static/athena/query-results", {"results": [{"rows": out, "column_info": info}]})


@pytest.fixture
def athena(emulator):
    return AthenaBackend(Settings(), poll_initial=0.01, poll_max=0.05, timeout=10)


def test_athena_typed_results(athena, emulator):
    cols = [("well", "varchar"), ("n", "bigint"), ("rate", "double"), ("alarm", "boolean"),
            ("last_ts", "timestamp"), ("day", "date"), ("d", "decimal(10,2)"), ("tags", "array(varchar)")]
    canned(emulator.endpoint, cols, [
        ["WELL-00001", 900, 0.25, "true", "2017-04-01 12:00:00.000", "2017-04-01", "1.50", "[a, b]"],
        ["WELL-00002", None, None, None, None, None, None, None],
    ])
    df = athena.query("SELECT well, n, rate, alarm, last_ts, day, d, tags FROM v_well_status")
    assert df.columns.tolist() == [c for c, _ in cols]
    assert [str(t) for t in df.dtypes] == ["str", "Int64", "float64", "boolean", "datetime64[ms]",
                                           "datetime64[ms]", "float64", "str"]
    assert df.iloc[0].tolist()[:6] == ["WELL-00001", 900, 0.25, True, pd.Timestamp("2017-04-01 12:00"),
                                       pd.Timestamp("2017-04-01")]
    assert df.iloc[1].isna().iloc[1:].all()  # NULLs (no VarCharValue) stay missing, typed


def test_athena_answers_what_duckdb_answers(athena, emulator, lake):
    """The same result set through both backends gives equal frames (dtypes included)."""
    duck = _sorted(lake.view("v_daily_well_summary"), ["well", "dt"])
    athena_type = {"Int64": "bigint", "float64": "double", "str": "varchar", "object": "varchar",
                   "boolean": "boolean", "datetime64[ms]": "timestamp"}
    cols = [(c, athena_type[str(t)]) for c, t in duck.dtypes.items()]
    day_col = duck.columns.get_loc("day")
    cols[day_col] = ("day", "date")

    def text(v, t):
        if pd.isna(v):
            return None
        if t == "timestamp":
            return v.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        if t == "date":
            return v.strftime("%Y-%m-%d")
        if t == "boolean":
            return "true" if v else "false"
        return repr(float(v)) if t == "double" else str(v)

    canned(emulator.endpoint, cols, [[text(v, t) for v, (_, t) in zip(r, cols, strict=True)]
                                     for r in duck.itertuples(index=False)])
    via_athena = athena.view("v_daily_well_summary")
    pd.testing.assert_frame_equal(via_athena, duck)


class _PagedAthena:
    """Real AWS pages get_query_results (MaxResults <= 1000, NextToken, header on page 1 only); moto
    returns everything at once. This proxy slices moto's answer the way AWS pages it."""

    def __init__(self, client):
        self._client = client
        self.pages = 0

    def __getattr__(self, name):
        return getattr(self._client, name)

    def get_query_results(self, QueryExecutionId, MaxResults=1000, NextToken=None):  # noqa: N803 - boto3 names
        assert MaxResults <= 1000
        full = self._client.get_query_results(QueryExecutionId=QueryExecutionId)
        rows = full["ResultSet"]["Rows"]
        start = int(NextToken or 0)
        page = dict(full)
        page["ResultSet"] = {**full["ResultSet"], "Rows": rows[start:start + MaxResults]}
        if start + MaxResults < len(rows):
            page["NextToken"] = str(start + MaxResults)
        self.pages += 1
        return page


def test_athena_pagination_over_1000_rows(emulator):
    from petrostream.aws import client

    paged = _PagedAthena(client("athena"))
    backend = AthenaBackend(Settings(), client=paged, poll_initial=0.01)
    n = 2500
    canned(emulator.endpoint, [("i", "integer"), ("well", "varchar")], [[i, f"W{i % 3}"] for i in range(n)])
    df = backend.query("SELECT i, well FROM v_scored")
    assert paged.pages == 3  # 2,501 rows with the header: 1000 + 1000 + 501
    assert df["i"].tolist() == list(range(n))  # header dropped once, no row lost or repeated
    # without the proxy the emulator answers in one page: same frame
    canned(emulator.endpoint, [("i", "integer"), ("well", "varchar")], [[i, f"W{i % 3}"] for i in range(n)])
    pd.testing.assert_frame_equal(AthenaBackend(Settings(), poll_initial=0.01).query("SELECT i, well FROM x"), df)


def test_athena_polls_with_backoff_until_succeeded(emulator):
    delays: list[float] = []
    backend = AthenaBackend(Settings(), poll_initial=0.01, poll_max=0.04, sleep=lambda s: delays.append(s))
    _moto(emulator.endpoint, "/moto-api/state-manager/set-transition",
          {"model_name": "athena::execution", "transition": {"progression": "manual", "times": 3}})
    try:
        canned(emulator.endpoint, [("n", "bigint")], [[42]])
        df = backend.query("SELECT count(*) AS n FROM v_scored")
    finally:
        _moto(emulator.endpoint, "/moto-api/state-manager/unset-transition", {"model_name": "athena::execution"})
    assert df["n"].tolist() == [42]
    assert len(delays) >= 4  # QUEUED and RUNNING were each seen for several polls
    assert delays[:3] == [0.01, 0.02, 0.04] and max(delays) == 0.04  # exponential, capped


def test_athena_timeout_stops_the_query(emulator):
    backend = AthenaBackend(Settings(), poll_initial=0.01, poll_max=0.02, timeout=0.2)
    _moto(emulator.endpoint, "/moto-api/state-manager/set-transition",
          {"model_name": "athena::execution", "transition": {"progression": "manual", "times": 10_000}})
    try:
        with pytest.raises(QueryError, match=r"^timeout: athena query (\S+) still QUEUED") as info:
            backend.query("SELECT * FROM v_scored")
        qid = str(info.value).split()[3]
        state = backend.client.get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Status"]["State"]
    finally:
        _moto(emulator.endpoint, "/moto-api/state-manager/unset-transition", {"model_name": "athena::execution"})
    assert state == "CANCELLED"  # stop_query_execution was sent


@pytest.mark.parametrize(
    "state, reason, expected",
    [
        ("FAILED", "SYNTAX_ERROR: line 1:1: mismatched input 'SELEC'. Expecting: 'ALTER', 'ANALYZE'", "syntax error"),
        ("FAILED", "TABLE_NOT_FOUND: line 1:15: Table 'awsdatacatalog.petrostream.nope' does not exist",
         "missing table"),
        ("FAILED", "COLUMN_NOT_FOUND: line 1:8: Column 'nope' cannot be resolved or requester is not authorized",
         "missing column"),
        ("CANCELLED", "Bytes scanned limit was exceeded", "scan limit exceeded (workgroup cutoff 10 GiB)"),
        ("FAILED", "Query exhausted resources at this scale factor", "resources exhausted"),
        ("CANCELLED", "", "cancelled"),
    ],
)
def test_athena_failure_states_become_one_line_errors(emulator, monkeypatch, state, reason, expected):
    backend = AthenaBackend(Settings(), poll_initial=0.01)
    real = backend.client.get_query_execution

    def failing(QueryExecutionId):  # noqa: N803 - boto3 names
        qe = real(QueryExecutionId=QueryExecutionId)
        qe["QueryExecution"]["Status"].update(
            State=state, StateChangeReason=reason,
            AthenaError={"ErrorCategory": 2, "ErrorType": 1000, "Retryable": False, "ErrorMessage": reason})
        return qe

    monkeypatch.setattr(backend.client, "get_query_execution", failing)
    with pytest.raises(QueryError) as info:
        backend.query("SELECT nope FROM nope")
    text = str(info.value)
    assert text.startswith(expected) and "\n" not in text and "[athena query " in text


def test_athena_retries_a_retryable_failure_once(emulator, monkeypatch):
    backend = AthenaBackend(Settings(), poll_initial=0.01)
    real = backend.client.get_query_execution
    failed_ids: list[str] = []

    def flaky(QueryExecutionId):  # noqa: N803
        qe = real(QueryExecutionId=QueryExecutionId)
        if not failed_ids or failed_ids == [QueryExecutionId]:
            failed_ids[:] = [QueryExecutionId]
            qe["QueryExecution"]["Status"].update(
                State="FAILED", StateChangeReason="INTERNAL_ERROR_QUERY_ENGINE",
                AthenaError={"ErrorCategory": 1, "ErrorType": 401, "Retryable": True})
        return qe

    monkeypatch.setattr(backend.client, "get_query_execution", flaky)
    canned(emulator.endpoint, [("x", "integer")], [[1]])  # consumed by the failed attempt
    canned(emulator.endpoint, [("x", "integer")], [[2]])
    assert backend.query("SELECT 2 AS x")["x"].tolist() == [2]


def test_athena_requests_result_reuse_for_selects_only(emulator, monkeypatch):
    backend = AthenaBackend(Settings(), poll_initial=0.01, reuse_minutes=5)
    sent: list[dict] = []
    real = backend.client.start_query_execution

    def spy(**kwargs):
        sent.append(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(backend.client, "start_query_execution", spy)
    backend.query("SELECT 1")
    backend.execute("CREATE OR REPLACE VIEW v AS SELECT 1 AS x")
    assert sent[0]["ResultReuseConfiguration"] == {
        "ResultReuseByAgeConfiguration": {"Enabled": True, "MaxAgeInMinutes": 5}}
    assert "ResultReuseConfiguration" not in sent[1]
    s = Settings()
    assert sent[0]["WorkGroup"] == s.athena_workgroup
    assert sent[0]["QueryExecutionContext"]["Database"] == s.glue_database


def test_athena_without_result_reuse_support_runs_without_it(emulator, monkeypatch):
    from botocore.exceptions import ClientError

    backend = AthenaBackend(Settings(), poll_initial=0.01)
    real = backend.client.start_query_execution
    calls: list[bool] = []

    def engine_v2(**kwargs):
        calls.append("ResultReuseConfiguration" in kwargs)
        if "ResultReuseConfiguration" in kwargs:
            raise ClientError({"Error": {"Code": "InvalidRequestException", "Message":
                                         "Result reuse is not supported by engine version 2"}}, "StartQueryExecution")
        return real(**kwargs)

    monkeypatch.setattr(backend.client, "start_query_execution", engine_v2)
    canned(emulator.endpoint, [("x", "integer")], [[1]])
    assert backend.query("SELECT 1 AS x")["x"].tolist() == [1]
    backend.query("SELECT 1 AS x")
    assert calls == [True, False, False]  # asked once, then never again


def test_athena_refusal_is_one_line(emulator):
    backend = AthenaBackend(Settings(athena_workgroup="no-such-workgroup"), poll_initial=0.01)
    with pytest.raises(QueryError, match=r"^athena refused the query: ") as info:
        backend.query("SELECT 1")
    assert "\n" not in str(info.value)


def test_deploy_sql_runs_every_statement_rendered(emulator):
    backend = AthenaBackend(Settings(), poll_initial=0.01)
    done = backend.deploy_sql()
    assert done == [f.name for f in lake_sql.files()]
    ids = backend.client.list_query_executions(WorkGroup=Settings().athena_workgroup)["QueryExecutionIds"]
    texts = [backend.client.get_query_execution(QueryExecutionId=i)["QueryExecution"]["Query"] for i in ids]
    deployed = texts[-len(done):] if len(texts) >= len(done) else texts
    joined = "\n".join(deployed)
    assert "CREATE EXTERNAL TABLE IF NOT EXISTS petrostream.scored_readings (" in joined
    assert "CREATE OR REPLACE VIEW v_model_performance AS" in joined
    assert "${database}" not in joined and "${curated_bucket}" not in joined and "\n--" not in joined
    assert "s3://petrostream-curated/scored/dt=${dt}/'" in joined  # Athena's own template stays


def test_athena_tables_lists_the_glue_catalog(athena):
    assert {"raw_readings", "scored_readings", "anomaly_events"} <= set(athena.tables())


def test_classify_failure_without_reason():
    assert classify_failure("FAILED", "").startswith("query failed: query failed without a reason")


# ------------------------------------------------------------------ CLI


def _cli(args: list[str], capsys) -> tuple[int, str, str]:
    from petrostream import cli

    code = 0
    try:
        cli.main(args)
    except SystemExit as exc:
        code = exc.code or 0
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def cli_lake(lake, monkeypatch):
    monkeypatch.setenv("PETROSTREAM_LAKE_DIR", str(lake.lake_dir))
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    yield lake
    from petrostream import query

    query.reset()


@pytest.mark.parametrize(
    "sql, message",
    [("SELEC 1", "error: syntax error"), ("SELECT * FROM nope", "error: missing table: nope does not exist")],
)
def test_cli_bad_query_is_one_line(cli_lake, capsys, sql, message):
    code, out, err = _cli(["query", sql], capsys)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 1 and out == ""
    assert len(lines) == 1 and lines[0].startswith(message), err
    assert "Traceback" not in err


def test_cli_formats_and_views(cli_lake, capsys, data):
    scored, _ = data
    code, out, _ = _cli(["query", "SELECT well_id, AVG(pressure) AS p FROM well_data GROUP BY well_id",
                         "--format", "csv"], capsys)
    assert code == 0
    got = pd.read_csv(__import__("io").StringIO(out)).set_index("well_id")["p"].to_dict()
    assert got == pytest.approx(scored.groupby("well_id")["p_tpt"].mean().to_dict())
    code, out, _ = _cli(["query", "--view", "v_well_status", "--where", "well = 'WELL-00002'",
                         "--format", "json"], capsys)
    rows = json.loads(out)
    assert code == 0 and [r["well"] for r in rows] == ["WELL-00002"] and rows[0]["last_ts"].startswith("2017-04-01")
    code, out, err = _cli(["query", "--view", "v_event_classes", "--limit", "3"], capsys)
    assert code == 0 and "Normal Operation" in out and "3 rows" in err
    sql_file = Path(cli_lake.lake_dir) / "q.sql"
    sql_file.write_text("SELECT count(*) AS n FROM well_data WHERE anomaly_flag = 1")
    code, out, _ = _cli(["query", "--file", str(sql_file), "--format", "csv"], capsys)
    assert out.splitlines() == ["n", str(int(scored["is_anomaly"].sum()))]
    code, _, err = _cli(["query"], capsys)
    assert code == 1 and err.startswith("error: give exactly one of")


def test_cli_error_in_a_real_process_has_no_traceback(tmp_path):
    env = {**os.environ, "PETROSTREAM_LAKE_DIR": str(tmp_path)}
    env.pop("AWS_ENDPOINT_URL", None)
    r = subprocess.run([sys.executable, "-m", "petrostream.cli", "query", "SELECT x FROM no_such_view"],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == ["error: missing table: no_such_view does not exist"]


def test_cli_deploy_and_tables(emulator, capsys, monkeypatch, tmp_path):
    code, out, _ = _cli(["query", "--deploy"], capsys)
    assert code == 0 and out.startswith(f"deployed {len(lake_sql.files())} objects to Athena at {emulator.endpoint}")
    monkeypatch.setenv("PETROSTREAM_LAKE_DIR", str(tmp_path))
    try:
        code, out, _ = _cli(["query", "--tables"], capsys)
        assert code == 0 and {"v_well_status", "well_data", "scored_readings"} <= set(out.split())
    finally:
        from petrostream import query

        query.reset()
