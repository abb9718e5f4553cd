"""Streamlit pages, routed by ``dashboard/app.py`` with ``st.navigation`` (this file makes them installable)."""
