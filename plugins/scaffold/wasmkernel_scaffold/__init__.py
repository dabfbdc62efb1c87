"""WasmKernel plugin `scaffold`: the `wasmkernel new-plugin`, `init` and
`new-module` commands.

Public API, for any plugin scaffolding its own things: `render_templates`
(a folder of ``*.tmpl`` files → a new folder) and `check_name`; for plugins
contributing ``new-module`` templates (the `wasmkernel_module_templates`
hook, `wasmkernel_scaffold.hookspecs`): `ModuleTemplate`.
"""

from wasmkernel_scaffold.modules import ModuleTemplate as ModuleTemplate
from wasmkernel_scaffold.render import check_name as check_name
from wasmkernel_scaffold.render import render_templates as render_templates
