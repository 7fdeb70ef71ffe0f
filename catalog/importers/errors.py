"""The one error importers raise for bad input: it names the file and the line."""

from __future__ import annotations

from pathlib import Path


class ImportFileError(Exception):
    """A file could not be imported; carries the file path and the 1-based line number when known."""

    def __init__(self, path: Path | str, line: int | None, message: str) -> None:
        self.path, self.line, self.message = Path(path), line, message
        where = f"{self.path}, line {line}" if line else str(self.path)
        super().__init__(f"{where}: {message}")
