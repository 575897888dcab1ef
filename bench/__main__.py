import sys

from bench.core.errors import INTERRUPTED

try:
    from bench.cli import main
except KeyboardInterrupt:  # Ctrl-C while Python is still importing the CLI
    print(INTERRUPTED, file=sys.stderr)
    sys.exit(130)

sys.exit(main())
