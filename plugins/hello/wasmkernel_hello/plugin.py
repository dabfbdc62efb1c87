"""The hello plugin: `GET /hello` → `200 text/plain` ``Hello, world!``.

The cheapest possible route, used to measure the framework's per-request
overhead (the benchmark's `/hello` load test, the same contract every peer
server answers). The response is built once and shared by every request.

Config: none (unknown keys are refused).
"""

from __future__ import annotations

from wasmkernel import Application, ConfiguredPlugin, NoConfig, Request, Response, ResponseSpec, Route, TextResponse, hookimpl

BODY = "Hello, world!"


class Plugin(ConfiguredPlugin[NoConfig]):
    order = 50
    config_class = NoConfig

    @hookimpl
    def wasmkernel_routes(self, app: Application) -> list[Route]:
        greeting = ResponseSpec("The greeting", schema={"type": "string", "const": BODY}, media_types="text/plain")
        return [Route("/hello", hello, name="hello", summary="Constant greeting (request-overhead benchmark)", tags=("benchmark",), responses={200: greeting})]


async def hello(request: Request) -> Response:
    return TextResponse(BODY)
