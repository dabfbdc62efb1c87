"""The redis-server fixture: a real server on a free loopback port that can be
killed and restarted on the same port."""

from __future__ import annotations

import socket

import pytest

from wasmkernel.testing import RedisServer


def ping(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        sock.sendall(b"PING\r\n")
        return sock.recv(64)


def test_serves_on_loopback_without_persistence(redis_server: RedisServer) -> None:
    assert redis_server.url == f"redis://127.0.0.1:{redis_server.port}/0"
    assert ping(redis_server.port) == b"+PONG\r\n"
    with socket.create_connection(("127.0.0.1", redis_server.port), timeout=2) as sock:
        sock.sendall(b"CONFIG GET save\r\n")
        assert sock.recv(256) == b"*2\r\n$4\r\nsave\r\n$0\r\n\r\n"


def test_kill_and_restart_on_the_same_port(redis_server: RedisServer) -> None:
    redis_server.kill()
    assert not redis_server.running
    with pytest.raises(OSError):
        ping(redis_server.port)
    redis_server.start()
    assert ping(redis_server.port) == b"+PONG\r\n"
