"""The `hub` command."""

from __future__ import annotations

import importlib
import logging

import click

from hub.settings import HubSettings

_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: str) -> None:
    """Log to stderr at `level` (debug, info, warning, error)."""
    logging.basicConfig(level=level.upper(), format=_LOG_FORMAT)
    # httpx logs each request's full URL at info; a search's query string can carry an
    # NHS number, which must never reach an info-level log.
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLogger().level))


class _LazyGroup(click.Group):
    """A group whose commands are imported when first used, so `hub --help` and `hub serve`
    do not import every subsystem."""

    def __init__(self, *args: object, lazy: dict[str, str], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._lazy = dict(lazy)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self._lazy})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self._lazy and name not in self.commands:
            module_name, attribute = self._lazy.pop(name).split(":")
            try:
                module = importlib.import_module(module_name)
            except ModuleNotFoundError as exc:
                if exc.name != module_name:
                    raise
                return None  # that part of the hub is not installed
            self.add_command(getattr(module, attribute), name)
        return super().get_command(ctx, name)


@click.group(
    cls=_LazyGroup,
    lazy={
        "deadletters": "hub.pipeline._inbox_command:deadletters_command",
        "demo": "hub.demo:demo_command",
        "inbox": "hub.pipeline._inbox_command:inbox_command",
        "ingest": "hub.listeners:ingest_command",
        "matches": "hub.identity:matches_command",
        "mappings": "hub.mapping._command:mappings_command",
        "record": "hub.record:record_command",
        "replay": "hub.pipeline._inbox_command:replay_command",
        "validate": "hub.validation:validate_command",
        "warnings": "hub.pipeline._inbox_command:warnings_command",
    },
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(package_name="hub", prog_name="hub")
def main() -> None:
    """The hub: a FHIR R4 interoperability hub for neighbourhood mental health care.

    Configuration comes from HUB_* environment variables (or a .env file).
    """


_HOST = click.option(
    "--host", default=None, help="Address to listen on. Default: HUB_HOST, else 127.0.0.1."
)
_WORKERS = click.option(
    "--workers",
    type=click.IntRange(0),
    default=None,
    help="Pipeline workers applying the inbox. Default: HUB_WORKERS, else 1.",
)


def _settings(**overrides: object) -> HubSettings:
    settings = HubSettings()
    given = {k: v for k, v in overrides.items() if v is not None}
    return settings.model_copy(update=given) if given else settings


@main.command()
@_HOST
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=None,
    help="Port to listen on. Default: HUB_PORT, else 8080.",
)
@click.option(
    "--mllp-port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Port of the MLLP listener, on the same host. Default: HUB_MLLP_PORT, else 2575.",
)
@click.option("--no-mllp", is_flag=True, help="Do not run the MLLP listener.")
@_WORKERS
def serve(
    host: str | None, port: int | None, mllp_port: int | None, no_mllp: bool, workers: int | None
) -> None:
    """Serve the hub: the FHIR REST API (at /fhir), the ingest API (POST /ingest/{mapping}),
    the MLLP listener, and the workers that apply what arrives."""
    import uvicorn

    from hub.app import create_app

    settings = _settings(
        host=host,
        port=port,
        mllp_port=mllp_port,
        workers=workers,
        mllp_enabled=False if no_mllp else None,
    )
    configure_logging(settings.log_level)
    origin = f"http://{settings.host}:{settings.port}"
    base = settings.public_base_url.rstrip("/") or f"{origin}/fhir"
    if settings.fhir_url:
        store = f"remote FHIR server at {settings.fhir_url}"
    else:
        store = f"embedded SQLite in {settings.data_dir.resolve()}"
    click.echo(f"hub listening on {origin}")
    click.echo(f"store: {store}")
    click.echo(f"FHIR metadata: {base}/metadata")
    click.echo(f"ingest: POST {origin}/ingest/{{mapping}}")
    if settings.mllp_enabled:
        click.echo(f"MLLP: {settings.host}:{settings.mllp_port} ({settings.mllp_mapping})")
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        log_config=None,
        # uvicorn's access log prints query strings (NHS numbers in searches); the audit
        # trail, not the console, is where accesses are recorded.
        access_log=False,
    )


@main.command()
@_HOST
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Port to listen on. Default: HUB_MLLP_PORT, else 2575.",
)
@click.option(
    "--mapping",
    default=None,
    help="The mapping messages go through. Default: HUB_MLLP_MAPPING, else slam-epr/adt.",
)
@_WORKERS
def mllp(host: str | None, port: int | None, mapping: str | None, workers: int | None) -> None:
    """Receive HL7 v2 messages over MLLP: store each one, ACK it (AA, AE or AR), and apply
    it to the shared record with the workers. Ctrl-C stops it."""
    import asyncio

    from hub.listeners import MllpServer
    from hub.pipeline import PipelineParts, WorkerPool

    settings = _settings(host=host, mllp_port=port, mllp_mapping=mapping, workers=workers)
    configure_logging(settings.log_level)
    parts = PipelineParts.open(settings)
    pool = WorkerPool(parts, settings.workers)

    async def listen() -> None:
        server = MllpServer.from_parts(parts)
        await server.start()
        click.echo(f"MLLP listening on {settings.host}:{server.port} ({settings.mllp_mapping})")
        click.echo(f"hub state: {parts.db.url}; workers: {settings.workers}")
        try:
            await server.serve_forever()
        finally:
            await server.stop()

    pool.start()
    try:
        asyncio.run(listen())
    except KeyboardInterrupt:
        click.echo("stopping")
    finally:
        pool.stop()
        parts.close()


@main.command()
@_WORKERS
@click.option(
    "--nice",
    type=click.IntRange(0, 19),
    default=None,
    help="Lower this process's CPU priority by this much, so that listeners on the same "
    "machine answer senders first (the inbox holds the work meanwhile). "
    "Default: HUB_WORKER_NICE, else 10; 0 leaves it.",
)
def work(workers: int | None, nice: int | None) -> None:
    """Apply the inbox to the shared record, without listening: run workers until stopped
    (Ctrl-C or SIGTERM). Several `hub work` processes can share one hub state database.

    Workers yield the CPU to listeners (--nice): a sender waits for each ACK, while what the
    workers have still to do is safe in the inbox."""
    import os
    import signal
    import threading

    from hub.pipeline import PipelineParts, WorkerPool

    settings = _settings(workers=workers, worker_nice=nice)
    configure_logging(settings.log_level)
    if settings.worker_nice and hasattr(os, "nice"):
        os.nice(settings.worker_nice)
    parts = PipelineParts.open(settings)
    pool = WorkerPool(parts, max(settings.workers, 1))
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    pool.start()
    click.echo(
        f"hub work: {max(settings.workers, 1)} workers on {parts.db.url} "
        f"(CPU priority lowered by {settings.worker_nice})"
    )
    try:
        while not stopped.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        pool.stop()
        parts.close()


@main.group(
    cls=_LazyGroup,
    lazy={
        "store": "hub.bench:store_bench_command",
        "mappings": "hub.bench:mapping_bench_command",
        "mllp": "hub.bench:mllp_bench_command",
        "ingest": "hub.bench:ingest_bench_command",
    },
)
def bench() -> None:
    """Measure the hub's speed."""


if __name__ == "__main__":
    main()
