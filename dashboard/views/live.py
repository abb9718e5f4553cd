"""Live anomalies: the newest anomaly episodes, refreshed in place (a fragment, not the whole page)."""

import pandas as pd
import streamlit as st

from dashboard import figures, queries, ui

RANGES = {
    "Last hour": pd.Timedelta(hours=1),
    "Last 6 hours": pd.Timedelta(hours=6),
    "Last 24 hours": pd.Timedelta(days=1),
    "Last 7 days": pd.Timedelta(days=7),
    "All": None,
}

st.title("Live anomalies")
ui.lake_caption()
if not ui.require_lake():
    st.stop()


@st.fragment(run_every=ui.live_resolution())
def live() -> None:
    with ui.guard("The anomaly feed"):
        at = ui.now()
        facets = ui.anomaly_facets(ui.lake(), at)
        if facets.empty:
            st.info("No anomaly episodes yet: the detector has not closed any episode in the lake. Episodes appear "
                    "here within seconds of being written.", icon=":material/info:")
            return
        newest = pd.Timestamp(facets["last_start"].max())
        c = st.columns([2, 2, 1])
        wells = c[0].multiselect("Well", sorted(facets["well"].unique()), key="live_wells",
                                 placeholder="all wells")
        classes = c[1].multiselect("3W class", sorted(int(x) for x in facets["event_class"].dropna().unique()),
                                   format_func=figures.class_name, key="live_classes", placeholder="all classes")
        span = c[2].selectbox("Time range", list(RANGES), index=2, key="live_range",
                              help="Counted back from the newest episode: replayed 3W data keeps its historical "
                                   "timestamps.")
        start = newest - RANGES[span] if RANGES[span] is not None else None
        episodes = ui.anomalies(ui.lake(), at, tuple(wells), tuple(classes), start, None)
        m = st.columns(4)
        m[0].metric("Episodes shown", f"{len(episodes):,}")
        m[1].metric("Wells", f"{episodes['well'].nunique() if len(episodes) else 0:,}")
        m[2].metric("Anomalous rows", f"{int(episodes['n_rows'].sum()) if len(episodes) else 0:,}")
        m[3].metric("3W classes", f"{episodes['event_class'].nunique() if len(episodes) else 0:,}")
        if episodes.empty:
            st.info("No episode matches these filters.", icon=":material/filter_alt_off:")
            return
        table = queries.with_history_links(episodes)
        table["3W class"] = table["event_class"].map(figures.class_name)
        st.dataframe(
            table[["history", "well", "start_ts", "end_ts", "duration_s", "n_rows", "peak_score", "3W class",
                   "label", "model_version", "episode_id"]],
            hide_index=True, width="stretch",
            column_config={
                "history": st.column_config.LinkColumn("Well history", display_text="open history"),
                "start_ts": st.column_config.DatetimeColumn("Start", format="YYYY-MM-DD HH:mm:ss"),
                "end_ts": st.column_config.DatetimeColumn("End", format="YYYY-MM-DD HH:mm:ss"),
                "duration_s": st.column_config.NumberColumn("Duration (s)", format="%.0f"),
                "n_rows": "Rows",
                "peak_score": st.column_config.NumberColumn("Peak score", format="%.3f"),
                "label": "3W label",
                "model_version": "Model",
            },
        )
        st.caption(f"Newest episode in the lake starts {ui.fmt_ts(newest)} (data time). Refreshes every "
                   f"{ui.live_resolution()} s; up to 500 newest episodes. 'open history' opens the well around "
                   "the episode.")
        st.plotly_chart(figures.episodes_timeline(episodes), width="stretch")


live()
