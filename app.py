"""The serverless entry module: Vercel's Flask runtime serves the module-level ``app`` found in ``app.py``.

The package lives under ``src/`` and the Inngest functions in ``functions/`` at the root. Vercel installs the
dependencies from pyproject.toml but does not necessarily install this project itself, so both directories
are put on ``sys.path`` here; with the project installed (pip install .) the insert is harmless.
"""

import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parent
for _path in (_ROOT / "src", _ROOT):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from agentic.web.app import create_app  # noqa: E402  (needs the path above)

# create_app builds its dependencies with agentic.bootstrap, the composition root the CLI uses too.
app = create_app()
