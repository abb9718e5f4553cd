"""Query layer: one API over the lake, answered by Athena (AWS) or DuckDB (emulator / local folder).

    from petrostream.query import get_backend, QueryError
    qb = get_backend()                       # chosen from settings + AWS_ENDPOINT_URL, cached
    qb.view("v_well_status")                 # SELECT * FROM v_well_status
    qb.view("v_anomalies", where="well = 'WELL-00001'", limit=100, order_by="ts DESC")
    qb.query("SELECT well_id, AVG(pressure) FROM well_data GROUP BY well_id")
    qb.tables()                              # tables and views

SQL is Athena (Trino/Presto) dialect everywhere; DuckDB gets it translated by sqlglot.
Choice (``PETROSTREAM_QUERY_BACKEND=auto``): DuckDB when ``PETROSTREAM_LAKE_DIR`` is set or
``AWS_ENDPOINT_URL`` is a loopback emulator (moto's Athena runs no SQL), Athena otherwise.
Heavy imports (duckdb, boto3, sqlglot) happen on first use, not at import.
"""

from __future__ import annotations

import threading

from petrostream.query.base import Backend
from petrostream.query.dialect import QueryError
from petrostream.settings import Settings, get_settings

_cache: dict[tuple, Backend] = {}
_lock = threading.Lock()


def backend_kind(settings: Settings | None = None) -> str:
    """``"athena"`` or ``"duckdb"`` for these settings and the current AWS_ENDPOINT_URL."""
    from petrostream.aws import endpoint_url, is_loopback

    s = settings or get_settings()
    if s.query_backend != "auto":
        return s.query_backend
    if s.lake_dir is not None or is_loopback(endpoint_url()):
        return "duckdb"
    return "athena"


def _key(kind: str, s: Settings) -> tuple:
    from petrostream.aws import endpoint_url

    return (
        kind,
        str(s.lake_dir) if s.lake_dir is not None else None,
        endpoint_url(),
        s.region,
        s.raw_bucket,
        s.curated_bucket,
        s.glue_database,
        s.raw_table,
        s.scored_table,
        s.events_table,
        s.athena_workgroup,
        s.athena_results_bucket,
    )


def get_backend(settings: Settings | None = None, *, fresh: bool = False) -> Backend:
    """The query backend for these settings. Cached per configuration (a DuckDB backend keeps its
    connection and re-scans the lake at most every couple of seconds), so call it freely."""
    s = settings or get_settings()
    kind = backend_kind(s)
    key = _key(kind, s)
    with _lock:
        if not fresh and key in _cache:
            return _cache[key]
        if kind == "duckdb":
            from petrostream.query.duckdb_backend import DuckDBBackend

            backend: Backend = DuckDBBackend(s)
        else:
            from petrostream.query.athena_backend import AthenaBackend

            backend = AthenaBackend(s)
        old = _cache.pop(key, None)
        if old is not None:
            old.close()
        _cache[key] = backend
        return backend


def reset() -> None:
    """Close and forget cached backends (tests, or after the environment changed)."""
    with _lock:
        for b in _cache.values():
            b.close()
        _cache.clear()


__all__ = ["Backend", "QueryError", "backend_kind", "get_backend", "reset"]
