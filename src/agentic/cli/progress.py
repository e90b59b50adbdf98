"""How ``agentic ask`` shows a job on a terminal (a spinner redrawn in place) or in a log (plain lines)."""

from __future__ import annotations

import threading
import time
from typing import IO

import click

from agentic.cli.base import TERMINAL


class _Progress:
    """How ``ask`` shows a job: a spinner redrawn in place on a terminal, plain lines otherwise.

    Text goes to stdout as it streams; the spinner and status share that stream (under a lock) so a
    terminal never shows them interleaved.
    """

    FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"

    def __init__(self, out: IO[str], tty: bool) -> None:
        self.out, self.tty = out, tty
        self.started = time.monotonic()
        self.status: str | None = None
        self.text = ""
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._spinner: threading.Thread | None = None
        self._drawn = False

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def note(self, message: str) -> None:
        """A line of information (dim on a terminal)."""
        with self._lock:
            self._clear()
            self._end_text_line()
            click.echo(click.style(message, dim=True), file=self.out, color=self.tty or None)

    def set_status(self, status: str) -> None:
        if status == self.status:
            return
        self.status = status
        if self.tty:
            if status not in TERMINAL and not self.text:
                self._start_spinner()
            return
        with self._lock:
            self._end_text_line()
            click.echo(f"status: {status}", file=self.out)

    def waiting(self, label: str) -> None:
        """Show the spinner with ``label`` on a terminal; print nothing otherwise."""
        if self.tty:
            self.status = label
            self._start_spinner()

    def add_text(self, delta: str) -> None:
        if not delta:
            return
        self.pause()
        with self._lock:
            self.text += delta
            self.out.write(delta)
            self.out.flush()

    def done_prefix(self) -> str:
        """On a terminal the final line carries the status (there were no status lines before it)."""
        return "✓ completed · " if self.tty else ""

    def reset_text(self, attempts: int, offset: int = 0) -> None:
        """A retried attempt starts its text over: say so, and forget the text shown so far (all of it, or
        all but its first ``offset`` characters, which are shown again)."""
        kept = self.text[:offset] if offset > 0 else ""
        if self.text:
            self.note(f"attempt {attempts or '?'} starts over; the text above is discarded")
        self.text = ""
        self.add_text(kept)

    def pause(self) -> None:
        """Stop the spinner and clear its line (before a prompt, text, or the end)."""
        self._stop.set()
        if self._spinner is not None:
            self._spinner.join()
            self._spinner = None
        with self._lock:
            self._clear()

    def _start_spinner(self) -> None:
        if self._spinner is not None:
            return
        self._stop.clear()
        self._spinner = threading.Thread(target=self._spin, name="agentic-spinner", daemon=True)
        self._spinner.start()

    def _spin(self) -> None:
        frame = 0
        while not self._stop.is_set():
            with self._lock:
                if self._stop.is_set():
                    break
                label = f"{self.FRAMES[frame % len(self.FRAMES)]} {self.status} {self.elapsed:.1f}s"
                self.out.write("\r\x1b[K" + click.style(label, fg="cyan"))
                self.out.flush()
                self._drawn = True
            frame += 1
            self._stop.wait(0.1)

    def _clear(self) -> None:
        if self._drawn:
            self.out.write("\r\x1b[K")
            self.out.flush()
            self._drawn = False

    def _end_text_line(self) -> None:
        if self.text and not self.text.endswith("\n"):
            self.out.write("\n")
            self.text += "\n"
