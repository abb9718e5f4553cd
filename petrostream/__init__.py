"""PetroStream: real-time anomaly detection for offshore oil wells (Petrobras 3W)."""

__version__ = "0.1.0"
