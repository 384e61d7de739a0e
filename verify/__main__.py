"""``python -m verify``: the entry point of the command line.

The command line itself is a front end above the core (:mod:`verify_cli`); this entry script is
the only file of the package that names it, so ``python -m verify`` keeps working.
"""

import sys

from verify_cli.main import main

if __name__ == "__main__":
    sys.exit(main())
