"""Allow ``python -m emsbox``."""

from emsbox.cli import main

raise SystemExit(main())
