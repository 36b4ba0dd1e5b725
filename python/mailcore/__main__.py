"""``python -m mailcore`` runs the command line."""

from mailcore.cli import main

raise SystemExit(main())
