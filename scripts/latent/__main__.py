"""``python -m latent``: the same as the ``latent`` command."""

import sys

from latent.cli import main

sys.exit(main())
