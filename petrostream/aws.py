"""The one place boto3 clients are built.

Clients are created lazily (never at import) from settings. The endpoint is the standard
``AWS_ENDPOINT_URL`` that boto3 itself honours, so the same code talks to real AWS, the
embedded moto emulator, or LocalStack.
"""

from __future__ import annotations

import ipaddress
import os
import threading
from functools import lru_cache
from typing import Any
from urllib.parse import urlparse

from botocore.config import Config

from petrostream.settings import Settings, get_settings

DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
_lock = threading.Lock()


def endpoint_url() -> str | None:
    return os.environ.get("AWS_ENDPOINT_URL") or None


def is_loopback(url: str | None) -> bool:
    """True when the endpoint is on this machine (emulator), False for real AWS or remote hosts."""
    if not url:
        return False
    host = urlparse(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def use_local_endpoint(endpoint: str) -> None:
    """Point this process (and its children) at a local emulator with dummy credentials."""
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    os.environ.update(DUMMY_CREDENTIALS)
    os.environ.setdefault("AWS_DEFAULT_REGION", get_settings().region)
    _session.cache_clear()


@lru_cache(maxsize=1)
def _session():
    import boto3

    s = get_settings()
    return boto3.session.Session(profile_name=s.profile, region_name=s.region)


def client(service: str, settings: Settings | None = None, **config: Any):
    """A boto3 client for ``service``; retries adaptive, endpoint from AWS_ENDPOINT_URL."""
    s = settings or get_settings()
    config.setdefault("retries", {"max_attempts": 8, "mode": "adaptive"})
    cfg = Config(**config)
    with _lock:  # boto3 sessions are not thread-safe while creating clients
        return _session().client(service, region_name=s.region, config=cfg)


def resource(service: str, settings: Settings | None = None):
    s = settings or get_settings()
    with _lock:
        return _session().resource(service, region_name=s.region)


def reset() -> None:
    """Forget the cached session (after the environment changed)."""
    _session.cache_clear()
