"""The one exception a bad spec raises: where (file, line, column, key) and what is wrong."""

from __future__ import annotations


class SpecError(Exception):
    """A spec that cannot be used.

    ``line``/``column`` are 1-based and ``None`` when the problem has no position (missing file).
    The loader collects every problem it can find: the raised error is the first one and ``errors``
    holds all of them (itself included), in file order.
    """

    def __init__(self, path: str, line: int | None, column: int | None, key: str, message: str) -> None:
        self.path = path
        self.line = line
        self.column = column
        self.key = key
        self.message = message
        self.errors: list[SpecError] = [self]
        super().__init__(self.one_line())

    def one_line(self) -> str:
        where = self.path
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        key = f" {self.key}:" if self.key else ""
        return f"{where}:{key} {self.message}"

    def __str__(self) -> str:
        return "\n".join(e.one_line() for e in self.errors)

    def to_dict(self) -> dict[str, object]:
        return {
            "file": self.path,
            "line": self.line,
            "column": self.column,
            "key": self.key,
            "message": self.message,
        }

    @classmethod
    def collect(cls, errors: list[SpecError]) -> SpecError:
        """One exception carrying all ``errors`` sorted by position."""
        ordered = sorted(errors, key=lambda e: (e.line or 0, e.column or 0))
        first = ordered[0]
        first.errors = ordered
        return first
