"""The test kit (`kernel_testing`), where plugins' tests import it from."""

from kernel_testing import WebSocketClient, WebSocketDenied, app_from, registry_from, running, websocket_connect

__all__ = ["WebSocketClient", "WebSocketDenied", "app_from", "registry_from", "running", "websocket_connect"]
