"""Turning the registry templates into the registries one run serves."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from collections.abc import Collection, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks.servers import ROOT

HERE = Path(__file__).resolve().parent
LOADER = "wasmer-loader"


def installed_plugins() -> set[str]:
    return {ep.name for ep in metadata.entry_points(group="wasmkernel.plugins")}


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def dump_toml(data: Mapping[str, Any], prefix: str = "") -> str:
    """TOML for plain data: scalars and inline values first, then sub-tables and arrays of tables."""
    lines = []
    tables = []
    for key, value in data.items():
        secret = isinstance(value, dict) and set(value) <= {"env", "file", "default"}
        if (isinstance(value, dict) and not secret) or (isinstance(value, list) and value and all(isinstance(v, dict) for v in value)):
            tables.append((key, value))
        else:
            lines.append(f"{key} = {_value(value)}")
    out = "\n".join(lines) + ("\n" if lines else "")
    for key, value in tables:
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(value, list):
            for item in value:
                out += f"\n[[{name}]]\n" + dump_toml(item, name)
        else:
            out += f"\n[{name}]\n" + dump_toml(value, name)
    return out


def materialize(
    template: str,
    target: Path,
    cache_dir: Path,
    *,
    prewarm: bool = True,
    exclude: Collection[str] = (),
    loader_workers: int | None = None,
    log_level: str | None = None,
) -> list[str]:
    """Write `template` (bare | full) to `target` for this run, without `exclude`
    (and with the logging plugin at `log_level` when given); returns the
    plugins left out because they are not installed."""
    data = tomllib.loads((HERE / f"{template}.toml").read_text())
    plugins: dict[str, Any] = data["plugins"]
    available = installed_plugins()
    dropped = sorted(name for name in plugins if name not in available)
    for name in exclude:
        plugins.pop(name, None)
    for name in dropped:
        del plugins[name]
    if log_level is not None and "logging" in plugins:
        plugins["logging"].setdefault("config", {})["level"] = log_level
    loader = plugins.get(LOADER, {}).get("config")
    if loader is not None:
        loader["cache_dir"] = str(cache_dir)
        loader["prewarm"] = prewarm
        if loader_workers is not None:
            loader["workers"] = loader_workers
    for module in plugins.get("wasm", {}).get("config", {}).get("modules", []):
        module["path"] = str(ROOT / module["path"])
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(dump_toml(data))
    return dropped


_FAILING_PLUGIN = re.compile(r"plugin '([\w.-]+)'")


def check(registry: Path, env: Mapping[str, str]) -> tuple[str, str] | None:
    """Run `wasmkernel check` on `registry`: None if it assembles, else (plugin
    named in the error, or "", the error message)."""
    done = subprocess.run(
        [str(Path(sys.executable).parent / "wasmkernel"), "check", "--registry", str(registry)],
        check=False,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
    )
    if done.returncode == 0:
        return None
    message = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
    found = _FAILING_PLUGIN.search(message[0])
    return (found.group(1) if found else "", message[0])
