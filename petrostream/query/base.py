"""The one query interface the dashboard, the CLI and the Power BI export use."""

from __future__ import annotations

from abc import ABC, abstractmethod

import pandas as pd

from petrostream.query.dialect import QueryError, select_sql
from petrostream.settings import Settings, get_settings


class Backend(ABC):
    """Runs Athena-dialect SQL against the lake and answers pandas DataFrames.

    Result dtypes are the same on every backend: integers ``Int64``, booleans ``boolean``,
    timestamps/dates ``datetime64[ms]``, floats ``float64``, text as strings. Errors are
    :class:`QueryError` with a one-line message.
    """

    name: str = "?"

    def __init__(self, settings: Settings | None = None):
        self.settings = settings or get_settings()

    @abstractmethod
    def query(self, sql: str) -> pd.DataFrame:
        """Run one Athena (Trino/Presto) SQL statement; the same text runs on every backend."""

    def view(
        self,
        name: str,
        where: str | None = None,
        limit: int | None = None,
        *,
        order_by: str | None = None,
        columns: list[str] | None = None,
    ) -> pd.DataFrame:
        """``SELECT * FROM <name> [WHERE where] [ORDER BY order_by] [LIMIT limit]``.

        ``name`` must be a plain identifier (checked); ``where``/``order_by`` are Athena SQL fragments
        written by the calling code (never pass end-user text).
        """
        return self.query(select_sql(name, where=where, limit=limit, order_by=order_by, columns=columns))

    @abstractmethod
    def tables(self) -> list[str]:
        """Sorted names of every queryable table and view."""

    def views(self) -> list[str]:
        """The project's views (petrostream/sql), in dependency order."""
        from petrostream import sql

        return sql.view_names()

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections (optional)."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


__all__ = ["Backend", "QueryError"]
