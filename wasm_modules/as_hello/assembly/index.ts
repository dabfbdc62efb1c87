// An HTTP handler in AssemblyScript: GET /as/hello/{name} -> "Hello, {name}!"
import { Response, decode, encode } from "../../sdk-as/wasmkernel";
export { alloc, dealloc } from "../../sdk-as/wasmkernel";

export function handle(ptr: usize, len: u32): u64 {
  const req = decode(ptr, len);
  const name = req.param("name");
  if (name.length == 0) return encode(new Response(400, "name is required\n").header("content-type", "text/plain"));
  return encode(
    new Response(200, "Hello, " + name + "!\n").header("content-type", "text/plain; charset=utf-8").header("x-guest-language", "assemblyscript"),
  );
}
