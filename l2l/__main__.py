import sys

from l2l.cli import main

sys.exit(main())
