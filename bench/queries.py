"""Queries: the dashboard's queries (``dashboard.queries`` over the views in ``petrostream/sql``) on a lake of
>= 10 M scored rows written through the real sink (``lake.write_partitioned`` into a local-folder lake), answered by
DuckDB (``petrostream.query.get_backend`` with ``lake_dir``) and, for six of them, by pandas reading the same
Parquet (pyarrow dataset -> pandas) and doing the same aggregation. Wall clock (what a dashboard user waits);
best of N runs."""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.common import Context, rnd, say

CORE = ("p_pdg", "p_tpt", "t_tpt", "p_mon_ckp", "t_jus_ckp")
# (mean level, relative noise) of the seven 3W v1 variables: plausible magnitudes, SI units as in 3W
SENSORS = {"p_pdg": (2.4e7, 0.004), "p_tpt": (1.3e7, 0.004), "t_tpt": (115.0, 0.002), "p_mon_ckp": (4.8e6, 0.01),
           "t_jus_ckp": (72.0, 0.003), "p_jus_ckgl": (2.1e6, 0.01), "qgl": (1.2, 0.03)}
CLASSES = (2, 3, 4, 4, 4, 6, 1, 4, 3, 4, 2, 4)
TRANSIENT = {1, 2, 5, 6, 7, 8, 9}
BLOCK_S = 7200  # one synthetic "instance" = a 2-hour window of a well (as the class-4 3W instances)


# ---------------------------------------------------------------------------------------------- the lake


def build_lake(lake_dir: Path, n_rows: int, n_wells: int, now: pd.Timestamp, seed: int = 0) -> dict[str, Any]:
    """A scored_readings + anomaly_events lake of >= ``n_rows`` rows at 1 Hz, generated vectorised and written
    through ``lake.write_partitioned``: one object per hour of data holding every well (the live service
    writes smaller ones, one per shard flush), episodes one object per day."""
    from petrostream import lake

    rng = np.random.default_rng(seed)
    store = lake.LakeStore(lake_dir=lake_dir)
    days = max(1, math.ceil(n_rows / (n_wells * 86_400)))
    per = math.ceil(n_rows / (n_wells * days))  # rows per well-day
    wells = [f"WELL-{90001 + i:05d}" for i in range(n_wells)]
    cls = np.array([CLASSES[i % len(CLASSES)] for i in range(n_wells)])
    blocks = math.ceil(per / BLOCK_S)
    first = pd.Timestamp("2018-03-01")
    shift = now - (first + pd.Timedelta(days=days - 1, seconds=per - 1))  # replayed "live": last row sent ~now
    seq = 0
    t_write = 0.0
    written = 0
    for d in range(days):
        day0 = first + pd.Timedelta(days=d)
        sec = np.tile(np.arange(per, dtype=np.int64), n_wells)
        w = np.repeat(np.arange(n_wells), per)
        n = len(sec)
        block = sec // BLOCK_S
        ids = np.array([f"{cls[i]}_{wells[i]}_{day0:%Y%m%d}{b:02d}" for i in range(n_wells) for b in range(blocks)],
                       dtype=object)
        event_block = rng.random((n_wells, blocks)) < 0.35
        pos = sec % BLOCK_S
        in_event = event_block[w, block] & (pos >= 4800)
        transient = event_block[w, block] & (pos >= 4200) & (pos < 4800) & np.isin(cls[w], list(TRANSIENT))
        label = np.where(in_event, cls[w], np.where(transient, 100 + cls[w], 0)).astype(np.int32)
        ts = (day0 + pd.to_timedelta(sec, unit="s")).to_numpy()
        frame: dict[str, Any] = {
            "instance_id": ids[w * blocks + block],
            "source": np.full(n, "REAL", dtype=object),
            "event_class": cls[w].astype(np.int32),
            "ts": ts,
            "well_id": np.array(wells, dtype=object)[w],
        }
        phase = rng.random(n_wells)[w] * 2 * np.pi
        wave = np.sin(2 * np.pi * sec / 3600.0 + phase)
        for col, (level, noise) in SENSORS.items():
            base = level * (0.8 + 0.4 * rng.random(n_wells))[w]
            vals = base * (1 + 0.5 * noise * wave + noise * rng.standard_normal(n) + 3 * noise * in_event)
            if col == "p_pdg":
                vals[(w % 2 == 1)] = 0.0  # a dead downhole gauge on half the wells, as in real 3W
            if col == "p_jus_ckgl":
                vals[(w % 3 == 0)] = np.nan
            frame[col] = vals
        score = 0.45 + 0.04 * rng.standard_normal(n) + 0.25 * (in_event & (rng.random(n) > 0.3))
        frame.update({
            "label": label,
            "anomaly_score": score,
            "is_anomaly": (score > 0.6).astype(np.int32),
            "threshold": np.full(n, 0.6),
            "model_version": np.full(n, "1", dtype=object),
            "shard_id": np.array(["shardId-000000000000", "shardId-000000000001"], dtype=object)[w % 2],
        })
        seqs = np.array([str(10**55 + seq + k) for k in range(n // 60 + 1)], dtype=object)
        seq += len(seqs)
        frame["sequence_number"] = seqs[np.arange(n) // 60]
        sent = ts + shift.to_timedelta64()
        frame["sent_at"] = sent
        frame["scored_at"] = sent + (rng.gamma(2.0, 1.5, n) * 1e3).astype("int64").astype("timedelta64[ms]")
        df = pd.DataFrame(frame)
        t0 = time.perf_counter()
        hour = sec // 3600
        for h in range(int(hour.max()) + 1):  # one object per hour of data, every well in it
            lake.write_partitioned(lake.SCORED, df[hour == h], f"bench-{d:03d}-{h:02d}", store)
        lake.write_partitioned(lake.EVENTS, _episodes(df, blocks, event_block, cls, wells, day0, rng),
                               f"bench-events-{d:03d}", store)
        t_write += time.perf_counter() - t0
        written += n
        say("queries", f"lake: day {d + 1}/{days} written ({written:,} rows, sink {written / t_write:,.0f} rows/s)")
    files = [p for p in Path(lake_dir).rglob("*.parquet")]
    return {"rows": written, "wells": n_wells, "days": days, "rows_per_well_day": per,
            "objects": len(files), "bytes": int(sum(p.stat().st_size for p in files)),
            "sink_write_s": rnd(t_write, 1), "sink_rows_per_s": rnd(written / t_write, 1) if t_write else None}


def _episodes(df: pd.DataFrame, blocks: int, event_block, cls, wells, day0, rng) -> pd.DataFrame:
    rows = []
    for i, well in enumerate(wells):
        for b in range(blocks):
            if not event_block[i, b]:
                continue
            start = day0 + pd.Timedelta(seconds=b * BLOCK_S + 4800 + int(rng.integers(0, 120)))
            dur = float(rng.integers(600, 2400))
            rows.append({"episode_id": f"{well}-{start:%Y%m%d%H%M%S}",
                         "instance_id": f"{cls[i]}_{well}_{day0:%Y%m%d}{b:02d}", "source": "REAL",
                         "event_class": int(cls[i]), "start_ts": start, "end_ts": start + pd.Timedelta(seconds=dur),
                         "duration_s": dur, "n_rows": int(dur), "peak_score": float(0.7 + 0.1 * rng.random()),
                         "mean_score": float(0.65 + 0.05 * rng.random()), "model_version": "1",
                         "label": int(cls[i]), "closed_at": start + pd.Timedelta(seconds=dur + 120),
                         "well_id": well})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------- pandas side


class PandasLake:
    """pyarrow dataset over the same Parquet (hive partition dt as a string) -> pandas."""

    def __init__(self, lake_dir: Path, settings):
        import pyarrow as pa
        import pyarrow.dataset as ds

        from petrostream.lake import EVENTS, SCORED

        part = ds.partitioning(pa.schema([("dt", pa.string())]), flavor="hive")
        self.scored = ds.dataset(Path(lake_dir) / SCORED.bucket(settings) / SCORED.prefix, format="parquet",
                                 partitioning=part)
        self.events = ds.dataset(Path(lake_dir) / EVENTS.bucket(settings) / EVENTS.prefix, format="parquet",
                                 partitioning=part)

    def read(self, columns: list[str], flt=None, events: bool = False) -> pd.DataFrame:
        d = self.events if events else self.scored
        return d.to_table(columns=columns, filter=flt).to_pandas()


def pd_avg_pressure(p: PandasLake, **_) -> pd.DataFrame:
    df = p.read(["well", "p_tpt"])
    return df.groupby("well", sort=True)["p_tpt"].mean().rename("avg_pressure").reset_index()


def pd_overview(p: PandasLake, now: pd.Timestamp, **_) -> dict[str, Any]:
    df = p.read(["well", "is_anomaly", "ts", "scored_at", "sent_at"])
    active = df["scored_at"] >= now - pd.Timedelta(minutes=10)
    recent = (df["scored_at"] >= now - pd.Timedelta(minutes=5)) & (df["scored_at"] <= now)
    last = df["scored_at"].max()
    win = (df["scored_at"] >= last - pd.Timedelta(minutes=5)) & (df["scored_at"] <= last) & df["sent_at"].notna()
    lag = (df.loc[win, "scored_at"] - df.loc[win, "sent_at"]).dt.total_seconds().mean()
    episodes = len(p.read(["episode_id"], events=True))
    return {"rows_total": len(df), "wells_total": df["well"].nunique(),
            "wells_active": df.loc[active, "well"].nunique(),
            "anomalous_rows": int((df["is_anomaly"] == 1).sum()), "rows_recent": int(recent.sum()),
            "first_ts": df["ts"].min(), "last_ts": df["ts"].max(), "last_scored_at": last, "lag_s": lag,
            "episodes": episodes}


def pd_daily_summary(p: PandasLake, **_) -> pd.DataFrame:
    cols = ["well", "dt", "label", "is_anomaly", "instance_id", "model_version", "ts", "anomaly_score", *CORE]
    df = p.read(cols)
    df["p_pdg_live"] = df["p_pdg"].where(df["p_pdg"] != 0)
    df["event"] = df["label"].ne(0) & df["label"].notna()
    df["dead"] = df["p_pdg"].eq(0)
    g = df.groupby(["well", "dt"], sort=False)
    out = g.agg(n_rows=("ts", "size"), labelled_rows=("label", "count"), event_rows=("event", "sum"),
                anomaly_rows=("is_anomaly", "sum"), instances=("instance_id", "nunique"),
                model_versions=("model_version", "nunique"), first_ts=("ts", "min"), last_ts=("ts", "max"),
                mean_score=("anomaly_score", "mean"), max_score=("anomaly_score", "max"),
                p_pdg_avg=("p_pdg_live", "mean"), p_pdg_min=("p_pdg_live", "min"), p_pdg_max=("p_pdg_live", "max"),
                p_pdg_std=("p_pdg_live", "std"), p_pdg_dead_rows=("dead", "sum"),
                **{f"{c}_{f}": (c, f) for c in CORE[1:] for f in ("mean", "min", "max", "std")})
    ev = p.read(["well", "dt", "duration_s"], events=True)
    eg = ev.groupby(["well", "dt"]).agg(episodes=("duration_s", "size"), episode_seconds=("duration_s", "sum"))
    out = out.join(eg, how="left").fillna({"episodes": 0, "episode_seconds": 0.0}).reset_index()
    out["anomaly_rate"] = out["anomaly_rows"] / out["n_rows"]
    return out


def pd_well_history(p: PandasLake, well: str, start: pd.Timestamp, end: pd.Timestamp, bucket_s: int,
                    **_) -> pd.DataFrame:
    import pyarrow.dataset as ds

    flt = ((ds.field("well") == well) & (ds.field("dt") >= f"{start:%Y-%m-%d}") & (ds.field("dt") <= f"{end:%Y-%m-%d}"))
    df = p.read(["ts", "anomaly_score", "threshold", "is_anomaly", "label", *CORE], flt)
    df = df[(df["ts"] >= start) & (df["ts"] < end)]
    df["bucket"] = ((df["ts"] - start).dt.total_seconds() * 1000 // (bucket_s * 1000)).astype("int64")
    df["label_class"] = df["label"].where(df["label"] < 100, df["label"] - 100)
    aggs: dict[str, Any] = {"n": ("ts", "size")}
    for c in CORE:
        aggs.update({f"{c}__avg": (c, "mean"), f"{c}__min": (c, "min"), f"{c}__max": (c, "max")})
    aggs.update({"score__avg": ("anomaly_score", "mean"), "score__max": ("anomaly_score", "max"),
                 "threshold": ("threshold", "max"), "is_anomaly": ("is_anomaly", "max"),
                 "anomalous_rows": ("is_anomaly", "sum"), "label_class": ("label_class", "max")})
    return df.groupby("bucket", sort=True).agg(**aggs).reset_index()


def pd_model_performance(p: PandasLake, max_gap_s: float = 60.0, **_) -> pd.DataFrame:
    df = p.read(["model_version", "dt", "well", "instance_id", "ts", "is_anomaly", "label"])
    df = df.sort_values(["model_version", "well", "instance_id", "ts"], kind="stable", ignore_index=True)
    key = ["model_version", "well", "instance_id"]
    g = df.groupby(key, sort=False)
    prev = g["is_anomaly"].shift(1).fillna(0)
    df["alarm_start"] = ((df["is_anomaly"] == 1) & (prev == 0)).astype("int64")
    nxt = g["ts"].shift(-1)
    df["dwell_s"] = ((nxt - df["ts"]).dt.total_seconds().clip(upper=max_gap_s)).fillna(1.0)
    lab = df["label"]
    a = df["is_anomaly"] == 1
    df["pos"], df["neg"] = lab.ne(0) & lab.notna(), lab.eq(0)
    df["tp"], df["fp"] = a & df["pos"], a & df["neg"]
    df["fn"], df["tn"] = ~a & df["pos"], ~a & df["neg"]
    df["false_alarm"] = df["alarm_start"].where(df["neg"], 0)
    df["normal_s"] = df["dwell_s"].where(df["neg"], 0.0)
    out = df.groupby(["model_version", "dt"]).agg(
        wells=("well", "nunique"), n_rows=("ts", "size"), labelled_rows=("label", "count"), positives=("pos", "sum"),
        negatives=("neg", "sum"), tp=("tp", "sum"), fp=("fp", "sum"), fn=("fn", "sum"), tn=("tn", "sum"),
        anomaly_rows=("is_anomaly", "sum"), alarms=("alarm_start", "sum"), false_alarms=("false_alarm", "sum"),
        normal_s=("normal_s", "sum"), first_ts=("ts", "min"), last_ts=("ts", "max")).reset_index()
    out["normal_hours"] = out.pop("normal_s") / 3600.0
    out["precision"] = out["tp"] / (out["tp"] + out["fp"]).replace(0, np.nan)
    out["recall"] = out["tp"] / (out["tp"] + out["fn"]).replace(0, np.nan)
    out["f1"] = 2 * out["tp"] / (2 * out["tp"] + out["fp"] + out["fn"]).replace(0, np.nan)
    out["false_alarms_per_hour"] = out["false_alarms"] / out["normal_hours"].replace(0, np.nan)
    return out


def pd_well_status(p: PandasLake, stale_minutes: int = 10, **_) -> pd.DataFrame:
    df = p.read(["well", "ts", "instance_id", "anomaly_score", "threshold", "is_anomaly", "model_version", "label",
                 "event_class", "scored_at"])
    lake_now = df["ts"].max()
    last = df.sort_values(["well", "ts", "scored_at", "model_version"], ascending=[True, False, False, False],
                          kind="stable").drop_duplicates("well")
    totals = df.groupby("well").agg(total_rows=("ts", "size"), first_ts=("ts", "min"))
    rec = df[df["ts"] > lake_now - pd.Timedelta(hours=1)]
    recent = rec.groupby("well").agg(rows_last_hour=("ts", "size"), alarms_last_hour=("is_anomaly", "sum"),
                                     max_score_last_hour=("anomaly_score", "max"))
    out = last.set_index("well").join(totals).join(recent).reset_index()
    out["lake_now"] = lake_now
    stale = out["ts"] < lake_now - pd.Timedelta(minutes=stale_minutes)
    out["status"] = np.where(stale, "STALE", np.where(out["is_anomaly"] == 1, "ALARM", "OK"))
    return out.fillna({"rows_last_hour": 0, "alarms_last_hour": 0})


# ---------------------------------------------------------------------------------------------- checks


def _close(a, b) -> bool:
    try:
        return bool(np.allclose(np.asarray(a, dtype="float64"), np.asarray(b, dtype="float64"), rtol=1e-6,
                                atol=1e-6, equal_nan=True))
    except (TypeError, ValueError):
        return False


def _num_sum(df: pd.DataFrame, col: str) -> float:
    return float(pd.to_numeric(df[col]).sum())


def _check(name: str, duck: Any, pand: Any) -> bool:
    if name == "avg_pressure_per_well":
        d = duck.sort_values("well_id")
        return list(d["well_id"]) == list(pand["well"]) and _close(d["avg_pressure"], pand["avg_pressure"])
    if name == "overview":
        return (duck.rows_total == pand["rows_total"] and duck.wells_total == pand["wells_total"]
                and duck.wells_active == pand["wells_active"] and duck.anomalous_rows == pand["anomalous_rows"]
                and duck.anomaly_episodes == pand["episodes"]
                and _close(duck.lag_s or np.nan, pand["lag_s"]))
    if name == "daily_well_summary":
        d = duck.sort_values(["well", "dt"]).reset_index(drop=True)
        q = pand.sort_values(["well", "dt"]).reset_index(drop=True)
        return (len(d) == len(q) and _close(d["n_rows"], q["n_rows"]) and _close(d["p_tpt_avg"], q["p_tpt_mean"])
                and _close(d["anomaly_rows"], q["anomaly_rows"]) and _close(d["episodes"], q["episodes"]))
    if name == "well_history":
        d, _b = duck
        return len(d) == len(pand) and _close(d["n"], pand["n"]) and _close(d["p_tpt__avg"], pand["p_tpt__avg"])
    if name == "model_performance":
        d = duck.sort_values(["model_version", "dt"]).reset_index(drop=True)
        q = pand.sort_values(["model_version", "dt"]).reset_index(drop=True)
        return (len(d) == len(q) and all(_close(d[c], q[c]) for c in ("tp", "fp", "fn", "tn", "alarms", "false_alarms"))
                and _close(d["normal_hours"], q["normal_hours"]))
    if name == "well_status":
        d = duck.sort_values("well").reset_index(drop=True)
        q = pand.sort_values("well").reset_index(drop=True)
        return (list(d["well"]) == list(q["well"]) and _close(d["total_rows"], q["total_rows"])
                and _close(d["alarms_last_hour"], q["alarms_last_hour"]))
    return False


# ---------------------------------------------------------------------------------------------- run


def _native_avg_pressure(lake_dir: Path, settings) -> Any:
    """Reference: DuckDB reading the Parquet itself (read_parquet, no views, no Arrow dataset)."""
    import duckdb

    from petrostream.lake import SCORED

    base = Path(lake_dir) / SCORED.bucket(settings) / SCORED.prefix
    con = duckdb.connect()
    try:
        return con.execute(
            f"SELECT well AS well_id, avg(p_tpt) AS avg_pressure FROM read_parquet('{base}/*/*.parquet', "
            "hive_partitioning = true, hive_types = {'dt': VARCHAR}) GROUP BY well ORDER BY well"
        ).fetchdf()
    finally:
        con.close()


def _best(fn, repeats: int) -> tuple[float, Any, list[float]]:
    times, out = [], None
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out, times


AFTER_COMPACTION = ("available_variables", "well_history", "well_status", "overview", "avg_pressure_per_well")


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, pd.DataFrame) and isinstance(b, pd.DataFrame):
        if list(a.columns) != list(b.columns) or len(a) != len(b):
            return False
        cols = list(a.columns)
        x = a.sort_values(cols).reset_index(drop=True) if cols else a
        y = b.sort_values(cols).reset_index(drop=True) if cols else b
        try:
            pd.testing.assert_frame_equal(x, y, check_dtype=False, rtol=1e-9)
        except AssertionError:
            return False
        return True
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if dataclasses.is_dataclass(a) and dataclasses.is_dataclass(b):
        return all(_same(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a))
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9) or (math.isnan(a) and math.isnan(b))
    return bool(a == b)


def _compacted(lake_dir: Path, settings, backend, duck_q: dict, outs: dict, results: dict,
               repeats: int) -> dict[str, Any]:
    """``petrostream compact`` on the same lake, then the per-well and fleet-wide queries again."""
    from petrostream import compaction, lake

    store = lake.LakeStore(settings, lake_dir=lake_dir)
    before = len(store.list(lake.SCORED.bucket(settings), f"{lake.SCORED.prefix}/"))
    t0 = time.perf_counter()
    days = compaction.compact(lake.SCORED, store, quiet_s=0)
    took = time.perf_counter() - t0
    after = len(store.list(lake.SCORED.bucket(settings), f"{lake.SCORED.prefix}/"))
    backend.refresh(force=True)
    say("queries", f"compacted scored_readings: {before} -> {after} objects in {took:.1f} s")
    out: dict[str, Any] = {"objects_before": before, "objects_after": after, "compact_s": rnd(took),
                           "rows": sum(d.rows for d in days), "queries": {}}
    for name in AFTER_COMPACTION:
        best, got, _ = _best(duck_q[name], repeats)
        was = results[name]["duckdb_s"]
        out["queries"][name] = {"duckdb_s": rnd(best), "before_s": was, "same_result": _same(outs[name], got)}
        say("queries", f"after compaction {name:24s} duckdb {best:.3f} s (before {was:.3f} s)")
    return out


def run(ctx: Context) -> dict[str, Any]:
    from dashboard import queries as Q
    from petrostream import sql as lake_sql
    from petrostream.query import get_backend
    from petrostream.settings import Settings

    z = ctx.sizes
    lake_dir = ctx.tmp / "lake"
    now = pd.Timestamp.now(tz="UTC").tz_localize(None).floor("s")
    say("queries", f"building a {z.query_rows:,}-row lake through lake.write_partitioned (local folder) ...")
    facts = build_lake(lake_dir, z.query_rows, z.query_wells, now)
    settings = Settings(lake_dir=lake_dir)
    backend = get_backend(settings, fresh=True)
    t0 = time.perf_counter()
    backend.query("SELECT count(*) AS n FROM v_scored")
    first = time.perf_counter() - t0
    pl = PandasLake(lake_dir, settings)

    well = "WELL-90001"
    day0 = pd.Timestamp("2018-03-01")
    start, end = day0, day0 + pd.Timedelta(days=1)
    bucket_s = Q.bucket_seconds(start, end)
    duck_q = {
        "overview": lambda: Q.overview(backend, now=now),
        "anomalies_by_class": lambda: Q.anomalies_by_class(backend),
        "anomaly_facets": lambda: Q.anomaly_facets(backend),
        "anomaly_episodes_500": lambda: Q.anomalies(backend, limit=500),
        "well_status": lambda: Q.well_status(backend, now=now),
        "available_variables": lambda: Q.available_variables(backend, well),
        "well_history": lambda: Q.well_history(backend, well, start, end, list(CORE)),
        "well_episodes": lambda: Q.well_episodes(backend, well, start, end),
        "model_performance": lambda: Q.live_performance(backend),
        "daily_well_summary": lambda: backend.view("v_daily_well_summary"),
        "drift": lambda: Q.drift(backend),
        "exec_monthly": lambda: Q.executive(backend, "v_exec_monthly"),
        "exec_yearly": lambda: Q.executive(backend, "v_exec_yearly"),
        "avg_pressure_per_well": lambda: backend.query(
            "SELECT well_id, AVG(pressure) AS avg_pressure FROM well_data GROUP BY well_id"),
    }
    kw = {"now": now, "well": well, "start": start, "end": end, "bucket_s": bucket_s,
          "max_gap_s": float(lake_sql.MAX_GAP_SECONDS), "stale_minutes": lake_sql.STALE_MINUTES}
    pandas_q = {
        "overview": pd_overview, "avg_pressure_per_well": pd_avg_pressure, "daily_well_summary": pd_daily_summary,
        "well_history": pd_well_history, "model_performance": pd_model_performance, "well_status": pd_well_status,
    }
    results: dict[str, Any] = {}
    outs: dict[str, Any] = {}
    for name, fn in duck_q.items():
        best, out, times = _best(fn, z.query_repeats)
        outs[name] = out
        entry: dict[str, Any] = {"duckdb_s": rnd(best), "duckdb_runs_s": [rnd(t) for t in times]}
        if name in pandas_q:
            pbest, pout, ptimes = _best(lambda name=name: pandas_q[name](pl, **kw), z.pandas_repeats)
            entry.update({"pandas_s": rnd(pbest), "pandas_runs_s": [rnd(t) for t in ptimes],
                          "speedup_vs_pandas": rnd(pbest / best, 2) if best else None,
                          "same_result": _check(name, out, pout)})
        results[name] = entry
        extra = (f", pandas {entry['pandas_s']:.3f} s ({entry['speedup_vs_pandas']}x, "
                 f"{'same result' if entry['same_result'] else 'RESULTS DIFFER'})") if "pandas_s" in entry else ""
        say("queries", f"{name:24s} duckdb {entry['duckdb_s']:.3f} s{extra}")
    nbest, nout, _ = _best(lambda: _native_avg_pressure(lake_dir, settings), z.query_repeats)
    ref = results["avg_pressure_per_well"]
    ref["duckdb_native_read_parquet_s"] = rnd(nbest)
    ref["native_same_result"] = _check("avg_pressure_per_well", nout, pd_avg_pressure(pl))
    say("queries", f"reference: DuckDB read_parquet directly (no views) for avg_pressure_per_well {nbest:.3f} s")
    compacted = _compacted(lake_dir, settings, backend, duck_q, outs, results, z.query_repeats)
    speedups = [e["speedup_vs_pandas"] for e in results.values() if e.get("speedup_vs_pandas")]
    geo = float(np.exp(np.mean(np.log(speedups)))) if speedups else None
    return {
        "what": "dashboard queries, wall seconds (best of N), DuckDB backend vs pandas over the same Parquet",
        "lake": {**facts, "dir": "temporary local-folder lake (LakeStore(lake_dir=...))"},
        "duckdb_first_query_s": rnd(first),
        "queries": results,
        "compaction": compacted,
        "pandas_compared": len(speedups),
        "geomean_speedup_vs_pandas": rnd(geo, 2),
        "all_results_match": all(e.get("same_result", True) for e in results.values()),
        "notes": [
            "DuckDB uses every core (its default threads); pandas one. The first DuckDB query also lists the lake "
            "and creates the views (duckdb_first_query_s).",
            "pandas reads only the columns (and, for the well history, the partitions) the query needs.",
            "Reference for the engine floor: the same avg-pressure aggregation with DuckDB's own read_parquet "
            "(no views, no Arrow dataset).",
        ],
    }
