"""`python -m display`: serve the display with settings from the environment (DISPLAY_*)."""

from __future__ import annotations

import logging

import uvicorn

from display.app import create_app
from display.settings import DisplaySettings


def main() -> None:
    settings = DisplaySettings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(settings)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        access_log=False,
        timeout_graceful_shutdown=2,
    )


if __name__ == "__main__":
    main()
