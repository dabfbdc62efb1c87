from __future__ import annotations

from typing import Any

import attrs
import pytest

from wasmkernel import Application, AuthRequirement, Identity, RegistryError, Request, Route, StartupError, Unauthorized, hookimpl
from wasmkernel.testing import app_from, running


@attrs.frozen
class TokenAuthenticator:
    """A third-party scheme: ``X-<scheme>: <subject>:<scope>,<scope>...``;
    the subject "bad" is an invalid credential."""

    scheme: str
    calls: list[str] = attrs.field(factory=list, eq=False)

    @property
    def challenge(self) -> str:
        return f'{self.scheme.title()} realm="test"'

    async def authenticate(self, request: Request) -> Identity | None:
        self.calls.append(request.path)
        value = request.headers.get(f"x-{self.scheme}")
        if value is None:
            return None
        subject, _, scopes = value.partition(":")
        if subject == "bad":
            raise Unauthorized(f"bad {self.scheme} credential")
        granted: Any = {"scopes": scopes.split(",") if scopes else [], "roles": ["staff"] if subject == "staff" else []}
        return Identity(subject=subject, scheme=self.scheme, **granted)


def no_interns(identity: Identity, requirement: AuthRequirement, route: Route) -> str | None:
    return "interns may not delete" if identity.subject == "intern" and route.name == "delete" else None


class ThirdParty:
    """An in-memory plugin: two authenticators, a policy and some routes."""

    def __init__(self) -> None:
        self.authenticators = [TokenAuthenticator("alpha"), TokenAuthenticator("beta")]

    @hookimpl
    def wasmkernel_authenticators(self, app: Application) -> list[TokenAuthenticator]:
        return self.authenticators

    @hookimpl
    def wasmkernel_access_policies(self, app: Application) -> list[Any]:
        return [no_interns]

    @hookimpl
    def wasmkernel_routes(self, app: Application) -> list[Route]:
        async def me(request: Request) -> dict[str, Any]:
            identity = request.identity
            return {"subject": identity.subject if identity else None, "scheme": identity.scheme if identity else None}

        return [
            Route("/open", me, name="open"),
            Route("/declared-public", me, name="declared-public", auth=AuthRequirement(required=False)),
            Route("/me", me, name="me", auth=AuthRequirement()),
            Route("/compute", me, name="compute", methods=["POST"], auth=AuthRequirement(scopes=("matrix:compute",))),
            Route("/admin", me, name="admin", auth=AuthRequirement(roles=("staff",))),
            Route("/thing", me, name="delete", methods=["DELETE"], auth=AuthRequirement()),
        ]


def make_app(config: dict[str, Any] | None = None, plugin: ThirdParty | None = None) -> Application:
    return app_from({"router": {}, "authz": {"config": config or {}}, "t": {}}, extra_plugins={"t": plugin or ThirdParty()})


async def test_anonymous_request_gets_401_with_every_scheme_challenge() -> None:
    async with running(make_app()) as client:
        response = await client.get("/me")
    assert response.status_code == 401
    assert response.json()["detail"] == "Authentication required"
    assert response.headers.get_list("www-authenticate") == ['Alpha realm="test"', 'Beta realm="test"']


async def test_schemes_are_pluggable_and_tried_in_order() -> None:
    plugin = ThirdParty()
    async with running(make_app(plugin=plugin)) as client:
        alpha = await client.get("/me", headers={"X-Alpha": "ann", "X-Beta": "bob"})
        beta = await client.get("/me", headers={"X-Beta": "bob"})
        invalid = await client.get("/me", headers={"X-Alpha": "bad", "X-Beta": "bob"})
    assert alpha.json() == {"subject": "ann", "scheme": "alpha"}
    assert beta.json() == {"subject": "bob", "scheme": "beta"}
    # An invalid credential stops the search: no fallback to the next scheme.
    assert invalid.status_code == 401
    assert invalid.json()["detail"] == "bad alpha credential"
    assert invalid.headers["www-authenticate"] == 'Alpha realm="test"'
    assert plugin.authenticators[1].calls == ["/me"]


async def test_missing_grants_and_policies_are_403() -> None:
    async with running(make_app()) as client:
        no_scope = await client.post("/compute", headers={"X-Alpha": "ann:read"})
        scoped = await client.post("/compute", headers={"X-Alpha": "ann:read,matrix:compute"})
        no_role = await client.get("/admin", headers={"X-Alpha": "ann"})
        staff = await client.get("/admin", headers={"X-Alpha": "staff"})
        intern = await client.delete("/thing", headers={"X-Alpha": "intern"})
    assert no_scope.status_code == 403
    assert no_scope.json()["detail"] == "missing scope(s): matrix:compute"
    assert scoped.json()["subject"] == "ann"
    assert no_role.json()["detail"] == "missing role(s): staff"
    assert staff.status_code == 200
    assert intern.status_code == 403
    assert intern.json()["detail"] == "interns may not delete"


async def test_public_routes_are_not_wrapped() -> None:
    plugin = ThirdParty()
    app = make_app(plugin=plugin)
    async with running(app) as client:
        open_ = await client.get("/open", headers={"X-Alpha": "bad"})
        declared = await client.get("/declared-public")
        missing = await client.get("/nowhere")
    assert open_.json() == declared.json() == {"subject": None, "scheme": None}
    assert missing.status_code == 404
    assert plugin.authenticators[0].calls == []


async def test_registry_overrides_and_default_required() -> None:
    config = {
        "default_auth": "required",
        "routes": {"open": {"auth": "public"}, "me": {"auth": "public"}, "compute": {"scopes": ["other"]}},
    }
    async with running(make_app(config)) as client:
        me = await client.get("/me")
        open_ = await client.get("/open")
        declared = await client.get("/declared-public")
        compute = await client.post("/compute", headers={"X-Alpha": "ann:matrix:compute"})
    assert me.status_code == open_.status_code == 200
    # Declared public by its plugin: the route's own declaration beats the default.
    assert declared.status_code == 200
    assert compute.json()["detail"] == "missing scope(s): other"


async def test_default_required_protects_undeclared_routes() -> None:
    async with running(make_app({"default_auth": "required"})) as client:
        response = await client.get("/open")
        allowed = await client.get("/open", headers={"X-Beta": "bob"})
    assert response.status_code == 401
    assert allowed.json() == {"subject": "bob", "scheme": "beta"}


async def test_without_authenticators_protected_routes_fail_closed() -> None:
    class RoutesOnly:
        @hookimpl
        def wasmkernel_routes(self, app: Application) -> list[Route]:
            return [Route("/me", lambda request: {"ok": True}, auth=AuthRequirement())]

    app = app_from({"router": {}, "authz": {}, "t": {}}, extra_plugins={"t": RoutesOnly()})
    async with running(app) as client:
        response = await client.get("/me")
    assert response.status_code == 401
    assert "www-authenticate" not in response.headers


@pytest.mark.parametrize(
    ("config", "error", "message"),
    [
        ({"routes": {"typo": {"auth": "public"}}}, StartupError, "unknown route name.*typo"),
        ({"routes": {"me": {"auth": "maybe"}}}, RegistryError, "auth"),
        ({"default_auth": "private"}, RegistryError, "default_auth"),
    ],
)
def test_bad_config_stops_startup(config: dict[str, Any], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        make_app(config)


async def test_with_the_bundled_jwt_and_apikey_plugins() -> None:
    pytest.importorskip("wasmkernel_auth_jwt")
    pytest.importorskip("wasmkernel_auth_apikey")
    plugins: dict[str, Any] = {
        "router": {},
        "authz": {},
        "auth-jwt": {"config": {"secret": "s" * 32}},
        "auth-apikey": {"config": {"keys": "ci:0123456789abcdef", "scopes": ["matrix:compute"]}},
        "t": {"after": ["auth-apikey"]},  # schemes are tried (and listed) in plugin order
    }
    async with running(app_from(plugins, extra_plugins={"t": ThirdParty()})) as client:
        anonymous = await client.post("/compute")
        keyed = await client.post("/compute", headers={"X-API-Key": "0123456789abcdef"})
    assert anonymous.headers["www-authenticate"] == 'Bearer realm="wasmkernel", ApiKey header="X-API-Key", Alpha realm="test", Beta realm="test"'
    assert keyed.json() == {"subject": "ci", "scheme": "apikey"}
