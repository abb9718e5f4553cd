"""Every dashboard page run by Streamlit's AppTest against the fixture lake (numbers shown equal values
computed from the fixture, charts present, empty states explained) and against an empty lake."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from dashboard_fixtures import (
    CHAMPION_VERSION,
    EXPECTED_STATUS,
    VALIDATION_FILES,
    build_lake,
    build_registry,
    write_manifest,
    write_promotions,
    write_validation,
)

from dashboard.cli import app_path

APP = app_path()
PAGES = ("overview", "live", "well_history", "status_map", "model", "quality", "executive")


def texts(at) -> str:
    """Every piece of text the page shows (markdown, captions, alerts, titles, metric labels)."""
    parts = []
    for kind in ("title", "header", "subheader", "markdown", "caption", "info", "success", "warning", "error"):
        parts += [str(e.value) for e in getattr(at, kind)]
    return "\n".join(parts)


def metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def run_page(page: str, query_params: dict[str, str] | None = None):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(APP), default_timeout=30)
    for k, v in (query_params or {}).items():
        at.query_params[k] = v
    at.run()
    if page != "overview":
        at.switch_page(f"views/{page}.py")
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _env(mp: pytest.MonkeyPatch, root: Path, lake_dir: Path, reports: Path, mlflow_uri: str) -> None:
    from petrostream.local import free_port

    mp.setenv("PETROSTREAM_LAKE_DIR", str(lake_dir))
    mp.setenv("PETROSTREAM_REPORTS_DIR", str(reports))
    mp.setenv("PETROSTREAM_MLFLOW_TRACKING_URI", mlflow_uri)
    mp.setenv("PETROSTREAM_POWERBI_REPORT_URL", "")
    # nothing listens there: the overview falls back to the lag measured in the lake
    mp.setenv("PETROSTREAM_INFERENCE_URL", f"http://127.0.0.1:{free_port()}")
    mp.delenv("AWS_ENDPOINT_URL", raising=False)


@pytest.fixture(scope="module")
def fx(tmp_path_factory):
    root = tmp_path_factory.mktemp("dash-app")
    lake = build_lake(root)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    runs = build_registry(uri, root / "artifacts")
    write_manifest(lake.lake_dir, runs[CHAMPION_VERSION])
    write_promotions(lake.lake_dir)
    write_validation(lake.reports_dir)
    with pytest.MonkeyPatch.context() as mp:
        _env(mp, root, lake.lake_dir, lake.reports_dir, uri)
        lake.mlflow_uri = uri  # type: ignore[attr-defined]
        yield lake


@pytest.fixture(autouse=True)
def _clear_streamlit_caches():
    import streamlit as st

    st.cache_data.clear()
    yield


def test_overview_kpis(tmp_path, fx, monkeypatch):
    # a lake built right now, so the wall-clock windows (rows/minute, active wells) hold exactly its rows
    lake = build_lake(tmp_path)
    write_manifest(lake.lake_dir, "run-x")
    write_promotions(lake.lake_dir)
    monkeypatch.setenv("PETROSTREAM_LAKE_DIR", str(lake.lake_dir))
    at = run_page("overview")
    s = lake.scored
    recent = s[s["scored_at"] >= lake.now - pd.Timedelta(minutes=5)]
    m = metrics(at)
    assert m["Anomaly episodes"] == str(len(lake.events))
    assert m["Active wells"] == str(s.loc[s["scored_at"] >= lake.now - pd.Timedelta(minutes=10), "well"].nunique())
    assert m["Rows per minute"] == f"{len(recent) / 5:,.0f}"
    assert m["Consumer lag"] == "2.0 s"  # scored_at - sent_at in the lake (the service is not reachable)
    assert m["Rows in the lake"] == f"{len(s):,}"
    shown = texts(at)
    assert f"version {CHAMPION_VERSION}" in shown and "2024-05-01 09:00:00" in shown  # champion + promotion time
    assert "estimated from the lake" in shown
    assert len(at.get("plotly_chart")) == 1


def test_live_anomalies(fx):
    at = run_page("live")
    ev = fx.events
    newest = ev["start_ts"].max()
    in_range = ev[ev["start_ts"] >= newest - pd.Timedelta(days=1)]  # default range: last 24 hours
    m = metrics(at)
    assert m["Episodes shown"] == str(len(in_range))
    assert m["Anomalous rows"] == f"{int(in_range['n_rows'].sum()):,}"
    table = at.dataframe[0].value
    assert len(table) == len(in_range)
    for _, row in table.iterrows():
        assert row["history"].startswith(f"well_history?well={row['well']}&start=")
    assert len(at.get("plotly_chart")) == 1

    at.selectbox(key="live_range").select("All").run()
    assert metrics(at)["Episodes shown"] == str(len(ev))
    at.multiselect(key="live_classes").select(3).run()
    assert metrics(at)["Episodes shown"] == "1" and list(at.dataframe[0].value["well"]) == ["WELL-00003"]


def test_well_history_from_query_params(fx):
    at = run_page("well_history", {"well": "WELL-00001", "start": "2024-05-01T10:00:00",
                                   "end": "2024-05-01T10:10:00"})
    assert at.selectbox(key="wh_well").value == "WELL-00001"
    charts = at.get("plotly_chart")
    assert len(charts) == 1
    shown = texts(at)
    assert "600 points per series" in shown and "raw 1 s readings" in shown
    assert "Alarm episodes in this range" in shown
    assert list(at.dataframe[0].value["episode_id"]) == ["4_WELL-00001_20240501100000-400"]


def test_well_history_default_and_downsampled(fx):
    at = run_page("well_history", {"well": "WELL-00002", "start": "2024-04-30T00:00:00",
                                   "end": "2024-05-02T00:00:00"})
    shown = texts(at)
    assert "s buckets (avg, min and max per bucket)" in shown  # 2 days -> bucketed in SQL
    assert len(at.get("plotly_chart")) == 1
    at = run_page("well_history")  # no parameters: the first well, its last hours of data
    assert at.selectbox(key="wh_well").value == "WELL-00001" and len(at.get("plotly_chart")) == 1


def test_status_map(fx):
    at = run_page("status_map")
    m = metrics(at)
    expected = pd.Series(EXPECTED_STATUS).value_counts()
    assert m["Wells"] == "3"
    assert (m["Alarm"], m["Normal"], m["Stale"]) == (str(expected["alarm"]), str(expected["normal"]),
                                                     str(expected["stale"]))
    assert len(at.get("plotly_chart")) == 1
    table = at.dataframe[0].value.set_index("well")
    assert table["status"].to_dict() == EXPECTED_STATUS


def test_model_performance(fx):
    at = run_page("model")
    shown = texts(at)
    assert f"version {CHAMPION_VERSION}" in shown
    versions = at.dataframe[0].value
    assert list(versions["version"]) == [2, 1] and versions.set_index("version").loc[2, "aliases"] == "champion"
    # metrics per version, confusion matrix, per-class recall, detection delay, live performance, drift
    assert len(at.get("plotly_chart")) == 6
    assert "No training reference profile" in shown  # drift compared first vs latest lake day, and says so
    history = next(d.value for d in at.dataframe if "action" in d.value.columns)
    assert list(history["action"]) == ["promote", "refused", "promote"]
    m = metrics(at)
    assert (m["Promotions"], m["Refused"], m["Rollbacks"]) == ("2", "1", "0")
    perf = next(d.value for d in at.dataframe if "tp" in d.value.columns)
    assert int(perf["tp"].sum()) == int(((fx.scored["label"] != 0) & (fx.scored["is_anomaly"] == 1)).sum())


def test_data_quality(fx):
    at = run_page("quality")
    m = metrics(at)
    statuses = pd.Series([f["status"] for f in VALIDATION_FILES]).value_counts()
    assert m["Files validated"] == str(len(VALIDATION_FILES))
    assert (m["Passed"], m["Failed"], m["Unreadable"]) == (str(statuses["pass"]), str(statuses["fail"]),
                                                          str(statuses["error"]))
    assert m["Quarantined records"] == str(len(fx.quarantine))
    assert m["Reasons"] == str(len({e["reason"] for e in fx.quarantine}))
    shown = texts(at)
    assert "raw_3w_instance" in shown and "FAILED" in shown and "Data Docs" in shown
    assert len(at.get("plotly_chart")) == 1


def test_executive(fx):
    at = run_page("executive")
    s = fx.scored
    m = [(x.label, x.value) for x in at.metric]
    assert ("Rows (2024-05)", f"{(s['dt'].str[:7] == '2024-05').sum():,}") in m
    assert ("Rows (2024)", f"{len(s):,}") in m
    assert len(at.get("plotly_chart")) == 2
    assert "PETROSTREAM_POWERBI_REPORT_URL" in texts(at)


def test_executive_powerbi_link(fx, monkeypatch):
    monkeypatch.setenv("PETROSTREAM_POWERBI_REPORT_URL", "https://app.powerbi.com/groups/me/reports/abc")
    at = run_page("executive")
    assert "PETROSTREAM_POWERBI_REPORT_URL" not in texts(at)
    assert at.get("link_button")[0].proto.url == "https://app.powerbi.com/groups/me/reports/abc"


@pytest.mark.parametrize("page", PAGES)
def test_empty_lake_is_explained(page, tmp_path, monkeypatch, fx):
    _env(monkeypatch, tmp_path, tmp_path / "lake", tmp_path / "reports", f"sqlite:///{tmp_path / 'none.db'}")
    at = run_page(page)
    shown = texts(at)
    assert not at.error
    if page in ("model", "quality"):
        assert "make train" in shown or "make validate" in shown
    else:
        assert "no data has been written" in shown or "No scored readings" in shown
    assert not (tmp_path / "none.db").exists()


@pytest.mark.parametrize("page", ["overview", "live", "status_map", "quality"])
def test_stopped_emulator_is_explained(page, tmp_path, monkeypatch, fx):
    from petrostream.local import free_port

    _env(monkeypatch, tmp_path, tmp_path / "lake", tmp_path / "reports", f"sqlite:///{tmp_path / 'none.db'}")
    monkeypatch.delenv("PETROSTREAM_LAKE_DIR")
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    at = run_page(page)
    shown = texts(at)
    assert not at.error
    assert "is not running" in shown and "petrostream local up" in shown
