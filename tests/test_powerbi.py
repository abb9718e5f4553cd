"""Power BI: the data-source file, the report spec (every table/column it names exists), and
`petrostream powerbi export` writing the report's views to Parquet/CSV without AWS."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from test_query import make_events, make_scored, write_lake

from petrostream import sql as lake_sql
from petrostream.lake import LakeStore
from petrostream.query.duckdb_backend import DuckDBBackend
from petrostream.query.export import ORDER_BY, POWERBI_VIEWS, export_views
from petrostream.settings import Settings

REPO = Path(__file__).resolve().parents[1]
PBIDS = REPO / "powerbi" / "petrostream-athena.pbids"
SPEC = REPO / "powerbi" / "REPORT_SPEC.md"


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> DuckDBBackend:
    d = tmp_path_factory.mktemp("pbi-lake")
    settings = Settings(lake_dir=d)
    write_lake(LakeStore(settings), make_scored(), make_events())
    backend = DuckDBBackend(settings)
    yield backend
    backend.close()


def test_pbids_is_one_import_mode_odbc_source_on_the_documented_dsn():
    doc = json.loads(PBIDS.read_text())
    assert doc["version"] == "0.1"
    (conn,) = doc["connections"]  # Power BI accepts exactly one data source per file
    assert conn["details"]["protocol"] == "odbc"
    dsn = re.fullmatch(r"dsn=(\S+)", conn["details"]["address"]["connectionString"]).group(1)
    assert conn["mode"] == "Import"
    assert f"`{dsn}`" in SPEC.read_text()
    assert dsn in (REPO / "docs" / "sql.md").read_text()


def test_report_spec_names_only_existing_views_and_columns(lake):
    text = SPEC.read_text()
    views = set(lake_sql.view_names())
    named = set(re.findall(r"\bv_[a-z_]+\b", text)) | ({"well_data"} if "well_data" in text else set())
    assert named <= views, named - views
    assert set(POWERBI_VIEWS) <= named  # every exported view has a place in the report
    columns = {v: set(lake.view(v, limit=0).columns) for v in named}
    refs = re.findall(r"\b(v_[a-z_]+)\[([a-z_0-9]+)\]", text)  # DAX column references
    assert len(refs) > 20
    for view, col in refs:
        assert col in columns[view], f"{view}[{col}]"
    checked = 0
    for line in text.splitlines():  # page tables: | visual | fields | source views |
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[2].startswith("`v_"):
            continue
        sources = re.findall(r"`(v_[a-z_]+)`", cells[2])
        for col in re.findall(r"`([a-z_0-9]+)`", cells[1]):  # lower-case = a view column, Capitalised = a measure
            assert any(col in columns[v] for v in sources), f"{col} not in {sources}"
            checked += 1
    assert checked > 30


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_export_writes_every_report_view(lake, tmp_path, fmt):
    entries = export_views(tmp_path, fmt, backend=lake)
    assert list(entries) == list(POWERBI_VIEWS)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["backend"] == "duckdb" and manifest["format"] == fmt
    for view in POWERBI_VIEWS:
        want = lake.view(view, order_by=ORDER_BY[view])
        path = tmp_path / f"{view}.{fmt}"
        assert manifest["views"][view] == {"file": path.name, "rows": len(want), "columns": list(want.columns)}
        got = pd.read_parquet(path) if fmt == "parquet" else pd.read_csv(path)
        assert len(got) == len(want) > 0 and list(got.columns) == list(want.columns)
        if fmt == "parquet":  # typed round trip: what Power BI reads is what the view returned
            pd.testing.assert_frame_equal(got, want)
    assert not list(tmp_path.glob(".*.tmp"))


def test_cli_powerbi_export(lake, tmp_path, monkeypatch, capsys):
    from petrostream import cli, query

    monkeypatch.setenv("PETROSTREAM_LAKE_DIR", str(lake.lake_dir))
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    try:
        cli.main(["powerbi", "export", "--dest", str(tmp_path / "out"), "--format", "csv",
                  "--view", "v_exec_yearly", "--view", "v_well_status"])
        out = capsys.readouterr().out
        assert "exported 2 views" in out
        assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
            "manifest.json", "v_exec_yearly.csv", "v_well_status.csv"]
        assert len(pd.read_csv(tmp_path / "out" / "v_well_status.csv")) == 3
        with pytest.raises(SystemExit) as info:
            cli.main(["powerbi", "export", "--dest", str(tmp_path / "x"), "--format", "xlsx"])
        assert info.value.code == 1
        assert capsys.readouterr().err.strip() == "error: --format must be one of parquet, csv, not 'xlsx'"
        with pytest.raises(SystemExit):
            cli.main(["powerbi", "export", "--dest", str(tmp_path / "y"), "--view", "v_nope"])
        err = capsys.readouterr().err.strip().splitlines()
        assert err == ["error: missing table: v_nope does not exist"]
    finally:
        query.reset()
