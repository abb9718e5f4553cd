"""The local AWS emulator's HTTP server: moto's WSGI app served with HTTP/1.1 keep-alive.

``python -m moto.server`` runs on werkzeug's development server, which answers every request with
``Connection: close``: each AWS call then opens a new TCP connection (about 0.5 ms of client CPU per call, on
top of the call), where boto3 against AWS reuses its pooled connections. Here the same moto application
(``DomainDispatcherApplication``: every service on one port, state in this process) runs under gunicorn,
one worker process with threads (the moto state must live in one process), keep-alive on. Without gunicorn
(Windows) it falls back to ``moto.server``.

    python -m petrostream.emulator_server -H 127.0.0.1 -p 4566
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

THREADS = 16  # concurrent requests (a demo runs the producer, two consumers, the dashboard at once)
KEEP_ALIVE_S = 120  # idle seconds a client connection stays open (boto3 pools them)


def _options(host: str, port: int) -> dict[str, Any]:
    return {
        "bind": f"{host}:{port}",
        "workers": 1,
        "worker_class": "gthread",
        "threads": THREADS,
        "keepalive": KEEP_ALIVE_S,
        "timeout": 0,  # never restart the worker: it holds every emulated resource
        "graceful_timeout": 2,
        # keep headers whose names hold underscores (gunicorn drops them by default); unlike moto.server,
        # an S3 user-metadata key "a_b" then reads back as "a-b" (PetroStream sets no user metadata)
        "header_map": "dangerous",
        "control_socket_disable": True,
        "accesslog": None,
        "loglevel": "warning",
    }


def serve(host: str, port: int) -> None:
    from gunicorn.app.base import BaseApplication
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    class _Moto(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in _options(host, port).items():
                if key in self.cfg.settings:  # options this gunicorn does not know are skipped
                    self.cfg.set(key, value)

        def load(self) -> Any:
            return DomainDispatcherApplication(create_backend_app)

    _Moto().run()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m petrostream.emulator_server", description=__doc__.splitlines()[0])
    p.add_argument("-H", "--host", default="127.0.0.1")
    p.add_argument("-p", "--port", type=int, default=4566)
    args = p.parse_args(argv)
    os.environ.setdefault("MOTO_PORT", str(args.port))  # moto builds some URLs (e.g. SQS queues) from it
    try:
        import gunicorn  # noqa: F401
    except ImportError:
        from moto.server import main as werkzeug_main

        werkzeug_main(["-H", args.host, "-p", str(args.port)])
        return
    serve(args.host, args.port)


if __name__ == "__main__":
    main(sys.argv[1:])
