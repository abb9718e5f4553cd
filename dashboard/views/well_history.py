"""Well history: sensor series with anomaly scores, alarm episodes and 3W labels; downsampled in SQL.

Query parameters ``?well=WELL-00001&start=2017-03-16T12:00:00&end=2017-03-16T14:00:00`` open a well
and range directly (the live-anomalies page links here that way).
"""

import datetime as dt

import pandas as pd
import streamlit as st

from dashboard import figures, queries, ui

DEFAULT_SPAN = pd.Timedelta(hours=6)

st.title("Well history")
ui.lake_caption()
if not ui.require_lake():
    st.stop()


def _param_ts(name: str) -> pd.Timestamp | None:
    raw = st.query_params.get(name)
    if not raw:
        return None
    try:
        return pd.Timestamp(raw).tz_localize(None) if pd.Timestamp(raw).tzinfo is None else \
            pd.Timestamp(raw).tz_convert("UTC").tz_localize(None)
    except (ValueError, TypeError):
        st.warning(f"Ignoring the `{name}` query parameter: {raw!r} is not a timestamp.")
        return None


wells = pd.DataFrame()
with ui.guard("The well list"):
    wells = ui.well_status(ui.lake(), ui.now())
if wells.empty:
    st.info(ui.EMPTY_HINT, icon=":material/info:")
    st.stop()

names = wells["well"].tolist()
asked = st.query_params.get("well")
if asked and asked not in names:
    st.warning(f"Well {asked!r} has no data in the lake; showing {names[0]} instead.")
well = st.selectbox("Well", names, index=names.index(asked) if asked in names else 0, key="wh_well")
info = wells.set_index("well").loc[well]
first, last = pd.Timestamp(info["first_ts"]), pd.Timestamp(info["last_ts"]) + pd.Timedelta(seconds=1)

q_start, q_end = (_param_ts("start"), _param_ts("end")) if asked == well else (None, None)
start0 = q_start if q_start is not None else max(first, last - DEFAULT_SPAN)
end0 = q_end if q_end is not None else last

c = st.columns([1, 1, 2])
start_in = c[0].datetime_input("From (UTC)", value=start0.to_pydatetime(), key=f"wh_start_{well}",
                               step=dt.timedelta(minutes=1))
end_in = c[1].datetime_input("To (UTC)", value=end0.to_pydatetime(), key=f"wh_end_{well}",
                             step=dt.timedelta(minutes=1))
start, end = pd.Timestamp(start_in), pd.Timestamp(end_in)
if end <= start:
    st.warning("The end of the range must be after its start.")
    st.stop()

available: list[str] = []
with ui.guard("The sensor list"):
    available = ui.available_variables(ui.lake(), well, start, end)
if not available:
    st.info(f"{well} has no sensor values in the lake.")
    st.stop()
# the core 3W process variables first (P-TPT never reads a frozen 0 like P-PDG), then other pressures/temperatures
preferred = ("p_tpt", "t_tpt", "p_mon_ckp", "t_jus_ckp", "p_pdg",
             *queries.PRESSURE_COLUMNS, *queries.TEMPERATURE_COLUMNS)
default_cols = list(dict.fromkeys(col for col in preferred if col in available))[:4]
cols = c[2].multiselect(
    "Variables", available, default=default_cols or available[:2], key=f"wh_vars_{well}",
    format_func=lambda col: f"{queries.VARIABLE_BY_COLUMN[col].name} ({queries.VARIABLE_BY_COLUMN[col].unit})",
)
st.query_params.update({"well": well, "start": start.strftime("%Y-%m-%dT%H:%M:%S"),
                        "end": end.strftime("%Y-%m-%dT%H:%M:%S")})
st.caption(f"{well}: data from {ui.fmt_ts(first)} to {ui.fmt_ts(info['last_ts'])}, "
           f"{int(info['total_rows']):,} rows, status {info['status']}.")

with ui.guard("The well history"):
    hist, bucket = ui.well_history(ui.lake(), well, start, end, tuple(cols))
    episodes = ui.well_episodes(ui.lake(), well, start, end)
    if hist.empty:
        st.info(f"No readings of {well} between {ui.fmt_ts(start)} and {ui.fmt_ts(end)}. Its data spans "
                f"{ui.fmt_ts(first)} .. {ui.fmt_ts(info['last_ts'])}.", icon=":material/info:")
    else:
        res = "raw 1 s readings" if bucket <= 1 else f"{bucket} s buckets (avg, min and max per bucket)"
        st.caption(f"{len(hist):,} points per series: {res}, aggregated in SQL so a chart never carries more "
                   f"than {queries.MAX_POINTS:,} points. Red bands: alarm episodes; amber bands: 3W event labels.")
        fig = figures.well_history(hist, cols, episodes, bucket, title=well)
        st.plotly_chart(fig, width="stretch")
    if not episodes.empty:
        st.subheader("Alarm episodes in this range")
        show = episodes.assign(**{"3W class": episodes["event_class"].map(figures.class_name)})
        st.dataframe(show.drop(columns=["event_class"]), hide_index=True, width="stretch")
