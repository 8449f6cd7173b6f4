"""The entity frame in a chat template (llama.cpp's built-in templates; no model needed)."""
import pytest

pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed in this environment")

from mind.llama_source import chat_prompt  # noqa: E402
from mind.settings import PROMPTS_DIR  # noqa: E402


def test_the_entity_frame_becomes_a_system_turn_followed_by_the_models_turn():
    frame = (PROMPTS_DIR / "entity.txt").read_text()
    text = chat_prompt(None, frame, "Begin.", template=b"llama3")
    assert text.startswith("<|start_header_id|>system<|end_header_id|>")
    assert "volatile memory" in text and "Begin." in text
    assert text.rstrip().endswith("<|start_header_id|>assistant<|end_header_id|>")
