"""`python -m gateway`: the same as the `gateway` console script."""

from .cli import main

raise SystemExit(main())
