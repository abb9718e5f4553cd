"""Data quality: the latest Great Expectations results and the records the service quarantined."""

from pathlib import Path

import streamlit as st

from dashboard import figures, sources, ui

st.title("Data quality")

st.header("Great Expectations validation")
with ui.guard("The validation results"):
    v = ui.validation(ui.lake())
    if not v.available:
        st.info(v.note, icon=":material/info:")
    else:
        for _, s in v.suites.iterrows():
            verdict = "passed" if s["success"] else "FAILED"
            text = (f"Suite **{s['suite']}** {verdict}: {s['pass']:,} of {s['files']:,} files pass, "
                    f"{s['fail']:,} fail, {s['error']:,} unreadable ({ui.fmt_ts(s['finished_at'])} UTC, "
                    f"{s['directory']}).")
            (st.success if s["success"] else st.error)(text)
        c = st.columns(4)
        c[0].metric("Files validated", f"{int(v.suites['files'].sum()):,}")
        c[1].metric("Passed", f"{int(v.suites['pass'].sum()):,}")
        c[2].metric("Failed", f"{int(v.suites['fail'].sum()):,}")
        c[3].metric("Unreadable", f"{int(v.suites['error'].sum()):,}")
        if not v.files.empty:
            only_bad = st.toggle("Only files that did not pass", value=True)
            files = v.files[v.files["status"] != "pass"] if only_bad else v.files
            st.dataframe(files, hide_index=True, width="stretch")
        if v.data_docs:
            docs = Path(v.data_docs)
            st.markdown(f"Data Docs (HTML report of every expectation): [{docs}]({docs.resolve().as_uri()})")
            st.caption("Browsers refuse file:// links from a web page: copy the path into the address bar, or "
                       "download the index below.")
            if docs.exists():
                st.download_button("Download Data Docs index.html", docs.read_bytes(), file_name="data_docs.html",
                                   mime="text/html")

st.header("Quarantined records")
st.caption("Records the inference service could not use (bad JSON, unknown variables, non-finite values...), "
           "kept as JSON lines under quarantine/ in the curated bucket.")
with ui.guard("The quarantine"):
    q = ui.quarantine(ui.lake())
    state = ui.lake_state(ui.lake())
    if q.empty and not state.ok:
        st.info(state.problem, icon=":material/info:")
    elif q.empty:
        st.info("Nothing quarantined: every record that reached the service was usable (or no data has arrived "
                "yet).", icon=":material/check_circle:")
    else:
        summary = sources.quarantine_summary(q)
        by_reason = summary.groupby("reason", sort=False)["records"].sum().reset_index()
        q_cols = st.columns(2)
        q_cols[0].metric("Quarantined records", f"{len(q):,}")
        q_cols[1].metric("Reasons", f"{len(by_reason):,}")
        st.plotly_chart(figures.quarantine_by_reason(summary), width="stretch")
        st.dataframe(by_reason, hide_index=True, width="stretch")
        with st.expander("Latest quarantined records"):
            st.dataframe(q.sort_values("dt", ascending=False).head(200), hide_index=True, width="stretch")
