"""The ``auditkeeper`` command group; each sub-command lives in its own module.

(Not ``main.py``: importing a submodule named ``main`` would replace the package's
``main`` function, the console script's entry point, with that module.)
"""

from __future__ import annotations

import click

from .. import __version__
from .admin import add_events_command, check_command, install_command
from .demo import demo
from .query_commands import as_of_command, export_command, logs_command, show_command
from .serve import serve_command
from .trail import trail_command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="auditkeeper")
def cli() -> None:
    """auditkeeper: an append-only audit log for SQLAlchemy applications.

    Start with `auditkeeper demo`: it plays a small CRM scenario on a SQLite file and
    prints the audit log it produced.
    """


cli.add_command(demo)
cli.add_command(trail_command)
cli.add_command(logs_command)
cli.add_command(show_command)
cli.add_command(as_of_command)
cli.add_command(export_command)
cli.add_command(install_command)
cli.add_command(check_command)
cli.add_command(add_events_command)
cli.add_command(serve_command)
