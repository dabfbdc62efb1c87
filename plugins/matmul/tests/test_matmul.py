"""HTTP behaviour of the matmul plugin over a numpy stand-in loader."""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from wasmkernel_matmul.command import find_repository, forwarded
from wasmkernel_matmul.matrices import BenchmarkResult, Operands, Product, parse_operands
from wasmkernel_matmul.plugin import Plugin, row_ranges

from wasmkernel import PluginLoadError, RegistryError, StartupError, UnprocessableEntity, input_schema, model_schema
from wasmkernel.testing import running

CHECKSUMS = {1: 0.0, 2: 2.75, 100: 749850.0, 200: 5999750.0}


@pytest.mark.parametrize("kernel", ["naive", "fast"])
async def test_checksums(fake_loader: Any, kernel: str, make_app: Any) -> None:
    async with running(make_app(fake_loader)) as client:
        for n, expected in CHECKSUMS.items():
            response = await client.get("/matmul", params={"n": n, "kernel": kernel})
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["checksum"] == expected
            assert (body["n"], body["kernel"]) == (n, kernel)
            assert body["compute_ms"] >= 0 and body["module_ms"] == 0.5


async def test_naive_is_default_and_one_call_fast_splits_rows(fake_loader: Any, make_app: Any) -> None:
    async with running(make_app(fake_loader, split_rows=3, split_min_n=10)) as client:
        assert (await client.get("/matmul?n=10")).json()["kernel"] == "naive"
        assert fake_loader.calls == [("bench_checksum", (10, 0, 10, 0))]
        fake_loader.calls.clear()
        await client.get("/matmul?n=9&kernel=fast")
        assert fake_loader.calls == [("bench_checksum", (9, 0, 9, 1))]
        fake_loader.calls.clear()
        await client.get("/matmul?n=10&kernel=fast")
    assert sorted(args for _, args in fake_loader.calls) == [(10, 0, 3, 1), (10, 3, 6, 1), (10, 6, 10, 1)]


def test_row_ranges() -> None:
    assert row_ranges(1, 2) == [(0, 1)]
    assert row_ranges(5, 2) == [(0, 2), (2, 5)]
    assert row_ranges(4, 1) == [(0, 4)]


@pytest.mark.parametrize(
    ("query", "pointers"),
    [
        ("", ["/n"]),
        ("n=0", ["/n"]),
        ("n=5001", ["/n"]),
        ("n=-3", ["/n"]),
        ("n=1e3", ["/n"]),
        ("n=abc&kernel=blas", ["/kernel", "/n"]),
        ("n=10&kernel=", ["/kernel"]),
    ],
)
async def test_bad_query_is_422(fake_loader: Any, query: str, pointers: list[str], make_app: Any) -> None:
    async with running(make_app(fake_loader)) as client:
        response = await client.get(f"/matmul?{query}")
    assert response.status_code == 422
    body = response.json()
    assert [e["pointer"] for e in body["errors"]] == pointers
    assert all(e["location"] == "query" for e in body["errors"])
    assert fake_loader.calls == []


async def test_max_n_is_configurable(fake_loader: Any, make_app: Any) -> None:
    async with running(make_app(fake_loader, max_n=50)) as client:
        assert (await client.get("/matmul?n=51")).status_code == 422
        assert (await client.get("/matmul?n=50")).status_code == 200


async def test_post_multiplies_like_numpy(fake_loader: Any, make_app: Any) -> None:
    rng = np.random.default_rng(7)
    a, b = rng.normal(size=(3, 5)), rng.normal(size=(5, 2))
    async with running(make_app(fake_loader)) as client:
        response = await client.post("/api/matmul", json={"a": a.tolist(), "b": b.tolist()})
    assert response.status_code == 200, response.text
    np.testing.assert_allclose(np.array(response.json()["c"]), a @ b, rtol=1e-12)


@pytest.mark.parametrize(
    ("body", "pointers"),
    [
        ({"a": [[1, 2], [3]], "b": [[1], [2]]}, ["/a/1"]),
        ({"a": [[1, 2]], "b": [[1], [2], [3]]}, ["/b"]),
        ({"a": [[1, "x"]], "b": [[1], [True]]}, ["/a/0/1", "/b/1/0"]),
        ({"a": [], "b": [[1]]}, ["/a"]),
        ({"a": [[1]]}, ["/b"]),  # where the missing member should be
        ({"a": [[1]], "b": [[1]], "c": 1}, [""]),
        ({"a": [[1.0] * 5], "b": [[1.0]] * 5}, ["/a/0", "/b"]),  # api_max_dim=4
        ({"a": [[1.0]] * 5, "b": [[1.0]]}, ["/a"]),
        ([1, 2], [""]),
    ],
)
async def test_bad_matrices_are_422(fake_loader: Any, body: Any, pointers: list[str], make_app: Any) -> None:
    async with running(make_app(fake_loader, api_max_dim=4)) as client:
        response = await client.post("/api/matmul", json=body)
    assert response.status_code == 422, response.text
    assert [e["pointer"] for e in response.json()["errors"]] == pointers
    assert fake_loader.calls == []


async def test_non_finite_input_is_refused_and_overflowing_result_is_422(fake_loader: Any, make_app: Any) -> None:
    async with running(make_app(fake_loader)) as client:
        nan = await client.post("/api/matmul", content=b'{"a": [[NaN]], "b": [[1e400]]}', headers={"content-type": "application/json"})
        overflow = await client.post("/api/matmul", json={"a": [[1e300, 1e300]], "b": [[1e300], [1e300]]})
    assert nan.status_code in (400, 422)  # the kernel's JSON parser refuses NaN/1e400 first (400)
    assert overflow.status_code == 422
    assert "not finite" in overflow.json()["errors"][0]["message"]
    assert fake_loader.calls[0][0] == "matmul_fast"


def test_every_ragged_row_is_listed() -> None:
    with pytest.raises(UnprocessableEntity) as caught:
        parse_operands(Operands([[1.0, 2.0], [3.0], [4.0, 5.0], []], [[1.0], [2.0, 3.0]]))
    assert [e["pointer"] for e in caught.value.extra["errors"]] == ["/a/1", "/a/3", "/b/1"]
    a, b = parse_operands(Operands([[1.0, 2.0]], [[3.0], [4.0]]))
    assert (a.rows, a.cols, b.rows, b.cols) == (1, 2, 2, 1)
    assert np.frombuffer(a.values, "<f8").tolist() == [1.0, 2.0]


async def test_malformed_json_is_400(fake_loader: Any, make_app: Any) -> None:
    async with running(make_app(fake_loader)) as client:
        response = await client.post("/api/matmul", content=b"{", headers={"content-type": "application/json"})
    assert response.status_code == 400


def test_without_a_loader_startup_says_what_to_enable(make_app: Any) -> None:
    with pytest.raises(StartupError, match="plugin 'matmul' needs a module loader: enable wasmer-loader or wasmtime-loader"):
        make_app(None)


async def test_startup_needs_the_module_and_its_exports(make_app: Any, loader_class: Any) -> None:
    with pytest.raises(PluginLoadError, match="does not export matmul_fast"):
        async with running(make_app(loader_class(exports=("bench_checksum",)))):
            pass
    with pytest.raises(PluginLoadError, match="module 'other' is not loaded"):
        async with running(make_app(loader_class(), module="other")):
            pass


def test_config_is_strict(make_app: Any) -> None:
    with pytest.raises(RegistryError, match="split_rows"):
        make_app(None, split_rows=0)
    with pytest.raises(RegistryError, match="bogus"):
        make_app(None, bogus=1)


def test_routes_declare_models_and_auth(make_app: Any, loader_class: Any) -> None:
    routes = {route.name: route for route in make_app(loader_class()).routes}
    assert input_schema(routes["matmul"].query_model)["properties"]["n"] == {"type": "integer", "minimum": 1, "maximum": 5000, "description": "Matrix size"}
    assert routes["matmul"].responses[200].model is BenchmarkResult
    api = routes["api.matmul"]
    assert api.auth is not None and api.auth.scopes == ("matrix:compute",)
    body = model_schema(api.body_model)
    assert body["$defs"]["Operands"]["properties"]["a"]["maxItems"] == 512
    assert body["$defs"]["Operands"]["required"] == ["a", "b"]
    assert api.responses[200].model is Product


def test_bench_command_forwards_given_options(tmp_path: Path) -> None:
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "benchmarks" / "__main__.py").write_text("")
    (tmp_path / "conf").mkdir()
    assert find_repository(str(tmp_path / "conf" / "registry.toml"), cwd=Path("/")) == tmp_path
    assert find_repository(str(Path("/nonexistent/registry.toml")), cwd=Path("/")) is None
    command = Plugin().wasmkernel_commands()[0]
    parser = argparse.ArgumentParser()
    parser.add_argument("--registry")
    command.add_arguments(parser)
    args = parser.parse_args(["--sizes", "100,200", "--smoke", "--cell-budget", "5"])
    assert forwarded(args) == ["--sizes", "100,200", "--cell-budget", "5", "--smoke"]


@pytest.mark.skipif(importlib.util.find_spec("wasmkernel_validation") is None, reason="the validation plugin is not installed")
async def test_schemas_work_with_the_validation_plugin(fake_loader: Any, make_app: Any) -> None:
    async with running(make_app(fake_loader, plugins=("validation",))) as client:
        ok = await client.get("/matmul?n=100&kernel=fast")
        bad = await client.get("/matmul?n=0&kernel=blas")
        wrong_type = await client.post("/api/matmul", json={"a": [[1, "x"]], "b": [[1], [2]]})
    assert ok.status_code == 200 and ok.json()["checksum"] == 749850.0
    assert bad.status_code == 422 and bad.json()["errors"]
    assert wrong_type.status_code == 422 and wrong_type.json()["errors"]
    assert fake_loader.calls == [("bench_checksum", (100, 0, 100, 1))]
