"""Dashboard logic without Streamlit: queries through the real query layer on a lake written by the real
sink code, KPIs against independently computed pandas values, SQL downsampling, figure builders, and the
non-SQL sources (MLflow registry, champion manifest, quarantine, validation report, service /metrics)."""

from __future__ import annotations

import http.server
import threading

import numpy as np
import pandas as pd
import pytest
from dashboard_fixtures import (
    CHAMPION_VERSION,
    CONFUSION_V1,
    CONFUSION_V2,
    EXPECTED_STATUS,
    EXPORTED_AT,
    LAG_S,
    PER_CLASS_V2,
    PROMOTED_AT,
    SPIKE_MAX,
    SPIKE_MIN,
    build_lake,
    build_registry,
    write_manifest,
    write_promotions,
)

from dashboard import figures, queries, sources
from petrostream.settings import Settings


@pytest.fixture(scope="module")
def fx(tmp_path_factory):
    return build_lake(tmp_path_factory.mktemp("dash-lake"))


@pytest.fixture(scope="module")
def settings(fx):
    return Settings(lake_dir=fx.lake_dir, reports_dir=fx.reports_dir, query_backend="duckdb")


@pytest.fixture(scope="module")
def backend(settings):
    from petrostream.query.duckdb_backend import DuckDBBackend

    b = DuckDBBackend(settings)
    yield b
    b.close()


# ------------------------------------------------------------------ KPIs


def test_overview_kpis_equal_pandas(fx, backend):
    s = fx.scored
    ov = queries.overview(backend, fx.now)
    assert ov.rows_total == len(s)
    assert ov.wells_total == s["well"].nunique()
    assert ov.anomalous_rows == int(s["is_anomaly"].sum())
    assert ov.anomaly_episodes == len(fx.events)
    active = s.loc[s["scored_at"] >= fx.now - queries.ACTIVE_WITHIN, "well"].nunique()
    assert ov.wells_active == active == 2
    window = s[(s["scored_at"] >= fx.now - queries.RATE_WINDOW) & (s["scored_at"] <= fx.now)]
    assert ov.rows_per_minute == pytest.approx(len(window) / 5.0)
    last = s["scored_at"].max()
    recent = s[s["scored_at"] >= last - queries.RATE_WINDOW]
    expected_lag = (recent["scored_at"] - recent["sent_at"]).dt.total_seconds().mean()
    assert ov.lag_s == pytest.approx(expected_lag) == pytest.approx(LAG_S)
    assert ov.first_ts == s["ts"].min() and ov.last_ts == s["ts"].max()


def test_anomalies_by_class_and_filters(fx, backend):
    ev = fx.events
    by_class = queries.anomalies_by_class(backend).set_index("event_class")["episodes"]
    assert by_class.to_dict() == ev.groupby("event_class").size().to_dict()

    all_eps = queries.anomalies(backend)
    assert len(all_eps) == len(ev)
    assert list(all_eps["start_ts"]) == sorted(ev["start_ts"], reverse=True)  # newest first
    one = queries.anomalies(backend, wells=["WELL-00001"])
    assert set(one["episode_id"]) == set(ev.loc[ev["well"] == "WELL-00001", "episode_id"])
    cls = queries.anomalies(backend, classes=[3])
    assert list(cls["well"]) == ["WELL-00003"]
    start = pd.Timestamp("2024-04-30 12:00:00")
    late = queries.anomalies(backend, start=start)
    assert set(late["episode_id"]) == set(ev.loc[ev["start_ts"] >= start, "episode_id"])

    facets = queries.anomaly_facets(backend)
    assert set(facets["well"]) == set(ev["well"])

    links = queries.with_history_links(one)["history"]
    assert all(link.startswith("well_history?well=WELL-00001&start=") for link in links)
    assert "end=" in links.iloc[0]


def test_sql_text_is_safe():
    with pytest.raises(ValueError):
        queries.sensor_column("p_tpt; DROP TABLE x")
    assert queries.lit("O'Brien") == "'O''Brien'"
    sql = queries.anomalies_sql(wells=["W'1"], classes=[3])
    assert "'W''1'" in sql and "anomaly_events" in sql  # static well filter: the per-well table
    assert "v_events" in queries.anomalies_sql()  # fleet-wide: the view (Athena needs well on the base table)


# ------------------------------------------------------------------ well status


def test_well_status(fx, backend):
    st = queries.well_status(backend, fx.now).set_index("well")
    assert st["status"].to_dict() == EXPECTED_STATUS
    last = fx.scored.groupby("well")["scored_at"].max()
    assert (st["last_scored_at"] == last.reindex(st.index)).all()
    assert st.loc["WELL-00003", "idle_s"] > 3 * 3600 - 60
    assert st.loc["WELL-00001", "total_rows"] == (fx.scored["well"] == "WELL-00001").sum()


def test_available_variables(fx, backend):
    cols = queries.available_variables(backend, "WELL-00001")
    expected = [c for c in queries.SENSOR_COLUMNS if c in fx.scored and fx.scored[c].notna().any()]
    assert cols == expected


# ------------------------------------------------------------------ downsampling in SQL


@pytest.mark.parametrize("span", [pd.Timedelta(seconds=1), pd.Timedelta(minutes=30), pd.Timedelta(hours=7),
                                  pd.Timedelta(days=1), pd.Timedelta(days=45), pd.Timedelta(days=3 * 365)])
def test_bucket_size_respects_point_budget(span):
    start = pd.Timestamp("2017-01-01")
    b = queries.bucket_seconds(start, start + span, 2000)
    assert b >= 1 and np.ceil(span.total_seconds() / b) <= 2000


def test_well_history_downsampled_in_sql(fx, backend):
    well = fx.scored[fx.scored["well"] == "WELL-00001"]
    start, end = pd.Timestamp("2024-05-01 10:00:00"), pd.Timestamp("2024-05-01 10:10:00")
    raw = well[(well["ts"] >= start) & (well["ts"] < end)]
    hist, bucket = queries.well_history(backend, "WELL-00001", start, end, ["P-TPT", "t_tpt"], max_points=50)
    assert len(hist) <= 50 and bucket == 15  # 600 s / 50 points -> 12 s -> next nice size 15 s
    assert int(hist["n"].sum()) == len(raw)  # every row lands in exactly one bucket
    assert hist["p_tpt__max"].max() == SPIKE_MAX and hist["p_tpt__min"].min() == SPIKE_MIN  # extremes survive
    expected = raw.groupby((raw["ts"] - start).dt.total_seconds() // bucket)["p_tpt"].mean()
    assert np.allclose(hist["p_tpt__avg"].to_numpy(), expected.to_numpy())
    assert (hist["ts"] == start + pd.to_timedelta(expected.index * bucket, unit="s")).all()
    assert hist["is_anomaly"].max() == 1 and set(hist["label_class"].dropna()) == {0, 4}

    # the whole lake span at the default budget: still <= 2,000 points, extremes preserved
    hist2, _ = queries.well_history(backend, "WELL-00001", fx.scored["ts"].min(), fx.scored["ts"].max(), ["p_tpt"])
    assert 0 < len(hist2) <= queries.MAX_POINTS
    assert hist2["p_tpt__max"].max() == SPIKE_MAX and hist2["p_tpt__min"].min() == SPIKE_MIN

    # raw resolution for short ranges
    hist3, b3 = queries.well_history(backend, "WELL-00001", start, start + pd.Timedelta(minutes=5), ["p_tpt"])
    assert b3 == 1 and len(hist3) == 300


def test_well_episodes_overlap_range(fx, backend):
    eps = queries.well_episodes(backend, "WELL-00001", "2024-05-01 10:05:00", "2024-05-01 10:08:00")
    assert list(eps["episode_id"]) == ["4_WELL-00001_20240501100000-400"]


# ------------------------------------------------------------------ live performance and drift


def test_live_performance_equals_pandas(fx, backend):
    perf = queries.live_performance(backend).set_index(["day", "model_version"])
    s = fx.scored
    for (day, version), g in s.groupby(["dt", "model_version"]):
        pos, alarm = g["label"] != 0, g["is_anomaly"] == 1
        tp, fp, fn = int((pos & alarm).sum()), int((~pos & alarm).sum()), int((pos & ~alarm).sum())
        row = perf.loc[(day, version)]
        assert (row["tp"], row["fp"], row["fn"]) == (tp, fp, fn)
        assert row["recall"] == pytest.approx(tp / (tp + fn))
        assert row["precision"] == pytest.approx(tp / (tp + fp))


def test_psi_and_ks():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 5000), rng.normal(0, 1, 5000)
    assert queries.psi(a, a) == pytest.approx(0.0, abs=1e-9)
    assert queries.psi(a, b) < queries.PSI_WARN
    assert queries.psi(a, b + 2) > queries.PSI_ALERT
    assert queries.ks_statistic(a, a) == 0.0
    assert queries.ks_statistic(a, a + 100) == 1.0
    assert np.isnan(queries.psi(np.array([]), a))


def test_drift_without_reference_compares_first_and_latest_day(fx, backend):
    d = queries.drift(backend)
    assert "first lake day 2024-04-30" in d.reference_label and "2024-05-01" in d.current_label
    assert "No training reference" in d.note
    t = d.table.set_index("column")
    assert t.loc["p_tpt", "drift"] == "shifted"  # day 2 pressures sit 5e5 Pa higher
    assert t.loc["t_jus_ckp", "psi"] < queries.PSI_WARN
    assert t.loc["p_tpt", "reference_rows"] == (fx.scored["dt"] == "2024-04-30").sum()


def test_drift_against_reference(fx, backend):
    ref = fx.scored[fx.scored["dt"] == "2024-05-01"]
    d = queries.drift(backend, reference=ref, reference_label="training data")
    assert d.reference_label == "training data" and d.note == ""
    assert (d.table["psi"] < 1e-6).all()


def test_empty_lake_answers_empty(tmp_path):
    from petrostream.query.duckdb_backend import DuckDBBackend

    b = DuckDBBackend(Settings(lake_dir=tmp_path / "nothing"))
    ov = queries.overview(b)
    assert ov.empty and ov.lag_s is None and ov.rows_per_minute == 0
    assert queries.well_status(b).empty and queries.anomalies(b).empty
    assert queries.drift(b) is None and queries.live_performance(b).empty
    state = sources.lake_state(Settings(lake_dir=tmp_path / "nothing"))
    assert not state.ok and "does not exist" in state.problem


def test_lake_state_explains_a_stopped_emulator(monkeypatch):
    from petrostream.local import free_port

    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    state = sources.lake_state(Settings(lake_dir=None))
    assert not state.ok and "not running" in state.problem and "petrostream local up" in state.problem


# ------------------------------------------------------------------ figures


def test_figure_builders(fx, backend):
    start, end = pd.Timestamp("2024-05-01 10:00:00"), pd.Timestamp("2024-05-01 10:10:00")
    hist, bucket = queries.well_history(backend, "WELL-00001", start, end, ["p_tpt", "t_tpt"], max_points=100)
    eps = queries.well_episodes(backend, "WELL-00001", start, end)
    fig = figures.well_history(hist, ["p_tpt", "t_tpt"], eps, bucket, title="WELL-00001")
    names = [t.name for t in fig.data]
    for expected in ("P-TPT", "P-TPT min-max", "T-TPT", "anomaly score (max)", "threshold", "3W label"):
        assert expected in names
    assert sum(len(t.x) for t in fig.data if t.name == "P-TPT") == len(hist) <= 100
    shapes = fig.layout.shapes
    assert sum(1 for s in shapes if s.fillcolor == figures.ALARM_FILL) == len(eps) == 1
    assert sum(1 for s in shapes if s.fillcolor == figures.LABEL_FILL) == 1  # label 4 from row 300 on

    st = queries.well_status(backend, fx.now)
    grid = figures.status_grid(st)
    assert sorted(t.name for t in grid.data) == ["alarm (1)", "normal (1)", "stale (1)"]
    assert all(t.marker.symbol == "square" for t in grid.data)

    cm = figures.confusion_matrix(CONFUSION_V2, ["normal", "event"])
    assert cm.data[0].type == "heatmap" and cm.data[0].z.tolist() == CONFUSION_V2

    perf = queries.live_performance(backend)
    lp = figures.live_performance(perf)
    assert {t.name for t in lp.data} == {f"v{v} {m}" for v in ("1", "2") for m in ("precision", "recall", "f1")}

    d = queries.drift(backend)
    bars = figures.drift_bars(d.table)
    assert list(bars.data[0].x) == list(d.table["sensor"])

    tl = figures.episodes_timeline(queries.anomalies(backend))
    assert {t.name for t in tl.data} == {figures.class_name(3), figures.class_name(4)}
    assert figures.anomalies_by_class(queries.anomalies_by_class(backend)).data[0].type == "bar"
    ex = figures.executive_bars(backend.view("v_exec_monthly")[["month", "n_rows", "episodes"]], "month", "m")
    assert [t.name for t in ex.data] == ["n_rows", "episodes"]

    # empty inputs give an explained, empty figure, not an exception
    for empty in (figures.status_grid(st.iloc[0:0]), figures.episodes_timeline(pd.DataFrame()),
                  figures.live_performance(pd.DataFrame()), figures.drift_bars(d.table.iloc[0:0])):
        assert len(empty.data) == 0 and empty.layout.annotations


# ------------------------------------------------------------------ non-SQL sources


def test_quarantine_by_reason(fx, settings):
    q = sources.quarantine_records(settings)
    assert len(q) == len(fx.quarantine)
    summary = sources.quarantine_summary(q)
    by_reason = summary.groupby("reason")["records"].sum().to_dict()
    expected = pd.Series([e["reason"] for e in fx.quarantine]).value_counts().to_dict()
    assert by_reason == expected
    assert summary["reason"].iloc[0] == "non-finite number NaN"  # biggest reason first
    fig = figures.quarantine_by_reason(summary)
    assert {t.name for t in fig.data} == {"2024-04-30", "2024-05-01"}


def test_validation_report_from_the_real_writer(tmp_path, threew_dir):
    """Run the real Great Expectations validation on two real 3W files and a broken one; the dashboard
    reader shows pass/fail per suite and per file and the Data Docs location."""
    from petrostream.quality import validate_dir

    data = tmp_path / "3w"
    picked = sorted(threew_dir.glob("3/WELL-*.parquet"))[:2]
    (data / "3").mkdir(parents=True)
    for p in picked:
        (data / "3" / p.name).symlink_to(p)
    (data / "3" / "WELL-00099_20170101000000.parquet").write_text("not parquet")
    reports = tmp_path / "reports"
    results = validate_dir(data, suite="raw", reports_dir=reports)
    v = sources.validation_report(Settings(reports_dir=reports))
    assert v.available
    suite = v.suites.iloc[0]
    assert suite["files"] == len(results) == 3
    assert suite["error"] == sum(r.status == "error" for r in results) == 1
    assert suite["pass"] == sum(r.status == "pass" for r in results)
    assert not suite["success"]
    assert set(v.files["file"]) == {r.name for r in results}
    assert v.data_docs and v.data_docs.endswith("index.html")

    missing = sources.validation_report(Settings(reports_dir=tmp_path / "none"))
    assert not missing.available and "make validate" in missing.note


def test_registry_champion_and_run_details(fx, mlflow_tmp, tmp_path):
    runs = build_registry(mlflow_tmp, tmp_path / "artifacts")
    s = Settings(lake_dir=fx.lake_dir, mlflow_tracking_uri=mlflow_tmp)
    reg = sources.mlflow_registry(s)
    assert reg.available and reg.aliases == {"champion": "2", "challenger": "1"}
    assert list(reg.versions["version"]) == [2, 1]
    assert reg.versions.set_index("version").loc[2, "aliases"] == "champion"
    assert reg.metrics.set_index("version").loc[2, "holdout_obs_f1"] == pytest.approx(0.68)

    details = sources.run_details(runs["2"], s)  # per-class from report/per_class_holdout.csv
    assert details.confusion == CONFUSION_V2
    pd.testing.assert_frame_equal(details.per_class, PER_CLASS_V2)
    v1 = sources.run_details(runs["1"], s)  # no artifact: per-class from the holdout_class_<k>_* metrics
    assert v1.confusion == CONFUSION_V1
    pc = v1.per_class.set_index("event_class")
    assert pc.loc[3, "obs_recall"] == pytest.approx(0.40) and pc.loc[4, "median_delay_s"] == pytest.approx(60.0)
    assert set(pc.columns) == {"obs_recall", "detection_rate", "median_delay_s"}

    # no manifest in the models bucket: the MLflow alias answers
    champ = sources.champion(s)
    assert champ.version == CHAMPION_VERSION and "MLflow" in champ.source
    # exported, no history: the manifest answers, with its export time
    write_manifest(fx.lake_dir, runs["2"])
    champ = sources.champion(s)
    assert champ.version == CHAMPION_VERSION and "champion.json" in champ.source
    assert champ.promoted_at == pd.Timestamp(EXPORTED_AT).tz_convert("UTC").tz_localize(None)
    # with the promotion history: promoted when the last promotion to that version was decided
    write_promotions(fx.lake_dir)
    champ = sources.champion(s)
    assert champ.promoted_at == pd.Timestamp(PROMOTED_AT).tz_convert("UTC").tz_localize(None)


def test_promotion_history_as_training_writes_it(fx, settings):
    from training.promote import history_key

    assert sources.promotion_history_key("m") == history_key("m")  # read by key, never imported
    write_promotions(fx.lake_dir)
    h = sources.promotion_history(settings)
    assert list(h["action"]) == ["promote", "refused", "promote"]  # newest first
    assert list(h["to_version"]) == ["2", "2", "1"]
    refused = h.iloc[1]
    assert refused["gates"] == "1/2 passed" and refused["failed_gates"] == "false_alarms_per_hour"
    assert h.iloc[0]["challenger_objective"] == 0.66 and h.iloc[0]["exported"].endswith("champion.json")


def test_registry_absent_is_explained(tmp_path):
    s = Settings(mlflow_tracking_uri=f"sqlite:///{tmp_path / 'nope.db'}", lake_dir=tmp_path)
    reg = sources.mlflow_registry(s)
    assert not reg.available and "make train" in reg.note
    assert not (tmp_path / "nope.db").exists()  # reading never creates a store
    champ = sources.champion(s)
    assert champ.version is None and champ.note


def test_service_metrics_from_prometheus_text():
    from inference.metrics import Metrics

    m = Metrics()
    m.millis_behind.set(1500, consumer="c1", shard="shardId-0")
    m.millis_behind.set(4200, consumer="c1", shard="shardId-1")
    m.rows_scored.inc(1234, source="REAL")
    m.model_info.set(1, name="petrostream-anomaly", version="7")
    body = m.render().encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200 if self.path == "/metrics" else 404)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        sm = sources.service_metrics(f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
    assert sm.reachable and sm.lag_ms == 4200 and sm.shards == 2
    assert sm.rows_scored == 1234 and sm.model_version == "7"

    from petrostream.local import free_port

    down = sources.service_metrics(f"http://127.0.0.1:{free_port()}")
    assert not down.reachable and down.lag_ms is None


def test_s3_lake_on_the_emulator(emulator, tmp_path, monkeypatch):
    """The same lake in the emulator's S3 buckets (no lake_dir): the query layer reads it through S3, the
    sources list quarantine and read the manifest from the buckets."""
    import uuid

    from petrostream.lake import LakeStore
    from petrostream.query.duckdb_backend import DuckDBBackend

    monkeypatch.delenv("PETROSTREAM_LAKE_DIR", raising=False)
    tag = uuid.uuid4().hex[:8]  # buckets of its own: other tests share this emulator
    buckets = {f"{kind}_bucket": f"dash-{kind}-{tag}" for kind in ("raw", "curated", "models")}
    for kind, name in buckets.items():
        monkeypatch.setenv(f"PETROSTREAM_{kind.upper()}", name)
    s = Settings(lake_dir=None, query_backend="duckdb")
    store = LakeStore(s)
    for name in buckets.values():
        store.s3.create_bucket(Bucket=name)
    assert "No scored readings" in sources.lake_state(s).problem
    fx = build_lake(tmp_path, store=store)
    write_manifest(None, "run-s3", store=store)
    assert sources.lake_state(s).ok
    b = DuckDBBackend(s)
    try:
        ov = queries.overview(b, fx.now)
        assert (ov.rows_total, ov.anomaly_episodes) == (len(fx.scored), len(fx.events))
        assert queries.well_status(b, fx.now).set_index("well")["status"].to_dict() == EXPECTED_STATUS
    finally:
        b.close()
    assert len(sources.quarantine_records(s)) == len(fx.quarantine)
    champ = sources.champion(Settings(lake_dir=None, mlflow_tracking_uri=f"sqlite:///{tmp_path / 'none.db'}"))
    assert champ.version == CHAMPION_VERSION and champ.source.startswith("s3://")


def test_well_history_figure_breaks_at_gaps():
    """3W instances of a well are separate recordings: lines and min-max bands must not bridge the gaps."""
    t0 = pd.Timestamp("2017-03-16 12:00:00")
    idx = [0, 1, 2, 10, 11]
    hist = pd.DataFrame({"ts": [t0 + pd.Timedelta(minutes=i) for i in idx], "n": 60,
                         "p_tpt__avg": [1.0, 2.0, 3.0, 4.0, 5.0], "p_tpt__min": 0.0, "p_tpt__max": 9.0,
                         "score__max": 0.1, "threshold": 0.5, "label_class": 0})
    broken = figures.break_gaps(hist, 60)
    assert len(broken) == 6 and broken["p_tpt__avg"].isna().sum() == 1  # one empty row after the gap
    fig = figures.well_history(hist, ["p_tpt"], None, 60)
    avg = next(t for t in fig.data if t.name == "P-TPT")
    assert np.isnan(avg.y[3]) and list(avg.y[:3]) == [1.0, 2.0, 3.0]
    band = next(t for t in fig.data if t.name == "P-TPT min-max")
    # two closed polygons (3 and 2 buckets) and the way back to the first: the link encloses no area
    assert len(band.x) == (3 * 2 + 1) + (2 * 2 + 1) + 1 and band.x[-1] == band.x[0]


def test_cli_registers_dashboard_command(monkeypatch):
    import typer
    from typer.testing import CliRunner

    from dashboard import cli

    app = typer.Typer()
    cli.register(app)
    app.command("noop")(lambda: None)  # a second command keeps typer in multi-command mode
    out = CliRunner().invoke(app, ["dashboard", "--help"])
    assert out.exit_code == 0 and "--port" in out.output and "--address" in out.output
    cmd = cli.streamlit_command(8600, "0.0.0.0")
    assert cmd[1:4] == ["-m", "streamlit", "run"] and cmd[4].endswith("dashboard/app.py")
    assert cmd[cmd.index("--server.port") + 1] == "8600" and cmd[cmd.index("--server.address") + 1] == "0.0.0.0"
    assert cmd[cmd.index("--server.headless") + 1] == "true"

    seen = {}
    monkeypatch.setattr("os.execve", lambda path, argv, env: seen.update(argv=argv))
    monkeypatch.setenv("STREAMLIT_SERVER_ADDRESS", "0.0.0.0")  # what the container sets
    assert CliRunner().invoke(app, ["dashboard"]).exit_code == 0
    argv = seen["argv"]
    assert argv[argv.index("--server.address") + 1] == "0.0.0.0" and argv[argv.index("--server.port") + 1] == "8501"


def test_drift_against_the_champions_training_data(fx, backend, mlflow_tmp, tmp_path, threew_dir):
    """The champion's version tag data_dir (set by training) points at the 3W directory it was trained on:
    a bounded sample of it becomes the drift reference."""
    from mlflow import MlflowClient

    build_registry(mlflow_tmp, tmp_path / "artifacts")
    MlflowClient(tracking_uri=mlflow_tmp).set_model_version_tag("petrostream-anomaly", CHAMPION_VERSION, "data_dir",
                                                                str(threew_dir))
    s = Settings(lake_dir=tmp_path / "no-lake", mlflow_tracking_uri=mlflow_tmp)  # no manifest: use the alias
    ref, label = sources.training_reference(s)
    assert label.startswith("training data of the champion") and str(threew_dir) in label
    assert 0 < len(ref) <= sources.REFERENCE_ROWS + sources.REFERENCE_FILES
    assert {"p_tpt", "t_tpt", "p_pdg"} <= set(ref.columns)
    d = queries.drift(backend, ref, label)
    assert d.reference_label == label and d.note == "" and "p_tpt" in set(d.table["column"])

    none, _ = sources.training_reference(Settings(lake_dir=tmp_path, mlflow_tracking_uri=f"sqlite:///{tmp_path}/x.db"))
    assert none is None
