"""PetroStream dashboard: ``streamlit run dashboard/app.py`` (or ``petrostream dashboard``).

The entry point only sets the page up and routes; each page lives in ``dashboard/views/`` (a folder named
``pages/`` next to the entry point switches Streamlit to its v1 multipage mode until someone opens ``/``).
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

HERE = Path(__file__).resolve().parent

PAGES = (
    # (file, title, url path, icon)
    ("overview.py", "Overview", "overview", ":material/dashboard:"),
    ("live.py", "Live anomalies", "live", ":material/notifications_active:"),
    ("well_history.py", "Well history", "well_history", ":material/show_chart:"),
    ("status_map.py", "Well status map", "status_map", ":material/grid_view:"),
    ("model.py", "Model performance", "model", ":material/model_training:"),
    ("quality.py", "Data quality", "quality", ":material/fact_check:"),
    ("executive.py", "Executive", "executive", ":material/insights:"),
)

st.set_page_config(page_title="PetroStream", page_icon=":material/oil_barrel:", layout="wide")

pages = [
    st.Page(HERE / "views" / file, title=title, url_path=url, icon=icon, default=(i == 0))
    for i, (file, title, url, icon) in enumerate(PAGES)
]
page = st.navigation(pages)
with st.sidebar:
    st.markdown("**PetroStream**  \nReal-time anomaly detection on the Petrobras 3W wells")
page.run()
