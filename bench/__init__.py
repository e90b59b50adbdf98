"""agentic's benchmark suite: each hot path measured side by side with a bare baseline.

Run it with ``scripts/bench`` (or ``python -m bench``); ``--quick`` runs tiny sizes as a smoke test.
All traffic goes to 127.0.0.1: the Inngest event API and OpenRouter are loopback stand-ins.
"""
