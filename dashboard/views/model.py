"""Model performance: registry versions and aliases, offline metrics, confusion matrix, per-class recall and
detection delay, promotion history, live performance against the 3W labels, input drift."""

import streamlit as st

from dashboard import figures, queries, sources, ui

# offline metrics compared across versions (0..1 scale), as training logs them on the registered run.
# Led by the ones that do not flatter an alarm-happy model (~95 % of labelled 3W rows are events).
KEY_METRICS = ("recall_at_1pct_fpr", "roc_auc", "event_detection_rate", "pr_auc", "obs_precision", "obs_recall",
               "obs_f1")
RECALL_COLUMNS = ("obs_recall", "detection_rate", "recall")

st.title("Model performance")
ui.lake_caption()

# ------------------------------------------------------------------ registry
st.header("Registered versions")
reg = None
champ = sources.Champion(None)
with ui.guard("The MLflow registry"):
    reg = ui.registry(ui.lake())
    champ = ui.champion(ui.lake())
    if champ.version:
        st.markdown(f"Serving champion: **version {champ.version}** "
                    f"(promoted {ui.fmt_ts(champ.promoted_at)} UTC, from {champ.source}).")
    if not reg.available:
        st.info(reg.note, icon=":material/info:")
    else:
        st.dataframe(reg.versions, hide_index=True, width="stretch",
                     column_config={"created": st.column_config.DatetimeColumn("Created (UTC)")})
        metrics = reg.metrics
        prefix = next((p for p in sources.METRIC_PREFIXES
                       if any(f"{p}{k}" in metrics for k in KEY_METRICS)), None)
        shown = [f"{prefix}{k}" for k in KEY_METRICS if prefix is not None and f"{prefix}{k}" in metrics]
        if shown:
            st.plotly_chart(figures.metrics_by_version(metrics, shown[:8]), width="stretch")
        with st.expander("All metrics per version"):
            st.dataframe(metrics, hide_index=True, width="stretch")

# ------------------------------------------------------------------ one version in detail
if reg is not None and reg.available and not reg.versions.empty:
    st.header("Evaluation of one version")
    versions = reg.versions["version"].astype(str).tolist()
    default = versions.index(champ.version) if champ.version in versions else 0
    tags = {v: ", ".join(sorted(a for a, x in reg.aliases.items() if x == v)) for v in versions}
    version = st.selectbox("Version", versions, index=default,
                           format_func=lambda v: f"v{v} ({tags[v]})" if tags[v] else f"v{v}")
    with ui.guard("The run's evaluation"):
        run_id = reg.versions.loc[reg.versions["version"].astype(str) == version, "run_id"].iloc[0]
        details = ui.run_details(ui.lake(), run_id) if run_id else None
        if details is None:
            st.info("This version has no training run recorded.")
        else:
            c = st.columns(2)
            with c[0]:
                if details.confusion:
                    st.plotly_chart(figures.confusion_matrix(details.confusion, details.confusion_labels,
                                                             f"Confusion matrix (v{version}, rows)"),
                                    width="stretch")
                else:
                    st.info("No confusion matrix was logged for this run.")
            recall_cols = [col for col in RECALL_COLUMNS if col in details.per_class]
            with c[1]:
                if recall_cols:
                    st.plotly_chart(figures.per_class_bars(details.per_class, recall_cols, "Recall per 3W class",
                                                           "recall"), width="stretch")
                else:
                    st.info("No per-class recall was logged for this run.")
            if not details.per_class.empty:
                delay_col = next((col for col in details.per_class.columns if "delay" in col), None)
                if delay_col:
                    st.plotly_chart(figures.per_class_bars(details.per_class, delay_col,
                                                           "Detection delay per 3W class (holdout)", "seconds"),
                                    width="stretch")
                st.dataframe(details.per_class, hide_index=True, width="stretch")
                st.caption("obs_recall: share of event rows alarmed; detection_rate: share of event instances "
                           "alarmed at or after the onset; delay: onset to first alarm.")
            if details.note:
                st.caption(details.note)

# ------------------------------------------------------------------ promotions
st.header("Promotion history")
with ui.guard("The promotion history"):
    history = ui.promotion_history(ui.lake())
    if history.empty:
        st.info("No promotion recorded yet: `make promote` gates the challenger against the champion and records "
                "its decision in the models bucket.", icon=":material/info:")
    else:
        h_cols = st.columns(3)
        h_cols[0].metric("Promotions", f"{int((history['action'] == 'promote').sum()):,}")
        h_cols[1].metric("Refused", f"{int((history['action'] == 'refused').sum()):,}")
        h_cols[2].metric("Rollbacks", f"{int((history['action'] == 'rollback').sum()):,}")
        st.dataframe(history, hide_index=True, width="stretch",
                     column_config={"when": st.column_config.DatetimeColumn("When (UTC)", format="YYYY-MM-DD HH:mm:ss"),
                                    "challenger_objective": st.column_config.NumberColumn(format="%.4f"),
                                    "champion_objective": st.column_config.NumberColumn(format="%.4f")})
        st.caption("Every decision of `petrostream promote` (gates: holdout data suite, objective and recall vs the "
                   "champion, false alarms, latency), from <model>/promotions.jsonl in the models bucket.")

# ------------------------------------------------------------------ live
st.header("Live performance against the 3W labels")
if ui.require_lake():
    with ui.guard("The live performance"):
        perf = ui.live_performance(ui.lake())
        if perf.empty:
            st.info("No scored rows yet.")
        else:
            st.plotly_chart(figures.live_performance(perf), width="stretch")
            cols = [c for c in ("day", "model_version", "n_rows", "labelled_rows", "tp", "fp", "fn", "tn",
                                "precision", "recall", "f1", "false_alarms", "false_alarms_per_hour") if c in perf]
            st.dataframe(perf[cols], hide_index=True, width="stretch")
            st.caption("Row level: an event row is one whose 3W label is not 0 (transients included). The labels "
                       "travel with the stream for evaluation only; the model never sees them.")

    st.header("Input drift")
    with ui.guard("The drift view"):
        d = ui.drift(ui.lake())
        if d is None:
            st.info("No data to compare yet.")
        else:
            st.markdown(f"Comparing **{d.current_label}** with **{d.reference_label}** "
                        f"(PSI > {queries.PSI_ALERT} shifted, {queries.PSI_WARN}-{queries.PSI_ALERT} moderate; "
                        "KS = max distance between the two distributions).")
            if d.note:
                st.info(d.note, icon=":material/info:")
            st.plotly_chart(figures.drift_bars(d.table, queries.PSI_WARN, queries.PSI_ALERT), width="stretch")
            st.dataframe(d.table, hide_index=True, width="stretch")
