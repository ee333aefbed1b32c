//! Times the MLP's matrix products on their own (shapes of batch 128, width 512, E 65), to see
//! how close `gemm` gets to peak on each layout. `cargo run --release -p icl-train --example gemm_shapes`.
use icl_train::bench::cpu_seconds;
use icl_train::fast::linalg::{matmul, rm, tr, View};

fn time(name: &str, m: usize, n: usize, k: usize, a: View, b: View) {
    let mut dst = vec![0f32; m * n];
    for _ in 0..3 {
        matmul(m, n, k, &mut dst, false, a, b);
    }
    let t = cpu_seconds();
    let mut reps = 0;
    while cpu_seconds() - t < 1.0 {
        matmul(m, n, k, &mut dst, false, a, b);
        reps += 1;
    }
    let el = cpu_seconds() - t;
    println!(
        "{name:<28} {m:>4}x{n:>4}x{k:>4}: {:>6.1} GFLOP/s",
        2.0 * (m * n * k * reps) as f64 / el / 1e9
    );
}

fn main() {
    let (b, e, h) = (128, 65, 512);
    let x: Vec<f32> = (0..b * h).map(|i| (i % 7) as f32 * 0.1).collect();
    let w: Vec<f32> = (0..h * h).map(|i| (i % 5) as f32 * 0.1).collect();
    let g: Vec<f32> = (0..b * h).map(|i| (i % 3) as f32 * 0.1).collect();
    time("fwd  h1 W2^T", b, h, h, rm(&x, h), tr(&w, h));
    let mut wt = vec![0f32; h * h];
    let t = cpu_seconds();
    for _ in 0..100 {
        icl_train::fast::linalg::transpose(&w, h, h, &mut wt);
    }
    println!(
        "transpose {h}x{h}: {:.1} us",
        (cpu_seconds() - t) / 100.0 * 1e6
    );
    time("fwd  h1 (W2^T copy)", b, h, h, rm(&x, h), rm(&wt, h));
    time("bwd  dW2 = dP2^T h1", h, h, b, tr(&g, h), rm(&x, h));
    time("bwd  dH1 = dP2 W2", b, h, h, rm(&g, h), rm(&w, h));
    time("fwd  x W1^T", b, h, e, rm(&x, e), tr(&w, e));
    time("bwd  dW1 = dP1^T x", h, e, b, tr(&g, h), rm(&x, e));
    time("bwd  dx = dP1 W1", b, e, h, rm(&g, h), rm(&w, e));
}
