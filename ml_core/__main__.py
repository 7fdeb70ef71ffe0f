"""`python -m ml_core train --dataset ml-100k --models sasrec,lightgcn,ease,...`"""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
