// wasmkernel.ts: the WasmKernel guest ABI for AssemblyScript (asc 0.28, --runtime stub).
// Exports alloc/dealloc for the host; decodes the HTTP wire format (docs/wasm-abi.md)
// and encodes responses. A module re-exports `alloc`, `dealloc` and defines `handle`:
//   export { alloc, dealloc } from "../../sdk-as/wasmkernel";
//   export function handle(ptr: usize, len: u32): u64 { return encode(respond(decode(ptr, len))); }
// A filter (kind "filter") defines `on_request` (and optionally `on_response`) instead:
//   export function on_request(ptr: usize, len: u32): u64 { const req = decodeFilterRequest(ptr, len); ...
//     return encodeDecision(Decision.pass()) }   // or Decision.respond(new Response(...))
//   export function on_response(ptr: usize, len: u32): u64 { ... return encodeEdits(new Edits().add(...)) }
// Build: asc assembly/index.ts -O3 --runtime stub --use abort= -o module.wasm
//
// The host API (import module `wasmkernel`, ABI v1, docs/wasm-abi.md) has the shape of the
// Rust SDK's `host` module: `host.version()`, `host.log(level, message, fields)`, `host.info`,
// `host.variable(name)`, `kv.get/set/remove/list`, `http.request/get`. Each capability must
// be granted in the registry (`log = true`, `vars = {...}`, `kv = {...}`, `http = {...}`);
// an ungranted call traps. A failed call returns null / false / a non-zero code and leaves
// the host's code and message in `host.errorCode()` / `host.errorMessage()`
// (NOT_FOUND, QUOTA, INVALID, HTTP). Only the functions a module calls become imports.

export function alloc(size: u32): usize {
  return heap.alloc(size > 0 ? <usize>size : 1);
}

export function dealloc(ptr: usize, size: u32): void {
  heap.free(ptr);
}

export class Request {
  method: string = "";
  path: string = "";
  query: string = "";
  params: Map<string, string> = new Map();
  headers: Map<string, string> = new Map();
  body: ArrayBuffer = new ArrayBuffer(0);

  param(name: string): string {
    return this.params.has(name) ? this.params.get(name) : "";
  }
}

export class Response {
  headers: Array<string> = [];
  constructor(public status: u32, public body: string) {}
  header(name: string, value: string): Response {
    this.headers.push(name);
    this.headers.push(value);
    return this;
  }
}

class Reader {
  pos: usize;
  constructor(public ptr: usize, public end: usize) {
    this.pos = ptr;
  }
  u32(): u32 {
    if (this.pos + 4 > this.end) throw new Error("truncated");
    const v = load<u32>(this.pos);
    this.pos += 4;
    return v;
  }
  str(): string {
    const n = this.u32();
    if (this.pos + n > this.end) throw new Error("truncated");
    const s = String.UTF8.decodeUnsafe(this.pos, n);
    this.pos += n;
    return s;
  }
  pairs(into: Map<string, string>): void {
    const n = this.u32();
    for (let i: u32 = 0; i < n; i++) {
      const name = this.str();
      into.set(name, this.str());
    }
  }
}

export function decode(ptr: usize, len: u32): Request {
  const r = new Reader(ptr, ptr + len);
  const req = new Request();
  req.method = r.str();
  req.path = r.str();
  req.query = r.str();
  r.pairs(req.params);
  r.pairs(req.headers);
  const n = r.u32();
  const body = new ArrayBuffer(n);
  memory.copy(changetype<usize>(body), r.pos, n);
  req.body = body;
  return req;
}

export function encode(resp: Response): u64 {
  const fields: Array<ArrayBuffer> = [];
  let size: u32 = 8;
  for (let i = 0; i < resp.headers.length; i++) {
    const b = String.UTF8.encode(resp.headers[i]);
    fields.push(b);
    size += 4 + b.byteLength;
  }
  const body = String.UTF8.encode(resp.body);
  size += 4 + body.byteLength;
  const out = heap.alloc(<usize>size);
  let pos = out;
  store<u32>(pos, resp.status);
  store<u32>(pos + 4, resp.headers.length / 2);
  pos += 8;
  for (let i = 0; i < fields.length; i++) {
    store<u32>(pos, fields[i].byteLength);
    memory.copy(pos + 4, changetype<usize>(fields[i]), fields[i].byteLength);
    pos += 4 + fields[i].byteLength;
  }
  store<u32>(pos, body.byteLength);
  memory.copy(pos + 4, changetype<usize>(body), body.byteLength);
  return (<u64>out << 32) | <u64>size;
}

// ---- host API (import module "wasmkernel", ABI v1) -----------------------------------

@external("wasmkernel", "abi_version") declare function wk_abi_version(): i64;
@external("wasmkernel", "log") declare function wk_log(level: i32, msg: usize, msgLen: u32, fields: usize, fieldsLen: u32): i64;
@external("wasmkernel", "var_get") declare function wk_var_get(name: usize, nameLen: u32): i64;
@external("wasmkernel", "kv_get") declare function wk_kv_get(key: usize, keyLen: u32): i64;
@external("wasmkernel", "kv_set") declare function wk_kv_set(key: usize, keyLen: u32, value: usize, valueLen: u32): i64;
@external("wasmkernel", "kv_delete") declare function wk_kv_delete(key: usize, keyLen: u32): i64;
@external("wasmkernel", "kv_list") declare function wk_kv_list(prefix: usize, prefixLen: u32): i64;
@external("wasmkernel", "kv_incr") declare function wk_kv_incr(key: usize, keyLen: u32, delta: i32): i64;
@external("wasmkernel", "http_request") declare function wk_http_request(req: usize, reqLen: u32): i64;
@external("wasmkernel", "result_read") declare function wk_result_read(ptr: usize, len: u32): i64;

/** Error codes of the host API. */
export const NOT_FOUND: i32 = 1;
export const QUOTA: i32 = 2;
export const INVALID: i32 = 3;
export const HTTP: i32 = 4;
export const UNAVAILABLE: i32 = 5;

export enum Level {
  Debug = 0,
  Info = 1,
  Warning = 2,
  Error = 3,
}

let lastCode: i32 = 0;
let lastMessage: string = "";

/** Collects a host call's result: the pending bytes, or null (code and message kept). */
function result(code: i64): ArrayBuffer | null {
  if (code < 0) {
    const msg = new ArrayBuffer(4096);
    const n = wk_result_read(changetype<usize>(msg), 4096);
    lastCode = <i32>-code;
    lastMessage = String.UTF8.decodeUnsafe(changetype<usize>(msg), <usize>(n > 0 ? n : 0));
    return null;
  }
  lastCode = 0;
  lastMessage = "";
  const out = new ArrayBuffer(<i32>code);
  if (code > 0) wk_result_read(changetype<usize>(out), <u32>code);
  return out;
}

/** Field encoding: u32 count, then field(name) field(value) per pair (a flat name, value, ... list). */
class Writer {
  parts: Array<ArrayBuffer> = [];
  size: u32 = 0;
  u32(v: u32): void {
    const b = new ArrayBuffer(4);
    store<u32>(changetype<usize>(b), v);
    this.parts.push(b);
    this.size += 4;
  }
  bytes(b: ArrayBuffer): void {
    this.u32(<u32>b.byteLength);
    this.parts.push(b);
    this.size += <u32>b.byteLength;
  }
  str(s: string): void {
    this.bytes(String.UTF8.encode(s));
  }
  pairs(flat: Array<string>): void {
    this.u32(<u32>(flat.length / 2));
    for (let i = 0; i + 1 < flat.length; i += 2) {
      this.str(flat[i]);
      this.str(flat[i + 1]);
    }
  }
  finish(): ArrayBuffer {
    const out = new ArrayBuffer(<i32>this.size);
    let pos = changetype<usize>(out);
    for (let i = 0; i < this.parts.length; i++) {
      memory.copy(pos, changetype<usize>(this.parts[i]), this.parts[i].byteLength);
      pos += this.parts[i].byteLength;
    }
    return out;
  }
}

function utf8(s: string): ArrayBuffer {
  return String.UTF8.encode(s);
}

export namespace host {
  /** The host's ABI version (1). */
  export function version(): i64 {
    return wk_abi_version();
  }

  /** One log line (grant: `log = true`); `fields` is a flat list: name, value, name, value... */
  export function log(level: Level, message: string, fields: Array<string> = []): void {
    const w = new Writer();
    w.pairs(fields);
    const enc = w.finish();
    const msg = utf8(message);
    wk_log(<i32>level, changetype<usize>(msg), <u32>msg.byteLength, changetype<usize>(enc), <u32>enc.byteLength);
  }

  export function info(message: string): void {
    log(Level.Info, message);
  }

  /** A variable from the module's `vars` table (grant: `vars = {...}`), or null if absent. */
  export function variable(name: string): string | null {
    const n = utf8(name);
    const value = result(wk_var_get(changetype<usize>(n), <u32>n.byteLength));
    return value == null ? null : String.UTF8.decode(value);
  }

  /** The code of the last failed host call (0: it succeeded). */
  export function errorCode(): i32 {
    return lastCode;
  }

  /** The host's message for the last failed host call. */
  export function errorMessage(): string {
    return lastMessage;
  }
}

/** Key-value store (grant: `kv = {...}`), in the module's namespace; keys and values are UTF-8 strings. */
export namespace kv {
  /** The value of `key`, or null (absent: `host.errorCode() == NOT_FOUND`). */
  export function get(key: string): string | null {
    const k = utf8(key);
    const value = result(wk_kv_get(changetype<usize>(k), <u32>k.byteLength));
    return value == null ? null : String.UTF8.decode(value);
  }

  /** Stores `value` under `key`: 0, or the error code (QUOTA over a quota). */
  export function set(key: string, value: string): i32 {
    const k = utf8(key);
    const v = utf8(value);
    result(wk_kv_set(changetype<usize>(k), <u32>k.byteLength, changetype<usize>(v), <u32>v.byteLength));
    return lastCode;
  }

  /** Adds `delta` to the counter `key` (absent: 0) atomically across workers; the new value
   *  (on failure 0, with `host.errorCode()` set). */
  export function incr(key: string, delta: i32 = 1): i64 {
    const k = utf8(key);
    const out = result(wk_kv_incr(changetype<usize>(k), <u32>k.byteLength, delta));
    return out == null ? 0 : I64.parseInt(String.UTF8.decode(out));
  }

  /** Deletes `key`; true if it existed. */
  export function remove(key: string): bool {
    const k = utf8(key);
    const out = result(wk_kv_delete(changetype<usize>(k), <u32>k.byteLength));
    return out != null && out.byteLength > 0 && load<u8>(changetype<usize>(out)) == 1;
  }

  /** Keys starting with `prefix` (at most 1000, sorted). */
  export function list(prefix: string): Array<string> {
    const p = utf8(prefix);
    const data = result(wk_kv_list(changetype<usize>(p), <u32>p.byteLength));
    const keys: Array<string> = [];
    if (data == null || data.byteLength < 4) return keys;
    const start = changetype<usize>(data);
    const r = new Reader(start, start + <usize>data.byteLength);
    const n = r.u32();
    for (let i: u32 = 0; i < n; i++) keys.push(r.str());
    return keys;
  }
}

export class HttpResponse {
  status: u32 = 0;
  headers: Map<string, string> = new Map();
  body: ArrayBuffer = new ArrayBuffer(0);

  text(): string {
    return String.UTF8.decode(this.body);
  }
}

/** Outbound HTTP (grant: `http = { allow = [...] }`), performed by the host. */
export namespace http {
  /** Sends a request (`headers` a flat name, value... list; `timeoutMs = 0` uses the grant's timeout); null on failure. */
  export function request(method: string, url: string, headers: Array<string> = [], body: string = "", timeoutMs: u32 = 0): HttpResponse | null {
    const w = new Writer();
    w.str(method);
    w.str(url);
    w.pairs(headers);
    w.str(body);
    w.u32(timeoutMs);
    const enc = w.finish();
    const data = result(wk_http_request(changetype<usize>(enc), <u32>enc.byteLength));
    if (data == null) return null;
    const start = changetype<usize>(data);
    const r = new Reader(start, start + <usize>data.byteLength);
    const resp = new HttpResponse();
    resp.status = r.u32();
    r.pairs(resp.headers);
    const n = r.u32();
    if (r.pos + n > r.end) throw new Error("truncated");
    const b = new ArrayBuffer(<i32>n);
    memory.copy(changetype<usize>(b), r.pos, n);
    resp.body = b;
    return resp;
  }

  /** `GET url`. */
  export function get(url: string): HttpResponse | null {
    return request("GET", url);
  }
}

// ---- filters (kind "filter"; wire format in docs/wasm-abi.md) -----------------------

/** The request a filter sees; `route` is the guarded route's name, `body` null unless the entry says body = true. */
export class FilterRequest {
  method: string = "";
  path: string = "";
  query: string = "";
  route: string = "";
  headers: Map<string, string> = new Map();
  body: ArrayBuffer | null = null;

  header(name: string): string {
    return this.headers.has(name) ? this.headers.get(name) : "";
  }
}

/** The response as on_response sees it. */
export class FilterResponse {
  method: string = "";
  path: string = "";
  status: u32 = 0;
  headers: Map<string, string> = new Map();
}

/** Header edits: `removed` first, then `added` (appended; remove + add replaces). */
export class Edits {
  added: Array<string> = [];
  removed: Array<string> = [];
  add(name: string, value: string): Edits {
    this.added.push(name);
    this.added.push(value);
    return this;
  }
  remove(name: string): Edits {
    this.removed.push(name);
    return this;
  }
}

/** What on_request answers: continue with edits, or respond now (the route's handler is not called). */
export class Decision {
  request: Edits = new Edits();
  response: Edits = new Edits();
  answer: Response | null = null;

  static pass(): Decision {
    return new Decision();
  }
  static respond(answer: Response): Decision {
    const d = new Decision();
    d.answer = answer;
    return d;
  }
}

export function decodeFilterRequest(ptr: usize, len: u32): FilterRequest {
  const r = new Reader(ptr, ptr + len);
  const req = new FilterRequest();
  req.method = r.str();
  req.path = r.str();
  req.query = r.str();
  req.route = r.str();
  r.pairs(req.headers);
  const hasBody = r.u32() == 1;
  const n = r.u32();
  if (r.pos + n > r.end) throw new Error("truncated");
  if (hasBody) {
    const body = new ArrayBuffer(<i32>n);
    memory.copy(changetype<usize>(body), r.pos, n);
    req.body = body;
  }
  return req;
}

export function decodeFilterResponse(ptr: usize, len: u32): FilterResponse {
  const r = new Reader(ptr, ptr + len);
  const resp = new FilterResponse();
  resp.method = r.str();
  resp.path = r.str();
  resp.status = r.u32();
  r.pairs(resp.headers);
  return resp;
}

function putEdits(w: Writer, e: Edits): void {
  w.pairs(e.added);
  w.u32(<u32>e.removed.length);
  for (let i = 0; i < e.removed.length; i++) w.str(e.removed[i]);
}

/** Copies `data` into a buffer of its own and packs (ptr << 32) | len for the host. */
function handOver(data: ArrayBuffer): u64 {
  const out = heap.alloc(<usize>data.byteLength);
  memory.copy(out, changetype<usize>(data), <usize>data.byteLength);
  return (<u64>out << 32) | <u64>data.byteLength;
}

export function encodeDecision(d: Decision): u64 {
  const answer = d.answer;
  if (answer != null) {
    const w = new Writer();
    w.u32(1);
    w.u32(answer.status);
    w.pairs(answer.headers);
    w.str(answer.body);
    return handOver(w.finish());
  }
  const w = new Writer();
  w.u32(0);
  putEdits(w, d.request);
  putEdits(w, d.response);
  return handOver(w.finish());
}

export function encodeEdits(e: Edits): u64 {
  const w = new Writer();
  putEdits(w, e);
  return handOver(w.finish());
}
