"""Overview: the pipeline at a glance."""

import streamlit as st

from dashboard import figures, queries, sources, ui

st.title("Overview")
ui.lake_caption()

with ui.guard("The champion model"):
    champ = ui.champion(ui.lake())
    if champ.version:
        when = (f"promoted {ui.fmt_ts(champ.promoted_at)} UTC" if champ.promoted_at is not None
                else "promotion time unknown")
        st.success(f"Champion model: **version {champ.version}** ({when}; from {champ.source}).",
                   icon=":material/workspace_premium:")
    else:
        st.info(champ.note or "No champion model yet: train and promote one (`make train`, `make promote`).",
                icon=":material/info:")

if not ui.require_lake():
    st.stop()


@st.fragment(run_every=ui.live_resolution())
def kpis() -> None:
    with ui.guard("The lake summary"):
        ov = ui.overview(ui.lake(), ui.now())
        svc = ui.service_metrics(sources.inference_url())
        c = st.columns(5)
        c[0].metric("Anomaly episodes", f"{ov.anomaly_episodes:,}",
                    help="Closed anomaly episodes in the lake (anomaly_events).")
        c[1].metric("Active wells", f"{ov.wells_active:,}",
                    help=f"Wells with a row scored in the last {int(queries.ACTIVE_WITHIN.total_seconds() // 60)} "
                         f"minutes (wall clock), out of {ov.wells_total:,} wells in the lake.")
        c[2].metric("Rows per minute", f"{ov.rows_per_minute:,.0f}",
                    help=f"Rows scored in the last {int(queries.RATE_WINDOW.total_seconds() // 60)} minutes, "
                         "per minute.")
        if svc.reachable and svc.lag_ms is not None:
            c[3].metric("Consumer lag", f"{svc.lag_ms / 1000:,.1f} s",
                        help=f"Max MillisBehindLatest over {svc.shards} shard(s), from {svc.url}/metrics.")
            lag_note = f"consumer lag from the inference service ({svc.url}/metrics)"
        elif ov.lag_s is not None:
            c[3].metric("Consumer lag", f"{ov.lag_s:,.1f} s",
                        help="Mean scored_at - sent_at over the last 5 minutes of scoring (from the lake).")
            lag_note = (f"consumer lag estimated from the lake (scored_at - sent_at); the inference service's "
                        f"/metrics at {svc.url} is not reachable")
        else:
            c[3].metric("Consumer lag", "-")
            lag_note = "no lag information"
        c[4].metric("Rows in the lake", f"{ov.rows_total:,}", help=f"{ov.anomalous_rows:,} flagged anomalous.")
        st.caption(
            f"Wells in the lake: {ov.wells_total:,}. Last row scored {ui.fmt_ago(ov.idle_for)} "
            f"({ui.fmt_ts(ov.last_scored_at)} UTC). Data time span {ui.fmt_ts(ov.first_ts)} .. "
            f"{ui.fmt_ts(ov.last_ts)} (3W replays keep their historical timestamps). {lag_note.capitalize()}."
        )
        if ov.rows_per_minute == 0:
            st.info("Nothing was scored in the last few minutes: the producer or the inference service is not "
                    "running (start them with `make demo`, or `petrostream serve` + `petrostream produce`).",
                    icon=":material/pause_circle:")
    with ui.guard("Anomalies by class"):
        st.plotly_chart(figures.anomalies_by_class(ui.anomalies_by_class(ui.lake(), ui.now())), width="stretch")


kpis()
