"""I/O adapters: the SPI transport and panels, the upstream SSE client."""
