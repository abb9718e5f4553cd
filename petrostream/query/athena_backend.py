"""Athena: the lake's SQL engine on AWS.

``start_query_execution`` in the project workgroup (which enforces the results location and the
bytes-scanned cutoff), polling ``get_query_execution`` with exponential backoff, paginated
``get_query_results`` converted to typed pandas columns from ``ResultSetMetadata``, a timeout that
stops the query, and one-line errors mapped from ``StateChangeReason``/``AthenaError``.
SELECTs ask for result reuse (``ResultReuseConfiguration``, max age ``reuse_minutes``): the
dashboard re-runs the same view queries every few seconds, and a reused result scans (and costs)
nothing. ``deploy_sql`` creates the tables and views from ``petrostream/sql``.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable

import numpy as np
import pandas as pd

from petrostream import sql as lake_sql
from petrostream.query.base import Backend
from petrostream.query.dialect import QueryError, one_line
from petrostream.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_SECONDS = 300.0
DEFAULT_REUSE_MINUTES = 1
PAGE_SIZE = 1000  # get_query_results maximum
_READ_ONLY = re.compile(r"^\s*(\(|SELECT\b|WITH\b|VALUES\b|TABLE\b)", re.IGNORECASE)
_TERMINAL = {"SUCCEEDED", "FAILED", "CANCELLED"}


def is_read_only(sql: str) -> bool:
    return bool(_READ_ONLY.match(lake_sql.strip_comments(sql)))


def classify_failure(state: str, reason: str, cutoff_bytes: int | None = None) -> str:
    """One line ``<kind>: <engine message>`` for a FAILED/CANCELLED execution."""
    text = one_line(reason) if reason else f"query {state.lower()} without a reason"
    low = text.lower()
    if "bytes scanned" in low or "data scanned" in low or "scan limit" in low or "bytesscannedcutoff" in low:
        limit = f" (workgroup cutoff {cutoff_bytes / 1024**3:g} GiB)" if cutoff_bytes else ""
        return f"scan limit exceeded{limit}: {text}"
    if "table_not_found" in low or re.search(r"\b(table|schema|view)\b.*\bdoes not exist", low):
        return f"missing table: {text}"
    if "column_not_found" in low or re.search(r"column .* cannot be resolved", low):
        return f"missing column: {text}"
    if "syntax_error" in low or "mismatched input" in low or "extraneous input" in low or "cannot parse" in low:
        return f"syntax error: {text}"
    if "function_not_found" in low or re.search(r"function .* not registered", low):
        return f"unknown function: {text}"
    if "timeout" in low or "timed out" in low:
        return f"timeout: {text}"
    if "exhausted resources" in low:
        return f"resources exhausted: {text}"
    if state == "CANCELLED":
        return f"cancelled: {text}"
    return f"query failed: {text}"


# ---------------------------------------------------------------- typed results

_INT_TYPES = {"tinyint", "smallint", "integer", "int", "bigint"}
_FLOAT_TYPES = {"double", "float", "real", "decimal"}


def _base_type(athena_type: str) -> str:
    return re.sub(r"\(.*$", "", (athena_type or "varchar").strip().lower())


def convert_column(values: list[str | None], athena_type: str) -> pd.Series:
    """Athena returns every value as text (``None`` for NULL); convert by the column's SQL type."""
    t = _base_type(athena_type)
    if t in _INT_TYPES:
        return pd.Series(pd.array([None if v is None else int(v) for v in values], dtype="Int64"))
    if t in _FLOAT_TYPES:
        return pd.Series(np.array([np.nan if v is None else float(v) for v in values], dtype="float64"))
    if t == "boolean":
        return pd.Series(pd.array([None if v is None else v.lower() == "true" for v in values], dtype="boolean"))
    if t == "date":
        return pd.Series(pd.to_datetime(pd.Series(values, dtype="object"), format="%Y-%m-%d")).astype(
            "datetime64[ms]"
        )
    if t == "timestamp" and "zone" not in athena_type.lower():
        return pd.Series(pd.to_datetime(pd.Series(values, dtype="object"), format="ISO8601")).astype(
            "datetime64[ms]"
        )
    if t == "timestamp":  # with time zone: '2024-01-01 00:00:00.000 UTC'
        cleaned = [None if v is None else re.sub(r"\s+UTC$", "+00:00", v) for v in values]
        try:
            return pd.Series(pd.to_datetime(pd.Series(cleaned, dtype="object"), format="ISO8601", utc=True))
        except (ValueError, TypeError):
            pass
    return pd.Series(pd.array(values, dtype="str")) if values else pd.Series([], dtype="str")


def to_frame(column_info: list[dict], rows: list[list[str | None]]) -> pd.DataFrame:
    if not column_info:
        return pd.DataFrame()
    names = [c.get("Label") or c.get("Name") or f"_col{i}" for i, c in enumerate(column_info)]
    cols = {}
    for i, info in enumerate(column_info):
        cols[i] = convert_column([r[i] if i < len(r) else None for r in rows], info.get("Type", "varchar"))
    df = pd.DataFrame(cols)
    df.columns = names
    return df


class AthenaBackend(Backend):
    name = "athena"

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        client=None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        poll_initial: float = 0.2,
        poll_max: float = 5.0,
        reuse_minutes: int = DEFAULT_REUSE_MINUTES,
        page_size: int = PAGE_SIZE,
        retries: int = 1,
        sleep: Callable[[float], None] = time.sleep,
    ):
        super().__init__(settings)
        self._client = client
        self.timeout = timeout
        self.poll_initial = poll_initial
        self.poll_max = poll_max
        self.reuse_minutes = reuse_minutes
        self.page_size = page_size
        self.retries = retries
        self._sleep = sleep

    @property
    def client(self):
        if self._client is None:
            from petrostream.aws import client

            self._client = client("athena", self.settings)
        return self._client

    # ------------------------------------------------------------------ execution

    def start(self, sql: str, reuse: bool | None = None) -> str:
        """Submit one statement; returns the query execution id."""
        s = self.settings
        kwargs: dict = {
            "QueryString": sql,
            "QueryExecutionContext": {"Database": s.glue_database, "Catalog": "AwsDataCatalog"},
            "WorkGroup": s.athena_workgroup,
            "ResultConfiguration": {"OutputLocation": f"s3://{s.athena_results_bucket}/results/"},
        }
        if reuse is None:
            reuse = is_read_only(sql)
        if reuse and self.reuse_minutes > 0:
            kwargs["ResultReuseConfiguration"] = {
                "ResultReuseByAgeConfiguration": {"Enabled": True, "MaxAgeInMinutes": int(self.reuse_minutes)}
            }
        try:
            return self.client.start_query_execution(**kwargs)["QueryExecutionId"]
        except Exception as exc:
            if "ResultReuseConfiguration" in kwargs and "reuse" in _client_error(exc).lower():
                # engine version 2 workgroups do not support result reuse: run without it from now on
                log.warning("athena result reuse unavailable; disabled", extra={"error": _client_error(exc)})
                self.reuse_minutes = 0
                return self.start(sql, reuse=False)
            raise QueryError(f"athena refused the query: {_client_error(exc)}") from None

    def wait(self, query_id: str) -> dict:
        """Poll until SUCCEEDED (returns the QueryExecution) or raise QueryError; stops it on timeout."""
        deadline = time.monotonic() + self.timeout
        delay = self.poll_initial
        while True:
            try:
                qe = self.client.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]
            except Exception as exc:
                raise QueryError(f"athena query {query_id}: {_client_error(exc)}") from None
            state = qe["Status"]["State"]
            if state == "SUCCEEDED":
                return qe
            if state in _TERMINAL:
                raise _FailedQuery(qe, self.settings.athena_bytes_scanned_cutoff)
            if time.monotonic() + delay > deadline:
                self.stop(query_id)
                raise QueryError(f"timeout: athena query {query_id} still {state} after {self.timeout:g} s (stopped)")
            self._sleep(delay)
            delay = min(delay * 2, self.poll_max)

    def stop(self, query_id: str) -> None:
        try:
            self.client.stop_query_execution(QueryExecutionId=query_id)
        except Exception as exc:  # best effort: the timeout error is what the caller needs
            log.warning("could not stop athena query", extra={"query_id": query_id, "error": one_line(exc)})

    def execute(self, sql: str, reuse: bool | None = None) -> dict:
        """Run to completion (retrying once when Athena says the failure is retryable)."""
        attempt = 0
        while True:
            qid = self.start(sql, reuse)
            try:
                qe = self.wait(qid)
            except _FailedQuery as failed:
                if failed.retryable and attempt < self.retries:
                    attempt += 1
                    log.info("retrying athena query", extra={"query_id": qid, "attempt": attempt})
                    continue
                raise QueryError(failed.message) from None
            stats = qe.get("Statistics", {})
            log.debug(
                "athena query done",
                extra={
                    "query_id": qid,
                    "scanned_bytes": stats.get("DataScannedInBytes"),
                    "reused": stats.get("ResultReuseInformation", {}).get("ReusedPreviousResult"),
                    "ms": stats.get("TotalExecutionTimeInMillis"),
                },
            )
            return qe

    def results(self, query_id: str, statement_type: str = "DML") -> pd.DataFrame:
        """Every page of get_query_results as one typed DataFrame."""
        column_info: list[dict] | None = None
        rows: list[list[str | None]] = []
        token = None
        first = True
        while True:
            kwargs = {"QueryExecutionId": query_id, "MaxResults": self.page_size}
            if token:
                kwargs["NextToken"] = token
            try:
                resp = self.client.get_query_results(**kwargs)
            except Exception as exc:
                raise QueryError(f"athena query {query_id}: cannot read results: {_client_error(exc)}") from None
            rs = resp.get("ResultSet", {})
            if column_info is None:
                column_info = rs.get("ResultSetMetadata", {}).get("ColumnInfo", [])
            page = [[d.get("VarCharValue") for d in r.get("Data", [])] for r in rs.get("Rows", [])]
            if first and statement_type == "DML" and page and column_info:
                names = [c.get("Label") or c.get("Name") for c in column_info]
                if page[0] == names:  # Athena's header row (first page of a SELECT only)
                    page = page[1:]
            first = False
            rows.extend(page)
            token = resp.get("NextToken")
            if not token:
                break
        return to_frame(column_info or [], rows)

    def query(self, sql: str) -> pd.DataFrame:
        qe = self.execute(sql)
        return self.results(qe["QueryExecutionId"], qe.get("StatementType", "DML"))

    def tables(self) -> list[str]:
        from petrostream.aws import client

        glue = client("glue", self.settings)
        names: list[str] = []
        try:
            for page in glue.get_paginator("get_tables").paginate(DatabaseName=self.settings.glue_database):
                names.extend(t["Name"] for t in page.get("TableList", []))
        except Exception as exc:
            raise QueryError(f"cannot list tables of {self.settings.glue_database}: {_client_error(exc)}") from None
        return sorted(names)

    def deploy_sql(self, kinds: tuple[str, ...] = ("table", "view")) -> list[str]:
        """Create the external tables (IF NOT EXISTS) and create-or-replace the views, in file order."""
        done = []
        for f in lake_sql.files():
            if f.kind not in kinds:
                continue
            self.execute(lake_sql.statement(f, self.settings), reuse=False)
            log.info("deployed", extra={"object": f.name, "kind": f.kind})
            done.append(f.name)
        return done


def deploy_sql(settings: Settings | None = None, **kwargs) -> list[str]:
    """Run the DDL and the views on Athena (``make up``)."""
    return AthenaBackend(settings, **kwargs).deploy_sql()


class _FailedQuery(QueryError):
    def __init__(self, qe: dict, cutoff: int | None):
        status = qe.get("Status", {})
        err = status.get("AthenaError", {}) or {}
        reason = status.get("StateChangeReason") or err.get("ErrorMessage") or ""
        self.retryable = bool(err.get("Retryable"))
        qid = qe.get("QueryExecutionId", "?")
        self.message = f"{classify_failure(status.get('State', 'FAILED'), reason, cutoff)} [athena query {qid}]"
        super().__init__(self.message)


def _client_error(exc: Exception) -> str:
    resp = getattr(exc, "response", None)
    if isinstance(resp, dict) and "Error" in resp:
        e = resp["Error"]
        return one_line(f"{e.get('Code', '')}: {e.get('Message', '')}".strip(": "))
    return one_line(exc)
