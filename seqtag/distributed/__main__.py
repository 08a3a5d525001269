"""``python -m seqtag.distributed`` (also under ``torchrun -m``): see :mod:`seqtag.distributed.training`."""

import sys

from seqtag.distributed.training import main

if __name__ == "__main__":
    sys.exit(main())
