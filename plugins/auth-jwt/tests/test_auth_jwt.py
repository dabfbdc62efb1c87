from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from wasmkernel import Application, AuthRequirement, RegistryError, Request, Route, hookimpl
from wasmkernel.cli import main
from wasmkernel.testing import app_from, running

SECRET = "s" * 48
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
RSA_PEM = RSA_KEY.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
EC_KEY = ec.generate_private_key(ec.SECP256R1())
EC_PEM = EC_KEY.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


class Routes:
    """`/whoami` echoes the identity any authenticator finds; `/compute`
    requires the scope ``matrix:compute`` (enforced by authz, when installed)."""

    @hookimpl
    def wasmkernel_routes(self, app: Application) -> list[Route]:
        authenticators = [found for _, found in app.hooks.gather("wasmkernel_authenticators")]

        async def whoami(request: Request) -> dict[str, Any]:
            for authenticator in authenticators:
                identity = await authenticator.authenticate(request)
                if identity is not None:
                    return {"subject": identity.subject, "scheme": identity.scheme, "scopes": sorted(identity.scopes), "roles": sorted(identity.roles)}
            return {"subject": None}

        async def compute(request: Request) -> dict[str, Any]:
            assert request.identity is not None
            return {"subject": request.identity.subject}

        return [Route("/whoami", whoami), Route("/compute", compute, auth=AuthRequirement(scopes=("matrix:compute",)))]


def make_app(config: dict[str, Any], *, authz: bool = False) -> Application:
    plugins: dict[str, Any] = {"router": {}, "auth-jwt": {"config": config}}
    if authz:
        plugins["authz"] = {}
    return app_from({**plugins, "t": {}}, extra_plugins={"t": Routes()}, kernel={"allow_unenforced": not authz})


def token(claims: dict[str, Any] | None = None, key: Any = SECRET, algorithm: str = "HS256", **headers: Any) -> str:
    now = int(time.time())
    payload = {"sub": "alice", "exp": now + 300, "iat": now, **(claims or {})}
    return jwt.encode({k: v for k, v in payload.items() if v is not None}, key, algorithm=algorithm, headers=headers or None)


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


async def whoami(app: Application, value: str) -> httpx.Response:
    async with running(app) as client:
        return await client.get("/whoami", headers=bearer(value))


async def test_valid_token_gives_identity_with_string_or_list_scopes() -> None:
    app = make_app({"secret": SECRET})
    async with running(app) as client:
        spaced = await client.get("/whoami", headers=bearer(token({"scope": "matrix:compute read", "roles": ["admin"]})))
        listed = await client.get("/whoami", headers={"authorization": "bearer " + token({"scope": ["read", "write"]})})
        anonymous = await client.get("/whoami")
        basic = await client.get("/whoami", headers={"Authorization": "Basic YTpi"})
    assert spaced.json() == {"subject": "alice", "scheme": "jwt", "scopes": ["matrix:compute", "read"], "roles": ["admin"]}
    assert listed.json()["scopes"] == ["read", "write"]
    assert anonymous.json() == basic.json() == {"subject": None}


def tampered(value: str) -> str:
    header, payload, signature = value.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["scope"] = "admin"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


def hs256_with_pem_as_secret() -> str:
    """The classic key-confusion forgery: HS256 keyed with the RSA public key."""
    segments = [
        base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=").decode()
        for part in ({"alg": "HS256", "typ": "JWT"}, {"sub": "mallory", "exp": int(time.time()) + 300})
    ]
    signing_input = ".".join(segments).encode()
    signature = base64.urlsafe_b64encode(hmac.new(RSA_PEM.encode(), signing_input, hashlib.sha256).digest()).rstrip(b"=").decode()
    return f"{signing_input.decode()}.{signature}"


# Tokens are minted when each test runs (lambdas): minted at collection, their
# exp/nbf would drift on a slow run.
@pytest.mark.parametrize(
    ("config", "value", "reason"),
    [
        ({}, lambda: token({"exp": int(time.time()) - 120}), "token expired"),
        ({}, lambda: token({"nbf": int(time.time()) + 120}), "token not yet valid"),
        ({}, lambda: token({"exp": None}), "token is missing the 'exp' claim"),
        ({}, lambda: token(key="t" * 48), "invalid signature"),
        ({}, lambda: tampered(token()), "invalid signature"),
        ({}, lambda: token(key=None, algorithm="none"), "algorithm not allowed"),
        ({}, lambda: token(algorithm="HS512", key=SECRET * 2), "algorithm not allowed"),
        ({}, lambda: "not.a.jwt", "malformed token"),
        ({}, lambda: "x" * 9000, "token too large"),
        ({}, lambda: token({"sub": None}), "token has no valid 'sub' claim"),
        ({}, lambda: token({"scope": 42}), "invalid 'scope' claim"),
        ({"audience": "wasmkernel"}, lambda: token({"aud": "other"}), "invalid audience"),
        ({"audience": "wasmkernel"}, token, "token is missing the 'aud' claim"),
        ({"issuer": "https://idp"}, lambda: token({"iss": "https://evil"}), "invalid issuer"),
        ({"algorithms": ["RS256"], "secret": None, "public_key": RSA_PEM}, hs256_with_pem_as_secret, "algorithm not allowed"),
    ],
)
async def test_bad_tokens_are_refused_with_a_precise_reason(config: dict[str, Any], value: Callable[[], str], reason: str) -> None:
    response = await whoami(make_app({"secret": SECRET, **config}), value())
    assert response.status_code == 401
    assert response.json()["detail"] == reason
    assert response.headers["www-authenticate"] == f'Bearer realm="wasmkernel", error="invalid_token", error_description="{reason}"'


async def test_leeway_audience_and_issuer_when_configured() -> None:
    app = make_app({"secret": SECRET, "audience": "wasmkernel", "issuer": "https://idp", "leeway_seconds": 60})
    late = token({"exp": int(time.time()) - 30, "aud": "wasmkernel", "iss": "https://idp"})
    assert (await whoami(app, late)).json()["subject"] == "alice"
    # Not configured: not checked.
    assert (await whoami(make_app({"secret": SECRET}), token({"aud": "anyone", "iss": "anywhere"}))).status_code == 200


async def test_rs256_public_key() -> None:
    app = make_app({"algorithms": ["RS256", "PS256"], "public_key": RSA_PEM})
    async with running(app) as client:
        rs = await client.get("/whoami", headers=bearer(token(key=RSA_KEY, algorithm="RS256")))
        ps = await client.get("/whoami", headers=bearer(token(key=RSA_KEY, algorithm="PS256")))
        other = await client.get("/whoami", headers=bearer(token(key=rsa.generate_private_key(public_exponent=65537, key_size=2048), algorithm="RS256")))
    assert rs.json()["subject"] == ps.json()["subject"] == "alice"
    assert other.json()["detail"] == "invalid signature"


async def test_jwks_file_selects_by_kid(tmp_path: Path) -> None:
    ec_jwk = {**json.loads(jwt.algorithms.ECAlgorithm.to_jwk(EC_KEY.public_key())), "kid": "ec-1", "alg": "ES256"}
    rsa_jwk = {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(RSA_KEY.public_key())), "kid": "rsa-1", "alg": "RS256"}
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [ec_jwk, rsa_jwk]}))
    app = make_app({"algorithms": ["ES256", "RS256"], "jwks_file": str(path)})
    async with running(app) as client:
        es = await client.get("/whoami", headers=bearer(token(key=EC_KEY, algorithm="ES256", kid="ec-1")))
        rs = await client.get("/whoami", headers=bearer(token(key=RSA_KEY, algorithm="RS256", kid="rsa-1")))
        swapped = await client.get("/whoami", headers=bearer(token(key=RSA_KEY, algorithm="RS256", kid="ec-1")))
        unknown = await client.get("/whoami", headers=bearer(token(key=EC_KEY, algorithm="ES256", kid="nope")))
        no_kid = await client.get("/whoami", headers=bearer(token(key=EC_KEY, algorithm="ES256")))
    assert es.json()["subject"] == rs.json()["subject"] == "alice"
    assert swapped.json()["detail"] == "algorithm not allowed"
    assert unknown.json()["detail"] == "unknown key id"
    assert no_kid.json()["detail"] == "token has no 'kid' header"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"algorithms": ["none"], "secret": SECRET}, "'none' is refused"),
        ({"algorithms": ["HS256", "RS256"], "secret": SECRET}, "mixing HMAC"),
        ({"algorithms": ["XX1"], "secret": SECRET}, "unknown algorithm 'XX1'"),
        ({"algorithms": []}, "algorithms"),
        ({}, "HS\\* algorithms need a secret"),
        ({"secret": ""}, "the secret is empty; HS256 needs at least 32 bytes. Generate one with: python -c"),
        ({"secret": "short"}, "5 bytes long"),
        ({"algorithms": ["HS512"], "secret": "x" * 40}, "at least 64 bytes"),
        ({"secret": SECRET, "public_key": RSA_PEM}, "verify with `secret` only"),
        ({"algorithms": ["RS256"], "secret": SECRET, "public_key": RSA_PEM}, "key confusion"),
        ({"algorithms": ["RS256"]}, "exactly one of public_key or jwks_file"),
        ({"algorithms": ["RS256"], "public_key": "garbage"}, "not a PEM-encoded public key"),
        ({"algorithms": ["RS256"], "public_key": EC_PEM}, "cannot verify RS256"),
        ({"algorithms": ["ES256"], "jwks_file": "missing.json"}, "cannot read"),
        ({"secret": {"env": "WASMKERNEL_TEST_UNSET_SECRET"}}, "environment variable WASMKERNEL_TEST_UNSET_SECRET is not set"),
        ({"secret": SECRET, "surprise": 1}, "surprise"),
    ],
)
def test_unsafe_or_broken_config_stops_startup(config: dict[str, Any], message: str) -> None:
    with pytest.raises(RegistryError, match=message) as info:
        make_app(config)
    assert SECRET not in str(info.value)


def test_jwks_refuses_symmetric_keys(tmp_path: Path) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}))
    with pytest.raises(RegistryError, match=r"keys\[0\] is not a public key"):
        make_app({"algorithms": ["ES256"], "jwks_file": str(path)})


async def test_missing_scope_is_403_through_authz() -> None:
    pytest.importorskip("wasmkernel_authz")
    app = make_app({"secret": SECRET}, authz=True)
    async with running(app) as client:
        missing = await client.get("/compute", headers=bearer(token({"scope": "read"})))
        granted = await client.get("/compute", headers=bearer(token({"scope": ["matrix:compute"]})))
        anonymous = await client.get("/compute")
    assert missing.status_code == 403
    assert missing.json()["detail"] == "missing scope(s): matrix:compute"
    assert granted.json() == {"subject": "alice"}
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == 'Bearer realm="wasmkernel"'


def write_registry(tmp_path: Path, config: str) -> Path:
    path = tmp_path / "registry.toml"
    path.write_text(f"[plugins.router]\n[plugins.auth-jwt.config]\n{config}\n")
    return path


def test_token_command_mints_a_verifiable_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TEST_JWT_SECRET", SECRET)
    registry = write_registry(tmp_path, 'secret = { env = "TEST_JWT_SECRET" }\naudience = "wk"')
    argv = ["--registry", str(registry), "token", "--scope", "matrix:compute read", "--role", "admin", "--sub", "bob", "--ttl", "60"]
    assert main(argv) == 0
    claims = jwt.decode(capsys.readouterr().out.strip(), SECRET, algorithms=["HS256"], audience="wk")
    assert claims["sub"] == "bob"
    assert claims["scope"] == "matrix:compute read"
    assert claims["roles"] == ["admin"]
    assert claims["exp"] - claims["iat"] == 60


def test_token_command_explains_what_is_wrong(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("TEST_JWT_SECRET", raising=False)
    assert main(["--registry", str(write_registry(tmp_path, 'secret = { env = "TEST_JWT_SECRET" }')), "token"]) == 1
    assert "environment variable TEST_JWT_SECRET is not set" in capsys.readouterr().err
    monkeypatch.setenv("TEST_JWT_SECRET", "short")
    assert main(["--registry", str(write_registry(tmp_path, 'secret = { env = "TEST_JWT_SECRET" }')), "token"]) == 1
    assert "[plugins.auth-jwt] config.secret: the secret is 5 bytes long" in capsys.readouterr().err
    pem = RSA_PEM.replace("\n", "\\n")
    assert main(["--registry", str(write_registry(tmp_path, f'algorithms = ["RS256"]\npublic_key = "{pem}"')), "token"]) == 1
    assert "minting needs an HS* configuration" in capsys.readouterr().err
