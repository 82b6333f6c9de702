"""Database URLs: which kind of database one names, and how to show it without its password."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

SQLITE_PREFIX = "sqlite:///"
POSTGRES_SCHEMES = ("postgresql", "postgres")
_HIDDEN = "***"


class StateError(RuntimeError):
    """The hub's state database cannot be opened or used as asked."""


def hide_password(url: str) -> str:
    """`url` with any password (in the user part or a `password=` parameter) replaced by ***,
    so that a URL can be logged or put in an error message."""
    parts = urlsplit(url)
    userinfo, at, hostport = parts.netloc.rpartition("@")
    has_password = at and ":" in userinfo
    if not has_password and "password=" not in parts.query:
        return url  # untouched: re-assembling would lose sqlite:////'s empty host
    netloc = f"{userinfo.partition(':')[0]}:{_HIDDEN}@{hostport}" if has_password else parts.netloc
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    query = urlencode([(k, _HIDDEN if k == "password" else v) for k, v in pairs], safe="*")
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def scheme_of(url: str) -> str:
    """The dialect `url` names, "sqlite" or "postgresql"; StateError for anything else."""
    scheme = url.partition("://")[0].lower()
    if scheme == "sqlite":
        return "sqlite"
    if scheme in POSTGRES_SCHEMES:
        return "postgresql"
    raise StateError(
        f"unknown database URL {hide_password(url)!r}: expected sqlite:////absolute/path/hub.db "
        "or postgresql://user:password@host:5432/database"
    )


def sqlite_path(url: str) -> str:
    """The file a sqlite URL names, as SQLAlchemy spells it: sqlite:////absolute/path (four
    slashes) or sqlite:///relative/path (three)."""
    if not url.lower().startswith(SQLITE_PREFIX):
        raise StateError(f"bad SQLite URL {url!r}: expected sqlite:////absolute/path/hub.db")
    path = url[len(SQLITE_PREFIX) :]
    # Each thread has its own connection, and each in-memory connection its own database:
    # an in-memory "database" would silently differ from one thread to the next.
    if not path or path.startswith(":memory:") or "?" in path:
        raise StateError(
            f"bad SQLite URL {url!r}: name a file (sqlite:////absolute/path/hub.db); "
            "in-memory databases and URL parameters are not supported"
        )
    return path
