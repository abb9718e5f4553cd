"""The SQL files: they parse as Athena (Presto/Trino) SQL, the DDL matches the lake schema in
petrostream/lake.py and infra/lake_schema.json, partition projection is declared, views only use
objects defined before them, and no integer division hides in a ratio."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp

from petrostream import sql as lake_sql
from petrostream.lake import PARTITION_KEYS, TABLES
from petrostream.local import glue_columns
from petrostream.settings import Settings

REPO = Path(__file__).resolve().parents[1]
LAKE_SCHEMA_JSON = REPO / "infra" / "lake_schema.json"
BASE_TABLES = ("raw_readings", "scored_readings", "anomaly_events")
SETTINGS = Settings()


def rendered(kind: str | None = None) -> list[tuple[lake_sql.SqlFile, str]]:
    return [(f, lake_sql.statement(f, SETTINGS)) for f in lake_sql.files() if kind in (None, f.kind)]


def ddl(name: str) -> exp.Create:
    f = next(f for f in lake_sql.table_files() if f.name == name)
    return sqlglot.parse_one(lake_sql.statement(f, SETTINGS), read="athena")


def columns_of(create: exp.Create) -> list[tuple[str, str]]:
    schema = create.this
    return [(c.name, c.args["kind"].sql(dialect="hive").lower()) for c in schema.expressions]


def partitions_of(create: exp.Create) -> list[tuple[str, str]]:
    prop = create.find(exp.PartitionedByProperty)
    return [(c.name, c.args["kind"].sql(dialect="hive").lower()) for c in prop.this.expressions]


def tblproperties(create: exp.Create) -> dict[str, str]:
    return {p.name: p.text("value") for p in create.find_all(exp.Property) if isinstance(p.this, exp.Literal)}


def location(create: exp.Create) -> str:
    return create.find(exp.LocationProperty).this.name


# ------------------------------------------------------------------ files


def test_the_expected_objects_exist_in_order():
    names = [f.name for f in lake_sql.files()]
    assert names[:3] == list(BASE_TABLES)
    for view in ("v_well_status", "v_anomalies", "v_daily_well_summary", "v_exec_monthly", "v_exec_yearly",
                 "v_model_performance", "well_data", "v_quarantine", "v_scored", "v_events", "v_event_classes"):
        assert view in lake_sql.view_names()
    kinds = [f.kind for f in lake_sql.files()]
    assert kinds == sorted(kinds)  # every table before every view


@pytest.mark.parametrize("dialect", ["presto", "trino", "athena"])
def test_every_file_parses_as_one_statement(dialect):
    for f, text in rendered():
        trees = sqlglot.parse(text, read=dialect)
        assert len(trees) == 1, f.path.name
        tree = trees[0]
        assert isinstance(tree, exp.Create), f.path.name
        assert tree.kind == ("VIEW" if f.kind == "view" else "TABLE"), f.path.name


def test_rendering_fills_every_placeholder_and_keeps_athenas_own():
    for f, text in rendered():
        assert "--" not in text.splitlines()[0]
        leftovers = set(lake_sql._PLACEHOLDER.findall(text))
        assert leftovers <= {"dt"}, f.path.name
        if leftovers:
            assert f.kind == "table" and "storage.location.template" in text
    with pytest.raises(lake_sql.SqlTemplateError, match="unknown SQL placeholder"):
        lake_sql.render("SELECT ${nope}", lake_sql.params(SETTINGS))


def test_names_and_buckets_come_from_settings():
    s = Settings(glue_database="db2", scored_table="sc2", events_table="ev2", curated_bucket="cur2")
    texts = dict(lake_sql.statements(settings=s))
    assert texts["scored_readings"].startswith("CREATE EXTERNAL TABLE IF NOT EXISTS db2.sc2 (")
    assert texts["v_scored"].endswith("FROM sc2") and texts["v_events"].endswith("FROM ev2")
    assert "LOCATION 's3://cur2/scored/'" in texts["scored_readings"]


# ------------------------------------------------------------------ DDL == lake schema == infra json


@pytest.mark.parametrize("name", BASE_TABLES)
def test_ddl_columns_equal_lake_py_schema(name):
    create = ddl(name)
    assert columns_of(create) == [(c["Name"], c["Type"]) for c in glue_columns(TABLES[name].schema)]
    assert partitions_of(create) == [(k, "string") for k in PARTITION_KEYS]
    table = TABLES[name]
    assert location(create) == f"s3://{table.bucket(SETTINGS)}/{table.prefix}/"


def test_well_is_a_column_of_every_table_not_a_partition():
    for name in BASE_TABLES:
        create = ddl(name)
        assert columns_of(create)[-1] == ("well", "string"), name
        assert partitions_of(create) == [("dt", "string")], name
    assert not any(f.name.endswith("_all") for f in lake_sql.files())  # no second dt-only table any more


def test_ddl_equals_infra_lake_schema_json():
    if not LAKE_SCHEMA_JSON.exists():
        pytest.skip("infra/lake_schema.json is not there yet (the infra engineer owns it)")
    doc = json.loads(LAKE_SCHEMA_JSON.read_text())
    assert [tuple(k) for k in doc["partition_keys"]] == [(k, "string") for k in PARTITION_KEYS]
    assert set(doc["tables"]) == set(BASE_TABLES)
    buckets = {"raw": SETTINGS.raw_bucket, "curated": SETTINGS.curated_bucket}
    for name, spec in doc["tables"].items():
        create = ddl(name)
        assert columns_of(create) == [tuple(c) for c in spec["columns"]], name
        assert partitions_of(create) == [tuple(k) for k in doc["partition_keys"]], name
        assert location(create) == f"s3://{buckets[spec['bucket']]}/{spec['prefix']}", name


# ------------------------------------------------------------------ partition projection


DT_PROJECTION = {
    "projection.enabled": "true",
    "projection.dt.type": "date",
    "projection.dt.format": "yyyy-MM-dd",
    "projection.dt.interval": "1",
    "projection.dt.interval.unit": "DAYS",
}


@pytest.mark.parametrize("name", [*BASE_TABLES, "quarantine"])
def test_tables_project_dt_as_date_and_nothing_else(name):
    props = tblproperties(ddl(name))
    assert DT_PROJECTION.items() <= props.items()
    assert props["projection.dt.range"] == f"{lake_sql.PROJECTION_START},NOW"
    assert not any(k.startswith("projection.well") for k in props)
    if name in TABLES:
        table = TABLES[name]
        assert props["classification"] == "parquet"
        assert props["storage.location.template"] == f"s3://{table.bucket(SETTINGS)}/{table.prefix}/dt=${{dt}}/"
    else:
        assert props["storage.location.template"].endswith("/dt=${dt}/")


def test_projection_range_covers_the_3w_sample(threew_dir):
    with open(threew_dir / "files.csv", newline="") as f:
        starts = [row["start"] for row in csv.DictReader(f) if row.get("start")]
    assert starts and min(starts)[:10] >= lake_sql.PROJECTION_START


# ------------------------------------------------------------------ views


def _referenced_tables(tree: exp.Expression) -> set[str]:
    ctes = {c.alias_or_name for c in tree.find_all(exp.CTE)}
    return {t.name for t in tree.find_all(exp.Table) if t.name and t.name not in ctes}


def test_views_use_only_objects_defined_before_them():
    known = {lake_sql.statement(f, SETTINGS).split("(")[0].split()[-1].split(".")[-1] for f in lake_sql.table_files()}
    for f, text in rendered("view"):
        tree = sqlglot.parse_one(text, read="presto")
        used = _referenced_tables(tree.expression)
        assert used <= known, f"{f.path.name} uses {used - known} before they exist"
        known.add(f.name)


def _is_double(e: exp.Expression) -> bool:
    if isinstance(e, exp.Paren):
        return _is_double(e.this)
    if isinstance(e, exp.Cast):
        return e.to.this in (exp.DataType.Type.DOUBLE, exp.DataType.Type.FLOAT)
    return isinstance(e, exp.Literal) and not e.is_string and "." in e.this


def test_no_integer_division_in_views():
    """Athena divides integers as integers (7 / 2 = 3), DuckDB does not: every ratio casts first."""
    for f, text in rendered("view"):
        for div in sqlglot.parse_one(text, read="presto").find_all(exp.Div):
            assert _is_double(div.this) or _is_double(div.expression), f"{f.path.name}: {div.sql('presto')}"


def test_views_translate_to_duckdb():
    from petrostream.query.dialect import to_duckdb

    for f, text in rendered("view"):
        out = to_duckdb(text, database=SETTINGS.glue_database)
        assert out.upper().startswith("CREATE OR REPLACE VIEW"), f.path.name
