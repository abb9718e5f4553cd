"""The thin Streamlit glue the pages share: the query backend, cached readers with TTLs that match how
fresh each source is, empty-state explanations and the error guard. Logic lives in ``queries``,
``figures`` and ``sources``; this module only caches and renders.

Every cached function takes ``lake`` (``sources.lake_key()``) as its first argument, so a process that
is pointed at another lake (tests, a changed environment) never gets the previous lake's numbers.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import pandas as pd
import streamlit as st

from dashboard import queries, sources

log = logging.getLogger(__name__)

# Freshness of each source (seconds): the stream moves every few seconds, models change on promotion,
# quality reports when validation runs, executive views are monthly/yearly aggregates.
TTL_LIVE = 10
ATHENA_LIVE_TTL = 60
TTL_HISTORY = 60
TTL_MODEL = 120
TTL_QUALITY = 300
TTL_EXEC = 900

EMPTY_HINT = ("Nothing to show yet. The dashboard reads the lake the inference service writes: run the pipeline "
              "(`make demo`), or point PETROSTREAM_LAKE_DIR / AWS_ENDPOINT_URL at a lake with data.")


# ------------------------------------------------------------------ backend


def lake() -> str:
    return sources.lake_key()


def backend():
    """The query layer's backend for the current settings (cached there; thread-safe; DuckDB re-lists the
    lake every couple of seconds)."""
    from petrostream.query import get_backend

    return get_backend()


def live_resolution() -> int:
    """Seconds between refreshes of the live numbers: 10 s on DuckDB (local, free), 60 s on Athena (every
    refresh is a billed scan of the fleet-wide views)."""
    from petrostream.query import backend_kind

    return ATHENA_LIVE_TTL if backend_kind() == "athena" else TTL_LIVE


def now(resolution_s: int | None = None) -> pd.Timestamp:
    """Wall-clock now (naive UTC) floored to the live resolution: part of the cache key of every live reader,
    so cached calls within one resolution step share an entry and the next step queries again."""
    return queries.utc_now().floor(f"{resolution_s or live_resolution()}s")


# ------------------------------------------------------------------ cached readers


@st.cache_data(ttl=TTL_LIVE, show_spinner=False)
def lake_state(lake: str) -> sources.LakeState:
    return sources.lake_state()


@st.cache_data(ttl=ATHENA_LIVE_TTL, show_spinner=False)
def overview(lake: str, at: pd.Timestamp) -> queries.Overview:
    return queries.overview(backend(), at)


@st.cache_data(ttl=TTL_LIVE, show_spinner=False)
def service_metrics(url: str) -> sources.ServiceMetrics:
    return sources.service_metrics(url)


@st.cache_data(ttl=ATHENA_LIVE_TTL, show_spinner=False)
def anomalies_by_class(lake: str, at: pd.Timestamp) -> pd.DataFrame:
    return queries.anomalies_by_class(backend())


@st.cache_data(ttl=ATHENA_LIVE_TTL, show_spinner=False)
def anomaly_facets(lake: str, at: pd.Timestamp) -> pd.DataFrame:
    return queries.anomaly_facets(backend())


@st.cache_data(ttl=ATHENA_LIVE_TTL, show_spinner=False)
def anomalies(lake: str, at: pd.Timestamp, wells: tuple[str, ...], classes: tuple[int, ...], start, end
              ) -> pd.DataFrame:
    return queries.anomalies(backend(), list(wells), list(classes), start, end)


@st.cache_data(ttl=ATHENA_LIVE_TTL, show_spinner=False)
def well_status(lake: str, at: pd.Timestamp) -> pd.DataFrame:
    return queries.well_status(backend(), at)


@st.cache_data(ttl=TTL_HISTORY, show_spinner=False)
def available_variables(lake: str, well: str, start, end) -> list[str]:
    return queries.available_variables(backend(), well, start, end)


@st.cache_data(ttl=TTL_HISTORY, show_spinner=False)
def well_history(lake: str, well: str, start, end, columns: tuple[str, ...]) -> tuple[pd.DataFrame, int]:
    return queries.well_history(backend(), well, start, end, list(columns))


@st.cache_data(ttl=TTL_HISTORY, show_spinner=False)
def well_episodes(lake: str, well: str, start, end) -> pd.DataFrame:
    return queries.well_episodes(backend(), well, start, end)


@st.cache_data(ttl=TTL_HISTORY, show_spinner=False)
def live_performance(lake: str) -> pd.DataFrame:
    return queries.live_performance(backend())


@st.cache_data(ttl=TTL_MODEL, show_spinner=False)
def registry(lake: str) -> sources.Registry:
    return sources.mlflow_registry()


@st.cache_data(ttl=TTL_MODEL, show_spinner=False)
def champion(lake: str) -> sources.Champion:
    return sources.champion()


@st.cache_data(ttl=TTL_MODEL, show_spinner=False)
def promotion_history(lake: str) -> pd.DataFrame:
    return sources.promotion_history()


@st.cache_data(ttl=TTL_MODEL, show_spinner=False)
def run_details(lake: str, run_id: str) -> sources.RunDetails:
    return sources.run_details(run_id)


@st.cache_data(ttl=TTL_HISTORY, show_spinner=False)
def drift(lake: str) -> queries.Drift | None:
    ref, label = sources.training_reference()
    return queries.drift(backend(), ref, label)


@st.cache_data(ttl=TTL_QUALITY, show_spinner=False)
def validation(lake: str) -> sources.Validation:
    return sources.validation_report()


@st.cache_data(ttl=TTL_QUALITY, show_spinner=False)
def quarantine(lake: str) -> pd.DataFrame:
    return sources.quarantine_records()


@st.cache_data(ttl=TTL_EXEC, show_spinner=False)
def executive(lake: str, view: str) -> pd.DataFrame:
    return queries.executive(backend(), view)


# ------------------------------------------------------------------ rendering helpers


def require_lake() -> bool:
    """Explain (and return False) when the lake has no scored rows yet; the page then stops."""
    state = lake_state(lake())
    if not state.ok:
        st.info(state.problem or EMPTY_HINT, icon=":material/info:")
        return False
    return True


def _is_control_flow(exc: BaseException) -> bool:
    # st.rerun / st.stop / st.switch_page raise exceptions that must reach Streamlit
    return type(exc).__name__ in {"RerunException", "StopException", "ScriptControlException"}


@contextlib.contextmanager
def guard(what: str) -> Iterator[None]:
    """Turn an unexpected failure of one section into a one-line explanation instead of a stack trace."""
    try:
        yield
    except Exception as exc:
        if _is_control_flow(exc):
            raise
        log.warning("dashboard section failed", extra={"section": what, "error": f"{type(exc).__name__}: {exc}"})
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
        st.warning(f"{what} is not available right now ({type(exc).__name__}{': ' + first if first else ''}).",
                   icon=":material/warning:")


def fmt_ts(ts: object) -> str:
    if ts is None or pd.isna(ts):
        return "-"
    return pd.Timestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def fmt_ago(delta: pd.Timedelta | None) -> str:
    if delta is None or pd.isna(delta):
        return "never"
    s = max(delta.total_seconds(), 0)
    if s < 90:
        return f"{s:.0f} s ago"
    if s < 5400:
        return f"{s / 60:.0f} min ago"
    if s < 172800:
        return f"{s / 3600:.1f} h ago"
    return f"{s / 86400:.1f} days ago"


def lake_caption() -> None:
    state = lake_state(lake())
    st.caption(f"Lake: {state.where}")
