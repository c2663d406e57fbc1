//! SiLU in one pass on the flex CPU backend: a burn backend extension ([`SiluOps`]) with its own
//! backward, used by `Activation::apply` (and `with_derivative`) whenever a tensor lives on flex (plain or
//! autodiff); every other backend keeps burn's `silu`.
//!
//! ```text
//! SiLU(z) = z s,   s = σ(z) = 1 / (1 + e^{−z})
//! ∂SiLU/∂z = s (1 + z (1 − s))            (the backward: ḡ_z = g · s (1 + z (1 − s)))
//! ```
//!
//! burn composes SiLU as `z · sigmoid(z)`, so a training step on flex runs a sigmoid forward, a
//! multiplication, and in the backward the sigmoid again (its autodiff recomputes it) plus three
//! elementwise products, each a separate pass with its own allocation, and the sigmoid through a
//! scalar, branchy `expf` that does not vectorise: 45 % of the CPU training time at batch 8192
//! (`perf`, results/bench/README.md). Here the forward is one pass and the backward one pass, in
//! place on the incoming gradient when it is not shared.
//!
//! **f32** uses a branch-free `exp` (Cody–Waite range reduction `x = n ln 2 + r`, a degree-6
//! polynomial for `e^r` (Cephes `expf`), `2^n` from the exponent bits) written with plain
//! multiplications and additions, so the compiler vectorises it (AVX2 where the CPU has it, chosen at
//! run time) and the result is the same on every x86-64 CPU, with or without AVX2 or FMA (no
//! contraction, no `mul_add`): bit-for-bit reproducible. Its relative error is below 2 ulp
//! (`tests::fast_exp_is_within_two_ulp`). **f64** stays exact: libm's `exp`, one call per element.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, unary};
use burn::backend::ops::{ActivationOps, FloatTensorOps};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, Flex, backend_extension};
use burn::tensor::{Bytes, DType, Device, Tensor};

/// SiLU and its backward as one operation each.
#[backend_extension(Flex: cfg(feature = "flex"), Autodiff)]
pub trait SiluOps: Backend {
    /// `z σ(z)`.
    fn fused_silu(z: FloatTensor<Self>) -> FloatTensor<Self> {
        let s = Self::sigmoid(z.clone());
        Self::float_mul(z, s)
    }

    /// `g σ(z) (1 + z (1 − σ(z)))`: the gradient at `z` of a loss whose gradient at `SiLU(z)` is `g`.
    fn fused_silu_backward(z: FloatTensor<Self>, g: FloatTensor<Self>) -> FloatTensor<Self> {
        let s = Self::sigmoid(z.clone());
        let one_minus = Self::float_add_scalar(Self::float_neg(s.clone()), 1.0.into());
        let t = Self::float_add_scalar(Self::float_mul(z, one_minus), 1.0.into());
        Self::float_mul(g, Self::float_mul(s, t))
    }
}

impl SiluOps for Flex {
    fn fused_silu(z: FloatTensor<Self>) -> FloatTensor<Self> {
        let z = dense(z);
        match z.dtype() {
            DType::F32 => {
                let out = kernels::silu_f32(z.storage::<f32>());
                with_data(&z, Bytes::from_elems(out))
            }
            DType::F64 => {
                let out: Vec<f64> = z.storage::<f64>().iter().map(|&x| x / (1.0 + (-x).exp())).collect();
                with_data(&z, Bytes::from_elems(out))
            }
            _ => Self::float_mul(z.clone(), Self::sigmoid(z)),
        }
    }

    fn fused_silu_backward(z: FloatTensor<Self>, g: FloatTensor<Self>) -> FloatTensor<Self> {
        let (z, mut g) = (dense(z), dense(g));
        if z.layout().shape() != g.layout().shape() || z.dtype() != g.dtype() {
            let s = Self::sigmoid(z.clone());
            let one_minus = Self::float_add_scalar(Self::float_neg(s.clone()), 1.0.into());
            let t = Self::float_add_scalar(Self::float_mul(z, one_minus), 1.0.into());
            return Self::float_mul(g, Self::float_mul(s, t));
        }
        match z.dtype() {
            DType::F32 => {
                // `storage_mut` writes in place when the gradient is not shared, else copies it once.
                kernels::silu_backward_f32(z.storage::<f32>(), g.storage_mut::<f32>());
                g
            }
            DType::F64 => {
                for (gi, &x) in g.storage_mut::<f64>().iter_mut().zip(z.storage::<f64>()) {
                    let s = 1.0 / (1.0 + (-x).exp());
                    *gi *= s * (1.0 + x * (1.0 - s));
                }
                g
            }
            _ => {
                let s = Self::sigmoid(z.clone());
                let one_minus = Self::float_add_scalar(Self::float_neg(s.clone()), 1.0.into());
                let t = Self::float_add_scalar(Self::float_mul(z, one_minus), 1.0.into());
                Self::float_mul(g, Self::float_mul(s, t))
            }
        }
    }
}

/// A flex tensor whose storage is exactly its elements in order (a copy only when it is a view).
pub(super) fn dense(t: FloatTensor<Flex>) -> FloatTensor<Flex> {
    let l = t.layout();
    if l.is_contiguous() && l.start_offset() == 0 && t.bytes().len() == l.num_elements() * t.dtype().size() {
        t
    } else {
        t.to_contiguous()
    }
}

/// A tensor of `like`'s shape, layout and dtype holding `data`.
fn with_data(like: &FloatTensor<Flex>, data: Bytes) -> FloatTensor<Flex> {
    <FloatTensor<Flex>>::new(data, like.layout().clone(), like.dtype())
}

impl<B: SiluOps, C: CheckpointStrategy> SiluOps for Autodiff<B, C> {
    fn fused_silu(z: FloatTensor<Self>) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct SiluBackward;

        impl<B: SiluOps> Backward<B, 1> for SiluBackward {
            /// The input `z`: the backward needs `σ(z)` and `z`, and `z` is alive anyway (the
            /// output of the layer's product and bias).
            type State = B::FloatTensorPrimitive;

            fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
                let z = ops.state;
                unary::<B, _>(ops.parents, ops.node, grads, |g| B::fused_silu_backward(z, g));
            }
        }

        match SiluBackward.prepare::<C>([z.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let z = z.into_primitive();
                prep.finish(z.clone(), B::fused_silu(z))
            }
            OpsKind::UnTracked(prep) => prep.finish(B::fused_silu(z.into_primitive())),
        }
    }
}

/// Whether `device` is flex, plain or autodiff (where [`silu`] takes the fused path).
pub fn on_flex(device: &Device) -> bool {
    use std::sync::OnceLock;
    static FLEX: OnceLock<(Device, Device)> = OnceLock::new();
    let (plain, ad) = FLEX.get_or_init(|| (Device::flex(), Device::flex().autodiff()));
    device == plain || device == ad
}

/// SiLU of `z`: fused on flex ([`SiluOps`]), burn's `silu` elsewhere.
pub fn silu<const D: usize>(z: Tensor<D>) -> Tensor<D> {
    if on_flex(&z.device()) {
        Tensor::from_dispatch(<Dispatch as SiluOps>::fused_silu(z.into_dispatch()))
    } else {
        burn::tensor::activation::silu(z)
    }
}

/// `SiLU'(z) = σ(z) (1 + z (1 − σ(z)))` on flex (the fused backward of a gradient of ones; on an
/// autodiff device its composed default, so that it is differentiable in turn: the exact Jacobian
/// loss trains through it).
pub fn silu_derivative<const D: usize>(z: Tensor<D>) -> Tensor<D> {
    let ones = z.ones_like();
    Tensor::from_dispatch(<Dispatch as SiluOps>::fused_silu_backward(z.into_dispatch(), ones.into_dispatch()))
}

/// The elementwise kernels on host slices, vectorised by the compiler.
pub mod kernels {
    /// `log2(e)`.
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    /// `ln 2` in two parts (Cody–Waite): `LN2_HI` has trailing zero bits, so `n · LN2_HI` is exact.
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    /// `1.5 · 2^23`: adding and subtracting it rounds an f32 of magnitude below `2^22` to the nearest
    /// integer (ties to even), without a call to `round`.
    const ROUND: f32 = 12_582_912.0;

    /// `e^x` in f32, branch-free: `x` clamped to `[−87, 88]` (NaN stays NaN), `n = round(x log2 e)`,
    /// `r = x − n ln 2`, `e^r` by Cephes' degree-6 polynomial, times `2^n` built in the exponent bits.
    /// Integer-valued `n` in `[−126, 127]`, so `2^n` is a normal f32.
    #[inline(always)]
    pub fn exp_f32(x: f32) -> f32 {
        let x = if x < -87.0 { -87.0 } else { x };
        let x = if x > 88.0 { 88.0 } else { x };
        let t = x * LOG2E + ROUND;
        let n = t - ROUND;
        let r = x - n * LN2_HI - n * LN2_LO;
        let mut p = 1.987_569_1e-4f32;
        p = p * r + 1.398_199_9e-3;
        p = p * r + 8.333_452e-3;
        p = p * r + 4.166_579_6e-2;
        p = p * r + 1.666_666_5e-1;
        p = p * r + 0.5; // Cephes: 5.0000001201e-1, which rounds to 0.5 in f32
        let y = p * r * r + r + 1.0;
        // `n` is also the low bits of `t` (whose unit in the last place is 1): `2^n` from them by
        // integer arithmetic, which vectorises, where `n as i32` (saturating, NaN to 0) does not.
        let bits = t.to_bits().wrapping_sub(ROUND.to_bits()).wrapping_add(127) << 23;
        y * f32::from_bits(bits)
    }

    #[inline(always)]
    fn silu_one(x: f32) -> f32 {
        x / (1.0 + exp_f32(-x))
    }

    #[inline(always)]
    fn silu_grad_one(x: f32, g: f32) -> f32 {
        let s = 1.0 / (1.0 + exp_f32(-x));
        g * (s * (1.0 + x * (1.0 - s)))
    }

    /// Written into uninitialised capacity (no zeroing pass), in a loop that inlines into the AVX2
    /// wrapper (`collect` would be a separate function compiled without it).
    #[inline(always)]
    fn silu_generic(z: &[f32]) -> Vec<f32> {
        let mut out = Vec::with_capacity(z.len());
        for (o, &x) in out.spare_capacity_mut().iter_mut().zip(z) {
            o.write(silu_one(x));
        }
        // SAFETY: the loop wrote all `z.len()` elements of the capacity.
        unsafe { out.set_len(z.len()) };
        out
    }

    #[inline(always)]
    fn silu_backward_generic(z: &[f32], g: &mut [f32]) {
        for (gi, &x) in g.iter_mut().zip(z) {
            *gi = silu_grad_one(x, *gi);
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn silu_avx2(z: &[f32]) -> Vec<f32> {
        silu_generic(z)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn silu_backward_avx2(z: &[f32], g: &mut [f32]) {
        silu_backward_generic(z, g)
    }

    /// The same loops with 16 lanes where the CPU has AVX-512 (the same operations in the same order:
    /// Rust does not contract `a * b + c` into a fused multiply-add, so the bits are the AVX2 path's).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    fn silu_avx512(z: &[f32]) -> Vec<f32> {
        silu_generic(z)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    fn silu_backward_avx512(z: &[f32], g: &mut [f32]) {
        silu_backward_generic(z, g)
    }

    /// `SiLU(z)`, elementwise.
    pub fn silu_f32(z: &[f32]) -> Vec<f32> {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F (checked above).
            return unsafe { silu_avx512(z) };
        }
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked above).
            return unsafe { silu_avx2(z) };
        }
        silu_generic(z)
    }

    /// `g ← g · SiLU'(z)`, elementwise.
    pub fn silu_backward_f32(z: &[f32], g: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F (checked above).
            return unsafe { silu_backward_avx512(z, g) };
        }
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked above).
            return unsafe { silu_backward_avx2(z, g) };
        }
        silu_backward_generic(z, g)
    }

    /// Every path this CPU can run (AVX-512, AVX2, baseline), each as `(name, SiLU(z), g · SiLU'(z))`
    /// with the baseline last, for the test that they agree bit for bit.
    #[cfg(test)]
    pub(super) fn every_path(z: &[f32]) -> Vec<(&'static str, Vec<f32>, Vec<f32>)> {
        let g: Vec<f32> = z.iter().map(|x| 0.3 - x * 0.01).collect();
        let mut out = Vec::new();
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                let mut gb = g.clone();
                // SAFETY: the CPU has AVX-512F (checked above).
                let a = unsafe {
                    silu_backward_avx512(z, &mut gb);
                    silu_avx512(z)
                };
                out.push(("avx512", a, gb));
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                let mut gb = g.clone();
                // SAFETY: the CPU has AVX2 (checked above).
                let a = unsafe {
                    silu_backward_avx2(z, &mut gb);
                    silu_avx2(z)
                };
                out.push(("avx2", a, gb));
            }
        }
        let mut gb = g;
        silu_backward_generic(z, &mut gb);
        out.push(("baseline", silu_generic(z), gb));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::kernels::exp_f32;
    use super::*;

    /// A tensor's values as f64 on the host.
    fn host<const D: usize>(t: Tensor<D>) -> Vec<f64> {
        t.into_data().try_into_vec_as::<f64>().expect("float tensors convert to f64")
    }

    /// Over a dense grid of [−87, 88], the branch-free exp is within 2 ulp of libm's (computed in f64
    /// and rounded); NaN stays NaN, and ±∞ saturate at the clamp instead of overflowing.
    #[test]
    fn fast_exp_is_within_two_ulp() {
        let mut worst = 0.0f64;
        let mut x = -87.0f32;
        while x <= 88.0 {
            let exact = (x as f64).exp();
            let ulp = (exact as f32).to_bits().abs_diff(exp_f32(x).to_bits());
            worst = worst.max(ulp as f64);
            x += 1.37e-3;
        }
        assert!(worst <= 2.0, "worst {worst} ulp");
        assert!(exp_f32(f32::NAN).is_nan());
        assert!(exp_f32(f32::INFINITY).is_finite() && exp_f32(f32::NEG_INFINITY) > 0.0);
    }

    /// The vectorised (AVX-512, AVX2) and baseline kernels give the same bits (no contraction into
    /// FMA), and the public entry points take one of them; says which paths it compared.
    #[test]
    fn vector_and_scalar_paths_agree_bit_for_bit() {
        let z: Vec<f32> = (0..10_001).map(|i| (i as f32 - 5000.0) * 0.0173).collect();
        let paths = kernels::every_path(&z);
        let (_, b, gb) = paths.last().expect("the baseline");
        let same =
            |x: &[f32], y: &[f32]| x.len() == y.len() && x.iter().zip(y).all(|(p, q)| p.to_bits() == q.to_bits());
        for (name, a, ga) in &paths {
            assert!(same(a, b) && same(ga, gb), "{name} differs from the baseline");
        }
        let mut g: Vec<f32> = z.iter().map(|x| 0.3 - x * 0.01).collect();
        kernels::silu_backward_f32(&z, &mut g);
        assert!(same(&kernels::silu_f32(&z), b) && same(&g, gb));
        let names: Vec<&str> = paths.iter().map(|p| p.0).collect();
        if names.len() == 1 {
            eprintln!("note: this CPU has neither AVX-512F nor AVX2: only the baseline path was run");
        } else {
            eprintln!("compared {names:?}");
        }
    }

    /// On flex the fused SiLU and its gradient match burn's composed `z · sigmoid(z)` through
    /// autodiff: to f32 rounding in f32, to 1e-15 in f64, on a non-contiguous (transposed) input too.
    #[test]
    fn fused_silu_matches_burns_silu_and_its_gradient() {
        use burn::tensor::TensorData;
        assert!(on_flex(&Device::flex()) && on_flex(&Device::flex().autodiff()), "the fused path is the one tested");
        for (dtype, tol) in [(DType::F32, 3e-7), (DType::F64, 1e-15)] {
            let device = Device::flex().autodiff();
            let v: Vec<f64> = (0..96).map(|i| (i as f64 - 48.0) * 0.37 + 0.011 * (i % 7) as f64).collect();
            let make = || Tensor::<2>::from_data(TensorData::new(v.clone(), [8, 12]), (&device, dtype)).require_grad();
            let weights = Tensor::<2>::from_data(
                TensorData::new((0..96).map(|i| ((i * 13) % 11) as f64 - 5.0).collect::<Vec<_>>(), [12, 8]),
                (&device, dtype),
            );
            let (a, b) = (make(), make());
            let fa = silu(a.clone().transpose());
            let fb = burn::tensor::activation::silu(b.clone().transpose());
            let close = |x: Vec<f64>, y: Vec<f64>, what: &str| {
                for (p, q) in x.iter().zip(&y) {
                    assert!((p - q).abs() <= tol * q.abs().max(1.0), "{dtype:?} {what}: {p} vs {q}");
                }
            };
            close(host(fa.clone()), host(fb.clone()), "value");
            let (ga, gb) = (fa.mul(weights.clone()).sum().backward(), fb.mul(weights).sum().backward());
            close(host(a.grad(&ga).unwrap()), host(b.grad(&gb).unwrap()), "gradient");
            // Without autodiff: the same values.
            let plain = Tensor::<2>::from_data(TensorData::new(v.clone(), [8, 12]), (&Device::flex(), dtype));
            close(host(silu(plain.clone())), host(burn::tensor::activation::silu(plain)), "plain");
        }
    }
}
