"""Lake queries for the dashboard: SQL text (Trino/Presto, so it runs on Athena as written and on DuckDB
through the query layer's translation) and plain functions that return DataFrames.

Every function takes a ``backend`` with ``query(sql) -> DataFrame`` (``petrostream.query.get_backend()``)
and never imports Streamlit, so it is tested on a local lake without a UI. Anything that depends on the
wall clock takes ``now`` (naive UTC) as an argument.

Heavy lifting stays in SQL: KPIs are aggregates, the well history is bucketed IN SQL (avg/min/max per
time bucket, bucket size chosen from the range so at most ``MAX_POINTS`` buckets come back), drift pulls
bounded samples only.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from petrostream.lake import SENSOR_COLUMNS
from petrostream.schema import VARIABLES

MAX_POINTS = 2_000  # point budget of one well-history chart (per series)
RATE_WINDOW = pd.Timedelta(minutes=5)  # rows/minute and lag are measured over this window
ACTIVE_WITHIN = pd.Timedelta(minutes=10)  # "active" wells had a row scored this recently (wall clock)
DRIFT_SAMPLE = 20_000  # rows per side for the drift comparison

# Nice time-bucket sizes in seconds (3W is 1 Hz, so 1 s is the native resolution).
_NICE_BUCKETS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)

COLUMN_BY_NAME = {v.name: v.column for v in VARIABLES}
VARIABLE_BY_COLUMN = {v.column: v for v in VARIABLES}
PRESSURE_COLUMNS = tuple(v.column for v in VARIABLES if v.kind == "pressure")
TEMPERATURE_COLUMNS = tuple(v.column for v in VARIABLES if v.kind == "temperature")
CONTINUOUS_COLUMNS = tuple(v.column for v in VARIABLES if not v.categorical)


class Backend(Protocol):
    def query(self, sql: str) -> pd.DataFrame: ...


# ------------------------------------------------------------------ SQL literals (no user text is spliced raw)


def lit(value: object) -> str:
    """A SQL string literal."""
    return "'" + str(value).replace("'", "''") + "'"


def ts_lit(ts: object) -> str:
    """A Trino TIMESTAMP literal with milliseconds (naive UTC)."""
    t = pd.Timestamp(ts)
    if t.tzinfo is not None:
        t = t.tz_convert("UTC").tz_localize(None)
    return f"TIMESTAMP '{t.strftime('%Y-%m-%d %H:%M:%S.%f')[:-3]}'"


def day_lit(ts: object) -> str:
    return lit(pd.Timestamp(ts).strftime("%Y-%m-%d"))


def _in_list(values: Iterable[Any], number: bool = False) -> str:
    return ", ".join(str(int(v)) if number else lit(v) for v in values)


def sensor_column(name: str) -> str:
    """Validated lake column for a 3W variable name or column name (guards the SQL against injection)."""
    col = COLUMN_BY_NAME.get(name, name)
    if col not in SENSOR_COLUMNS:
        raise ValueError(f"unknown sensor {name!r}")
    return col


def utc_now() -> pd.Timestamp:
    return pd.Timestamp.now(tz="UTC").tz_localize(None)


def _ts(value: object) -> pd.Timestamp | None:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
        return None
    t = pd.Timestamp(value)
    if pd.isna(t):
        return None
    return t.tz_convert("UTC").tz_localize(None) if t.tzinfo is not None else t


def _num(value: object, default: float = 0.0) -> float:
    try:
        f = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return default
    return default if math.isnan(f) else f


# ------------------------------------------------------------------ overview


def overview_sql(now: pd.Timestamp, rate_window: pd.Timedelta = RATE_WINDOW,
                 active_within: pd.Timedelta = ACTIVE_WITHIN) -> str:
    return f"""
SELECT count(*) AS rows_total,
       count(DISTINCT well) AS wells_total,
       count(DISTINCT CASE WHEN scored_at >= {ts_lit(now - active_within)} THEN well END) AS wells_active,
       count_if(is_anomaly = 1) AS anomalous_rows,
       count_if(scored_at >= {ts_lit(now - rate_window)} AND scored_at <= {ts_lit(now)}) AS rows_recent,
       min(ts) AS first_ts,
       max(ts) AS last_ts,
       max(scored_at) AS last_scored_at
FROM v_scored
""".strip()


def lag_sql(until: pd.Timestamp, window: pd.Timedelta = RATE_WINDOW) -> str:
    return f"""
SELECT avg(date_diff('millisecond', sent_at, scored_at)) AS lag_ms_avg,
       max(date_diff('millisecond', sent_at, scored_at)) AS lag_ms_max,
       count(*) AS rows
FROM v_scored
WHERE scored_at >= {ts_lit(until - window)} AND scored_at <= {ts_lit(until)} AND sent_at IS NOT NULL
""".strip()


EPISODE_COUNT_SQL = "SELECT count(*) AS episodes, count(DISTINCT well) AS wells FROM v_events"


@dataclass
class Overview:
    rows_total: int
    wells_total: int
    wells_active: int
    anomalous_rows: int
    anomaly_episodes: int
    rows_per_minute: float
    first_ts: pd.Timestamp | None
    last_ts: pd.Timestamp | None
    last_scored_at: pd.Timestamp | None
    lag_s: float | None  # from the lake: mean scored_at - sent_at over the last active window
    now: pd.Timestamp

    @property
    def empty(self) -> bool:
        return self.rows_total == 0

    @property
    def idle_for(self) -> pd.Timedelta | None:
        return None if self.last_scored_at is None else self.now - self.last_scored_at


def overview(backend: Backend, now: pd.Timestamp | None = None, rate_window: pd.Timedelta = RATE_WINDOW,
             active_within: pd.Timedelta = ACTIVE_WITHIN) -> Overview:
    """The headline numbers. ``rows_per_minute`` counts rows scored in the ``rate_window`` ending now;
    lag is measured over the window ending at the last scored row (so it stays meaningful after a replay)."""
    now = now if now is not None else utc_now()
    row = backend.query(overview_sql(now, rate_window, active_within)).iloc[0]
    episodes = backend.query(EPISODE_COUNT_SQL).iloc[0]
    last_scored = _ts(row["last_scored_at"])
    lag_s = None
    if last_scored is not None:
        lag = backend.query(lag_sql(last_scored, rate_window)).iloc[0]
        if _num(lag["rows"]) > 0 and not pd.isna(lag["lag_ms_avg"]):
            lag_s = float(lag["lag_ms_avg"]) / 1000.0
    return Overview(
        rows_total=int(_num(row["rows_total"])),
        wells_total=int(_num(row["wells_total"])),
        wells_active=int(_num(row["wells_active"])),
        anomalous_rows=int(_num(row["anomalous_rows"])),
        anomaly_episodes=int(_num(episodes["episodes"])),
        rows_per_minute=_num(row["rows_recent"]) / (rate_window.total_seconds() / 60.0),
        first_ts=_ts(row["first_ts"]),
        last_ts=_ts(row["last_ts"]),
        last_scored_at=last_scored,
        lag_s=lag_s,
        now=now,
    )


def anomalies_by_class_sql() -> str:
    return """
SELECT event_class, count(*) AS episodes, count(DISTINCT well) AS wells, sum(n_rows) AS rows
FROM v_events
GROUP BY event_class
ORDER BY event_class
""".strip()


def anomalies_by_class(backend: Backend) -> pd.DataFrame:
    return backend.query(anomalies_by_class_sql())


# ------------------------------------------------------------------ anomaly episodes

EPISODE_COLUMNS = (
    "episode_id", "well", "instance_id", "source", "event_class", "label", "start_ts", "end_ts",
    "duration_s", "n_rows", "peak_score", "mean_score", "model_version", "closed_at",
)


def anomaly_facets_sql() -> str:
    return """
SELECT well, event_class, count(*) AS episodes, min(start_ts) AS first_start, max(start_ts) AS last_start
FROM v_events
GROUP BY well, event_class
ORDER BY well, event_class
""".strip()


def anomaly_facets(backend: Backend) -> pd.DataFrame:
    """Wells, classes and time span present in the events table (for the filter widgets)."""
    return backend.query(anomaly_facets_sql())


def anomalies_sql(wells: Sequence[str] | None = None, classes: Sequence[int] | None = None,
                  start: object | None = None, end: object | None = None, limit: int = 500) -> str:
    conds = []
    if wells:
        conds.append(f"well IN ({_in_list(wells)})")
    if classes:
        conds.append(f"event_class IN ({_in_list(classes, number=True)})")
    if start is not None:
        conds.append(f"start_ts >= {ts_lit(start)}")
        conds.append(f"dt >= {day_lit(start)}")
    if end is not None:
        conds.append(f"start_ts <= {ts_lit(end)}")
        conds.append(f"dt <= {day_lit(end)}")
    where = f"WHERE {' AND '.join(conds)}\n" if conds else ""
    # the same objects either way: the base table for chosen wells, the fleet-wide view otherwise
    table = "anomaly_events" if wells else "v_events"
    cols = ", ".join(EPISODE_COLUMNS)
    return f"SELECT {cols}\nFROM {table}\n{where}ORDER BY start_ts DESC\nLIMIT {int(limit)}"


def anomalies(backend: Backend, wells: Sequence[str] | None = None, classes: Sequence[int] | None = None,
              start: object | None = None, end: object | None = None, limit: int = 500) -> pd.DataFrame:
    """Anomaly episodes, newest first, filtered by well, 3W class and start time."""
    df = backend.query(anomalies_sql(wells, classes, start, end, limit))
    for c in ("start_ts", "end_ts", "closed_at"):
        if c in df:
            df[c] = pd.to_datetime(df[c])
    return df


def history_link(well: str, start: object, end: object, pad: pd.Timedelta = pd.Timedelta(minutes=10),
                 page: str = "well_history") -> str:
    """Link to the well-history page around an episode (query params are read back by that page). Relative
    (no leading slash), so it also works when the app is served under a base path."""
    from urllib.parse import urlencode

    s = pd.Timestamp(start) - pad
    e = pd.Timestamp(end if end is not None and not pd.isna(end) else start) + pad
    q = urlencode({"well": well, "start": s.strftime("%Y-%m-%dT%H:%M:%S"), "end": e.strftime("%Y-%m-%dT%H:%M:%S")})
    return f"{page}?{q}"


def with_history_links(episodes: pd.DataFrame, page: str = "well_history") -> pd.DataFrame:
    out = episodes.copy()
    out["history"] = [history_link(w, s, e, page=page) for w, s, e in
                      zip(out["well"], out["start_ts"], out["end_ts"], strict=True)] if len(out) else []
    return out


# ------------------------------------------------------------------ wells and their status


WELL_STATUS_SQL = "SELECT * FROM v_well_status ORDER BY well"
LAST_SCORED_SQL = "SELECT well, max(scored_at) AS last_scored_at FROM v_scored GROUP BY well"
STATUS_NAMES = {"OK": "normal", "ALARM": "alarm", "STALE": "stale"}


def well_status(backend: Backend, now: pd.Timestamp | None = None) -> pd.DataFrame:
    """One row per well from ``v_well_status`` (its latest reading, last-hour counts, ``status`` as
    normal / alarm / stale; stale and "last hour" are relative to the lake's newest reading, because replayed
    3W data carries historical timestamps) plus ``last_scored_at`` / ``idle_s``: wall-clock time since the
    well's last row was scored (is the stream still flowing?)."""
    now = now if now is not None else utc_now()
    df = backend.query(WELL_STATUS_SQL)
    if df.empty:
        return df.assign(last_scored_at=pd.Series(dtype="datetime64[ns]"), idle_s=pd.Series(dtype="float64"))
    df["status"] = df["status"].map(STATUS_NAMES).fillna(df["status"].astype(str).str.lower())
    last = backend.query(LAST_SCORED_SQL)
    df = df.merge(last, on="well", how="left")
    for c in ("first_ts", "last_ts", "lake_now", "last_scored_at"):
        if c in df:
            df[c] = pd.to_datetime(df[c])
    df["idle_s"] = (now - df["last_scored_at"]).dt.total_seconds()
    return df


def available_variables_sql(well: str, start: object | None = None, end: object | None = None) -> str:
    counts = ",\n       ".join(f"count({c}) AS {c}" for c in SENSOR_COLUMNS)
    where = f"well = {lit(well)}"
    if start is not None and end is not None:  # only the partitions of the range: cheap on Athena
        where += f" AND dt >= {day_lit(start)} AND dt <= {day_lit(end)}"
    return f"SELECT {counts}\nFROM scored_readings\nWHERE {where}"


def available_variables(backend: Backend, well: str, start: object | None = None,
                        end: object | None = None) -> list[str]:
    """Lake columns holding at least one value for this well (in the days of [start, end] when given):
    3W wells miss many of the 27 sensors."""
    df = backend.query(available_variables_sql(well, start, end))
    if df.empty:
        return []
    row = df.iloc[0]
    return [c for c in SENSOR_COLUMNS if _num(row.get(c)) > 0]


# ------------------------------------------------------------------ well history (downsampled in SQL)


def bucket_seconds(start: object, end: object, max_points: int = MAX_POINTS) -> int:
    """Smallest nice bucket (>= 1 s) that splits [start, end) into at most ``max_points`` buckets."""
    span = max((pd.Timestamp(end) - pd.Timestamp(start)).total_seconds(), 1.0)
    need = math.ceil(span / max_points)
    for b in _NICE_BUCKETS:
        if b >= need:
            return b
    return math.ceil(need / 86400) * 86400


def well_history_sql(well: str, start: object, end: object, columns: Sequence[str], bucket_s: int) -> str:
    cols = [sensor_column(c) for c in columns]
    aggs = "".join(f"       avg({c}) AS {c}__avg, min({c}) AS {c}__min, max({c}) AS {c}__max,\n" for c in cols)
    b_ms = int(bucket_s) * 1000
    return f"""
SELECT CAST(floor(date_diff('millisecond', {ts_lit(start)}, ts) / {b_ms}) AS bigint) AS bucket,
       count(*) AS n,
{aggs}       avg(anomaly_score) AS score__avg, max(anomaly_score) AS score__max,
       max(threshold) AS threshold,
       max(is_anomaly) AS is_anomaly,
       sum(is_anomaly) AS anomalous_rows,
       max(CASE WHEN label >= 100 THEN label - 100 ELSE label END) AS label_class
FROM scored_readings
WHERE well = {lit(well)} AND dt >= {day_lit(start)} AND dt <= {day_lit(end)}
  AND ts >= {ts_lit(start)} AND ts < {ts_lit(end)}
GROUP BY 1
ORDER BY 1
""".strip()


def well_history(backend: Backend, well: str, start: object, end: object, columns: Sequence[str],
                 max_points: int = MAX_POINTS) -> tuple[pd.DataFrame, int]:
    """Time-bucketed history of one well in [start, end): per bucket ``<col>__avg/__min/__max`` for each
    sensor, anomaly score avg/max, threshold, any-anomaly flag and the 3W event class (transients folded).
    Returns (frame with a ``ts`` bucket-start column, bucket size in seconds)."""
    start, end = pd.Timestamp(start), pd.Timestamp(end)
    b = bucket_seconds(start, end, max_points)
    df = backend.query(well_history_sql(well, start, end, columns, b))
    df["ts"] = start + pd.to_timedelta(pd.to_numeric(df["bucket"]).astype("int64") * b, unit="s")
    return df.sort_values("ts").reset_index(drop=True), b


def well_episodes_sql(well: str, start: object, end: object) -> str:
    return f"""
SELECT episode_id, event_class, label, start_ts, end_ts, duration_s, n_rows, peak_score, model_version
FROM anomaly_events
WHERE well = {lit(well)} AND start_ts < {ts_lit(end)} AND end_ts >= {ts_lit(start)}
ORDER BY start_ts
""".strip()


def well_episodes(backend: Backend, well: str, start: object, end: object) -> pd.DataFrame:
    df = backend.query(well_episodes_sql(well, start, end))
    for c in ("start_ts", "end_ts"):
        df[c] = pd.to_datetime(df[c])
    return df


# ------------------------------------------------------------------ live model performance


LIVE_PERFORMANCE_SQL = "SELECT * FROM v_model_performance ORDER BY dt, model_version"


def live_performance(backend: Backend) -> pd.DataFrame:
    """Per day and model version (``v_model_performance``): the alarms against the 3W labels that arrive with
    the stream: tp/fp/fn/tn, precision, recall, f1, false alarms per hour of normal operation."""
    df = backend.query(LIVE_PERFORMANCE_SQL)
    if "day" not in df and "dt" in df:
        df["day"] = df["dt"]
    df["day"] = df["day"].astype(str)
    df["model_version"] = df["model_version"].astype(str)
    return df


# ------------------------------------------------------------------ drift


DAYS_SQL = "SELECT dt AS day, count(*) AS rows FROM v_scored GROUP BY dt ORDER BY dt"


def sample_sql(columns: Sequence[str], day: str, limit: int = DRIFT_SAMPLE) -> str:
    cols = ", ".join(sensor_column(c) for c in columns)
    return f"SELECT {cols}\nFROM v_scored\nWHERE dt = {lit(day)}\nLIMIT {int(limit)}"


def psi(reference: np.ndarray, current: np.ndarray, bins: int = 10) -> float:
    """Population stability index with quantile bins of the reference (NaNs dropped; eps-smoothed)."""
    ref = np.asarray(reference, dtype="float64")
    cur = np.asarray(current, dtype="float64")
    ref, cur = ref[~np.isnan(ref)], cur[~np.isnan(cur)]
    if len(ref) == 0 or len(cur) == 0:
        return float("nan")
    edges = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)))
    if len(edges) < 2:  # constant reference: one bin for "equal", one for "different"
        p = np.array([1.0, 0.0])
        same = np.isclose(cur, edges[0])
        q = np.array([same.mean(), 1 - same.mean()])
    else:
        edges[0], edges[-1] = -np.inf, np.inf
        p = np.histogram(ref, edges)[0] / len(ref)
        q = np.histogram(cur, edges)[0] / len(cur)
    eps = 1e-4
    p, q = np.clip(p, eps, None), np.clip(q, eps, None)
    return float(np.sum((q - p) * np.log(q / p)))


def ks_statistic(reference: np.ndarray, current: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov statistic (max distance between the empirical CDFs)."""
    a = np.sort(np.asarray(reference, dtype="float64"))
    b = np.sort(np.asarray(current, dtype="float64"))
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    if len(a) == 0 or len(b) == 0:
        return float("nan")
    grid = np.concatenate([a, b])
    cdf_a = np.searchsorted(a, grid, side="right") / len(a)
    cdf_b = np.searchsorted(b, grid, side="right") / len(b)
    return float(np.max(np.abs(cdf_a - cdf_b)))


PSI_WARN, PSI_ALERT = 0.1, 0.25  # usual PSI reading: < 0.1 stable, 0.1-0.25 moderate, > 0.25 shifted


def drift_table(reference: pd.DataFrame, current: pd.DataFrame, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """PSI and KS per sensor between two samples (columns present in both with data on both sides)."""
    cols = [c for c in (columns or CONTINUOUS_COLUMNS) if c in reference and c in current]
    rows = []
    for c in cols:
        ref, cur = pd.to_numeric(reference[c]).dropna(), pd.to_numeric(current[c]).dropna()
        if ref.empty or cur.empty:
            continue
        value = psi(ref.to_numpy(), cur.to_numpy())
        var = VARIABLE_BY_COLUMN.get(c)
        rows.append({
            "sensor": var.name if var else c,
            "column": c,
            "psi": value,
            "ks": ks_statistic(ref.to_numpy(), cur.to_numpy()),
            "reference_mean": float(ref.mean()),
            "current_mean": float(cur.mean()),
            "reference_rows": len(ref),
            "current_rows": len(cur),
            "drift": "shifted" if value > PSI_ALERT else "moderate" if value > PSI_WARN else "stable",
        })
    cols_out = ["sensor", "column", "psi", "ks", "reference_mean", "current_mean", "reference_rows",
                "current_rows", "drift"]
    return pd.DataFrame(rows, columns=cols_out).sort_values("psi", ascending=False, ignore_index=True)


@dataclass
class Drift:
    table: pd.DataFrame
    reference_label: str  # what the current data was compared with
    current_label: str
    note: str = ""


def lake_days(backend: Backend) -> pd.DataFrame:
    return backend.query(DAYS_SQL)


def drift(backend: Backend, reference: pd.DataFrame | None = None, reference_label: str = "training data",
          columns: Sequence[str] | None = None, sample: int = DRIFT_SAMPLE) -> Drift | None:
    """Input drift of the latest lake day against a training reference sample, or (without one) against
    the first lake day. None when the lake has no rows."""
    days = lake_days(backend)
    if days.empty:
        return None
    cols = [sensor_column(c) for c in (columns or CONTINUOUS_COLUMNS)]
    latest = str(days["day"].iloc[-1])
    current = backend.query(sample_sql(cols, latest, sample))
    note = ""
    if reference is None or reference.empty:
        first = str(days["day"].iloc[0])
        reference = backend.query(sample_sql(cols, first, sample))
        reference_label = f"first lake day {first}"
        note = ("No training reference profile is available, so the latest lake day is compared with the "
                "first lake day instead.")
        if first == latest:
            note += " The lake holds a single day so far: both sides are the same day (no drift by construction)."
    return Drift(drift_table(reference, current, cols), reference_label, f"latest lake day {latest}", note)


# ------------------------------------------------------------------ executive views


def executive(backend: Backend, view: str) -> pd.DataFrame:
    """An executive view (``v_exec_monthly`` / ``v_exec_yearly``) as the query layer defines it."""
    if view not in ("v_exec_monthly", "v_exec_yearly"):
        raise ValueError(f"not an executive view: {view}")
    return backend.view(view)  # type: ignore[attr-defined]
