"""WasmKernel plugin `introspect` (built in): the `wasmkernel plugins`,
`routes` and `check` commands.

Public API, for other commands that list things: `listed_application` (a
registry's application with placeholders for unset secrets), `quiet_logs`
(no info log lines meanwhile) and `print_table`.
"""

from wasmkernel_introspect.listing import listed_application, print_table, quiet_logs

__all__ = ["listed_application", "print_table", "quiet_logs"]
