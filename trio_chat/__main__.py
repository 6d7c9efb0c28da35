import sys

from trio_chat.cli import main

sys.exit(main())
