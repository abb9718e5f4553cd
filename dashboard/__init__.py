"""PetroStream operations dashboard (Streamlit + Plotly).

Layout: ``queries`` (SQL text + plain functions returning DataFrames), ``figures`` (plain Plotly
builders), ``sources`` (MLflow, champion manifest, promotion history, data-quality readers),
``ui`` (the thin Streamlit glue shared by the pages), ``app`` + ``pages/`` (Streamlit entry and pages).
Only ``app``, ``ui`` and ``pages`` import Streamlit; the rest is tested without it.
"""
