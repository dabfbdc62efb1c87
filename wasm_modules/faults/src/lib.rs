//! Fault fixtures for reliability tests (max memory 32 MiB).
//!
//! Compute exports:
//! * `ok(x) -> x + 1`
//! * `trap()` — executes `unreachable`
//! * `spin() -> i32` — infinite loop (volatile reads keep it alive)
//! * `grow(mb) -> i32` — leaks `mb` 1 MiB chunks (touching every page);
//!   traps (`unreachable`, Rust alloc-error abort) once memory is exhausted
//! * `grow_pages() -> i32` — `memory.grow(1)` until it fails; returns pages grown
//! * `recurse(n) -> i32` — non-tail recursion depth `n` (call stack exhaustion)
//! * `divide(a, b) -> a / b` — traps for b = 0 (and i32::MIN / -1)
//! * `counter() -> i32` — increments a static counter (instance state persistence)
//!
//! HTTP handler (`handle`), by path suffix: `/faults/ok` → 200 "ok",
//! `/faults/trap`, `/faults/spin`, `/faults/oom`, `/faults/stack`,
//! `/faults/counter` → 200 with the counter value; anything else → 404.

use core::ptr::{read_volatile, write_volatile};
use wasmkernel_guest::{Request, Response};

static mut STOP: i32 = 0;
static mut COUNTER: i32 = 0;

#[no_mangle]
pub extern "C" fn ok(x: i32) -> i32 {
    x.wrapping_add(1)
}

#[no_mangle]
pub extern "C" fn trap() {
    core::arch::wasm32::unreachable()
}

#[no_mangle]
pub extern "C" fn spin() -> i32 {
    let mut n: i32 = 0;
    // STOP is never set; the volatile read cannot be optimized away.
    while unsafe { read_volatile(core::ptr::addr_of!(STOP)) } == 0 {
        n = n.wrapping_add(1);
    }
    n
}

#[no_mangle]
pub extern "C" fn grow(mb: i32) -> i32 {
    const CHUNK: usize = 1 << 20;
    let mut got = 0;
    for _ in 0..mb.max(0) {
        let mut v: Vec<u8> = Vec::with_capacity(CHUNK); // aborts (traps) on failure
        let p = v.as_mut_ptr();
        let mut off = 0;
        while off < CHUNK {
            unsafe { write_volatile(p.add(off), 1) };
            off += 65536;
        }
        core::mem::forget(v);
        got += 1;
    }
    got
}

#[no_mangle]
pub extern "C" fn grow_pages() -> i32 {
    let mut pages = 0;
    while core::arch::wasm32::memory_grow(0, 1) != usize::MAX {
        pages += 1;
    }
    pages
}

#[inline(never)]
fn rec(n: i32) -> i32 {
    if n <= unsafe { read_volatile(core::ptr::addr_of!(STOP)) } {
        return 0;
    }
    // Not a tail call and not a simple accumulator: stays recursive.
    rec(n - 1).wrapping_mul(31).wrapping_add(n) ^ (n >> 3)
}

#[no_mangle]
pub extern "C" fn recurse(n: i32) -> i32 {
    rec(n)
}

#[no_mangle]
pub extern "C" fn divide(a: i32, b: i32) -> i32 {
    let (a, b) = unsafe { (read_volatile(&a), read_volatile(&b)) };
    a / b
}

#[no_mangle]
pub extern "C" fn counter() -> i32 {
    unsafe {
        COUNTER = COUNTER.wrapping_add(1);
        COUNTER
    }
}

fn handler(req: Request) -> Response {
    let p = req.path.trim_end_matches('/');
    if p.ends_with("/faults/ok") {
        Response::text(200, "ok")
    } else if p.ends_with("/faults/trap") {
        trap();
        Response::text(500, "unreachable")
    } else if p.ends_with("/faults/spin") {
        let n = spin();
        Response::text(500, &format!("spin ended after {}", n))
    } else if p.ends_with("/faults/oom") {
        let n = grow(i32::MAX);
        Response::text(500, &format!("grew {} MiB", n))
    } else if p.ends_with("/faults/stack") {
        let n = recurse(1_000_000_000);
        Response::text(500, &format!("recursion returned {}", n))
    } else if p.ends_with("/faults/counter") {
        Response::text(200, &counter().to_string())
    } else {
        Response::text(404, "unknown fault\n")
    }
}

wasmkernel_guest::export_handler!(handler);
