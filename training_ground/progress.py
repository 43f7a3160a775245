"""Progress bars that report also when output is piped into a log.

tqdm turns itself off (``disable=None``) or redraws in place with carriage returns, which a log
file keeps as one endless line. Piped, these bars write a line every ``PIPED_INTERVAL`` seconds
instead, and always their first and last state. This module imports nothing of the package, so
every layer may use it.
"""

from __future__ import annotations

import sys

from tqdm import tqdm

PIPED_INTERVAL = 30.0  # s between lines in a log


class _Lines:
    """A stream that turns tqdm's in-place redraws into lines."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text: str) -> None:
        text = text.replace("\r", "\n").replace("\x1b[A", "")
        lines = [line for line in text.split("\n") if line.strip()]
        if lines:
            self.stream.write("\n".join(lines) + "\n")

    def flush(self) -> None:
        self.stream.flush()


def progress_bar(total=None, desc: str = "", enabled: bool = True, **kwargs) -> tqdm:
    """A tqdm bar on stderr: redrawn in place on a terminal, a line every PIPED_INTERVAL s when piped."""
    stream = sys.stderr
    if enabled and not stream.isatty():
        kwargs = {"mininterval": PIPED_INTERVAL, "maxinterval": PIPED_INTERVAL, "ncols": 100, **kwargs,
                  "file": _Lines(stream)}
        kwargs.pop("dynamic_ncols", None)
    return tqdm(total=total, desc=desc, disable=not enabled, **kwargs)
