"""agentic: LLM generation requests as durable background jobs, driven by Inngest."""

__version__ = "0.1.0"
