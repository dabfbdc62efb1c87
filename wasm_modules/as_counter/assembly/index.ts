// An HTTP handler in AssemblyScript using the host API: a visit counter per name in the
// module's key-value store (kv = {...}) with a log line per change (log = true).
//   POST /as/count/{name} -> counts one more visit, answers the new count
//   GET  /as/count/{name} -> the count (0 if never counted)
import { Response, decode, encode, host, kv, Level, QUOTA } from "../../sdk-as/wasmkernel";
export { alloc, dealloc } from "../../sdk-as/wasmkernel";

function text(status: u32, body: string): u64 {
  return encode(new Response(status, body).header("content-type", "text/plain; charset=utf-8").header("x-guest-language", "assemblyscript"));
}

export function handle(ptr: usize, len: u32): u64 {
  const req = decode(ptr, len);
  const name = req.param("name");
  if (name.length == 0 || name.length > 100) return text(400, "name must be 1-100 characters\n");
  const key = "count:" + name;
  const stored = kv.get(key);
  const count: u64 = stored == null ? 0 : U64.parseInt(stored);
  if (req.method == "GET") return text(200, count.toString() + "\n");
  if (req.method != "POST") return text(405, "GET or POST\n");
  const next = count + 1;
  if (kv.set(key, next.toString()) != 0) {
    host.log(Level.Warning, "count not stored", ["name", name, "reason", host.errorMessage()]);
    return text(host.errorCode() == QUOTA ? 507 : 502, host.errorMessage() + "\n");
  }
  host.log(Level.Info, "counted", ["name", name, "count", next.toString()]);
  return text(200, next.toString() + "\n");
}
