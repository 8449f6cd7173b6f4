"""latent: the host tools of Latent Reflection, one command with subcommands (``latent --help``).

Its only dependencies are the Docker SDK and PyYAML (to read ``compose config``); the memory model and
the parser of memory sizes are the mind's own stdlib-only modules (``mind.lifespan``, ``mind.sizes``),
shipped with it. Nothing here imports pydantic, llama.cpp or the web stack.
"""

__version__ = "1.0.0"


class CliError(Exception):
    """A problem the user can fix: printed as one line (with the fix), exit status 2."""
