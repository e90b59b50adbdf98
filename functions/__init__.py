"""The Inngest functions, thin: each step calls the job runner; flow control sits in the options.

``build_functions(client, deps)`` returns every function, ready for ``inngest.flask.serve``.
"""

from __future__ import annotations

import inngest

from agentic.functions.cancel import make_cancel
from agentic.functions.cleanup import make_cleanup
from agentic.functions.deps import FunctionDeps
from agentic.functions.generate import make_generate
from agentic.functions.preview import make_preview


def build_functions(client: inngest.Inngest, deps: FunctionDeps) -> list[inngest.Function[object]]:
    return [make_generate(client, deps), make_preview(client, deps), make_cancel(client, deps),
            make_cleanup(client, deps)]


__all__ = ["FunctionDeps", "build_functions"]
