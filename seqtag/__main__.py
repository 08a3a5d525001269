"""``python -m seqtag``: see :mod:`seqtag.cli`."""

import sys

from seqtag.cli import main

if __name__ == "__main__":
    sys.exit(main())
