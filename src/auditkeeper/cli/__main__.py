"""``python -m auditkeeper.cli``: the command without its console script."""

from . import main

main()
