"""The mind: a language model that thinks aloud, forever, inside a memory limit."""
