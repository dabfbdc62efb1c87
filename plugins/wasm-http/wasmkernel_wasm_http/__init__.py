"""HTTP triggers for WebAssembly modules: the routes of
``[[plugins.wasm-http.config.routes]]``, each served by a module of the
host's table (``[plugins.wasm.config]``) — an HTTP handler, a WASI command
WAGI-style, or a compute module's function — whatever loader runs it
(the `MODULE_LOADER` service). No public API besides the plugin."""
