"""Cookies: the request's `Cookie` headers read as browsers write them, and
`Set-Cookie` values written with secure defaults (RFC 6265bis)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Literal

#: A cookie name: an RFC 9110 token.
_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
#: cookie-octets: visible ASCII but for DQUOTE, comma, semicolon and backslash.
_VALUE = re.compile(r"[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*")
#: An attribute value (Path, Domain): no control character and no semicolon.
_ATTRIBUTE = re.compile(r"[\x20-\x3a\x3c-\x7e]*")
SameSite = Literal["strict", "lax", "none"]


def parse_cookies(headers: Iterable[str]) -> dict[str, str]:
    """The cookies of `Cookie` header values (as latin-1 text, decoded here as
    UTF-8), the way browsers and RFC 6265bis §5.4 read them: split on ``;``,
    then on the first ``=``, whitespace trimmed, one pair of double quotes
    removed. A malformed pair never drops the others; the first of a repeated
    name wins (browsers send the most specific path first); nameless pairs are skipped."""
    cookies: dict[str, str] = {}
    for header in headers:
        text = header.encode("latin-1").decode("utf-8", "replace")
        for pair in text.split(";"):
            name, _, value = pair.partition("=")
            name, value = name.strip(), value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            if name:
                cookies.setdefault(name, value)
    return cookies


def set_cookie_value(
    name: str,
    value: str,
    *,
    max_age: int | None = None,
    expires: datetime | None = None,
    path: str = "/",
    domain: str | None = None,
    secure: bool = True,
    httponly: bool = True,
    samesite: SameSite = "lax",
) -> str:
    """A `Set-Cookie` header value; `ValueError` for a name, value or
    attribute a browser would misread or drop (encode other values first,
    e.g. base64url), `SameSite=None` without `Secure`, or a `__Host-`/
    `__Secure-` name without what its prefix requires."""
    if not _NAME.fullmatch(name):
        raise ValueError(f"cookie name {name[:40]!r} is not an HTTP token")
    if not _VALUE.fullmatch(value):
        raise ValueError(f"cookie {name!r}: the value may hold only visible ASCII other than '\"', ',', ';' and '\\' (encode it first)")
    if samesite not in ("strict", "lax", "none"):
        raise ValueError(f"cookie {name!r}: samesite must be 'strict', 'lax' or 'none'")
    if (samesite == "none" or name.startswith(("__Secure-", "__Host-"))) and not secure:
        raise ValueError(f"cookie {name!r}: SameSite=None and the __Secure-/__Host- prefixes need secure=True")
    if name.startswith("__Host-") and (path != "/" or domain is not None):
        raise ValueError(f"cookie {name!r}: a __Host- cookie needs path='/' and no domain")
    parts = [f"{name}={value}"]
    for attribute, given in (("Path", path), ("Domain", domain)):
        if given is not None:
            if not _ATTRIBUTE.fullmatch(given):
                raise ValueError(f"cookie {name!r}: {attribute} has a control character or ';'")
            parts.append(f"{attribute}={given}")
    if max_age is not None:
        parts.append(f"Max-Age={int(max_age)}")
    if expires is not None:
        parts.append("Expires=" + format_datetime(expires.astimezone(UTC), usegmt=True))
    parts += ["Secure"] * secure + ["HttpOnly"] * httponly + [f"SameSite={samesite.capitalize()}"]
    return "; ".join(parts)
