"""Fixtures shared by the kernel's and the plugins' tests."""

pytest_plugins = ["tests.redis_server"]
