"""``python -m trio_chat_client``: same as the ``trio-chat-client`` command."""

import sys

from .cli import main

sys.exit(main())
