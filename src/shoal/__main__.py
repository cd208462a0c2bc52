"""``python -m shoal`` runs the command-line interface."""

from shoal.cli import main

raise SystemExit(main())
