// wasmkernel.ts: the WasmKernel guest ABI for AssemblyScript (asc 0.28, --runtime stub).
// Exports alloc/dealloc for the host; decodes the HTTP wire format (docs/wasm-abi.md)
// and encodes responses. A module re-exports `alloc`, `dealloc` and defines `handle`:
//   export { alloc, dealloc } from "../../sdk-as/wasmkernel";
//   export function handle(ptr: usize, len: u32): u64 { return serve(ptr, len, (req) => ...); }
// Build: asc assembly/index.ts -O3 --runtime stub --use abort= -o module.wasm

export function alloc(size: u32): usize {
  return heap.alloc(<usize>(size > 0 ? size : 1));
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
