from __future__ import annotations

import hmac
from typing import Any

import pytest

from wasmkernel import Application, RegistryError, Request, Route, hookimpl
from wasmkernel.testing import app_from, running

CI_KEY = "ci-0123456789abcdef"
DASH_KEY = "dash-0123456789abcdef"


class WhoAmI:
    """Test routes: `/whoami` runs every authenticator and echoes the identity."""

    @hookimpl
    def wasmkernel_routes(self, app: Application) -> list[Route]:
        authenticators = [found for _, found in app.hooks.gather("wasmkernel_authenticators")]

        async def whoami(request: Request) -> dict[str, Any]:
            for authenticator in authenticators:
                identity = await authenticator.authenticate(request)
                if identity is not None:
                    return {"subject": identity.subject, "scheme": identity.scheme, "scopes": sorted(identity.scopes), "roles": sorted(identity.roles)}
            return {"subject": None}

        return [Route("/whoami", whoami)]


def make_app(config: dict[str, Any]) -> Application:
    return app_from({"router": {}, "auth-apikey": {"config": config}, "t": {}}, extra_plugins={"t": WhoAmI()})


async def test_valid_keys_of_both_forms_authenticate() -> None:
    app = make_app(
        {
            "keys": f"ci:{CI_KEY}, ",
            "scopes": ["matrix:compute"],
            "key": [{"name": "dashboard", "key": DASH_KEY, "scopes": ["read"], "roles": ["admin"]}],
        }
    )
    async with running(app) as client:
        ci = await client.get("/whoami", headers={"X-API-Key": CI_KEY})
        dash = await client.get("/whoami", headers={"x-api-key": DASH_KEY})
    assert ci.json() == {"subject": "ci", "scheme": "apikey", "scopes": ["matrix:compute"], "roles": []}
    assert dash.json() == {"subject": "dashboard", "scheme": "apikey", "scopes": ["read"], "roles": ["admin"]}


async def test_unknown_key_is_401_and_missing_header_is_anonymous() -> None:
    async with running(make_app({"keys": f"ci:{CI_KEY}"})) as client:
        wrong = await client.get("/whoami", headers={"X-API-Key": CI_KEY + "x"})
        empty = await client.get("/whoami", headers={"X-API-Key": ""})
        missing = await client.get("/whoami")
    assert wrong.status_code == 401
    assert wrong.json()["detail"] == "invalid API key"
    assert wrong.headers["www-authenticate"] == 'ApiKey header="X-API-Key"'
    assert empty.status_code == 401
    assert missing.json() == {"subject": None}


async def test_configurable_header() -> None:
    async with running(make_app({"keys": f"ci:{CI_KEY}", "header": "X-Token"})) as client:
        custom = await client.get("/whoami", headers={"X-Token": CI_KEY})
        default = await client.get("/whoami", headers={"X-API-Key": CI_KEY})
    assert custom.json()["subject"] == "ci"
    assert default.json() == {"subject": None}


async def test_every_stored_digest_is_compared(monkeypatch: pytest.MonkeyPatch) -> None:
    compared: list[bytes] = []
    compare = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append(a)
        return compare(a, b)

    app = make_app({"keys": ",".join(f"k{i}:{'s' * 16}{i}" for i in range(5))})
    (_, authenticator), *_ = app.hooks.gather("wasmkernel_authenticators")
    monkeypatch.setattr("wasmkernel_auth_apikey.plugin.hmac.compare_digest", spy)
    async with running(app) as client:
        first = await client.get("/whoami", headers={"X-API-Key": "s" * 16 + "0"})
        assert len(compared) == 5
        unknown = await client.get("/whoami", headers={"X-API-Key": "nope"})
        assert len(compared) == 10
    assert first.json()["subject"] == "k0"
    assert unknown.status_code == 401
    # Only digests are kept, never the keys.
    assert all(len(key.digest) == 32 for key in authenticator.keys)
    assert "s" * 16 not in repr(authenticator)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"keys": "ci"}, "entry 1 is not of the form 'name:key'"),
        ({"keys": "ci:short"}, "key 'ci' is shorter than 16 characters"),
        ({"keys": f"a:{CI_KEY},a:{DASH_KEY}"}, "key name 'a' is used twice"),
        ({"keys": f"a:{CI_KEY},b:{CI_KEY}"}, "keys 'a' and 'b' are the same secret"),
        ({"key": [{"name": "", "key": CI_KEY}]}, "key"),
        ({"key": [{"name": "x", "key": "tiny"}]}, r"key\[0\]: key 'x' is shorter"),
        ({"header": ""}, "header"),
    ],
)
def test_bad_config_is_refused_without_echoing_secrets(config: dict[str, Any], message: str) -> None:
    with pytest.raises(RegistryError, match=message) as info:
        make_app(config)
    assert CI_KEY not in str(info.value)
    assert DASH_KEY not in str(info.value)


async def test_keys_from_environment_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_API_KEYS", f"ci:{CI_KEY}")
    async with running(make_app({"keys": {"env": "TEST_API_KEYS"}})) as client:
        response = await client.get("/whoami", headers={"X-API-Key": CI_KEY})
    assert response.json()["subject"] == "ci"
