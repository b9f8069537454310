"""``auditkeeper serve``: the log viewer (pages and JSON API) on a database, with uvicorn.

It listens on 127.0.0.1 by default: the log is the application's history, so exposing
it to a network is a decision (``--host``) and belongs behind the application's own
authentication (mount ``auditkeeper.api.create_router`` there instead).
"""

from __future__ import annotations

import click

from .context import CliError, app_option, database_option, open_log

__all__ = ["serve_command"]


@click.command("serve")
@app_option
@database_option
@click.option("--host", default="127.0.0.1", show_default=True, help="The address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
def serve_command(app: str, database: str | None, host: str, port: int) -> None:
    """Serve the audit log read-only: the viewer's page at /, JSON API at /api, OpenAPI
    at /docs."""
    try:
        import uvicorn

        from ..api import create_app
    except ModuleNotFoundError as error:
        raise CliError(f'serve needs {error.name}: pip install "auditkeeper[web]"') from None
    with open_log(database, app) as source:
        user_names = getattr(getattr(source.owner, "User", None), "full_name", None)
        web = create_app(source.keeper, source.engine, user_names=user_names)
        shown_host = f"[{host}]" if ":" in host else host
        click.echo(
            f"auditkeeper: serving {source.shown_url}: open http://{shown_host}:{port}/ "
            f"(JSON API at http://{shown_host}:{port}/api/logs)"
        )
        uvicorn.run(web, host=host, port=port, log_level="warning")
