"""Filter modules as middleware: the entries of
``[[plugins.wasm-filters.config.filters]]``, each a kind = "filter" module of
the host's table (``[plugins.wasm.config]``) guarding the routes it selects,
whatever loader runs it (the `MODULE_LOADER` service). No public API besides
the plugin."""
