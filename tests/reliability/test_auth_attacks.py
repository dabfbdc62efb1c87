"""Authentication attacks end to end, against a real server: every forged,
stale, misdirected or oversized credential gets 401 (403 only for a valid
identity lacking a scope), never 200 and never 5xx.

Two servers: one HS256 (secret from the environment, with `issuer` and
`audience` set) and one RS256 (a PEM public key) for the HS/RS key-confusion
attack. `/hello` is made to require the `matrix:compute` scope through authz.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.reliability.harness import API_KEY, JWT_SECRET, Instance, full_plugins, installed, registry_toml, spawn, token

pytestmark = [pytest.mark.server, pytest.mark.skipif(not installed("auth-jwt", "auth-apikey", "authz", "hello"), reason="auth plugins not installed")]

ISSUER = "https://idp.reliability.test"
AUDIENCE = "wasmkernel"
PROTECT = {"routes": {"hello": {"auth": "required", "scopes": ["matrix:compute"]}}}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: dict[str, Any], payload: dict[str, Any], key: bytes | None) -> str:
    """A JWS signed by hand (PyJWT refuses to build most of these)."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    signature = b64(hmac.new(key, signing_input.encode(), hashlib.sha256).digest()) if key is not None else ""
    return f"{signing_input}.{signature}"


def claims(**extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"sub": "mallory", "scope": "matrix:compute", "iat": now, "exp": now + 600, "iss": ISSUER, "aud": AUDIENCE, **extra}


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory, rsa_key: rsa.RSAPrivateKey) -> Iterator[tuple[Instance, Instance]]:
    workdir: Path = tmp_path_factory.mktemp("auth")
    hs = full_plugins(workdir / "hs", with_wasm=False)
    hs["auth-jwt"].update({"issuer": ISSUER, "audience": AUDIENCE})
    hs["authz"] = PROTECT
    rs = full_plugins(workdir / "rs", with_wasm=False)
    public_pem = rsa_key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    rs["auth-jwt"] = {"algorithms": ["RS256"], "public_key": public_pem}
    rs["authz"] = PROTECT
    first = spawn(registry_toml(hs), workdir / "hs")
    try:
        second = spawn(registry_toml(rs), workdir / "rs")
    except BaseException:
        first.stop()
        raise
    yield first, second
    first.stop()
    second.stop()


def get(instance: Instance, headers: dict[str, str]) -> httpx.Response:
    return httpx.get(instance.base + "/hello", headers=headers)


def test_valid_credentials_are_accepted(servers: tuple[Instance, Instance], rsa_key: rsa.RSAPrivateKey) -> None:
    hs, rs = servers
    assert get(hs, {"Authorization": f"Bearer {token(iss=ISSUER, aud=AUDIENCE)}"}).status_code == 200
    assert get(hs, {"X-API-Key": API_KEY}).status_code == 200
    assert get(rs, {"Authorization": f"Bearer {jwt.encode(claims(), rsa_key, algorithm='RS256')}"}).status_code == 200
    missing_scope = get(hs, {"Authorization": f"Bearer {token(scopes=(), iss=ISSUER, aud=AUDIENCE)}"})
    assert missing_scope.status_code == 403


def attacks(rsa_key: rsa.RSAPrivateKey) -> dict[str, str]:
    now = int(time.time())
    good = token(iss=ISSUER, aud=AUDIENCE)
    head, payload, signature = good.split(".")
    elevated = b64(json.dumps(claims(sub="admin", roles=["admin"])).encode())
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    return {
        "alg-none": forge({"alg": "none", "typ": "JWT"}, claims(), None),
        "alg-none-with-signature": forge({"alg": "none", "typ": "JWT"}, claims(), JWT_SECRET.encode()),
        "alg-None-case": forge({"alg": "None", "typ": "JWT"}, claims(), None),
        "rs256-token-on-hs-server": jwt.encode(claims(), rsa_key, algorithm="RS256"),
        "hs512-with-right-secret": jwt.encode(claims(), JWT_SECRET, algorithm="HS512"),
        "expired": token(iss=ISSUER, aud=AUDIENCE, exp=now - 3600),
        "not-yet-valid": token(iss=ISSUER, aud=AUDIENCE, nbf=now + 3600),
        "wrong-audience": token(iss=ISSUER, aud="someone-else"),
        "no-audience": token(iss=ISSUER),
        "wrong-issuer": token(iss="https://evil.example", aud=AUDIENCE),
        "no-exp": jwt.encode({k: v for k, v in claims().items() if k != "exp"}, JWT_SECRET, algorithm="HS256"),
        "wrong-secret": token(secret="another-secret-" + "x" * 40, iss=ISSUER, aud=AUDIENCE),
        "tampered-signature": f"{head}.{payload}.{flipped}",
        "tampered-payload": f"{head}.{elevated}.{signature}",
        "stripped-signature": f"{head}.{payload}.",
        "oversized": token(iss=ISSUER, aud=AUDIENCE, padding="x" * 12000),
        "garbage": secrets.token_urlsafe(64),
        "two-dots": "..",
        "non-json-header": f"{b64(b'not json')}.{payload}.{signature}",
        "empty-sub": token(iss=ISSUER, aud=AUDIENCE, sub=""),
    }


def test_forged_tokens_are_401(servers: tuple[Instance, Instance], rsa_key: rsa.RSAPrivateKey) -> None:
    hs, _ = servers
    results = {name: get(hs, {"Authorization": f"Bearer {value}"}) for name, value in attacks(rsa_key).items()}
    wrong = {name: (r.status_code, r.text[:200]) for name, r in results.items() if r.status_code != 401}
    assert not wrong, wrong
    for response in results.values():
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert "Traceback" not in response.text


def test_hs_rs_key_confusion_is_401(servers: tuple[Instance, Instance], rsa_key: rsa.RSAPrivateKey) -> None:
    """The classic confusion: an HS256 token whose HMAC key is the server's
    public RSA key (which an attacker knows)."""
    _, rs = servers
    pem = rsa_key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    for key in (pem, pem.strip(), rsa_key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)):
        response = get(rs, {"Authorization": f"Bearer {forge({'alg': 'HS256', 'typ': 'JWT'}, claims(), key)}"})
        assert response.status_code == 401, response.text
    assert get(rs, {"Authorization": f"Bearer {forge({'alg': 'none'}, claims(), None)}"}).status_code == 401


def test_huge_authorization_header_is_refused(servers: tuple[Instance, Instance]) -> None:
    hs, _ = servers
    response = get(hs, {"Authorization": "Bearer " + "a" * 200_000})
    assert response.status_code in (400, 401, 431), response.status_code


def test_random_api_keys_are_401(servers: tuple[Instance, Instance]) -> None:
    hs, _ = servers
    candidates = [secrets.token_urlsafe(n) for n in (8, 16, 24, 32, 64)] + [
        API_KEY[:-1],
        API_KEY + "x",
        API_KEY.upper(),
        API_KEY.lower() + "0",
        "ci:" + API_KEY,
        API_KEY * 2,
    ]
    statuses = {key: get(hs, {"X-API-Key": key}).status_code for key in candidates}
    assert set(statuses.values()) == {401}, statuses
