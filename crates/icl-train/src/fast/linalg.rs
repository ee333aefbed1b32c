//! Small dense kernels on f32 slices: a safe wrapper over `gemm::gemm` (single-threaded) and the
//! element-wise helpers (the reductions live in `simd`).

/// A strided read-only matrix view: element (i, j) is `data[i*rs + j*cs]`.
#[derive(Clone, Copy)]
pub struct View<'a> {
    pub data: &'a [f32],
    pub rs: usize,
    pub cs: usize,
}

/// Row-major matrix with `cols` columns.
#[inline]
pub fn rm(data: &[f32], cols: usize) -> View<'_> {
    View {
        data,
        rs: cols,
        cs: 1,
    }
}

/// Transpose of a row-major matrix with `cols` columns (element (i, j) = M[j][i]).
#[inline]
pub fn tr(data: &[f32], cols: usize) -> View<'_> {
    View {
        data,
        rs: 1,
        cs: cols,
    }
}

fn fits(v: &View, rows: usize, cols: usize) -> bool {
    rows == 0 || cols == 0 || (rows - 1) * v.rs + (cols - 1) * v.cs < v.data.len()
}

thread_local! {
    static IN_GEMM: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether this thread is inside `gemm::gemm` right now. The `gemm` crate (0.19) allocates its
/// packing buffer on every call; everything else in a training step is preallocated. The
/// allocation test uses this to tell the two apart.
pub fn inside_gemm() -> bool {
    IN_GEMM.with(|f| f.get())
}

/// `dst (m x n, row-major) = [dst +] a (m x k) * b (k x n)`, one thread.
pub fn matmul(m: usize, n: usize, k: usize, dst: &mut [f32], accumulate: bool, a: View, b: View) {
    assert!(
        dst.len() >= m * n,
        "matmul: dst has {} < {m}x{n}",
        dst.len()
    );
    assert!(
        fits(&a, m, k) && fits(&b, k, n),
        "matmul: operand out of bounds ({m}x{k} * {k}x{n})"
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            dst[..m * n].fill(0.0);
        }
        return;
    }
    IN_GEMM.with(|f| f.set(true));
    // SAFETY: bounds of all three operands were checked above; dst does not alias a or b
    // (it is a distinct &mut borrow).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            1.0f32,
            1.0f32,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
    IN_GEMM.with(|f| f.set(false));
}

/// `out (cols x rows) = m^T` for a row-major `rows x cols` matrix: 16 x 16 tiles through a local
/// array (contiguous reads and writes), the edges element by element.
#[inline(always)]
pub fn transpose(m: &[f32], rows: usize, cols: usize, out: &mut [f32]) {
    const T: usize = 16;
    assert!(m.len() >= rows * cols && out.len() >= rows * cols);
    let (rf, cf) = (rows / T * T, cols / T * T);
    let mut tile = [[0f32; T]; T];
    for r0 in (0..rf).step_by(T) {
        for c0 in (0..cf).step_by(T) {
            for (i, row) in tile.iter_mut().enumerate() {
                row.copy_from_slice(&m[(r0 + i) * cols + c0..(r0 + i) * cols + c0 + T]);
            }
            for j in 0..T {
                let o = &mut out[(c0 + j) * rows + r0..(c0 + j) * rows + r0 + T];
                for (i, v) in o.iter_mut().enumerate() {
                    *v = tile[i][j];
                }
            }
        }
    }
    for r in 0..rows {
        let c_start = if r < rf { cf } else { 0 };
        for c in c_start..cols {
            out[c * rows + r] = m[r * cols + c];
        }
    }
}

/// `y += alpha * x`.
#[inline(always)]
pub fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
    for (y, x) in y.iter_mut().zip(x) {
        *y += alpha * *x;
    }
}

/// `out[j] = sum over rows r of m[r*cols + j]` (column sums of a row-major matrix).
#[inline(always)]
pub fn col_sums(m: &[f32], rows: usize, cols: usize, out: &mut [f32]) {
    out[..cols].fill(0.0);
    for r in 0..rows {
        for (o, v) in out[..cols].iter_mut().zip(&m[r * cols..(r + 1) * cols]) {
            *o += *v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(m: usize, n: usize, k: usize, a: View, b: View) -> Vec<f32> {
        let mut out = vec![0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                let mut s = 0f64;
                for t in 0..k {
                    s += a.data[i * a.rs + t * a.cs] as f64 * b.data[t * b.rs + j * b.cs] as f64;
                }
                out[i * n + j] = s as f32;
            }
        }
        out
    }

    #[test]
    fn matmul_matches_naive_with_transposes() {
        let (m, n, k) = (7, 5, 9);
        let a: Vec<f32> = (0..m * k)
            .map(|i| ((i * 37 % 11) as f32 - 5.0) / 7.0)
            .collect();
        let b: Vec<f32> = (0..k * n)
            .map(|i| ((i * 13 % 17) as f32 - 8.0) / 9.0)
            .collect();
        for (av, bv) in [
            (rm(&a, k), rm(&b, n)),
            (tr(&a, m), tr(&b, k)),
            (rm(&a, k), tr(&b, k)),
        ] {
            let want = naive(m, n, k, av, bv);
            let mut got = vec![1f32; m * n];
            matmul(m, n, k, &mut got, false, av, bv);
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() < 1e-5, "{g} vs {w}");
            }
            let mut acc = vec![1f32; m * n];
            matmul(m, n, k, &mut acc, true, av, bv);
            for (g, w) in acc.iter().zip(&want) {
                assert!((g - (w + 1.0)).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn transpose_matches_definition() {
        for (r, c) in [(512, 512), (65, 512), (17, 33), (1, 5)] {
            let m: Vec<f32> = (0..r * c).map(|i| i as f32).collect();
            let mut t = vec![0f32; r * c];
            transpose(&m, r, c, &mut t);
            for i in 0..r {
                for j in 0..c {
                    assert_eq!(t[j * r + i], m[i * c + j]);
                }
            }
        }
    }

    #[test]
    fn col_sums_and_axpy() {
        let a: Vec<f32> = (0..15).map(|i| i as f32 * 0.5).collect();
        let mut o = vec![0f32; 5];
        col_sums(&a, 3, 5, &mut o);
        assert_eq!(o[0], a[0] + a[5] + a[10]);
        let mut y = vec![1f32; 15];
        axpy(2.0, &a, &mut y);
        assert_eq!(y[3], 1.0 + 2.0 * a[3]);
    }
}
