"""``python -m mind``: serve the mind with uvicorn on MIND_HOST:MIND_PORT."""
from __future__ import annotations

import logging
import sys

import uvicorn

from .app import create_app
from .settings import MindSettings
from .sources import SourceError
from .thinker import EX_CONFIG


def main() -> int:
    settings = MindSettings()
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr,
    )
    try:
        app = create_app(settings)
    except SourceError as exc:
        logging.getLogger("mind").error("the mind cannot start: %s", exc)
        return EX_CONFIG
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level.lower(),
                access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
