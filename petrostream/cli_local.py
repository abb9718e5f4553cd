"""``petrostream local up|down|status``: the embedded AWS emulator."""

from __future__ import annotations

import typer

local_app = typer.Typer(help="Local AWS emulator (moto server on 127.0.0.1) and its resources.", no_args_is_help=True)


@local_app.command("up")
def up(
    port: int = typer.Option(None, help="Port (default: settings local_port, 4566)."),
    shards: int = typer.Option(None, help="Kinesis shards for the ingest stream."),
    i_know_this_is_aws: bool = typer.Option(False, "--i-know-this-is-aws", help="Allow a non-loopback endpoint."),
) -> None:
    """Start the emulator (reused if already running) and bootstrap every resource."""
    from petrostream import local

    emu = local.start(port=port)
    local.use_local_endpoint(emu.endpoint)
    local.check_target(emu.endpoint, i_know_this_is_aws)
    created = local.bootstrap(shards=shards)
    typer.echo(f"emulator up at {emu.endpoint} (pid {emu.pid})")
    for kind, names in created.items():
        typer.echo(f"  {kind:9s} {', '.join(names)}")
    typer.echo(f"use it: export AWS_ENDPOINT_URL={emu.endpoint} AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test")


@local_app.command("bootstrap")
def bootstrap(
    shards: int = typer.Option(None, help="Kinesis shards for the ingest stream."),
    i_know_this_is_aws: bool = typer.Option(False, "--i-know-this-is-aws", help="Allow a non-loopback endpoint."),
) -> None:
    """Create the resources at the current AWS_ENDPOINT_URL (idempotent)."""
    from petrostream import aws, local

    local.check_target(aws.endpoint_url(), i_know_this_is_aws)
    for kind, names in local.bootstrap(shards=shards).items():
        typer.echo(f"  {kind:9s} {', '.join(names)}")


@local_app.command("down")
def down() -> None:
    """Stop the emulator this state dir started (nothing else)."""
    from petrostream import local

    typer.echo("emulator stopped" if local.stop() else "no emulator of ours was running")


@local_app.command("status")
def status() -> None:
    """Is the emulator running, and what exists in it."""
    from petrostream import local

    emu = local.running()
    if emu is None:
        typer.echo("emulator: not running (petrostream local up)")
        raise typer.Exit(1)
    local.use_local_endpoint(emu.endpoint)
    typer.echo(f"emulator: running at {emu.endpoint} (pid {emu.pid})")
    for kind, names in local.status().items():
        typer.echo(f"  {kind:9s} {', '.join(names) or '-'}")


def register(app: typer.Typer) -> None:
    app.add_typer(local_app, name="local")
