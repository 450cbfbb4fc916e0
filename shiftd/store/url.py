"""PostgreSQL URLs in the configuration: what is accepted, and how one is shown in logs."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

SCHEMES = ("postgresql", "postgres")


def check_url(url: str) -> str:
    """`url` if it is a PostgreSQL URL naming a host (or socket directory) and a database;
    raises ValueError saying what is wrong otherwise. The message never repeats the URL
    (it may hold a password)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  # a port that is not a number raises here
    except ValueError as exc:
        raise ValueError(f"not a valid URL ({exc})") from None
    if parts.scheme not in SCHEMES:
        raise ValueError('must start with "postgresql://" (a libpq URL)')
    query = dict(parse_qsl(parts.query))
    if not (parts.hostname or query.get("host")):
        raise ValueError('must name a host: "postgresql://user@host:5432/db"')
    if not (parts.path.strip("/") or query.get("dbname")):
        raise ValueError('must name a database: "postgresql://user@host:5432/db"')
    return url


def redacted(url: str) -> str:
    """`url` as it may be logged or shown: any password replaced by `***`."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable url>"
    netloc = parts.netloc
    if parts.password is not None:
        userinfo, _, hostinfo = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:***@{hostinfo}"
    query = parse_qsl(parts.query, keep_blank_values=True)
    if any(k == "password" for k, _ in query):
        query = [(k, "***" if k == "password" else v) for k, v in query]
    shown = (parts.scheme, netloc, parts.path, urlencode(query, safe="*"), parts.fragment)
    return urlunsplit(shown)
