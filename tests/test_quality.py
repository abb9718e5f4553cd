"""Data quality with Great Expectations: the raw 3W suite on real and synthetic data, broken files, the scored
suite, Data Docs and the summary the dashboard reads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from petrostream import quality, schema
from petrostream.dataset import discover
from petrostream.lake import SCORED_SCHEMA
from petrostream.synth import synthesize

REPO = Path(__file__).resolve().parents[1]


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "GX_ANALYTICS_ENABLED": "false"}
    return subprocess.run([sys.executable, "-m", "petrostream.cli", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=600)


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("synth")
    synthesize(d, seed=4, instances_per_class=1, hours=0.5)
    return d


@pytest.fixture(scope="module")
def good_frame(synth_dir) -> pd.DataFrame:
    return quality.read_raw(synth_dir / "2" / "SYNTHETIC_00002.parquet")


def test_suites_are_versioned_json_covering_the_schema():
    raw = json.loads((REPO / "expectations" / "raw_3w_instance.json").read_text())
    checked = {e["kwargs"].get("column") for e in raw["expectations"]
               if e["type"] in ("expect_column_values_to_be_between", "expect_column_values_to_be_in_set")}
    assert set(schema.VARIABLE_NAMES) <= checked  # a physical range or value set for every 3W variable
    labels = next(e for e in raw["expectations"] if e["type"] == "expect_column_values_to_be_in_set"
                  and e["kwargs"]["column"] == "class" and isinstance(e["kwargs"]["value_set"], list))
    assert set(labels["kwargs"]["value_set"]) == set(schema.VALID_LABELS)
    scored = json.loads((REPO / "expectations" / "scored_output.json").read_text())
    cols = next(e for e in scored["expectations"] if e["type"] == "expect_table_columns_to_match_set")
    assert cols["kwargs"]["column_set"] == [f.name for f in SCORED_SCHEMA]


def test_real_sample_subset_passes_with_docs_and_summary(threew_dir, tmp_path):
    """40 real files across every class and source pass; Data Docs and latest.json are written."""
    infos = discover(threew_dir)
    picked = []
    for key in sorted({(i.event_class, i.source) for i in infos}):
        group = [i for i in infos if (i.event_class, i.source) == key]
        picked += group[:: max(1, len(group) // 8)][:8]
    picked = picked[:40]
    assert len(picked) >= 30 and {i.event_class for i in picked} == {i.event_class for i in infos}
    root = tmp_path / "subset"
    for i in picked:
        (root / str(i.event_class)).mkdir(parents=True, exist_ok=True)
        (root / str(i.event_class) / i.path.name).symlink_to(i.path)
    reports = tmp_path / "reports"
    results = quality.validate_dir(root, reports_dir=reports, progress=False)
    assert len(results) == len(picked)
    assert [r.line() for r in results if not r.ok] == []
    assert any(r.warnings for r in results)  # NaN-heavy / dead-gauge warnings are reported, not failures
    summary = json.loads((reports / "validation" / "latest.json").read_text())
    assert summary == json.loads((reports / "validation" / "latest-raw_3w_instance.json").read_text())
    assert summary["success"] is True and summary["counts"]["pass"] == len(picked)
    assert {f["file"] for f in summary["files"]} == {f"{i.event_class}/{i.path.name}" for i in picked}
    index = reports / "data_docs" / "index.html"
    assert index.exists() and "Great Expectations" in index.read_text()
    pages = list((reports / "data_docs" / "validations").rglob("*.html"))
    assert len(pages) == len(picked)


def test_synthetic_data_passes_the_raw_suite(synth_dir, good_frame):
    results = quality.validate_dir(synth_dir, progress=False)
    assert len(results) == 5 and all(r.ok for r in results), [r.line() for r in results]
    res = quality.validate_frame(good_frame, parameters={"instance_labels": [0, 2, 102]})
    assert res.success and res.failed == [] and res.stats["rows"] == len(good_frame)


def _broken(df: pd.DataFrame, how: str) -> pd.DataFrame:
    df = df.copy()
    if how == "range":
        df.iloc[100, df.columns.get_loc("QGL")] = 250.0
    elif how == "pressure":
        df.iloc[5, df.columns.get_loc("P-TPT")] = -3e5
    elif how == "label":
        df.iloc[200, df.columns.get_loc("class")] = 55
    elif how == "folder":
        df.iloc[300, df.columns.get_loc("class")] = 4  # valid 3W label, wrong for a class-2 instance
    elif how == "valve":
        df.iloc[10, df.columns.get_loc("ESTADO-DHSV")] = 0.3
    elif how == "duplicate-ts":
        idx = df.index.to_series()
        idx.iloc[50] = idx.iloc[49]
        df.index = pd.DatetimeIndex(idx, name="timestamp")
    elif how == "float-labels":
        df["class"] = df["class"].astype("float64")
    elif how == "foreign":
        df["WHATEVER"] = 1.0
    return df


@pytest.mark.parametrize(
    "how, expectation",
    [
        ("range", "expect_column_values_to_be_between(QGL)"),
        ("pressure", "expect_column_values_to_be_between(P-TPT)"),
        ("label", "expect_column_values_to_be_in_set(class): 1 of"),
        ("folder", "expect_column_values_to_be_in_set(class): 1 of 1,800 values not in {0, 2, 102}"),
        ("valve", "expect_column_values_to_be_in_set(ESTADO-DHSV)"),
        ("duplicate-ts", "expect_column_values_to_be_between(timestamp_step_s)"),
        ("float-labels", "expect_column_values_to_be_of_type(class)"),
        ("foreign", "expect_table_columns_to_match_set: foreign columns WHATEVER"),
    ],
)
def test_bad_values_fail_with_the_expectation_named(good_frame, how, expectation):
    res = quality.validate_frame(_broken(good_frame, how), parameters={"instance_labels": [0, 2, 102]})
    assert not res.success
    assert any(f.startswith(expectation) for f in res.failed), res.failed


def test_nan_heavy_columns_warn_but_pass(good_frame):
    df = good_frame.copy()
    df["QGL"] = np.nan  # a dead gas-lift meter: common in 3W
    df["P-PDG"] = 0.0  # a dead downhole gauge
    res = quality.validate_frame(df)
    assert res.success and not res.failed
    assert any(w.startswith("expect_column_values_to_not_be_null(QGL)") for w in res.warnings)
    assert any(w.startswith("expect_column_values_to_not_be_in_set(P-PDG)") for w in res.warnings)


def _scored_frame(n: int = 30) -> pd.DataFrame:
    df = pd.DataFrame({f.name: np.nan for f in SCORED_SCHEMA}, index=range(n))
    df["instance_id"], df["source"], df["event_class"] = "4_WELL-00001_20170316120203", "REAL", 4
    df["ts"] = pd.date_range("2024-01-01", periods=n, freq="s")
    df["anomaly_score"] = np.linspace(-0.4, 0.6, n)
    df["threshold"] = 0.3
    df["is_anomaly"] = (df["anomaly_score"] > df["threshold"]).astype("int32")
    df["model_version"] = "7"
    df["well"] = "WELL-00001"
    return df


def test_scored_suite():
    good = _scored_frame()
    assert quality.validate_frame(good, suite="scored").success
    bad = good.copy()
    bad.loc[1, "anomaly_score"] = np.inf
    bad.loc[2, "is_anomaly"] = 2
    bad.loc[3, "model_version"] = None
    bad.loc[4, "ts"] = pd.NaT
    bad.loc[5, "well"] = None
    bad = bad.drop(columns=["threshold"])
    res = quality.validate_frame(bad, suite="scored")
    assert not res.success
    heads = {f.split(":")[0] for f in res.failed}
    assert heads == {
        "expect_table_columns_to_match_set",
        "expect_column_values_to_be_between(anomaly_score)",
        "expect_column_values_to_be_in_set(is_anomaly)",
        "expect_column_values_to_not_be_null(model_version)",
        "expect_column_values_to_not_be_null(ts)",
        "expect_column_values_to_not_be_null(well)",
    }


def test_corrupted_files_one_line_each_others_validated(synth_dir, tmp_path):
    root = tmp_path / "data"
    for p in synth_dir.glob("*/*.parquet"):
        if p.parent.name in ("0", "3"):
            (root / p.parent.name).mkdir(parents=True, exist_ok=True)
            (root / p.parent.name / p.name).write_bytes(p.read_bytes())
    good = sorted(p.relative_to(root).as_posix() for p in root.glob("*/*.parquet"))
    blob = (synth_dir / "3" / "SYNTHETIC_00003.parquet").read_bytes()
    bad = {
        "3/SYNTHETIC_00090.parquet": "truncated parquet file",
        "3/SYNTHETIC_00091.parquet": "not a parquet file",
        "0/SYNTHETIC_00092.parquet": "empty file",
        "0/SYNTHETIC_00093.parquet": "foreign columns",
        "0/not-a-3w-name.parquet": "file name is not",
    }
    (root / "3" / "SYNTHETIC_00090.parquet").write_bytes(blob[: len(blob) // 2])
    (root / "3" / "SYNTHETIC_00091.parquet").write_text("timestamp,P-PDG,class\n2024-01-01 00:00:00,2.1e7,0\n")
    (root / "0" / "SYNTHETIC_00092.parquet").write_bytes(b"")
    pd.DataFrame({"speed": [1.0, 2.0], "colour": ["red", "blue"]}).to_parquet(root / "0" / "SYNTHETIC_00093.parquet")
    (root / "0" / "not-a-3w-name.parquet").write_bytes(blob)

    proc = _cli("validate", str(root), "--reports", str(tmp_path / "reports"), cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    lines = proc.stdout.splitlines()
    for name, problem in bad.items():
        mine = [ln for ln in lines if name in ln]
        assert len(mine) == 1 and problem in mine[0], (name, mine)
    for name in good:
        assert any(ln.startswith("ok") and name in ln for ln in lines), name
    summary = json.loads((tmp_path / "reports" / "validation" / "latest.json").read_text())
    status = {f["file"]: f["status"] for f in summary["files"]}
    assert all(status[g] == "pass" for g in good)
    assert status["0/SYNTHETIC_00093.parquet"] == "fail"
    assert {status[b] for b in bad if b != "0/SYNTHETIC_00093.parquet"} == {"error"}
    assert summary["success"] is False
    assert (tmp_path / "reports" / "data_docs" / "index.html").exists()


def test_directory_without_instances_is_one_line(tmp_path):
    (tmp_path / "empty" / "4").mkdir(parents=True)
    proc = _cli("validate", str(tmp_path / "empty"), "--reports", str(tmp_path / "r"), cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [f"error: {tmp_path / 'empty'}: no 3W instances found "
                                                "(expected <class>/<instance>.parquet)"]


@pytest.mark.slow
def test_validate_full_real_sample_cli(threew_dir, tmp_path):
    proc = _cli("validate", str(threew_dir), "--reports", str(tmp_path / "reports"), "--quiet", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads((tmp_path / "reports" / "validation" / "latest.json").read_text())
    n = len(discover(threew_dir))
    assert summary["counts"]["files"] == summary["counts"]["pass"] == n
    assert "rows/s" in proc.stderr  # progress with rate (and ETA) on stderr
