"""One exception tree for everything sawubona raises on purpose.

Every message is one sentence in the user's words that names what is wrong
(file, line, column where there is one) and the fix. The CLI prints
``Error: <message>`` and exits 1; only ``--debug`` shows a trace.
"""

from __future__ import annotations


class SawubonaError(Exception):
    """Root of every error sawubona raises on purpose."""


class InputError(SawubonaError):
    """An input file cannot be read as given."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        column: str | None = None,
    ) -> None:
        self.file, self.line, self.column = file, line, column
        where = []
        if file:
            where.append(str(file))
        if line is not None:
            where.append(f"line {line}")
        if column:
            where.append(f"column {column}")
        prefix = (", ".join(where) + ": ") if where else ""
        super().__init__(prefix + message)


class MappingError(SawubonaError):
    """A mapping file (TOML) is wrong or does not fit the files."""


class StoreError(SawubonaError):
    """The store cannot be opened, or refuses an operation."""


class StoreBusyError(StoreError):
    """Another process holds the store (a load or an analysis is running)."""


class UnknownCustomerError(SawubonaError):
    """No customer has that id."""


class UnknownTableError(SawubonaError):
    """No table has that name."""
