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
        "mappings": "hub.mapping._command:mappings_command",
        "validate": "hub.validation:validate_command",
    },
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(package_name="hub", prog_name="hub")
def main() -> None:
    """The hub: a FHIR R4 interoperability hub for neighbourhood mental health care.

    Configuration comes from HUB_* environment variables (or a .env file).
    """


@main.command()
@click.option(
    "--host",
    default=None,
    help="Address to listen on. Default: HUB_HOST, else 127.0.0.1.",
)
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=None,
    help="Port to listen on. Default: HUB_PORT, else 8080.",
)
def serve(host: str | None, port: int | None) -> None:
    """Serve the FHIR REST API (at /fhir) over the configured store."""
    import uvicorn

    from hub.app import create_app

    settings = HubSettings()
    overrides = {k: v for k, v in (("host", host), ("port", port)) if v is not None}
    if overrides:
        settings = settings.model_copy(update=overrides)
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


@main.group(
    cls=_LazyGroup,
    lazy={"store": "hub.bench:store_bench_command", "mappings": "hub.bench:mapping_bench_command"},
)
def bench() -> None:
    """Measure the hub's speed."""


if __name__ == "__main__":
    main()
