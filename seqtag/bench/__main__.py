"""``python -m seqtag.bench``: the same as ``python -m seqtag bench``."""

import argparse
import sys

from seqtag.bench import __doc__ as _doc
from seqtag.bench.command import add_arguments, main
from seqtag.options import ArgumentParser

parser = ArgumentParser(prog="python -m seqtag.bench", description=_doc,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
add_arguments(parser)
sys.exit(main(parser.parse_args()))
