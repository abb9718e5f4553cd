"""SQL text helpers shared by the backends: Athena (Presto/Trino) -> DuckDB translation, the SELECT
behind ``Backend.view``, one-line error messages and result dtype normalisation.

Everything the project writes is Athena SQL. DuckDB gets it through sqlglot with ``read="presto"``
(``read="athena"``/``"trino"`` turn ``TIMESTAMP '...'`` into ``TIMESTAMP(0)``, which DuckDB will not
compare with other timestamps).
"""

from __future__ import annotations

import re

import pandas as pd

from petrostream.errors import UserError
from petrostream.lake import PARTITION_KEYS

READ_DIALECT = "presto"
WRITE_DIALECT = "duckdb"
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")
_CATALOGS = {"awsdatacatalog"}


class QueryError(UserError):
    """A query that cannot run: syntax error, missing table/column, timeout, scan limit... (one line)."""


def one_line(message: object, limit: int = 400) -> str:
    """First meaningful line of an engine message, whitespace collapsed, bounded length."""
    text = str(message).strip()
    first = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    first = re.sub(r"\s+", " ", first)
    return first if len(first) <= limit else first[: limit - 3] + "..."


def check_identifier(name: str) -> str:
    """A table/view name (optionally ``database.name``); anything else is refused, never interpolated."""
    if not isinstance(name, str) or not _IDENT.match(name):
        raise QueryError(f"not a table or view name: {name!r}")
    return name


def select_sql(
    name: str,
    where: str | None = None,
    limit: int | None = None,
    order_by: str | None = None,
    columns: list[str] | None = None,
) -> str:
    """``SELECT <columns> FROM <name> [WHERE ...] [ORDER BY ...] [LIMIT n]`` in Athena dialect.

    ``where`` and ``order_by`` are SQL fragments from trusted code (the dashboard), not user input.
    """
    check_identifier(name)
    cols = "*"
    if columns:
        cols = ", ".join(check_identifier(c) for c in columns)
    sql = f"SELECT {cols} FROM {name}"
    if where and where.strip():
        sql += f" WHERE {where}"
    if order_by and order_by.strip():
        sql += f" ORDER BY {order_by}"
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise QueryError(f"limit must be a non-negative integer, not {limit!r}")
        sql += f" LIMIT {limit}"
    return sql


def _parse_error_line(exc: Exception) -> str:
    errors = getattr(exc, "errors", None) or []
    if errors:
        e = errors[0]
        where = f"line {e.get('line')}, column {e.get('col')}" if e.get("line") else ""
        desc = one_line(e.get("description") or exc)
        near = (e.get("highlight") or "").strip()
        return f"syntax error{' at ' + where if where else ''}: {desc}" + (f" (near {near!r})" if near else "")
    return f"syntax error: {one_line(exc)}"


def to_duckdb(sql: str, database: str | None = None) -> str:
    """Translate ONE Athena/Presto statement to DuckDB. Qualifiers naming the Glue database (or the
    AwsDataCatalog catalog) are dropped, since DuckDB holds the lake tables unqualified."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import ParseError, TokenError

    try:
        trees = [t for t in sqlglot.parse(sql, read=READ_DIALECT) if t is not None]
    except (ParseError, TokenError) as exc:
        raise QueryError(_parse_error_line(exc)) from None
    if not trees:
        raise QueryError("empty query")
    if len(trees) > 1:
        raise QueryError(f"one statement at a time, got {len(trees)}")
    tree = trees[0]
    _path_partitions_to_columns(tree)
    db = (database or "").lower()
    for table in tree.find_all(exp.Table):
        if table.args.get("catalog") is not None and table.catalog.lower() in _CATALOGS:
            table.set("catalog", None)
        if db and table.args.get("db") is not None and table.db.lower() == db and not table.catalog:
            table.set("db", None)
    try:
        return tree.sql(dialect=WRITE_DIALECT)
    except Exception as exc:  # sqlglot unsupported constructs
        raise QueryError(f"cannot translate to DuckDB: {one_line(exc)}") from None


_PATH_PARTITION = re.compile(r"/(\w+)=\(\[\^/\]\+\)/")


def _path_partitions_to_columns(tree) -> None:
    """Athena's idiom for a partition value taken from the object path,
    ``regexp_extract("$path", '/dt=([^/]+)/', 1)``, becomes the partition column itself on DuckDB
    (where the lake tables carry dt as a column): same value, no per-row regex."""
    from sqlglot import exp

    for node in list(tree.find_all(exp.RegexpExtract)):
        col = node.this
        pattern = node.expression
        group = node.args.get("group")
        if not (isinstance(col, exp.Column) and col.name == "$path" and isinstance(pattern, exp.Literal)):
            continue
        m = _PATH_PARTITION.fullmatch(pattern.name)
        if m and m.group(1) in PARTITION_KEYS and (group is None or group.name == "1"):
            node.replace(exp.column(m.group(1), table=col.table or None))


def normalise(df: pd.DataFrame) -> pd.DataFrame:
    """Same dtypes whichever engine answered: integers Int64 (nullable), booleans ``boolean``,
    timestamps/dates ``datetime64[ms]`` (the lake's precision), floats float64, text as pandas strings."""
    df = df.copy(deep=False)
    for i in range(df.shape[1]):
        s = df.iloc[:, i]
        kind = s.dtype.kind
        if pd.api.types.is_bool_dtype(s.dtype):
            s = s.astype("boolean")
        elif pd.api.types.is_integer_dtype(s.dtype):
            s = s.astype("Int64")
        elif kind == "M" and getattr(s.dt, "tz", None) is None:
            s = s.astype("datetime64[ms]")
        else:
            continue
        df.isetitem(i, s)
    return df
