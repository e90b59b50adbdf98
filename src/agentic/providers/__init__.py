"""LLM providers behind one interface (OpenRouter, Claude, mock). They talk to LLM APIs and store nothing."""
