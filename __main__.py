"""``python -m photo3d``: the headless command line."""
import sys

from .cli import main

if __name__ == "__main__":     # not again in the batch's spawned worker processes
    sys.exit(main())
