// Build a JavaScript component: node componentize-js.mjs APP.js WIT_DIR WORLD OUT.wasm
// (what build.sh runs for a folder holding app.js; componentize-js from ./node_modules).
import { componentize } from "@bytecodealliance/componentize-js";
import { _setPreopens } from "@bytecodealliance/preview2-shim/filesystem";
import { writeFile } from "node:fs/promises";

// The splicer reads the WIT through WASI, which starts with no preopened directory.
_setPreopens({ "/": "/" });
const [sourcePath, witPath, worldName, out] = process.argv.slice(2);
const { component } = await componentize({ sourcePath, witPath, worldName });
await writeFile(out, component);
