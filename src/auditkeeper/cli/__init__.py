"""The ``auditkeeper`` command.

Click and Rich are the optional ``cli`` extra: they are imported only when the command
runs, so ``import auditkeeper`` (and this package) works without them, and a missing
extra is reported as the one ``pip install`` line that fixes it.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["main"]

_EXTRA_MODULES = frozenset({"click", "rich"})


def main(argv: Sequence[str] | None = None) -> None:
    """Run the command line (``argv`` defaults to ``sys.argv[1:]``) and exit."""
    try:
        from .commands import cli
    except ModuleNotFoundError as error:
        if (error.name or "").partition(".")[0] not in _EXTRA_MODULES:
            raise
        print(
            f'auditkeeper: the command line needs {error.name}: pip install "auditkeeper[cli]"',
            file=sys.stderr,
        )
        raise SystemExit(1) from None
    cli.main(args=argv, prog_name="auditkeeper")
