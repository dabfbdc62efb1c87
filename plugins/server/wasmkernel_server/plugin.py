"""The server plugin: ``wasmkernel run``, hypercorn's trio worker.

Built into the kernel's distribution, so every registry enables it unless its
``[plugins.server]`` table says ``enabled = false`` (an application served
some other way). It serves the registry's application in this process, or
in ``--workers N`` processes each assembling its own (see
`wasmkernel_server.serving`); a failed startup exits 1 with its one-line
reason and no "Running on" line. At startup, in whichever process serves
(``hypercorn --worker-class trio wasmkernel.asgi:app`` included), it installs
its hardened hypercorn classes (`wasmkernel_server.patches`: contained
connections, WebSocket early data and no compression, ``100 Continue`` only
once the application reads the body, h2c refused behind a proxy) and refuses
a hypercorn release they were not written for.

Config: none (serving options are `run`'s flags).
"""

from __future__ import annotations

import argparse
import os
import sys

from wasmkernel import Application, Command, ConfiguredPlugin, NoConfig, hookimpl, load_application
from wasmkernel_server import patches
from wasmkernel_server.serving import BEHIND_PROXY_ENV, READ_TIMEOUT, hypercorn_config, serve

DEFAULT_BIND = "127.0.0.1:8000"


def cmd_run(args: argparse.Namespace) -> int:
    patches.check()
    app = load_application(args.registry)  # fail fast, in this process, with a clear message
    config = hypercorn_config(args.bind or [DEFAULT_BIND], args.workers, args.reload, args.read_timeout)
    layout = f"{config.workers} worker process(es)" if config.workers else "in this process"
    print(f"wasmkernel: serving {app.registry.path} on {', '.join(config.bind)} ({layout})", file=sys.stderr)
    return serve(str(app.registry.path), config, app, behind_proxy=args.behind_proxy)


def _run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bind", action="append", help=f"HOST:PORT to listen on (repeatable; default {DEFAULT_BIND})")
    parser.add_argument("--workers", type=int, default=0, help="worker processes under hypercorn's process manager (default 0: serve in this process)")
    parser.add_argument("--reload", action="store_true", help="restart workers when source files change")
    parser.add_argument(
        "--read-timeout",
        type=int,
        default=READ_TIMEOUT,
        help=f"seconds a connection may send nothing, also while its request is answered (default {READ_TIMEOUT})",
    )
    parser.add_argument(
        "--behind-proxy",
        action="store_true",
        help="the server sits behind a reverse proxy: refuse h2c upgrades, which would tunnel requests past the proxy's rules",
    )


RUN = Command("run", "serve the registry's application under hypercorn (trio worker)", cmd_run, _run_arguments)


class Plugin(ConfiguredPlugin[NoConfig]):
    order = 99  # after the application plugins: it adds no route or middleware
    config_class = NoConfig

    @hookimpl
    def wasmkernel_commands(self) -> list[Command]:
        return [RUN]

    @hookimpl
    def wasmkernel_startup(self, app: Application) -> None:
        patches.install(refuse_h2c=os.environ.get(BEHIND_PROXY_ENV) == "1")
