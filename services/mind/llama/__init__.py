"""The model source: llama.cpp through llama-cpp-python's ctypes bindings (engine), the source that
thinks with them (source) and what it learns of its own memory (meter). Nothing is imported here:
`python -m mind` imports the bindings its own way first (mind.birth.import_llama_bindings)."""
