// Filter as-filter (WebAssembly middleware on the routes its [[filters]] entry selects): a
// request whose user-agent contains the registry variable `deny` is answered 403; any other
// continues, `x-filtered-by: as-filter` added to its response. API: wasm_modules/sdk-as/wasmkernel.ts.
import { Decision, Response, decodeFilterRequest, encodeDecision, host } from "../../sdk-as/wasmkernel";
export { alloc, dealloc } from "../../sdk-as/wasmkernel";

export function on_request(ptr: usize, len: u32): u64 {
  const req = decodeFilterRequest(ptr, len);
  const deny = host.variable("deny");
  if (deny != null && deny.length > 0 && req.header("user-agent").includes(deny)) {
    return encodeDecision(Decision.respond(new Response(403, "refused by as-filter\n").header("content-type", "text/plain; charset=utf-8")));
  }
  const d = Decision.pass();
  d.response.add("x-filtered-by", "as-filter");
  return encodeDecision(d);
}
