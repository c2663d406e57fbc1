//! Order statistics and moments used across stiffx — a leaf module (it depends on nothing in the
//! crate). The definitions are the ones every stored result was computed with, so they are kept
//! exactly: the median averages the two middle values, [`quantile`] is the nearest-rank quantile
//! (rank `round((n − 1)·q)` of the sorted values), [`normal_quantile`] is Acklam's rational
//! approximation of `Φ⁻¹` (relative error < 1.2e-9) and [`mean_std`] uses the sample standard deviation
//! (`n − 1`).

/// Median of a slice (sorted copy; mean of the two middle values for even lengths).
pub fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 { s[n / 2] } else { 0.5 * (s[n / 2 - 1] + s[n / 2]) }
}

/// Nearest-rank `q`-quantile of `v` (the element at rank `round((n − 1)·q)` of the sorted values),
/// `None` when `v` is empty.
pub fn quantile(v: Vec<f64>, q: f64) -> Option<f64> {
    quantiles(v, &[q])[0]
}

/// [`quantile`] at each of `qs`, sorting `v` once.
pub fn quantiles(mut v: Vec<f64>, qs: &[f64]) -> Vec<Option<f64>> {
    v.sort_by(f64::total_cmp);
    qs.iter().map(|q| v.get(((v.len() as f64 - 1.0) * q).round() as usize).copied()).collect()
}

/// Standard normal quantile `Φ⁻¹(p)` for `p` in (0, 1) (Acklam's rational approximation, relative
/// error < 1.2e-9 over the whole range).
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.38357751867269e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    const B: [f64; 5] =
        [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
    let plow = 0.02425;
    if p < plow {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - plow {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        -normal_quantile(1.0 - p)
    }
}

/// Mean and sample standard deviation (n − 1; 0 for a single value).
pub fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let m = v.iter().sum::<f64>() / n;
    let var = if v.len() > 1 { v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n - 1.0) } else { 0.0 };
    (m, var.sqrt())
}

/// [`mean_std`] over the finite values of `v`, and how many were not finite (diverged runs, which
/// must not enter a mean as numbers).
pub fn finite_mean_std(v: &[f64]) -> (f64, f64, usize) {
    let fin: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    let (m, s) = mean_std(&fin);
    (m, s, v.len() - fin.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_statistics_and_moments() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(quantile(vec![5.0, 1.0, 4.0, 2.0, 3.0], 0.25), Some(2.0));
        assert_eq!(quantile(Vec::new(), 0.5), None);
        assert!((normal_quantile(0.975) - 1.959_963_984_540_054).abs() < 1e-8);
        assert!((normal_quantile(0.5)).abs() < 1e-12);
        let (m, s) = mean_std(&[1.0, 2.0, 3.0]);
        assert_eq!((m, s), (2.0, 1.0));
        assert_eq!(mean_std(&[4.0]), (4.0, 0.0));
        assert_eq!(finite_mean_std(&[1.0, f64::INFINITY, 3.0, f64::NAN]), (2.0, 2f64.sqrt(), 2));
        let (m, _, n) = finite_mean_std(&[f64::INFINITY]);
        assert!(m.is_nan() && n == 1);
    }
}
