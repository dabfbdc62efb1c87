"""A Spin app (Python SDK 3, WASI 0.2): a visit counter in Spin's key-value
store and a greeting from a Spin variable. Under WasmKernel the store is the
component's `kv` grant and the variable its `vars`."""

from spin_sdk import http, key_value, variables
from spin_sdk.http import Request, Response


class IncomingHandler(http.IncomingHandler):
    def handle_request(self, request: Request) -> Response:
        greeting = variables.get("greeting")
        with key_value.open_default() as store:
            count = int(store.get("visits") or b"0") + 1
            store.set("visits", str(count).encode())
            keys = store.get_keys()
        body = f"{greeting}! visit {count} (keys: {', '.join(sorted(keys))})\n"
        return Response(200, {"content-type": "text/plain; charset=utf-8"}, body.encode())
