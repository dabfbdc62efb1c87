"""The deployment recipes in deploy/ are well-formed: the Kubernetes manifest
parses and probes /healthz and /readyz, the nginx template renders into a
configuration `nginx -t` accepts. (The Containerfile's instructions are run
by tests/test_container.py.)"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.reliability.harness import ROOT, nginx_binary, nginx_conf

DEPLOY = ROOT / "deploy"


def manifests() -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all((DEPLOY / "kubernetes.yaml").read_text()) if doc]


def test_kubernetes_manifest_probes_and_secrets() -> None:
    docs = {doc["kind"]: doc for doc in manifests()}
    assert set(docs) == {"Deployment", "Service"}
    container = docs["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    secret = next(env for env in container["env"] if env["name"] == "WASMKERNEL_JWT_SECRET")
    assert secret["valueFrom"]["secretKeyRef"]["name"] == "wasmkernel-secrets"
    assert not any("value" in env and "SECRET" in env["name"] for env in container["env"])
    assert "0.0.0.0:8000" in " ".join(container["args"])
    selector = docs["Deployment"]["spec"]["selector"]["matchLabels"]
    assert docs["Service"]["spec"]["selector"] == selector == docs["Deployment"]["spec"]["template"]["metadata"]["labels"]


@pytest.mark.skipif(nginx_binary() is None, reason="nginx is not installed")
def test_nginx_template_passes_nginx_t(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    conf = tmp_path / "nginx.conf"
    conf.write_text(nginx_conf("127.0.0.1:18080", ["127.0.0.1:18001", "127.0.0.1:18002"], tmp_path))
    assert "@" not in conf.read_text().split("daemon", 1)[1]
    result = subprocess.run(
        [str(nginx_binary()), "-t", "-p", str(tmp_path), "-c", str(conf), "-e", str(tmp_path / "logs" / "error.log")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
