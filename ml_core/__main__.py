"""`python -m ml_core train --dataset ml-100k --models sasrec,lightgcn,ease,...`"""

import sys

from .cli import main

if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] in ("ensemble", "ablation"):  # the serving helper's subcommands
        from .ensemble import main as ensemble_main

        sys.exit(ensemble_main(sys.argv[1], sys.argv[2:]))
    sys.exit(main())
