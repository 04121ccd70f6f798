import sys

from zhiku.cli import main

sys.exit(main())
