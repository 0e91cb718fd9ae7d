"""``python -m ddpm_core ...`` is the ``ddpm`` command (see :mod:`ddpm_core.cli`)."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
