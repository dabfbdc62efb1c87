// wasi.ts: the few WASI preview 1 calls an AssemblyScript command (kind "wasi", served WAGI
// style) needs, without an npm dependency: argv, environment, stdin, stdout. A command
// exports `_start` (see `wasmkernel new-module --lang assemblyscript --kind wasi`).

@external("wasi_snapshot_preview1", "fd_write") declare function fd_write(fd: u32, iovs: usize, iovsLen: u32, written: usize): i32;
@external("wasi_snapshot_preview1", "fd_read") declare function fd_read(fd: u32, iovs: usize, iovsLen: u32, read: usize): i32;
@external("wasi_snapshot_preview1", "args_sizes_get") declare function args_sizes_get(count: usize, size: usize): i32;
@external("wasi_snapshot_preview1", "args_get") declare function args_get(argv: usize, buf: usize): i32;
@external("wasi_snapshot_preview1", "environ_sizes_get") declare function environ_sizes_get(count: usize, size: usize): i32;
@external("wasi_snapshot_preview1", "environ_get") declare function environ_get(environ: usize, buf: usize): i32;

function strlen(ptr: usize): usize {
  let end = ptr;
  while (load<u8>(end) != 0) end++;
  return end - ptr;
}

/** NUL-terminated strings listed by a WASI `*_sizes_get` / `*_get` pair. */
function strings(sizes: (count: usize, size: usize) => i32, get: (list: usize, buf: usize) => i32): Array<string> {
  const out: Array<string> = [];
  const counts = heap.alloc(8);
  if (sizes(counts, counts + 4) != 0) return out;
  const n = load<u32>(counts);
  const list = heap.alloc((n > 0 ? <usize>n : 1) * sizeof<usize>());
  const buf = heap.alloc(<usize>load<u32>(counts + 4) + 1);
  if (get(list, buf) != 0) return out;
  for (let i: u32 = 0; i < n; i++) {
    const s = load<usize>(list + <usize>i * sizeof<usize>());
    out.push(String.UTF8.decodeUnsafe(s, strlen(s)));
  }
  return out;
}

/** The program's arguments (argv[0] is the module's name). */
export function args(): Array<string> {
  return strings(args_sizes_get, args_get);
}

/** The environment variable `name` (WAGI: REQUEST_METHOD, QUERY_STRING, X_PARAM_<NAME>...), or "". */
export function env(name: string): string {
  const prefix = name + "=";
  const all = strings(environ_sizes_get, environ_get);
  for (let i = 0; i < all.length; i++) if (all[i].startsWith(prefix)) return all[i].substring(prefix.length);
  return "";
}

/** All of stdin (the request body). */
export function readStdin(): ArrayBuffer {
  const chunks: Array<ArrayBuffer> = [];
  let total: i32 = 0;
  const iov = heap.alloc(12);
  while (true) {
    const chunk = new ArrayBuffer(65536);
    store<u32>(iov, <u32>changetype<usize>(chunk));
    store<u32>(iov + 4, 65536);
    if (fd_read(0, iov, 1, iov + 8) != 0) break;
    const n = <i32>load<u32>(iov + 8);
    if (n == 0) break;
    chunks.push(chunk.slice(0, n));
    total += n;
  }
  const out = new ArrayBuffer(total);
  let pos = changetype<usize>(out);
  for (let i = 0; i < chunks.length; i++) {
    memory.copy(pos, changetype<usize>(chunks[i]), chunks[i].byteLength);
    pos += chunks[i].byteLength;
  }
  return out;
}

/** Writes `text` (UTF-8) to stdout. */
export function write(text: string): void {
  const data = String.UTF8.encode(text);
  const iov = heap.alloc(12);
  let ptr = changetype<usize>(data);
  let left = <u32>data.byteLength;
  while (left > 0) {
    store<u32>(iov, <u32>ptr);
    store<u32>(iov + 4, left);
    if (fd_write(1, iov, 1, iov + 8) != 0) return;
    const n = load<u32>(iov + 8);
    if (n == 0) return;
    ptr += n;
    left -= n;
  }
}
