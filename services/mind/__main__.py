"""``python -m mind``: serve the mind with uvicorn on MIND_HOST:MIND_PORT.

The order below is the length of every resurrection: the weights start loading first, and the
settings, the prompt and the web stack follow while llama.cpp reads them (see mind.birth). Heavy
imports therefore happen inside main(), each where it is first needed."""

from __future__ import annotations

import logging
import os
import sys

from mind.birth import PreloadedSource, make_memory_probe, make_source, preload_model
from mind.cgroup import CgroupMemory
from mind.sources import EX_CONFIG, SourceError


def main() -> int:
    # INFO until the settings are read: a life's first lines come before them.
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    log = logging.getLogger("mind")
    preload = preload_model(os.environ)

    from mind.settings import MindSettings

    settings = MindSettings()
    logging.getLogger().setLevel(settings.log_level.upper())
    memory = CgroupMemory(settings.cgroup_root)
    try:
        source = PreloadedSource(make_source(settings, make_memory_probe(memory), preload))
    except SourceError as exc:
        log.error("the mind cannot start: %s", exc)
        return EX_CONFIG

    from mind.app import create_app
    from mind.death import serve

    app = create_app(settings, source, memory=memory)
    log.info("web surface ready; model %s", "loaded" if source.loaded else "still loading")
    return serve(app, settings)  # the status a SIGTERM's death announced (a fatal death exits on its own)


if __name__ == "__main__":
    sys.exit(main())
