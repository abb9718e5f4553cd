"""Executive: monthly and yearly trends (the same views the Power BI report reads) and the report link."""

import streamlit as st

from dashboard import figures, ui
from petrostream.settings import get_settings

CHART_COLUMNS = ("n_rows", "anomaly_rows", "anomaly_rate", "episodes", "precision", "recall", "false_alarms_per_hour")

st.title("Executive")

url = get_settings().powerbi_report_url
if url:
    st.link_button("Open the Power BI report", url, icon=":material/open_in_new:")
else:
    st.info("No Power BI report is configured: set PETROSTREAM_POWERBI_REPORT_URL to the published report's URL "
            "and a button to it appears here. The report reads the same views as this page "
            "(v_exec_monthly, v_exec_yearly; `petrostream powerbi export` writes them for Power BI Desktop).",
            icon=":material/info:")

if not ui.require_lake():
    st.stop()

for view, period, label in (("v_exec_monthly", "month", "Monthly"), ("v_exec_yearly", "year", "Yearly")):
    st.header(f"{label} trend")
    with ui.guard(f"The {label.lower()} view"):
        df = ui.executive(ui.lake(), view)
        if df.empty:
            st.info("No data yet.")
            continue
        last = df.iloc[-1]
        c = st.columns(4)
        c[0].metric(f"Rows ({last[period]})", f"{int(last['n_rows']):,}",
                    delta=None if last.isna()["n_rows_change"] else f"{int(last['n_rows_change']):+,}")
        c[1].metric("Anomaly episodes", f"{int(last['episodes']):,}",
                    delta=None if last.isna()["episodes_change"] else f"{int(last['episodes_change']):+,}",
                    delta_color="inverse")
        c[2].metric("Anomaly rate", f"{last['anomaly_rate']:.2%}",
                    delta=None if last.isna()["anomaly_rate_change"] else f"{last['anomaly_rate_change']:+.2%}",
                    delta_color="inverse")
        c[3].metric("Recall", "-" if last.isna()["recall"] else f"{last['recall']:.2%}")
        cols = [period] + [c for c in CHART_COLUMNS if c in df]
        st.plotly_chart(figures.executive_bars(df[cols], period, f"{label} trend (all wells)"), width="stretch")
        st.dataframe(df, hide_index=True, width="stretch")
