"""Compute routes (issue 22 classes 13 and 15): arguments are checked against
the export's types (400 problem+json), non-finite results are a 502, and no
answer carries a trap's details or a Python message."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from wasmkernel_wasm import WasmBadArguments
from wasmkernel_wasm.testing import loader_of, wasm_plugins

from wasmkernel import Application, StartupError
from wasmkernel.testing import app_from, running


def numbers_app(loader_name: str, dist: Path, cache: Path) -> Application:
    config = {
        "cache_dir": str(cache),
        "workers": 2,
        "watch": False,
        "modules": [{"name": "numbers", "path": str(dist / "c_numbers.wasm")}],
        "routes": [
            {"path": "/add32/{a}/{b}", "module": "numbers", "function": "add32"},
            {"path": "/add64/{a}/{b}", "module": "numbers", "function": "add64"},
            {"path": "/div/{a}/{b}", "module": "numbers", "function": "div"},
            {"path": "/half/{x}", "module": "numbers", "function": "half"},
            {"path": "/typed/{a:int}/{b:int}", "module": "numbers", "function": "add32"},
        ],
    }
    return app_from({"errors": {}, "router": {}, **wasm_plugins(loader_name, config)})


@pytest.mark.parametrize(
    ("path", "status", "value"),
    [
        ("/add32/2/3", 200, 5),
        ("/add32/-2147483648/0", 200, -(2**31)),
        ("/add32/2147483648/0", 400, None),  # wrapped to -2147483648 before
        ("/add32/1.5/1", 400, None),  # a float for an integer: a Python message in a 500 before
        ("/add32/1e3/1", 400, None),
        ("/typed/4294967296/1", 400, None),
        ("/add64/9223372036854775807/0", 200, 2**63 - 1),
        ("/add64/9223372036854775808/0", 400, None),
        ("/div/1/4", 200, 0.25),
        ("/div/0/0", 502, None),  # NaN: a 500 with a traceback before
        ("/div/1/0", 502, None),  # +Inf
        ("/div/1e400/1", 400, None),  # an out-of-range float parameter
        ("/half/3", 200, 1.5),
        ("/half/1e39", 400, None),  # beyond f32
    ],
)
async def test_compute_arguments_and_results(loader_name: str, dist: Path, tmp_path: Path, path: str, status: int, value: Any) -> None:
    async with running(numbers_app(loader_name, dist, tmp_path / "cache")) as client:
        answer = await client.get(path)
    assert answer.status_code == status, answer.text
    if status == 200:
        assert answer.json() == {"value": value}
    else:
        assert answer.headers["content-type"] == "application/problem+json"
        for leak in ("Traceback", "PyLong", "object cannot", "Error:", ".py"):
            assert leak not in answer.text, answer.text


async def test_the_python_api_checks_arguments_too(loader_name: str, dist: Path, tmp_path: Path) -> None:
    app = numbers_app(loader_name, dist, tmp_path / "cache")
    async with running(app):
        loader = loader_of(app)
        assert (await loader.call("numbers", "add64", 2**62, 2**62 - 1)).value == 2**63 - 1
        assert (await loader.call("numbers", "add32", np.int64(2), np.int32(3))).value == 5  # numpy numbers are numbers
        assert (await loader.call("numbers", "div", np.float32(1.0), 4)).value == 0.25
        for args, problem in [((1.0, 2), "argument 1 must be an integer"), ((1,), "takes 2 arguments"), ((True, 1), "must be a number")]:
            with pytest.raises(WasmBadArguments, match=problem):
                await loader.call("numbers", "add32", *args)


async def test_a_trap_answer_names_module_and_function_only(loader_name: str, dist: Path, tmp_path: Path) -> None:
    config = {
        "cache_dir": str(tmp_path / "cache"),
        "watch": False,
        "modules": [{"name": "faults", "path": str(dist / "faults.wasm"), "kind": "http", "timeout": 1.0}],
        "routes": [{"path": "/faults/{what}", "module": "faults"}],
    }
    async with running(app_from({"errors": {}, "router": {}, **wasm_plugins(loader_name, config)})) as client:
        for what in ("trap", "stack", "oom"):
            answer = await client.get(f"/faults/{what}")
            detail = answer.json()["detail"]
            assert detail.startswith("module 'faults' function 'handle' "), detail
            for leak in ("unreachable", "call stack", "out of bounds", "alloc", "RuntimeError", "wasm trap"):
                assert leak not in detail, detail


@pytest.mark.parametrize(
    ("route", "problem"),
    [
        ({"path": "/nope/{a}", "module": "numbers", "function": "nope"}, "exports no function 'nope'"),
        ({"path": "/add/{a}", "module": "numbers", "function": "add32"}, r"takes \(i32, i32\); a compute route passes its 1 path parameter"),
    ],
)
async def test_a_compute_route_that_cannot_call_its_function_stops_startup(
    loader_name: str, dist: Path, tmp_path: Path, route: dict[str, str], problem: str
) -> None:
    config = {
        "cache_dir": str(tmp_path / "cache"),
        "watch": False,
        "modules": [{"name": "numbers", "path": str(dist / "c_numbers.wasm")}],
        "routes": [route],
    }
    app = app_from({"router": {}, **wasm_plugins(loader_name, config)})
    with pytest.raises(StartupError, match=problem):
        async with running(app):
            pass
