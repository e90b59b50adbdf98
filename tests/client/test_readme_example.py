"""The README's "Python client" examples run as written against a live app (only the URL and key change)."""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Callable
from pathlib import Path

from tests.e2e.live import LiveStack

README = Path(__file__).resolve().parents[2] / "README.md"


def examples() -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Python client\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)


def test_the_python_client_examples_run(make_stack: Callable[..., LiveStack]) -> None:
    stack = make_stack(mock_tokens_per_second=200.0)
    blocks = examples()
    assert len(blocks) == 2
    for block in blocks:
        code = block.replace("http://127.0.0.1:8000", stack.url).replace('"agk_..."', repr(stack.api_key))
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(code, str(README), "exec"), {"__name__": "__readme__"})
        printed = out.getvalue()
        assert "completed" in printed or "done" in printed, printed
