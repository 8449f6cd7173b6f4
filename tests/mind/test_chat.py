"""The entity frame in a chat template (llama.cpp's built-in templates; no model needed)."""

import pytest

pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed in this environment")

from mind.frames import Birth
from mind.llama.engine import chat_prompt


def test_the_entity_frame_is_a_system_turn_then_the_model_s_own_turn_opened_with_its_first_words(tmp_path):
    filled = Birth.begin("entity", "gauge", str(tmp_path), limit=lambda: 700 << 20).fill("Llama 3.2 3B", 3_212_749_824)
    head, opening = filled.split()
    text = chat_prompt(None, head, opening, template=b"llama3")
    assert text.startswith("<|start_header_id|>system<|end_header_id|>")
    assert "Llama 3.2 3B" in text and "3.2 billion parameters" in text and "limited to 700 megabytes" in text
    # no user turn: the frame says there is no user; the model's turn begins with the frame's opening
    assert "<|start_header_id|>user" not in text
    assert text.endswith("<|start_header_id|>assistant<|end_header_id|>\n\n" + opening)
    assert opening.startswith("I am") and opening.endswith(" I")
