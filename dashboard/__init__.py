"""PetroStream operations dashboard (Streamlit + Plotly).

Layout: ``queries`` (SQL text + plain functions returning DataFrames), ``figures`` (plain Plotly
builders), ``sources`` (MLflow, champion manifest, promotion history, data-quality readers),
``ui`` (the thin Streamlit glue shared by the pages), ``app`` (the Streamlit entry point) and
``views/`` (one thin module per page). Only ``app``, ``ui`` and ``views`` import Streamlit; the rest
is tested without it.

The pages are NOT in a folder named ``pages/``: next to the entry point, Streamlit treats such a folder
as a v1 multipage app and runs a page URL (``/live``) directly, bypassing ``st.navigation`` (no layout,
wrong sidebar), until some visitor happens to open ``/``.
"""
