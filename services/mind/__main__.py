"""``python -m mind``: serve the mind with uvicorn on MIND_HOST:MIND_PORT.

The order below is the length of every resurrection: the weights start loading first, and the
settings, the prompt and the web stack follow while llama.cpp reads them (see mind.birth). Heavy
imports therefore happen inside main(), each where it is first needed."""
from __future__ import annotations

import logging
import os
import sys

from .birth import PreloadedSource, make_memory_probe, make_source, preload_model
from .cgroup import CgroupMemory
from .sources import EX_CONFIG, SourceError


def main() -> int:
    # INFO until the settings are read: a life's first lines come before them.
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr,
    )
    log = logging.getLogger("mind")
    preload = preload_model(os.environ)

    from .settings import MindSettings

    settings = MindSettings()
    logging.getLogger().setLevel(settings.log_level.upper())
    memory = CgroupMemory(settings.cgroup_root)
    try:
        source = PreloadedSource(make_source(settings, make_memory_probe(memory), preload))
    except SourceError as exc:
        log.error("the mind cannot start: %s", exc)
        return EX_CONFIG

    import uvicorn

    from .app import create_app

    app = create_app(settings, source, memory=memory)
    log.info("web surface ready; model %s", "loaded" if source.loaded else "still loading")
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level.lower(),
                access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
