"""LLM providers behind one interface (OpenRouter, Claude, mock), routing, and the queued wrapper."""
