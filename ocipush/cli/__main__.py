import sys

from ocipush.cli import main

sys.exit(main())
