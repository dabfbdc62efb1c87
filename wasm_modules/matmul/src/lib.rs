//! f64 row-major matrix multiplication for WasmKernel.
//!
//! Exports (pointers are guest addresses of 8-aligned f64 buffers from `alloc`):
//! * `matmul_naive(a, b, c, n, k, m)` — C(n×m) = A(n×k)·B(k×m), scalar i-k-j loops.
//! * `matmul_fast(a, b, c, n, k, m)`  — same result, cache-blocked, packed,
//!   4×4 register-tiled micro-kernel on simd128 f64x2.
//! * `bench_checksum(n, row_start, row_end, fast) -> f64` — builds the
//!   benchmark matrices in-module, multiplies rows [row_start, row_end) and
//!   returns the sum of those C rows (NaN for invalid arguments).
//! * `checksum(ptr, len) -> f64` — sum of `len` f64 values.
//! * `alloc` / `dealloc` — the shared allocation ABI.

#![allow(clippy::missing_safety_doc)]

use core::arch::wasm32::*;

wasmkernel_guest::export_alloc!();

#[inline(always)]
fn ptr_of(p: i32) -> *mut f64 {
    p as u32 as usize as *mut f64
}

fn dims_ok(n: i32, k: i32, m: i32) -> bool {
    n > 0 && k > 0 && m > 0
}

/// Naive reference kernel: zero C, then i-k-j loops. Deliberately plain.
#[no_mangle]
pub unsafe extern "C" fn matmul_naive(a: i32, b: i32, c: i32, n: i32, k: i32, m: i32) {
    if !dims_ok(n, k, m) {
        return;
    }
    naive(ptr_of(a), ptr_of(b), ptr_of(c), n as usize, k as usize, m as usize);
}

unsafe fn naive(a: *const f64, b: *const f64, c: *mut f64, n: usize, k: usize, m: usize) {
    for i in 0..n {
        let crow = c.add(i * m);
        for j in 0..m {
            *crow.add(j) = 0.0;
        }
        for p in 0..k {
            let aip = *a.add(i * k + p);
            let brow = b.add(p * m);
            for j in 0..m {
                *crow.add(j) += aip * *brow.add(j);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Blocked kernel (GotoBLAS layout): for each NC-wide column block of B and
// each KC-deep slice, pack B into NR-wide panels; for each MC-tall row block
// of A pack A into MR-tall panels; run the MR×NR micro-kernel over the tiles.

const MR: usize = 4;
const NR: usize = 4;
const KC: usize = 256;
const MC: usize = 64;
const NC: usize = 1024;

#[no_mangle]
pub unsafe extern "C" fn matmul_fast(a: i32, b: i32, c: i32, n: i32, k: i32, m: i32) {
    if !dims_ok(n, k, m) {
        return;
    }
    fast(ptr_of(a), ptr_of(b), ptr_of(c), n as usize, k as usize, m as usize);
}

unsafe fn fast(a: *const f64, b: *const f64, c: *mut f64, n: usize, k: usize, m: usize) {
    core::ptr::write_bytes(c, 0, n * m);
    let kc_max = KC.min(k);
    let nc_max = round_up(NC.min(m), NR);
    let mc_max = round_up(MC.min(n), MR);
    let mut bpack: Vec<f64> = vec![0.0; kc_max * nc_max];
    let mut apack: Vec<f64> = vec![0.0; kc_max * mc_max];

    let mut jc = 0;
    while jc < m {
        let nc = NC.min(m - jc);
        let mut pc = 0;
        while pc < k {
            let kc = KC.min(k - pc);
            pack_b(b.add(pc * m + jc), m, kc, nc, bpack.as_mut_ptr());
            let mut ic = 0;
            while ic < n {
                let mc = MC.min(n - ic);
                pack_a(a.add(ic * k + pc), k, mc, kc, apack.as_mut_ptr());
                let mut jr = 0;
                while jr < nc {
                    let cols = NR.min(nc - jr);
                    let bp = bpack.as_ptr().add(jr * kc);
                    let mut ir = 0;
                    while ir < mc {
                        let rows = MR.min(mc - ir);
                        let ap = apack.as_ptr().add(ir * kc);
                        let cp = c.add((ic + ir) * m + jc + jr);
                        if rows == MR && cols == NR {
                            kernel_4x4(kc, ap, bp, cp, m);
                        } else {
                            let mut tile = [0.0f64; MR * NR];
                            kernel_4x4(kc, ap, bp, tile.as_mut_ptr(), NR);
                            for r in 0..rows {
                                for q in 0..cols {
                                    *cp.add(r * m + q) += tile[r * NR + q];
                                }
                            }
                        }
                        ir += MR;
                    }
                    jr += NR;
                }
                ic += MC;
            }
            pc += KC;
        }
        jc += NC;
    }
}

#[inline(always)]
fn round_up(x: usize, to: usize) -> usize {
    (x + to - 1) / to * to
}

/// Packs a kc×nc block of B (row stride ldb) into NR-wide panels:
/// panel p holds, for each kk, the NR values B[kk][p*NR .. p*NR+NR] (zero-padded).
#[inline(never)]
unsafe fn pack_b(b: *const f64, ldb: usize, kc: usize, nc: usize, out: *mut f64) {
    let mut o = out;
    let mut j = 0;
    while j < nc {
        let cols = NR.min(nc - j);
        if cols == NR {
            for kk in 0..kc {
                let src = b.add(kk * ldb + j);
                v128_store(o as *mut v128, v128_load(src as *const v128));
                v128_store(o.add(2) as *mut v128, v128_load(src.add(2) as *const v128));
                o = o.add(NR);
            }
        } else {
            for kk in 0..kc {
                let src = b.add(kk * ldb + j);
                for q in 0..NR {
                    *o.add(q) = if q < cols { *src.add(q) } else { 0.0 };
                }
                o = o.add(NR);
            }
        }
        j += NR;
    }
}

/// Packs an mc×kc block of A (row stride lda) into MR-tall panels:
/// panel p holds, for each kk, the MR values A[p*MR .. p*MR+MR][kk] (zero-padded).
#[inline(never)]
unsafe fn pack_a(a: *const f64, lda: usize, mc: usize, kc: usize, out: *mut f64) {
    let mut o = out;
    let mut i = 0;
    while i < mc {
        let rows = MR.min(mc - i);
        if rows == MR {
            let r0 = a.add(i * lda);
            let r1 = r0.add(lda);
            let r2 = r1.add(lda);
            let r3 = r2.add(lda);
            for kk in 0..kc {
                *o = *r0.add(kk);
                *o.add(1) = *r1.add(kk);
                *o.add(2) = *r2.add(kk);
                *o.add(3) = *r3.add(kk);
                o = o.add(MR);
            }
        } else {
            for kk in 0..kc {
                for r in 0..MR {
                    *o.add(r) = if r < rows { *a.add((i + r) * lda + kk) } else { 0.0 };
                }
                o = o.add(MR);
            }
        }
        i += MR;
    }
}

/// C[0..4][0..4] += Apanel(4×kc) · Bpanel(kc×4); C has row stride ldc.
/// 8 f64x2 accumulators (4 rows × 2 vectors), B row = 2 vectors, A = splats.
#[inline(always)]
unsafe fn kernel_4x4(kc: usize, ap: *const f64, bp: *const f64, c: *mut f64, ldc: usize) {
    let z = f64x2_splat(0.0);
    let (mut c00, mut c01, mut c10, mut c11) = (z, z, z, z);
    let (mut c20, mut c21, mut c30, mut c31) = (z, z, z, z);
    let mut ap = ap;
    let mut bp = bp;
    for _ in 0..kc {
        let b0 = v128_load(bp as *const v128);
        let b1 = v128_load(bp.add(2) as *const v128);
        let a0 = f64x2_splat(*ap);
        c00 = f64x2_add(c00, f64x2_mul(a0, b0));
        c01 = f64x2_add(c01, f64x2_mul(a0, b1));
        let a1 = f64x2_splat(*ap.add(1));
        c10 = f64x2_add(c10, f64x2_mul(a1, b0));
        c11 = f64x2_add(c11, f64x2_mul(a1, b1));
        let a2 = f64x2_splat(*ap.add(2));
        c20 = f64x2_add(c20, f64x2_mul(a2, b0));
        c21 = f64x2_add(c21, f64x2_mul(a2, b1));
        let a3 = f64x2_splat(*ap.add(3));
        c30 = f64x2_add(c30, f64x2_mul(a3, b0));
        c31 = f64x2_add(c31, f64x2_mul(a3, b1));
        ap = ap.add(MR);
        bp = bp.add(NR);
    }
    let rows = [(c00, c01), (c10, c11), (c20, c21), (c30, c31)];
    for (r, (lo, hi)) in rows.iter().enumerate() {
        let cp = c.add(r * ldc);
        v128_store(cp as *mut v128, f64x2_add(v128_load(cp as *const v128), *lo));
        v128_store(
            cp.add(2) as *mut v128,
            f64x2_add(v128_load(cp.add(2) as *const v128), *hi),
        );
    }
}

// ---------------------------------------------------------------------------

/// Builds A rows [row_start, row_end) and all of B for the n×n benchmark,
/// multiplies them with the chosen kernel and returns the sum of the C rows.
/// A[i][j] = ((i*n + j) % 7) * 0.5, B[i][j] = ((i*n + j) % 5) * 0.25.
/// Returns NaN if the arguments are invalid, 0.0 for an empty row range.
#[no_mangle]
pub extern "C" fn bench_checksum(n: i32, row_start: i32, row_end: i32, fast_kernel: i32) -> f64 {
    if n <= 0 || row_start < 0 || row_end < row_start || row_end > n {
        return f64::NAN;
    }
    if row_start == row_end {
        return 0.0;
    }
    let nu = n as usize;
    let rows = (row_end - row_start) as usize;
    let n64 = n as i64;
    let mut a = Vec::<f64>::with_capacity(rows * nu);
    for i in row_start as i64..row_end as i64 {
        for j in 0..n64 {
            a.push(((i * n64 + j) % 7) as f64 * 0.5);
        }
    }
    let mut b = Vec::<f64>::with_capacity(nu * nu);
    for i in 0..n64 {
        for j in 0..n64 {
            b.push(((i * n64 + j) % 5) as f64 * 0.25);
        }
    }
    let mut c = vec![0.0f64; rows * nu];
    unsafe {
        if fast_kernel != 0 {
            fast(a.as_ptr(), b.as_ptr(), c.as_mut_ptr(), rows, nu, nu);
        } else {
            naive(a.as_ptr(), b.as_ptr(), c.as_mut_ptr(), rows, nu, nu);
        }
    }
    drop(a);
    drop(b);
    c.iter().sum()
}

/// Sum of `len` f64 values at `ptr`.
#[no_mangle]
pub unsafe extern "C" fn checksum(ptr: i32, len: i32) -> f64 {
    if len <= 0 {
        return 0.0;
    }
    let p = ptr_of(ptr) as *const f64;
    let mut s = 0.0;
    for i in 0..len as usize {
        s += *p.add(i);
    }
    s
}
