"""Well status map: every well as a tile coloured normal / alarm / stale (offline: a Plotly grid)."""

import streamlit as st

from dashboard import figures, ui
from petrostream.sql import STALE_MINUTES

st.title("Well status map")
ui.lake_caption()
if not ui.require_lake():
    st.stop()


@st.fragment(run_every=ui.live_resolution())
def status_map() -> None:
    with ui.guard("The well status"):
        status = ui.well_status(ui.lake(), ui.now())
        if status.empty:
            st.info(ui.EMPTY_HINT, icon=":material/info:")
            return
        counts = status["status"].value_counts()
        c = st.columns(4)
        c[0].metric("Wells", f"{len(status):,}")
        c[1].metric("Alarm", f"{int(counts.get('alarm', 0)):,}")
        c[2].metric("Normal", f"{int(counts.get('normal', 0)):,}")
        c[3].metric("Stale", f"{int(counts.get('stale', 0)):,}")
        lake_now = status["lake_now"].max() if "lake_now" in status else None
        st.caption(
            f"alarm: the well's latest reading is anomalous; stale: its latest reading is more than {STALE_MINUTES} "
            "minutes older "
            f"than the newest reading in the lake ({ui.fmt_ts(lake_now)}; replayed 3W data keeps its historical "
            "timestamps); normal: otherwise. 'Last scored' is wall-clock time since the well's last row was scored."
        )
        st.plotly_chart(figures.status_grid(status), width="stretch")
        alarm = status.loc[status["status"] == "alarm", "well"].tolist()
        if alarm:
            st.markdown("**Wells in alarm**: open their history")
            slots = st.columns(min(len(alarm), 6))
            for i, well in enumerate(alarm[:24]):
                slots[i % len(slots)].page_link("views/well_history.py", label=well, icon=":material/show_chart:",
                                              query_params={"well": well})
        table = status.assign(last_scored=status["last_scored_at"].map(lambda t: ui.fmt_ago(ui.now() - t)))
        cols = [c for c in ("well", "status", "last_ts", "last_score", "last_threshold", "alarms_last_hour",
                            "rows_last_hour", "total_rows", "model_version", "last_scored") if c in table]
        st.dataframe(table[cols], hide_index=True, width="stretch")


status_map()
