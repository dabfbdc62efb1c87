"""WasmKernel plugin `scaffold`: the `wasmkernel new-plugin` command.

Public API, for any plugin scaffolding its own things: `render_templates`
(a folder of ``*.tmpl`` files → a new folder) and `check_name`.
"""

from wasmkernel_scaffold.render import check_name as check_name
from wasmkernel_scaffold.render import render_templates as render_templates
