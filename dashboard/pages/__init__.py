"""Streamlit pages (run by ``dashboard/app.py`` through ``st.navigation``; this file makes them installable)."""
