"""DuckDB over the same lake Athena reads: the S3 buckets (emulator or AWS, via pyarrow's S3
filesystem, so no DuckDB httpfs extension is needed) or a local folder (``LakeStore.lake_dir``).

How the Athena SQL runs here:
- the external tables (``petrostream/sql/0x_*.sql``) become registrations: each lake table is a
  pyarrow dataset over its Parquet objects with the Hive partition ``dt`` read as a STRING
  (explicit partitioning schema, as in Athena), registered under the Glue table name. An empty or
  missing table is registered empty with its lake.py schema, so every view works on an empty lake.
  Quarantine JSON lines are read into a one-column table.
- the views (``1x_*``/``2x_*``) are the SAME files, rendered and translated by sqlglot (presto -> duckdb).

Freshness: the connection is kept; before a query the lake is re-listed when the last listing is
older than ``refresh_seconds`` and a table is re-registered only if its object list changed.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd
import pyarrow as pa

from petrostream import sql as lake_sql
from petrostream.lake import EVENTS, PARTITION_KEYS, QUARANTINE_PREFIX, RAW, SCORED, Table
from petrostream.query.base import Backend
from petrostream.query.dialect import QueryError, normalise, one_line, to_duckdb
from petrostream.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_REFRESH_SECONDS = 2.0
DEFAULT_TIMEOUT_SECONDS = 300.0
PARTITIONING_SCHEMA = pa.schema([(k, pa.string()) for k in PARTITION_KEYS])
QUARANTINE_SCHEMA = pa.schema([("line", pa.string()), ("dt", pa.string())])


@dataclass
class _Registered:
    fingerprint: tuple
    rows_hint: int  # objects registered


def s3_filesystem(settings: Settings):
    """pyarrow S3 filesystem for AWS_ENDPOINT_URL(_S3) (emulator: http, path-style) or real AWS."""
    from pyarrow import fs as pafs

    from petrostream.aws import endpoint_url

    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or endpoint_url()
    kwargs: dict = {"region": settings.region}
    if endpoint:
        u = urlparse(endpoint)
        kwargs["endpoint_override"] = u.netloc or u.path
        kwargs["scheme"] = u.scheme or "https"
    key, secret = os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY")
    if key and secret:
        kwargs.update(access_key=key, secret_key=secret, session_token=os.environ.get("AWS_SESSION_TOKEN"))
    return pafs.S3FileSystem(**kwargs)


class DuckDBBackend(Backend):
    name = "duckdb"

    def __init__(
        self,
        settings: Settings | None = None,
        lake_dir: Path | str | None = None,
        *,
        refresh_seconds: float = DEFAULT_REFRESH_SECONDS,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
    ):
        super().__init__(settings)
        s = self.settings
        self.lake_dir = Path(lake_dir) if lake_dir is not None else s.lake_dir
        self.refresh_seconds = refresh_seconds
        self.timeout = timeout
        self._con = None
        self._fs = None
        self._lock = threading.RLock()
        self._registered: dict[str, _Registered] = {}
        self._last_refresh = float("-inf")
        self._tables: dict[str, Table] = {s.raw_table: RAW, s.scored_table: SCORED, s.events_table: EVENTS}

    # ------------------------------------------------------------------ lake access

    @property
    def fs(self):
        if self._fs is None:
            if self.lake_dir is not None:
                from pyarrow import fs as pafs

                self._fs = pafs.LocalFileSystem()
            else:
                self._fs = s3_filesystem(self.settings)
        return self._fs

    def _base(self, bucket: str, prefix: str) -> str:
        if self.lake_dir is not None:
            return str(Path(self.lake_dir).resolve() / bucket / prefix)
        return f"{bucket}/{prefix}"

    def location(self, table: Table) -> str:
        """Where a table lives, for messages: a folder or an s3:// URI."""
        base = self._base(table.bucket(self.settings), table.prefix)
        return base if self.lake_dir is not None else f"s3://{base}"

    def _list(self, base: str, suffix: str) -> list:
        from pyarrow import fs as pafs

        try:
            infos = self.fs.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True))
        except (OSError, pa.ArrowException) as exc:
            raise QueryError(f"cannot list the lake at {base}: {one_line(exc)}") from None
        return sorted(
            (i for i in infos if i.type == pafs.FileType.File and i.path.endswith(suffix)), key=lambda i: i.path
        )

    @staticmethod
    def _fingerprint(infos: list) -> tuple:
        return tuple((i.path, i.size, i.mtime_ns) for i in infos)

    def _dataset(self, table: Table, infos: list):
        import pyarrow.dataset as ds

        schema = pa.schema([*table.schema, *[pa.field(k, pa.string()) for k in PARTITION_KEYS]])
        if not infos:
            return schema.empty_table()
        base = self._base(table.bucket(self.settings), table.prefix)
        return ds.dataset(
            [i.path for i in infos],
            schema=schema,
            format="parquet",
            filesystem=self.fs,
            partitioning=ds.partitioning(PARTITIONING_SCHEMA, flavor="hive"),
            partition_base_dir=base,
        )

    def _quarantine_table(self, infos: list) -> pa.Table:
        lines: list[str] = []
        dts: list[str | None] = []  # None when the path has no dt= partition
        for info in infos:
            dt = next((seg[3:] for seg in info.path.split("/") if seg.startswith("dt=")), None)
            with self.fs.open_input_stream(info.path) as f:
                text = f.read().decode("utf-8", errors="replace")
            for ln in text.splitlines():
                if ln.strip():
                    lines.append(ln)
                    dts.append(dt)
        columns = {"line": pa.array(lines, pa.string()), "dt": pa.array(dts, pa.string())}
        return pa.table(columns, schema=QUARANTINE_SCHEMA)

    # ------------------------------------------------------------------ connection

    @property
    def con(self):
        if self._con is None:
            import duckdb

            self._con = duckdb.connect(":memory:")
            self._con.execute("SET TimeZone = 'UTC'")
        return self._con

    def _register(self, force: bool = False) -> bool:
        """Re-list the lake and (re-)register changed tables. Returns True if anything changed."""
        changed = False
        for name, table in self._tables.items():
            infos = self._list(self._base(table.bucket(self.settings), table.prefix), ".parquet")
            fp = self._fingerprint(infos)
            if force or name not in self._registered or self._registered[name].fingerprint != fp:
                self.con.register(name, self._dataset(table, infos))
                self._registered[name] = _Registered(fp, len(infos))
                changed = True
        infos = self._list(self._base(self.settings.curated_bucket, QUARANTINE_PREFIX), ".jsonl")
        fp = self._fingerprint(infos)
        if force or "quarantine" not in self._registered or self._registered["quarantine"].fingerprint != fp:
            self.con.register("quarantine", self._quarantine_table(infos))
            self._registered["quarantine"] = _Registered(fp, len(infos))
            changed = True
        return changed

    def _create_views(self) -> None:
        s = self.settings
        for f in lake_sql.view_files():
            text = lake_sql.statement(f, s)
            try:
                self.con.execute(to_duckdb(text, database=s.glue_database))
            except QueryError as exc:
                raise QueryError(f"{f.path.name}: {exc}") from None
            except Exception as exc:  # a view that does not run on DuckDB is a bug in the SQL files
                raise QueryError(f"{f.path.name}: cannot create view on DuckDB: {one_line(exc)}") from None

    def refresh(self, force: bool = False) -> None:
        """Make the lake tables current (listing at most every ``refresh_seconds`` unless forced)."""
        with self._lock:
            now = time.monotonic()
            first = not self._registered
            if not force and not first and now - self._last_refresh < self.refresh_seconds:
                return
            changed = self._register(force=force)
            self._last_refresh = time.monotonic()
            if first:
                self._create_views()
            if changed:
                log.debug("lake registrations refreshed", extra={"tables": {k: v.rows_hint for k, v in
                                                                        self._registered.items()}})

    # ------------------------------------------------------------------ API

    def query(self, sql: str) -> pd.DataFrame:
        duck_sql = to_duckdb(sql, database=self.settings.glue_database)
        with self._lock:
            self.refresh()
            timer = threading.Timer(self.timeout, self.con.interrupt) if self.timeout else None
            if timer:
                timer.daemon = True
                timer.start()
            t0 = time.monotonic()
            try:
                try:
                    df = _fetch(self.con, duck_sql)
                except Exception as exc:
                    # an object replaced or removed since the last listing: re-list once and retry
                    if not _retryable(exc) or not self._register():
                        raise
                    self._last_refresh = time.monotonic()
                    df = _fetch(self.con, duck_sql)
            except Exception as exc:
                raise _map_error(exc, self.timeout) from None
            finally:
                if timer:
                    timer.cancel()
        log.debug("duckdb query", extra={"rows": len(df), "seconds": round(time.monotonic() - t0, 3)})
        return normalise(df)

    def tables(self) -> list[str]:
        with self._lock:
            self.refresh()
            rows = self.con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema IN ('main', 'temp')"
            ).fetchall()
        return sorted({r[0] for r in rows})

    def close(self) -> None:
        with self._lock:
            if self._con is not None:
                self._con.close()
                self._con = None
            self._registered.clear()


def _fetch(con, duck_sql: str) -> pd.DataFrame:
    """Run and fetch; DuckDB's 128-bit integers (count_if, sum of bigints) come back as Int64 like
    Athena's bigint instead of pandas floats."""
    rel = con.sql(duck_sql)
    if rel is None:  # a statement without a result (SET, CREATE VIEW...)
        return pd.DataFrame()
    types = [str(t) for t in rel.types]
    df = rel.df()
    for i, t in enumerate(types):
        if t in ("HUGEINT", "UHUGEINT"):
            df.isetitem(i, df.iloc[:, i].round().astype("Int64"))
    return df


def _retryable(exc: Exception) -> bool:
    import duckdb

    fatal = (duckdb.ParserException, duckdb.CatalogException, duckdb.BinderException, duckdb.InterruptException)
    return isinstance(exc, duckdb.Error) and not isinstance(exc, fatal)


def _map_error(exc: Exception, timeout: float | None) -> QueryError:
    import re

    import duckdb

    msg = one_line(exc)
    detail = re.sub(r"^[A-Za-z ]+ Error: ", "", msg)
    if isinstance(exc, duckdb.InterruptException):
        return QueryError(f"timeout: query interrupted after {timeout:g} s")
    if isinstance(exc, duckdb.ParserException):
        return QueryError(f"syntax error: {detail}")
    if isinstance(exc, duckdb.CatalogException):
        m = re.search(r"(?:Table|View) with name (\S+) does not exist", detail)
        if m:
            return QueryError(f"missing table: {m.group(1)} does not exist")
        if "Function with name" in detail:
            return QueryError(f"unknown function: {detail}")
        return QueryError(f"catalog error: {detail}")
    if isinstance(exc, duckdb.BinderException):
        m = re.search(r'column "?([^"\s]+)"? not found', detail)
        if m:
            return QueryError(f"missing column: {m.group(1)} ({detail})")
        return QueryError(f"invalid query: {detail}")
    if isinstance(exc, duckdb.Error):
        return QueryError(f"query failed: {detail}")
    if isinstance(exc, QueryError):
        return exc
    return QueryError(f"query failed: {msg}")
