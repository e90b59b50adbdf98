"""Child processes that cannot outlive the benchmark (Linux: the kernel signals them when it dies)."""

from __future__ import annotations

import ctypes
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from typing import Any

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:  # not Linux: the atexit/close paths still stop the child
        pass


def spawn(args: list[str], **kwargs: Any) -> subprocess.Popen[str]:
    """Popen that sends the child SIGTERM if this process dies (even by SIGKILL)."""
    preexec: Callable[[], None] | None = _die_with_parent if sys.platform.startswith("linux") else None
    return subprocess.Popen(args, preexec_fn=preexec, text=True, **kwargs)  # noqa: PLW1509


def stop(process: subprocess.Popen[str], timeout: float = 10.0) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)


def free_port() -> int:
    """A port free on 127.0.0.1 right now (for servers that cannot report the one they bound)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
