//! Small dense linear algebra in f64 for the Fréchet distance: means and covariances of feature
//! rows, a cyclic Jacobi eigendecomposition of symmetric matrices, the symmetric square root,
//! and the Fréchet distance between two Gaussians.
//!
//! Matrices are row-major `Vec<f64>` of size `n·n`.
use crate::errors::Error;

/// The mean (length `d`) and the unbiased covariance (`d·d`, divided by `n − 1`, as numpy's
/// `np.cov` and pytorch-fid) of `n` rows of `d` values.
pub fn mean_cov(rows: &[f64], n: usize, d: usize) -> Result<(Vec<f64>, Vec<f64>), Error> {
    if n < 2 {
        return Err(Error::Msg(format!(
            "a covariance needs at least 2 samples, got {n}"
        )));
    }
    if rows.len() != n * d {
        return Err(Error::Msg(format!(
            "internal: {} values for {n} rows of {d}",
            rows.len()
        )));
    }
    let mut mu = vec![0.0; d];
    for r in rows.chunks(d) {
        for (m, x) in mu.iter_mut().zip(r) {
            *m += x;
        }
    }
    for m in &mut mu {
        *m /= n as f64;
    }
    let mut cov = vec![0.0; d * d];
    let mut c = vec![0.0; d];
    for r in rows.chunks(d) {
        for k in 0..d {
            c[k] = r[k] - mu[k];
        }
        for i in 0..d {
            let ci = c[i];
            if ci == 0.0 {
                continue;
            }
            let row = &mut cov[i * d..(i + 1) * d];
            for j in i..d {
                row[j] += ci * c[j];
            }
        }
    }
    let denom = (n - 1) as f64;
    for i in 0..d {
        for j in i..d {
            let v = cov[i * d + j] / denom;
            cov[i * d + j] = v;
            cov[j * d + i] = v;
        }
    }
    Ok((mu, cov))
}

/// Eigenvalues and eigenvectors of a symmetric matrix by cyclic Jacobi rotations.
/// Returns `(values, vectors)` with eigenvector `k` in column `k` of `vectors` (row-major).
/// The input is symmetrised first (`(A + Aᵀ)/2`).
pub fn sym_eig(a: &[f64], n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut m = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..n {
            m[i * n + j] = 0.5 * (a[i * n + j] + a[j * n + i]);
        }
    }
    let mut v = vec![0.0; n * n];
    for i in 0..n {
        v[i * n + i] = 1.0;
    }
    let total: f64 = m.iter().map(|x| x * x).sum::<f64>();
    for _sweep in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| m[i * n + j] * m[i * n + j])
            .sum();
        if off <= 1e-30 * total.max(1e-300) || off == 0.0 {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = m[p * n + q];
                if apq == 0.0 {
                    continue;
                }
                let app = m[p * n + p];
                let aqq = m[q * n + q];
                // Rotation angle that zeroes m[p][q] (Golub & Van Loan, sym.schur2).
                let theta = (aqq - app) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                // m ← Jᵀ m J on rows/columns p and q.
                for k in 0..n {
                    let mkp = m[k * n + p];
                    let mkq = m[k * n + q];
                    m[k * n + p] = c * mkp - s * mkq;
                    m[k * n + q] = s * mkp + c * mkq;
                }
                for k in 0..n {
                    let mpk = m[p * n + k];
                    let mqk = m[q * n + k];
                    m[p * n + k] = c * mpk - s * mqk;
                    m[q * n + k] = s * mpk + c * mqk;
                }
                m[p * n + q] = 0.0;
                m[q * n + p] = 0.0;
                for k in 0..n {
                    let vkp = v[k * n + p];
                    let vkq = v[k * n + q];
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    let values = (0..n).map(|i| m[i * n + i]).collect();
    (values, v)
}

/// `A·B` for `n×n` row-major matrices.
pub fn matmul(a: &[f64], b: &[f64], n: usize) -> Vec<f64> {
    let mut out = vec![0.0; n * n];
    for i in 0..n {
        for k in 0..n {
            let aik = a[i * n + k];
            if aik == 0.0 {
                continue;
            }
            let brow = &b[k * n..(k + 1) * n];
            let orow = &mut out[i * n..(i + 1) * n];
            for j in 0..n {
                orow[j] += aik * brow[j];
            }
        }
    }
    out
}

/// The symmetric positive semi-definite square root `V diag(√max(λ, 0)) Vᵀ`.
pub fn sqrtm_psd(a: &[f64], n: usize) -> Vec<f64> {
    let (vals, v) = sym_eig(a, n);
    let mut out = vec![0.0; n * n];
    for (k, &l) in vals.iter().enumerate() {
        let s = l.max(0.0).sqrt();
        if s == 0.0 {
            continue;
        }
        for i in 0..n {
            let vik = v[i * n + k] * s;
            for j in 0..n {
                out[i * n + j] += vik * v[j * n + k];
            }
        }
    }
    out
}

/// `Tr((Σ1 Σ2)^{1/2}) = Σ √eig(Σ1^{1/2} Σ2 Σ1^{1/2})` (negative round-off eigenvalues count 0).
pub fn trace_sqrt_product(s1: &[f64], s2: &[f64], n: usize) -> f64 {
    let r = sqrtm_psd(s1, n);
    let m = matmul(&matmul(&r, s2, n), &r, n);
    let (vals, _) = sym_eig(&m, n);
    vals.iter().map(|l| l.max(0.0).sqrt()).sum()
}

/// Fréchet distance between N(μ1, Σ1) and N(μ2, Σ2):
/// `‖μ1 − μ2‖² + Tr(Σ1) + Tr(Σ2) − 2 Tr((Σ1 Σ2)^{1/2})`.
pub fn frechet_distance(mu1: &[f64], s1: &[f64], mu2: &[f64], s2: &[f64]) -> Result<f64, Error> {
    let d = mu1.len();
    if mu2.len() != d || s1.len() != d * d || s2.len() != d * d {
        return Err(Error::Msg(format!(
            "frechet_distance: the means have {} and {} entries and the covariances {} and {} \
             (expected {d} and {d}×{d})",
            mu1.len(),
            mu2.len(),
            s1.len(),
            s2.len()
        )));
    }
    let bad = |v: &[f64]| v.iter().any(|x| !x.is_finite());
    if bad(mu1) || bad(mu2) || bad(s1) || bad(s2) {
        return Err("frechet_distance: the statistics contain NaN or infinite values".into());
    }
    check_covariance("the first covariance", s1, d)?;
    check_covariance("the second covariance", s2, d)?;
    let diff: f64 = mu1.iter().zip(mu2).map(|(a, b)| (a - b) * (a - b)).sum();
    let tr1: f64 = (0..d).map(|i| s1[i * d + i]).sum();
    let tr2: f64 = (0..d).map(|i| s2[i * d + i]).sum();
    let cross = trace_sqrt_product(s1, s2, d);
    // Round-off can leave a tiny negative value for identical statistics.
    Ok((diff + tr1 + tr2 - 2.0 * cross).max(0.0))
}

/// An error unless `s` (`d`×`d`) is a covariance: symmetric and positive semi-definite, up to
/// round-off. (The distance of non-covariances is meaningless: a negative "covariance" clamped
/// the result to 0.)
fn check_covariance(what: &str, s: &[f64], d: usize) -> Result<(), Error> {
    let scale = s.iter().fold(0.0f64, |m, x| m.max(x.abs())).max(1e-300);
    for i in 0..d {
        for j in 0..i {
            if (s[i * d + j] - s[j * d + i]).abs() > 1e-6 * scale {
                return Err(Error::Msg(format!(
                    "frechet_distance: {what} is not symmetric: entry [{i}, {j}] is {} but [{j}, {i}] is {}",
                    s[i * d + j],
                    s[j * d + i]
                )));
            }
        }
    }
    let (vals, _) = sym_eig(s, d);
    let top = vals.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    if let Some(v) = vals.iter().find(|&&v| v < -1e-6 * top - 1e-12) {
        return Err(Error::Msg(format!(
            "frechet_distance: {what} is not positive semi-definite (it has the eigenvalue {v}): \
             not a covariance"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frechet_rejects_non_covariances() {
        let m = [0.0, 0.0];
        let neg = [-1.0, 0.0, 0.0, -1.0];
        let e = frechet_distance(&m, &neg, &m, &neg)
            .unwrap_err()
            .to_string();
        assert!(e.contains("positive semi-definite"), "{e}");
        let asym = [1.0, 5.0, 0.0, 1.0];
        let e = frechet_distance(&m, &asym, &m, &asym)
            .unwrap_err()
            .to_string();
        assert!(e.contains("symmetric"), "{e}");
        let id = [1.0, 0.0, 0.0, 1.0];
        let two = [4.0, 0.0, 0.0, 4.0];
        // Same means, covariances I and 4I: tr(I) + tr(4I) − 2·tr(2I) = 2 + 8 − 8 = 2.
        let fd = frechet_distance(&m, &id, &m, &two).unwrap();
        assert!((fd - 2.0).abs() < 1e-9, "{fd}");
    }

    #[test]
    fn jacobi_reconstructs_a_symmetric_matrix() {
        let a = [4.0, 1.0, 2.0, 1.0, 3.0, 0.5, 2.0, 0.5, 5.0];
        let (vals, v) = sym_eig(&a, 3);
        // A = V Λ Vᵀ
        for i in 0..3 {
            for j in 0..3 {
                let r: f64 = (0..3).map(|k| v[i * 3 + k] * vals[k] * v[j * 3 + k]).sum();
                assert!((r - a[i * 3 + j]).abs() < 1e-10, "{r} vs {}", a[i * 3 + j]);
            }
        }
        let tr: f64 = vals.iter().sum();
        assert!((tr - 12.0).abs() < 1e-10);
    }

    #[test]
    fn sqrtm_squares_back() {
        let a = [2.0, 0.3, 0.3, 1.0];
        let r = sqrtm_psd(&a, 2);
        let rr = matmul(&r, &r, 2);
        for (x, y) in rr.iter().zip(a.iter()) {
            assert!((x - y).abs() < 1e-12);
        }
    }
}
