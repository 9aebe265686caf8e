"""`python -m gateway`: the same as the `gateway` console script."""

from .serve.cli import main

raise SystemExit(main())
