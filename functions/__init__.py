"""The Inngest functions, thin: each step calls the job runner; flow control sits in the options.

``build_functions(client, deps)`` returns one function per job kind (derived from its spec) plus cancel
and cleanup, ready for ``inngest.flask.serve``.
"""

from __future__ import annotations

from typing import Any

import inngest

from agentic.functions.cancel import make_cancel
from agentic.functions.cleanup import make_cleanup
from agentic.functions.deps import FunctionDeps
from agentic.functions.jobs import make_job_function
from agentic.service.kinds import KINDS


def build_functions(client: inngest.Inngest, deps: FunctionDeps) -> list[inngest.Function[Any]]:
    kinds = [make_job_function(client, deps.runner, spec, deps.settings) for spec in KINDS]
    return [*kinds, make_cancel(client, deps), make_cleanup(client, deps)]


__all__ = ["FunctionDeps", "build_functions"]
