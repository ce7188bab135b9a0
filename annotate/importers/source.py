"""Reading an import file line by line, in constant memory.

A file is read in binary and decoded one line at a time, so invalid UTF-8 is reported with
its line number and a file of any length never has to fit in memory. Progress is reported
in bytes (the command line draws a tqdm bar from it).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

from django.conf import settings

from annotate.importers.records import LineError

Progress = Callable[[int], None]


def max_line_bytes() -> int:
    """Longest accepted line: room for a problem, a proof, grades and analyses at full size."""
    return max(1024**2, 64 * settings.IMPORT_MAX_TEXT_CHARS)


def file_size_error(size: int) -> LineError | None:
    limit = settings.IMPORT_MAX_FILE_BYTES
    if size > limit:
        return LineError(0, "", f"the file has {size} bytes, more than the limit of {limit} bytes")
    return None


BLOCK_BYTES = 1024**2


class Lines:
    """Iterate `(line_number, text)` over a binary file; a bad line yields a LineError.

    The file is read in 1 MiB blocks and split here, whatever buffering the caller's file
    object has (an upload's storage file, a path opened by the command). A line too long
    to be a record is skipped to its end and reported, never held whole in memory.
    """

    def __init__(self, fileobj: BinaryIO, progress: Progress | None = None):
        self.fileobj = fileobj
        self.progress = progress or (lambda n: None)
        self.line = 0

    def __iter__(self) -> Iterator[tuple[int, str | LineError]]:
        limit = max_line_bytes()
        for raw in self._raw_lines(limit):
            self.line += 1
            if raw is None:
                yield self.line, LineError(self.line, "", f"longer than {limit} bytes")
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield (
                    self.line,
                    LineError(self.line, "", f"not valid UTF-8 (byte {exc.start + 1} of the line)"),
                )
                continue
            if self.line == 1 and text.startswith("\ufeff"):
                text = text[1:]  # a byte-order mark written by some editors
            yield self.line, text

    def _raw_lines(self, limit: int) -> Iterator[bytes | None]:
        """Each line's bytes (newline included), or None for a line longer than `limit`."""
        pending: list[bytes] = []  # the start of a line that continues in the next block
        pending_size = 0
        overlong = False
        read = self.fileobj.read
        while block := read(BLOCK_BYTES):
            self.progress(len(block))
            start = 0
            while (end := block.find(b"\n", start)) >= 0:
                piece = block[start : end + 1]
                start = end + 1
                if overlong:
                    overlong = False
                    yield None
                    continue
                line = b"".join([*pending, piece]) if pending else piece
                pending, pending_size = [], 0
                yield None if len(line) > limit else line
            rest = block[start:]
            if not overlong and rest:
                pending.append(rest)
                pending_size += len(rest)
                if pending_size > limit:
                    overlong, pending, pending_size = True, [], 0
        if overlong:
            yield None
        elif pending:
            yield b"".join(pending)


def json_objects(lines: Lines) -> Iterator[tuple[int, Any] | list[LineError]]:
    """Decode one JSON value per non-blank line: `(line, value)`, or that line's errors."""
    for line, text in lines:
        if isinstance(text, LineError):
            yield [text]
            continue
        if not text.strip():
            continue
        try:
            yield line, json.loads(text.rstrip("\r\n"))
        except json.JSONDecodeError as exc:
            yield [LineError(line, "", f"not valid JSON: {exc.msg} (column {exc.colno})")]
