"""The logging plugin.

Config (`[plugins.logging.config]`):
- `format`: "json" (one JSON object per line, default) or "console" (coloured, for humans)
- `level`: "debug" | "info" | "warning" | "error" (default "info")
- `stream`: "stderr" (default) or "stdout"

Every line logged while a request is handled carries its `request_id` (bound
by the kernel).
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Literal

import attrs
import structlog

from wasmkernel import Application, ConfiguredPlugin, hookimpl


@attrs.frozen
class Config:
    format: Literal["json", "console"] = attrs.field(default="json", validator=attrs.validators.in_(("json", "console")))
    level: str = attrs.field(default="info", validator=attrs.validators.in_(("debug", "info", "warning", "error")))
    stream: str = attrs.field(default="stderr", validator=attrs.validators.in_(("stderr", "stdout")))


def configure(config: Config) -> None:
    """Route structlog and the standard library (hypercorn included) through
    one renderer."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any
    if config.format == "json":
        renderer = structlog.processors.JSONRenderer()
        # Structured tracebacks without frame locals: locals may hold secrets.
        shared.append(structlog.processors.ExceptionRenderer(structlog.tracebacks.ExceptionDictTransformer(show_locals=False)))
    else:
        # Plain tracebacks: rich's would print frame locals (tokens, keys, bodies).
        renderer = structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback)
    structlog.configure(
        # Drop filtered-out lines before any other processor runs.
        processors=[structlog.stdlib.filter_by_level, *shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(sys.stdout if config.stream == "stdout" else sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(config.level.upper())
    for name in ("hypercorn.error", "hypercorn.access"):
        hypercorn_logger = logging.getLogger(name)
        hypercorn_logger.handlers = []
        hypercorn_logger.propagate = True


class Plugin(ConfiguredPlugin[Config]):
    order = -80
    config_class = Config

    @hookimpl
    def wasmkernel_configure_logging(self, app: Application) -> bool:
        configure(self.config)
        return True
