"""rung: a small-model-first, OpenAI-compatible LLM gateway.

Importing rung does nothing but define names: no models load, no clients open.
"""

__version__ = "0.1.0"
