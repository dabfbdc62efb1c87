//! Native reference for the `/matmul?n=N` benchmark.
//!
//! Builds the same matrices as every peer server
//!   A[i][j] = ((i*n + j) mod 7) * 0.5
//!   B[i][j] = ((i*n + j) mod 5) * 0.25
//! and times the multiply alone. Compiled for the default (generic x86-64)
//! target: no `target-cpu=native` anywhere (see README.md).
//!
//! Usage: matmul-native [--reps R] [--kernel naive|fast|all] N [N ...]
//! Prints CSV `kernel,n,ms,checksum` (header first), one line per rep.

use std::hint::black_box;
use std::time::Instant;

fn build(n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut a = vec![0.0f64; n * n];
    let mut b = vec![0.0f64; n * n];
    for i in 0..n {
        for j in 0..n {
            let idx = (i as u64) * (n as u64) + (j as u64);
            a[i * n + j] = ((idx % 7) as f64) * 0.5;
            b[i * n + j] = ((idx % 5) as f64) * 0.25;
        }
    }
    (a, b)
}

/// The naive i-k-j kernel, identical in shape to every peer's:
/// zero C; for i, for k, a = A[i][k], for j: C[i][j] += a * B[k][j].
fn matmul_naive(a: &[f64], b: &[f64], c: &mut [f64], n: usize) {
    for x in c.iter_mut() {
        *x = 0.0;
    }
    for i in 0..n {
        for k in 0..n {
            let aik = a[i * n + k];
            for j in 0..n {
                c[i * n + j] += aik * b[k * n + j];
            }
        }
    }
}

/// 4x4 register-tiled kernel. Each C[i][j] is still summed over k in
/// increasing order, so the result is bit-identical to the naive kernel.
fn matmul_fast(a: &[f64], b: &[f64], c: &mut [f64], n: usize) {
    let n4i = n - n % 4;
    let n4j = n - n % 4;
    let mut i = 0;
    while i < n4i {
        let mut j = 0;
        while j < n4j {
            let mut acc = [[0.0f64; 4]; 4];
            for k in 0..n {
                let brow = &b[k * n + j..k * n + j + 4];
                for (r, accr) in acc.iter_mut().enumerate() {
                    let av = a[(i + r) * n + k];
                    for q in 0..4 {
                        accr[q] += av * brow[q];
                    }
                }
            }
            for (r, accr) in acc.iter().enumerate() {
                c[(i + r) * n + j..(i + r) * n + j + 4].copy_from_slice(accr);
            }
            j += 4;
        }
        // leftover columns for these 4 rows
        for r in i..i + 4 {
            for jj in n4j..n {
                let mut s = 0.0;
                for k in 0..n {
                    s += a[r * n + k] * b[k * n + jj];
                }
                c[r * n + jj] = s;
            }
        }
        i += 4;
    }
    // leftover rows
    for r in n4i..n {
        for jj in 0..n {
            let mut s = 0.0;
            for k in 0..n {
                s += a[r * n + k] * b[k * n + jj];
            }
            c[r * n + jj] = s;
        }
    }
}

fn usage() -> ! {
    eprintln!("usage: matmul-native [--reps R] [--kernel naive|fast|all] N [N ...]");
    std::process::exit(2);
}

fn main() {
    let mut reps: usize = 1;
    let mut kernels: Vec<&str> = vec!["naive"];
    let mut sizes: Vec<usize> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--reps" | "-r" => {
                reps = args.next().and_then(|v| v.parse().ok()).unwrap_or_else(|| usage());
            }
            "--kernel" | "-k" => {
                kernels = match args.next().as_deref() {
                    Some("naive") => vec!["naive"],
                    Some("fast") => vec!["fast"],
                    Some("all") => vec!["naive", "fast"],
                    _ => usage(),
                };
            }
            "-h" | "--help" => usage(),
            s => match s.parse::<usize>() {
                Ok(n) if (1..=5000).contains(&n) => sizes.push(n),
                _ => usage(),
            },
        }
    }
    if sizes.is_empty() {
        usage();
    }
    println!("kernel,n,ms,checksum");
    for &n in &sizes {
        let (a, b) = build(n);
        let mut c = vec![0.0f64; n * n];
        for kernel in &kernels {
            for _ in 0..reps {
                let t0 = Instant::now();
                match *kernel {
                    "naive" => matmul_naive(black_box(&a), black_box(&b), &mut c, n),
                    _ => matmul_fast(black_box(&a), black_box(&b), &mut c, n),
                }
                let ms = t0.elapsed().as_secs_f64() * 1000.0;
                let checksum: f64 = black_box(&c).iter().sum();
                println!("{},{},{:.3},{}", kernel, n, ms, checksum);
            }
        }
    }
}
