"""`python -m ffnbench`: the same command line as the `ffnbench` script."""
import sys

from .cli import main

sys.exit(main())
