"""The embedded SQLite store."""

from ._store import SQLiteStore

__all__ = ["SQLiteStore"]
