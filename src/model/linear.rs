//! A dense layer `Z = X W + b` as one operation on the flex CPU backend: a burn backend extension
//! ([`LinearOps`]) with its own backward, used by `Mlp` and
//! `StackedMlp` whenever a tensor lives on flex (plain or autodiff); every other
//! backend keeps burn's `matmul` and `add`.
//!
//! ```text
//! Z = X W + b                      X: [.., n, k],  W: [.., k, d],  b: [.., 1, d]  (one or M matrices)
//! ∂L/∂X = G Wᵀ,   ∂L/∂W = Xᵀ G,   ∂L/∂b = Σ_rows G                     (G = ∂L/∂Z)
//! ```
//!
//! flex allocates every matrix product's output zeroed (`vec![0u8; ..]`, a `memset`) and then copies
//! it once more when it wraps it in `Bytes` (a `memmove`): 9–11 % of the CPU training time in `perf`,
//! at batch 1024 as with 48 networks trained together (results/bench/README.md). Here the three
//! products (the forward and the two of the backward) are written by the same `gemm` calls that
//! flex makes, with the same strides and the same choice of parallelism, into uninitialised memory
//! that becomes the tensor without a copy, and the bias is added in place. Each output element is
//! the same sum in the same order, rounded the same way, and the bias gradient is flex's own
//! `sum_dim`: the results are **bit for bit** those of `matmul` + `add` (asserted in the tests
//! here, in f32 and f64, and by every snapshot).

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::Layout;
use burn::backend::ops::FloatTensorOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::tensor::{Bytes, DType, Shape, Tensor};

use super::silu::{dense, on_flex};

/// The dense layer and its two backward products as one operation each.
#[backend_extension(Flex: cfg(feature = "flex"), Autodiff)]
pub trait LinearOps: Backend {
    /// `x w + b`, `b` broadcast over the rows (`x`, `w` of one rank, 2 or 3; `b` of that
    /// rank with one row, or `[d]` for rank 2).
    fn fused_linear(x: FloatTensor<Self>, w: FloatTensor<Self>, b: FloatTensor<Self>) -> FloatTensor<Self> {
        matmul_add::<Self>(x, w, b)
    }

    /// `g wᵀ`: the gradient at `x` of a loss whose gradient at `x w + b` is `g`.
    fn fused_linear_x_backward(w: FloatTensor<Self>, g: FloatTensor<Self>) -> FloatTensor<Self> {
        let r = w.shape().num_dims();
        Self::float_matmul(g, Self::float_swap_dims(w, r - 2, r - 1))
    }

    /// `xᵀ g` (one product per matrix of the batch): the gradient at `w`.
    fn fused_linear_weight_backward(x: FloatTensor<Self>, g: FloatTensor<Self>) -> FloatTensor<Self> {
        let r = x.shape().num_dims();
        Self::float_matmul(Self::float_swap_dims(x, r - 2, r - 1), g)
    }
}

impl LinearOps for Flex {
    fn fused_linear(x: FloatTensor<Self>, w: FloatTensor<Self>, b: FloatTensor<Self>) -> FloatTensor<Self> {
        if !fits(&x.shape(), &w.shape(), &b.shape(), [x.dtype(), w.dtype(), b.dtype()]) {
            return matmul_add::<Self>(x, w, b);
        }
        match x.dtype() {
            DType::F32 => biased::<f32>(&x, &w, dense(b)),
            _ => biased::<f64>(&x, &w, dense(b)),
        }
    }

    fn fused_linear_x_backward(w: FloatTensor<Self>, g: FloatTensor<Self>) -> FloatTensor<Self> {
        let r = w.layout().shape().num_dims();
        let wt = Self::float_swap_dims(w, r - 2, r - 1);
        matmul(&g, &wt)
    }

    fn fused_linear_weight_backward(x: FloatTensor<Self>, g: FloatTensor<Self>) -> FloatTensor<Self> {
        let r = x.layout().shape().num_dims();
        let xt = Self::float_swap_dims(x, r - 2, r - 1);
        matmul(&xt, &g)
    }
}

/// `lhs rhs` by [`product`] when both are f32 or f64 with equal batch dimensions, else flex's matmul.
fn matmul(lhs: &FloatTensor<Flex>, rhs: &FloatTensor<Flex>) -> FloatTensor<Flex> {
    match (lhs.dtype(), rhs.dtype(), same_batches(&lhs.shape(), &rhs.shape())) {
        (DType::F32, DType::F32, true) => product::<f32>(lhs, rhs),
        (DType::F64, DType::F64, true) => product::<f64>(lhs, rhs),
        _ => Flex::float_matmul(lhs.clone(), rhs.clone()),
    }
}

/// `x w + b` by [`product`] and the bias added in place (`b` dense, one row of `d` per matrix).
fn biased<T: Real>(x: &FloatTensor<Flex>, w: &FloatTensor<Flex>, b: FloatTensor<Flex>) -> FloatTensor<Flex> {
    let d = w.layout().shape()[w.layout().shape().num_dims() - 1];
    let mut z = product::<T>(x, w);
    add_rows(z.storage_mut::<T>(), b.storage::<T>(), d);
    z
}

/// Rank 2 or 3, the same rank, the same batch size (no broadcast), and inner dimensions that agree.
fn same_batches(a: &Shape, b: &Shape) -> bool {
    let r = a.num_dims();
    (r == 2 || r == 3) && b.num_dims() == r && (r == 2 || a[0] == b[0]) && a[r - 1] == b[r - 2]
}

/// Whether the fused path takes `x`, `w`, `b` (else `matmul` + `add`, with burn's broadcasting and
/// its reductions in the backward): one dtype, f32 or f64; `x`, `w` of one rank (2 or 3) with equal
/// batches; `b` of `x`'s rank with one row and `x w`'s batch and width, or `[d]` for rank 2.
fn fits(x: &Shape, w: &Shape, b: &Shape, dtypes: [DType; 3]) -> bool {
    let r = x.num_dims();
    let d = if w.num_dims() == r { w[r - 1] } else { return false };
    let bias = match b.num_dims() {
        1 => r == 2 && b[0] == d,
        n if n == r => b[r - 2] == 1 && b[r - 1] == d && (r == 2 || b[0] == x[0]),
        _ => false,
    };
    matches!(dtypes[0], DType::F32 | DType::F64) && dtypes.iter().all(|t| *t == dtypes[0]) && same_batches(x, w) && bias
}

/// `x w + b` by the backend's `matmul` and broadcasting `add` (a bias `[d]` taken as `[1, d]`): the
/// operations the fused layer replaces, for the shapes it does not take and the other backends.
fn matmul_add<B: Backend>(x: FloatTensor<B>, w: FloatTensor<B>, b: FloatTensor<B>) -> FloatTensor<B> {
    let b = if b.shape().num_dims() < x.shape().num_dims() {
        let d = b.shape()[0];
        B::float_reshape(b, Shape::new([1, d]))
    } else {
        b
    };
    B::float_add(B::float_matmul(x, w), b)
}

/// `z[.., i, :] += b[.., 0, :]` for every row `i` of every matrix (`z` contiguous with rows of `d`,
/// `b` dense: one row of `d` per matrix).
fn add_rows<T: Copy + std::ops::Add<Output = T>>(z: &mut [T], b: &[T], d: usize) {
    let d = d.max(1);
    let per_matrix = z.len() / (b.len() / d).max(1);
    for (zm, bm) in z.chunks_mut(per_matrix.max(1)).zip(b.chunks(d)) {
        for row in zm.chunks_mut(d) {
            for (zi, &bi) in row.iter_mut().zip(bm) {
                *zi = *zi + bi;
            }
        }
    }
}

/// Below this many multiply-adds per matrix, flex runs `gemm` on one thread (`PARALLEL_THRESHOLD`
/// in burn-flex 0.22's `ops/matmul.rs`).
const PARALLEL_THRESHOLD: usize = 192 * 192 * 192;
/// Above this many multiply-adds in all, flex spreads the matrices of a batch over rayon's threads
/// (`BATCH_PARALLEL_THRESHOLD`).
const BATCH_PARALLEL_THRESHOLD: usize = 128 * 128 * 128;

/// The element types `gemm` multiplies here.
trait Real: Copy + Send + Sync + std::ops::Add<Output = Self> + bytemuck::Pod + burn::tensor::Element + 'static {
    const ZERO: Self;
    const ONE: Self;
    #[cfg(test)]
    const NAN: Self;
}
impl Real for f32 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    #[cfg(test)]
    const NAN: Self = f32::NAN;
}
impl Real for f64 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    #[cfg(test)]
    const NAN: Self = f64::NAN;
}

/// The output and operand pointers, which rayon's threads share (each writes its own matrix).
#[derive(Clone, Copy)]
struct Ptrs<T> {
    dst: *mut T,
    lhs: *const T,
    rhs: *const T,
}
// SAFETY: the operands are only read, and each matrix's output is written by one thread.
unsafe impl<T> Send for Ptrs<T> {}
unsafe impl<T> Sync for Ptrs<T> {}

impl<T> Ptrs<T> {
    /// Matrix `b`'s output and operands, `per` output elements and the batch strides apart (a
    /// method, so that closures capture the whole `Sync` struct, not its raw-pointer fields).
    ///
    /// # Safety
    /// The offsets must stay inside the allocations, as flex's batched matmul computes them.
    unsafe fn at(&self, b: usize, per: usize, l_bs: isize, r_bs: isize) -> (*mut T, *const T, *const T) {
        unsafe { (self.dst.add(b * per), self.lhs.offset(b as isize * l_bs), self.rhs.offset(b as isize * r_bs)) }
    }
}

/// `lhs rhs` for rank-2 operands or rank-3 ones with equal batches, strided (views such as
/// transposes are read in place), written into uninitialised memory by the `gemm` calls flex's
/// `matmul` makes: the same dimensions, strides, `alpha = 0`, `beta = 1`, and the same parallelism.
fn product<T: Real>(lhs: &FloatTensor<Flex>, rhs: &FloatTensor<Flex>) -> FloatTensor<Flex> {
    let (ls, rs) = (lhs.layout(), rhs.layout());
    let r = ls.shape().num_dims();
    let (m, k, n) = (ls.shape()[r - 2], ls.shape()[r - 1], rs.shape()[r - 1]);
    let batch = if r == 3 { ls.shape()[0] } else { 1 };
    let (l_rs, l_cs) = (ls.strides()[r - 2], ls.strides()[r - 1]);
    let (r_rs, r_cs) = (rs.strides()[r - 2], rs.strides()[r - 1]);
    let (l_bs, r_bs) = if r == 3 { (ls.strides()[0], rs.strides()[0]) } else { (0, 0) };
    let per = m * n;
    let len = batch * per;
    let mut out: Vec<T> = Vec::with_capacity(len);
    // In the tests the capacity holds NaN first: a product that read its output instead of
    // overwriting it would show (times `alpha = 0`, anything finite would vanish).
    #[cfg(test)]
    out.resize(len, T::NAN);
    let p = Ptrs {
        dst: out.as_mut_ptr(),
        // From the whole storage, as flex does: a flipped view's negative strides reach below
        // `start_offset`, inside the allocation.
        lhs: lhs.storage::<T>().as_ptr().wrapping_add(ls.start_offset()),
        rhs: rhs.storage::<T>().as_ptr().wrapping_add(rs.start_offset()),
    };
    let one = |b: usize, parallelism: gemm::Parallelism| {
        // SAFETY: the operands' layouts address their storage (flex's own views); matrix `b`'s
        // output is the `per` elements at `b · per` of the capacity, written by this call only.
        unsafe {
            let (dst, lhs, rhs) = p.at(b, per, l_bs, r_bs);
            gemm::gemm(
                m,
                n,
                k,
                dst,
                1,
                n as isize,
                false,
                lhs,
                l_cs,
                l_rs,
                rhs,
                r_cs,
                r_rs,
                T::ZERO,
                T::ONE,
                false,
                false,
                false,
                parallelism,
            );
        }
    };
    let ops = m.saturating_mul(n).saturating_mul(k);
    if k == 0 {
        out.clear();
        out.resize(len, T::ZERO);
    } else if r == 2 {
        one(0, if ops >= PARALLEL_THRESHOLD { gemm::Parallelism::Rayon(0) } else { gemm::Parallelism::None });
    } else {
        let total = batch.saturating_mul(ops);
        let batch_parallel = batch >= 4 && total >= BATCH_PARALLEL_THRESHOLD;
        if ops >= PARALLEL_THRESHOLD && !batch_parallel {
            (0..batch).for_each(|b| one(b, gemm::Parallelism::Rayon(0)));
        } else if total >= BATCH_PARALLEL_THRESHOLD && batch > 1 {
            use rayon::prelude::*;
            (0..batch).into_par_iter().for_each(|b| one(b, gemm::Parallelism::None));
        } else {
            (0..batch).for_each(|b| one(b, gemm::Parallelism::None));
        }
    }
    // SAFETY: every matrix's `m × n` outputs were written by its `gemm` call (`read_dst = false`
    // overwrites the destination), or zero-filled above when `k = 0`.
    unsafe { out.set_len(len) };
    let dims: Vec<usize> = if r == 3 { vec![batch, m, n] } else { vec![m, n] };
    <FloatTensor<Flex>>::new(Bytes::from_elems(out), Layout::contiguous(Shape::from(dims)), T::dtype())
}

impl<B: LinearOps, C: CheckpointStrategy> LinearOps for Autodiff<B, C> {
    fn fused_linear(x: FloatTensor<Self>, w: FloatTensor<Self>, b: FloatTensor<Self>) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct LinearBackward;

        impl<B: LinearOps> Backward<B, 3> for LinearBackward {
            /// `x` (for the weight's gradient) and `w` (for the input's), when those are tracked, and
            /// the bias's rank.
            type State = (Option<B::FloatTensorPrimitive>, Option<B::FloatTensorPrimitive>, usize);

            fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
                let [node_x, node_w, node_b] = ops.parents;
                let g = grads.consume::<B>(&ops.node);
                let (x, w, bias_rank) = ops.state;
                if let (Some(node), Some(w)) = (node_x, w) {
                    grads.register::<B>(node.id, B::fused_linear_x_backward(w, g.clone()));
                }
                if let (Some(node), Some(x)) = (node_w, x) {
                    grads.register::<B>(node.id, B::fused_linear_weight_backward(x, g.clone()));
                }
                if let Some(node) = node_b {
                    // The backend's own reduction over the rows, as the operations replaced make it:
                    // burn's `Linear` (bias `[d]`) always sums and reshapes to `[d]`; a broadcast
                    // `add` (bias `[.., 1, d]`) sums only when there is more than one row.
                    let shape = g.shape();
                    let r = shape.num_dims();
                    let grad = if bias_rank == 1 {
                        let d = shape[r - 1];
                        B::float_reshape(B::float_sum_dim(g, r - 2), Shape::new([d]))
                    } else if shape[r - 2] == 1 {
                        g
                    } else {
                        B::float_sum_dim(g, r - 2)
                    };
                    grads.register::<B>(node.id, grad);
                }
            }
        }

        let (xs, ws, bs) = (x.shape(), w.shape(), b.shape());
        if !fits(&xs, &ws, &bs, [x.dtype(), w.dtype(), b.dtype()]) {
            // Broadcast shapes: burn's operations, whose backward reduces the broadcast gradients.
            return matmul_add::<Self>(x, w, b);
        }
        let bias_rank = bs.num_dims();
        let (x_tracked, w_tracked) = (x.is_tracked(), w.is_tracked());
        match LinearBackward.prepare::<C>([x.node(), w.node(), b.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let (x, w, b) = (x.into_primitive(), w.into_primitive(), b.into_primitive());
                let state = (w_tracked.then(|| x.clone()), x_tracked.then(|| w.clone()), bias_rank);
                prep.finish(state, B::fused_linear(x, w, b))
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(B::fused_linear(x.into_primitive(), w.into_primitive(), b.into_primitive()))
            }
        }
    }
}

/// `x w + b` (`b` broadcast over the rows): fused on flex ([`LinearOps`]), `matmul` + `add` elsewhere.
/// Shapes the fused path does not take (broadcast batches, another bias shape) go through `matmul`
/// + `add` on flex too.
///
/// # Shapes
/// - `x`: `[.., n, k]`; `w`: `[.., k, d]` (rank 2 or 3, one rank for both)
/// - `b`: `[.., 1, d]` of that rank, or `[d]` (burn's `Linear`'s bias, summed in the backward as
///   burn's `Linear` sums it)
pub fn linear<const D: usize, const DB: usize>(x: Tensor<D>, w: Tensor<D>, b: Tensor<DB>) -> Tensor<D> {
    if on_flex(&x.device()) { fused(x, w, b) } else { x.matmul(w).add(b.unsqueeze()) }
}

/// [`linear`] for tensors the caller knows to be on flex (plain or autodiff): no device check.
pub fn fused<const D: usize, const DB: usize>(x: Tensor<D>, w: Tensor<D>, b: Tensor<DB>) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as LinearOps>::fused_linear(
        x.into_dispatch(),
        w.into_dispatch(),
        b.into_dispatch(),
    ))
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, TensorData};

    use super::*;

    fn host<const D: usize>(t: Tensor<D>) -> Vec<u64> {
        t.into_data().try_into_vec_as::<f64>().expect("floats").into_iter().map(f64::to_bits).collect()
    }

    /// Values that exercise rounding: no two sums alike, both signs.
    fn values(n: usize, seed: u64) -> Vec<f64> {
        (0..n).map(|i| ((i as u64 * 2654435761 + seed * 97) % 1000) as f64 / 317.0 - 1.3).collect()
    }

    type Bits = Vec<Vec<u64>>;

    /// `f(x, w, b)`'s value and the gradients of `Σ f ⊙ up` at `x`, `w` and `b`, as bits. `x` is made
    /// `[.., k, n]` and handed over transposed (a strided view, as the backward's operands are).
    fn value_and_grads<const D: usize, const DB: usize>(
        dtype: DType,
        shapes: ([usize; D], [usize; D], [usize; DB]),
        f: impl Fn(Tensor<D>, Tensor<D>, Tensor<DB>) -> Tensor<D>,
    ) -> Bits {
        let device = Device::flex().autodiff();
        let (xs, ws, bs) = shapes;
        let mut xt = xs;
        xt.swap(D - 2, D - 1);
        let make = |shape: Vec<usize>, seed: u64| {
            let n = shape.iter().product();
            TensorData::new(values(n, seed), shape)
        };
        let x = Tensor::<D>::from_data(make(xt.to_vec(), 1), (&device, dtype)).require_grad();
        let w = Tensor::<D>::from_data(make(ws.to_vec(), 2), (&device, dtype)).require_grad();
        let b = Tensor::<DB>::from_data(make(bs.to_vec(), 3), (&device, dtype)).require_grad();
        let z = f(x.clone().swap_dims(D - 2, D - 1), w.clone(), b.clone());
        let up = Tensor::<D>::from_data(make(z.dims().to_vec(), 4), (&device, dtype));
        let grads = z.clone().mul(up).sum().backward();
        vec![host(z), host(x.grad(&grads).unwrap()), host(w.grad(&grads).unwrap()), host(b.grad(&grads).unwrap())]
    }

    fn same(what: &str, fused: Bits, plain: Bits) {
        for (part, (f, p)) in ["value", "x grad", "w grad", "b grad"].iter().zip(fused.iter().zip(&plain)) {
            assert_eq!(f, p, "{what}: {part} differs");
        }
    }

    /// The fused layer, its input, weight and bias gradients equal `matmul` + `add` through burn's
    /// autodiff bit for bit, in f32 and f64: 1 to 5 stacked networks (rank 3) at sizes on both sides
    /// of flex's parallel thresholds (one thread; rayon over the matrices; gemm's own threads within
    /// each of 2 large matrices) and with one row (whose bias gradient is not reduced).
    #[test]
    fn stacked_fused_linear_equals_matmul_and_add_bit_for_bit() {
        for dtype in [DType::F32, DType::F64] {
            for (m, n, k, d) in [(1, 7, 3, 5), (5, 64, 17, 9), (5, 520, 128, 128), (2, 520, 128, 128), (3, 1, 16, 8)] {
                let shapes = ([m, n, k], [m, k, d], [m, 1, d]);
                let fused = value_and_grads(dtype, shapes, linear);
                let plain = value_and_grads(dtype, shapes, |x, w, b| x.matmul(w).add(b));
                same(&format!("{dtype:?} {m}×[{n}, {k}]×[{k}, {d}]"), fused, plain);
            }
        }
    }

    /// One network (rank 2) with burn's `Linear` bias `[d]` equals burn's module `linear` (which
    /// `Mlp` used before), and with a bias `[1, d]` equals `matmul` + `add`, bit for bit.
    #[test]
    fn one_network_equals_burns_linear_bit_for_bit() {
        for dtype in [DType::F32, DType::F64] {
            for (n, k, d) in [(7, 3, 5), (1, 16, 8), (600, 128, 128), (300, 128, 2)] {
                let what = format!("{dtype:?} [{n}, {k}]×[{k}, {d}]");
                let fused = value_and_grads(dtype, ([n, k], [k, d], [d]), linear);
                let module = value_and_grads(dtype, ([n, k], [k, d], [d]), |x, w, b| {
                    burn::tensor::module::linear(x, w, Some(b))
                });
                same(&format!("{what}, bias [d] against burn's linear"), fused, module);
                let fused = value_and_grads(dtype, ([n, k], [k, d], [1, d]), linear);
                let plain = value_and_grads(dtype, ([n, k], [k, d], [1, d]), |x, w, b| x.matmul(w).add(b));
                same(&format!("{what}, bias [1, d] against matmul + add"), fused, plain);
            }
        }
    }

    /// Shapes the fused path does not take (a weight or bias broadcast over the batch) give burn's
    /// results, gradients reduced to the operands' shapes; and a weight that also feeds another
    /// product (as in `Mlp::forward_tangents` under a Jacobian loss) gets the same summed gradient.
    #[test]
    fn broadcast_shapes_and_shared_weights_equal_burns_operations() {
        let dtype = DType::F32;
        let shapes = ([3, 40, 16], [1, 16, 8], [1, 1, 8]);
        let fused = value_and_grads(dtype, shapes, linear);
        let plain = value_and_grads(dtype, shapes, |x, w, b| x.matmul(w).add(b));
        same("weight and bias broadcast over 3 matrices", fused, plain);
        let shapes = ([50, 16], [16, 8], [8]);
        let twice = |x: Tensor<2>, w: Tensor<2>, b: Tensor<1>, fused: bool| {
            let tangent = x.clone().mul_scalar(0.5).matmul(w.clone());
            let z = if fused { linear(x, w, b) } else { burn::tensor::module::linear(x, w, Some(b)) };
            z.add(tangent)
        };
        let fused = value_and_grads(dtype, shapes, |x, w, b| twice(x, w, b, true));
        let module = value_and_grads(dtype, shapes, |x, w, b| twice(x, w, b, false));
        same("a weight used twice", fused, module);
    }

    /// Without autodiff (evaluation) too.
    #[test]
    fn plain_device_equals_matmul_and_add() {
        let device = Device::flex();
        let x = Tensor::<2>::from_data(TensorData::new(values(300 * 40, 5), [300, 40]), (&device, DType::F32));
        let w = Tensor::<2>::from_data(TensorData::new(values(40 * 30, 6), [40, 30]), (&device, DType::F32));
        let b = Tensor::<2>::from_data(TensorData::new(values(30, 7), [1, 30]), (&device, DType::F32));
        assert_eq!(host(linear(x.clone(), w.clone(), b.clone())), host(x.matmul(w).add(b)));
    }
}
