from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from wasmkernel import StartupError
from wasmkernel.testing import app_from


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers, root.level = handlers, level
    structlog.reset_defaults()


def test_json_lines_carry_level_logger_time_and_bound_fields(capsys: pytest.CaptureFixture[str]) -> None:
    app_from({"logging": {"config": {"format": "json", "level": "info"}}})
    structlog.contextvars.bind_contextvars(request_id="abc123")
    try:
        structlog.get_logger("wasmkernel.test").info("thing.done", items=3)
        structlog.get_logger("wasmkernel.test").debug("dropped")
        logging.getLogger("hypercorn.error").warning("from hypercorn")
    finally:
        structlog.contextvars.clear_contextvars()
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [line["event"] for line in lines] == ["thing.done", "from hypercorn"]
    first = lines[0]
    assert (first["level"], first["logger"], first["items"], first["request_id"]) == ("info", "wasmkernel.test", 3, "abc123")
    assert first["timestamp"].endswith("Z")
    assert (lines[1]["level"], lines[1]["logger"]) == ("warning", "hypercorn.error")


def test_exceptions_never_show_frame_locals(capsys: pytest.CaptureFixture[str]) -> None:
    app_from({"logging": {"config": {"format": "json"}}})
    token = "secret-token-value"
    try:
        raise ValueError("bad " + token[:3])
    except ValueError:
        structlog.get_logger("t").exception("failed")
    (line,) = [json.loads(text) for text in capsys.readouterr().err.splitlines()]
    assert line["exception"][0]["exc_type"] == "ValueError"
    assert token not in json.dumps(line)


def test_console_format_and_stdout_stream(capsys: pytest.CaptureFixture[str]) -> None:
    app_from({"logging": {"config": {"format": "console", "stream": "stdout", "level": "warning"}}})
    structlog.get_logger("t").info("quiet")
    structlog.get_logger("t").warning("loud", key="value")
    out = capsys.readouterr()
    assert "loud" in out.out and "key" in out.out and "value" in out.out
    assert "quiet" not in out.out + out.err


def test_bad_config_names_the_key() -> None:
    with pytest.raises(StartupError, match=r"\[plugins.logging\] config.format: .*'json', 'console'.*got 'xml'"):
        app_from({"logging": {"config": {"format": "xml"}}})
