"""The serverless entry module: Vercel's Flask runtime serves the module-level ``app`` found in ``app.py``.

Vercel installs this project itself from uv.lock (with ``agentic.functions``, the Inngest functions of
``functions/``), so the installed package is used. Run from a checkout without installing, ``src/`` is put on
``sys.path`` instead (``src/agentic/functions`` links to ``functions/``).
"""

import sys
from importlib.util import find_spec
from pathlib import Path

if find_spec("agentic") is None:
    sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))

from agentic.web.app import create_app

# create_app builds its dependencies with agentic.bootstrap, the composition root the CLI uses too.
app = create_app()
