"""``petrostream dashboard``: run the Streamlit dashboard (headless, 127.0.0.1:8501 by default)."""

from __future__ import annotations

import typer


def app_path():
    from pathlib import Path

    return Path(__file__).resolve().parent / "app.py"


def streamlit_command(port: int, address: str, extra: list[str] | None = None) -> list[str]:
    """The ``streamlit run`` command line (same interpreter, so the installed packages are the ones used)."""
    import sys

    return [
        sys.executable, "-m", "streamlit", "run", str(app_path()),
        "--server.headless", "true",
        "--server.port", str(port),
        "--server.address", address,
        "--browser.gatherUsageStats", "false",
        "--server.fileWatcherType", "none",
        "--client.toolbarMode", "viewer",
        *(extra or []),
    ]


def dashboard(
    port: int = typer.Option(8501, "--port", envvar="STREAMLIT_SERVER_PORT", help="Port to listen on."),
    address: str = typer.Option("127.0.0.1", "--address", envvar="STREAMLIT_SERVER_ADDRESS",
                                help="Address to bind (0.0.0.0 in a container)."),
) -> None:
    """Serve the operations dashboard (Streamlit) against the configured lake."""
    import os

    from petrostream.errors import UserError

    try:
        import streamlit  # noqa: F401
    except ImportError:
        raise UserError("streamlit is not installed: pip install 'petrostream[dashboard]'") from None
    typer.echo(f"dashboard on http://{'127.0.0.1' if address in ('0.0.0.0', '::') else address}:{port}", err=True)
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": os.environ.get("MLFLOW_DISABLE_TELEMETRY", "true")}
    cmd = streamlit_command(port, address)
    # Replace this process: signals (SIGTERM from ECS/docker, Ctrl-C) reach Streamlit directly, same pid.
    os.execve(cmd[0], cmd, env)


def register(app: typer.Typer) -> None:
    app.command("dashboard")(dashboard)
