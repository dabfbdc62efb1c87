// WASI command as-wagi, served WAGI style: the registry's `args` are its argv ({who} is the
// route parameter), the request body is on stdin, the CGI environment holds the request;
// stdout is CGI headers, a blank line, the body. WASI helpers: wasm_modules/sdk-as/wasi.ts.
import { args, env, readStdin, write } from "../../sdk-as/wasi";

export function _start(): void {
  const argv = args();
  const who = argv.length > 1 ? argv[1] : "world";
  const body = readStdin();
  write("Content-Type: text/plain; charset=utf-8\n\n");
  write("Hello, " + who + "! (" + env("REQUEST_METHOD") + " with " + body.byteLength.toString() + " bytes)\n");
}
