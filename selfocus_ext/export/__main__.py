"""``python -m selfocus_ext.export``: the command itself is selfocus_ext.cli.export."""
import sys

from ..cli.export import main

if __name__ == "__main__":
    sys.exit(main())
