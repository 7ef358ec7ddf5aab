"""``python -m vida_loader``: the same as the ``vida-loader`` command."""

import sys

from vida_loader.cli import main

if __name__ == "__main__":
    sys.exit(main())
