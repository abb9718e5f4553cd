"""Structured logging: one JSON object per line on stderr (``PETROSTREAM_LOG_FORMAT=text`` for humans)."""

from __future__ import annotations

import json
import logging
import os
import sys
import time

_RESERVED = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        doc.update({k: v for k, v in record.__dict__.items() if k not in _RESERVED})
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info).splitlines()[-1]
        return json.dumps(doc, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extra = " ".join(f"{k}={v}" for k, v in record.__dict__.items() if k not in _RESERVED)
        return f"{record.levelname.lower():7s} {record.name}: {record.getMessage()}" + (f"  {extra}" if extra else "")


def setup(level: str | None = None, fmt: str | None = None) -> None:
    """Configure the root logger once per process (idempotent)."""
    level = (level or os.environ.get("PETROSTREAM_LOG_LEVEL") or "INFO").upper()
    fmt = fmt or os.environ.get("PETROSTREAM_LOG_FORMAT") or "json"
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("botocore", "boto3", "urllib3", "s3transfer", "werkzeug", "alembic", "mlflow", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
