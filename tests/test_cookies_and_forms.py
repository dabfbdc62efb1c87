"""Cookies as browsers send them, `Set-Cookie` with secure defaults, and form
bodies (urlencoded and multipart, with limits and spooled files)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from wasmkernel import FormLimits, Request, Response, Route, UploadFile, hookimpl
from wasmkernel.cookies import parse_cookies, set_cookie_value
from wasmkernel.testing import app_from, running

SMALL = FormLimits(max_fields=3, max_files=1, max_field_size=64, spool_size=16)


class Forms:
    def __init__(self) -> None:
        self.uploads: list[UploadFile] = []

    @hookimpl
    def wasmkernel_routes(self, app: Any) -> list[Route]:
        async def cookies(request: Request) -> dict[str, str]:
            return request.cookies

        async def login(request: Request) -> Response:
            response = Response(b"ok")
            response.set_cookie("session", "abc123", max_age=3600)
            response.delete_cookie("old")
            return response

        async def form(request: Request) -> dict[str, Any]:
            fields: dict[str, Any] = {}
            for name, value in await request.form(SMALL):
                if isinstance(value, UploadFile):
                    self.uploads.append(value)
                    fields[name] = {"filename": value.filename, "type": value.content_type, "size": value.size, "content": (await value.read()).decode()}
                else:
                    fields[name] = value
            return fields

        return [
            Route("/cookies", cookies),
            Route("/login", login, methods=["POST"]),
            Route("/form", form, methods=["POST"], max_body_size=4096),
        ]


@pytest.fixture
async def forms() -> AsyncIterator[tuple[httpx.AsyncClient, Forms]]:
    plugin = Forms()
    async with running(app_from({"router": {}, "forms": {}}, extra_plugins={"forms": plugin})) as client:
        yield client, plugin


async def test_one_bad_cookie_never_drops_the_others(forms: tuple[httpx.AsyncClient, Forms]) -> None:
    """Issue 27: with `SimpleCookie`, `tracker=a b` (a space, as browsers
    accept) dropped every cookie of the request, the session's included."""
    client, _ = forms
    header = 'tracker=a b; session=abc; prefs={"a":1,"b":2}; name=ü; quoted="q"; =nameless; session=second'.encode()
    response = await client.get("/cookies", headers=[(b"cookie", header)])
    assert response.json() == {"tracker": "a b", "session": "abc", "prefs": '{"a":1,"b":2}', "name": "ü", "quoted": "q"}


def test_cookies_of_several_headers() -> None:
    assert parse_cookies(["a=1", "b=2; a=3"]) == {"a": "1", "b": "2"}


async def test_set_cookie_has_secure_defaults(forms: tuple[httpx.AsyncClient, Forms]) -> None:
    client, _ = forms
    response = await client.post("/login")
    assert response.headers.get_list("set-cookie") == [
        "session=abc123; Path=/; Max-Age=3600; Secure; HttpOnly; SameSite=Lax",
        "old=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Secure; HttpOnly; SameSite=Lax",
    ]


@pytest.mark.parametrize(
    ("name", "value", "options"),
    [
        ("bad name", "v", {}),
        ("n", "a;b", {}),
        ("n", "a b", {}),
        ("n", "ü", {}),
        ("n", "v", {"samesite": "none", "secure": False}),
        ("__Host-n", "v", {"path": "/app"}),
        ("__Secure-n", "v", {"secure": False}),
        ("n", "v", {"path": "/; Domain=evil"}),
    ],
)
def test_set_cookie_refuses_what_browsers_misread(name: str, value: str, options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="cookie"):
        set_cookie_value(name, value, **options)


async def test_urlencoded_form(forms: tuple[httpx.AsyncClient, Forms]) -> None:
    client, _ = forms
    response = await client.post("/form", data={"a": "1", "b": "é x"})
    assert response.json() == {"a": "1", "b": "é x"}


async def test_multipart_form_spools_large_files_and_closes_them(forms: tuple[httpx.AsyncClient, Forms]) -> None:
    client, plugin = forms
    content = "x" * 100  # above SMALL.spool_size: written to a temporary file
    response = await client.post("/form", data={"title": "t"}, files={"upload": ("a.txt", content.encode(), "text/plain")})
    assert response.json() == {"title": "t", "upload": {"filename": "a.txt", "type": "text/plain", "size": 100, "content": content}}
    (upload,) = plugin.uploads
    assert upload.file.closed  # the kernel closed (deleted) it when the request ended


@pytest.mark.parametrize(
    ("data", "files", "status", "detail"),
    [
        ({f"f{i}": "v" for i in range(4)}, None, 400, "more than 3 fields"),
        ({"f": "v" * 65}, {"u": ("a", b"x")}, 400, "exceeds 64 bytes"),
        (None, {"u": ("a", b"x"), "v": ("b", b"y")}, 400, "more than 1 files"),
        ({"f": "v" * 5000}, None, 413, "exceeds 4096 bytes"),
    ],
)
async def test_form_limits(forms: tuple[httpx.AsyncClient, Forms], data: Any, files: Any, status: int, detail: str) -> None:
    client, plugin = forms
    response = await client.post("/form", data=data, files=files)
    assert response.status_code == status
    assert detail in response.json()["detail"]
    assert all(upload.file.closed for upload in plugin.uploads)


@pytest.mark.parametrize(
    ("content_type", "body", "status"),
    [
        ("multipart/form-data; boundary=X", b"--X\r\nContent-Disposition: form-data; name=a\r\n\r\nunfinished", 400),
        ("multipart/form-data; boundary=X", b"--X\r\nContent-Type: text/plain\r\n\r\nno name\r\n--X--\r\n", 400),
        ("multipart/form-data", b"", 415),
        ("application/json", b"{}", 415),
        ("application/x-www-form-urlencoded", b"a=%ff", 400),
    ],
)
async def test_malformed_forms(forms: tuple[httpx.AsyncClient, Forms], content_type: str, body: bytes, status: int) -> None:
    client, _ = forms
    response = await client.post("/form", content=body, headers={"content-type": content_type})
    assert response.status_code == status, response.text
