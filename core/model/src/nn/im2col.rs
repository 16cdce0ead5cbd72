//! Strided 2-D convolutions and transposed convolutions in channels-last layout, as one large
//! matrix product plus a gather ([`im2col`]) or scatter-add ([`col2im`]) on the host.
//!
//! burn-flex runs a transposed convolution as one small matrix product per item, item after
//! item on one thread, and takes its gradients through transposed copies of the `[n, C, H, W]`
//! activations; the decoders of a K = 20 MMVAE see `M * K * B` items (5 120 at the paper's
//! batch), so the CNN decoder dominated the step. Here the items of a layer are rows of one
//! `[n * h * w, channels]` matrix (channels last, `(h, w)` row-major): a transposed convolution is
//! `col2im(x @ W)`, a convolution `im2col(x) @ W`. The products are burn's (multithreaded, with
//! autodiff), and `col2im` / `im2col` are linear maps and each other's adjoint, so each op's
//! backward pass is the other one; both run on every rayon thread, one item per task.
//!
//! Like the fused likelihood, the host kernels read tensors through [`TensorData`] (free on a CPU
//! backend) and are opt-in per backend through [`install_host_kernels`](super::install_host_kernels);
//! [`host_available`] tells a net whether to take this path or burn's own convolutions (the
//! GPU path), which compute the same function.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{unary, Backward, Ops, OpsKind};
use burn::backend::Autodiff;
use burn::nn::conv::{Conv1d, Conv2d, ConvTranspose1d, ConvTranspose2d};
use burn::nn::{PaddingConfig1d, PaddingConfig2d};
use burn::tensor::backend::Backend;
use burn::tensor::ops::FloatTensor;
use burn::tensor::{DType, Tensor, TensorData, TensorPrimitive};
use rayon::prelude::*;

use super::host;

/// How a small grid of `small_h x small_w` positions maps onto a big grid of `big_h x big_w`
/// positions through a `kernel_h x kernel_w` kernel: position `(i, j)` of the small grid and tap
/// `(a, b)` of the kernel meet big position `(i * stride_h + a - pad_h, j * stride_w + b - pad_w)`
/// when it lies inside the big grid. For a transposed convolution the small grid is the input and
/// the big one the output; for a convolution the other way round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Items.
    pub items: usize,
    /// Channels of the big grid.
    pub channels: usize,
    /// Small grid height.
    pub small_h: usize,
    /// Small grid width.
    pub small_w: usize,
    /// Big grid height.
    pub big_h: usize,
    /// Big grid width.
    pub big_w: usize,
    /// Kernel height.
    pub kernel_h: usize,
    /// Kernel width.
    pub kernel_w: usize,
    /// Vertical stride.
    pub stride_h: usize,
    /// Horizontal stride.
    pub stride_w: usize,
    /// Vertical padding.
    pub pad_h: usize,
    /// Horizontal padding.
    pub pad_w: usize,
}

impl Geometry {
    /// A one-row grid (1-D signals as `1 x len` maps) of `channels`, widths still to be set.
    fn line(items: usize, channels: usize) -> Self {
        Geometry {
            items,
            channels,
            small_h: 1,
            small_w: 0,
            big_h: 1,
            big_w: 0,
            kernel_h: 1,
            kernel_w: 0,
            stride_h: 1,
            stride_w: 1,
            pad_h: 0,
            pad_w: 0,
        }
    }

    /// Width of a column row: one `channels` vector per kernel tap.
    pub fn cols_width(&self) -> usize {
        self.kernel_h * self.kernel_w * self.channels
    }

    /// Shape of the columns `[items * small_h * small_w, kernel_h * kernel_w * channels]`.
    pub fn cols_shape(&self) -> [usize; 2] {
        [self.items * self.small_h * self.small_w, self.cols_width()]
    }

    /// Shape of the big grid `[items * big_h * big_w, channels]`.
    pub fn big_shape(&self) -> [usize; 2] {
        [self.items * self.big_h * self.big_w, self.channels]
    }

    /// The big-grid coordinate where small coordinate `i` meets tap `a` (`None` off the grid).
    fn meet(i: usize, a: usize, stride: usize, pad: usize, size: usize) -> Option<usize> {
        (i * stride + a).checked_sub(pad).filter(|&big| big < size)
    }

    /// Calls `f(column offset, big offset)` for every (small position, tap) pair of one item
    /// that meets the big grid, offsets counted in elements within the item's block.
    fn for_each_meeting(&self, mut f: impl FnMut(usize, usize)) {
        let width = self.cols_width();
        for i in 0..self.small_h {
            for a in 0..self.kernel_h {
                let Some(y) = Self::meet(i, a, self.stride_h, self.pad_h, self.big_h) else {
                    continue;
                };
                for j in 0..self.small_w {
                    for b in 0..self.kernel_w {
                        let Some(x) = Self::meet(j, b, self.stride_w, self.pad_w, self.big_w)
                        else {
                            continue;
                        };
                        let col = (i * self.small_w + j) * width
                            + (a * self.kernel_w + b) * self.channels;
                        let big = (y * self.big_w + x) * self.channels;
                        f(col, big);
                    }
                }
            }
        }
    }

    /// Elements of one item's columns and of one item's big grid.
    fn item_lens(&self) -> (usize, usize) {
        let cols = self.small_h * self.small_w * self.cols_width();
        (cols, self.big_h * self.big_w * self.channels)
    }

    /// Runs `f(dst, src)` on every item's blocks in parallel (`src_len` / `dst_len` elements
    /// each) into a zeroed output; all NaN when `src` does not hold `items` blocks or a block
    /// is empty.
    fn per_item(
        &self,
        src: &[f32],
        src_len: usize,
        dst_len: usize,
        f: impl Fn(&mut [f32], &[f32]) + Sync,
    ) -> Vec<f32> {
        let mut out = vec![0f32; self.items * dst_len];
        if src.len() != self.items * src_len || self.channels == 0 || src_len == 0 || dst_len == 0 {
            out.fill(f32::NAN);
            return out;
        }
        out.par_chunks_mut(dst_len)
            .zip(src.par_chunks(src_len))
            .for_each(|(dst, src)| f(dst, src));
        out
    }

    /// `big[p] = sum of the column vectors that meet p` (the adjoint of [`Self::im2col`]).
    pub fn col2im(&self, cols: &[f32]) -> Vec<f32> {
        let c = self.channels;
        let (cols_len, big_len) = self.item_lens();
        self.per_item(cols, cols_len, big_len, |dst, src| {
            self.for_each_meeting(|col, at| {
                for (d, s) in dst[at..at + c].iter_mut().zip(&src[col..col + c]) {
                    *d += s;
                }
            })
        })
    }

    /// `cols[q, tap] = big[the position q meets through tap]`, zero off the grid.
    pub fn im2col(&self, big: &[f32]) -> Vec<f32> {
        let c = self.channels;
        let (cols_len, big_len) = self.item_lens();
        self.per_item(big, big_len, cols_len, |dst, src| {
            self.for_each_meeting(|col, at| dst[col..col + c].copy_from_slice(&src[at..at + c]))
        })
    }
}

/// Which way a host op maps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Direction {
    /// Columns to the big grid (scatter-add).
    Col2Im,
    /// The big grid to columns (gather).
    Im2Col,
}

impl Direction {
    fn flip(self) -> Self {
        match self {
            Direction::Col2Im => Direction::Im2Col,
            Direction::Im2Col => Direction::Col2Im,
        }
    }
}

/// A host kernel for backend `B`.
type Kernel<B> = fn(Tensor<B, 2>, Geometry, Direction) -> Tensor<B, 2>;

/// Whether [`col2im`] / [`im2col`] run as host kernels for `B` (registered by
/// [`install_host_kernels`](super::install_host_kernels)). Nets take burn's convolutions
/// otherwise.
pub fn host_available<B: Backend>() -> bool {
    host::lookup::<Kernel<B>>().is_some()
}

/// Registers the kernels for the CPU backend `I` and `Autodiff<I>`.
pub(super) fn install<I: Backend>() {
    host::register::<Kernel<I>>(inner::<I>);
    host::register::<Kernel<Autodiff<I>>>(autodiff::<I>);
}

fn run<B: Backend>(x: Tensor<B, 2>, g: Geometry, dir: Direction) -> Tensor<B, 2> {
    match host::lookup::<Kernel<B>>() {
        Some(kernel) if x.dtype() == DType::F32 => kernel(x, g, dir),
        // Only reachable when a caller skipped `host_available` (or for another dtype): burn
        // has no op for it, so the result is NaN, which training reports as non-finite.
        _ => {
            let shape = match dir {
                Direction::Col2Im => g.big_shape(),
                Direction::Im2Col => g.cols_shape(),
            };
            Tensor::full(shape, f32::NAN, &x.device())
        }
    }
}

/// The scatter-add from columns to the big grid.
///
/// # Shapes
/// - `cols`: `[items * small_h * small_w, kernel_h * kernel_w * channels]`
/// - output: `[items * big_h * big_w, channels]`
pub fn col2im<B: Backend>(cols: Tensor<B, 2>, g: Geometry) -> Tensor<B, 2> {
    run(cols, g, Direction::Col2Im)
}

/// The gather from the big grid to columns.
///
/// # Shapes
/// - `big`: `[items * big_h * big_w, channels]`
/// - output: `[items * small_h * small_w, kernel_h * kernel_w * channels]`
pub fn im2col<B: Backend>(big: Tensor<B, 2>, g: Geometry) -> Tensor<B, 2> {
    run(big, g, Direction::Im2Col)
}

fn host_map(data: TensorData, g: &Geometry, dir: Direction) -> TensorData {
    let values = data.as_slice::<f32>().unwrap_or(&[]);
    match dir {
        Direction::Col2Im => TensorData::new(g.col2im(values), g.big_shape()),
        Direction::Im2Col => TensorData::new(g.im2col(values), g.cols_shape()),
    }
}

fn inner<I: Backend>(x: Tensor<I, 2>, g: Geometry, dir: Direction) -> Tensor<I, 2> {
    let device = x.device();
    Tensor::from_data(host_map(x.into_data(), &g, dir), &device)
}

fn inner_primitive<I: Backend>(x: FloatTensor<I>, g: &Geometry, dir: Direction) -> FloatTensor<I> {
    inner::<I>(Tensor::from_primitive(TensorPrimitive::Float(x)), *g, dir)
        .into_primitive()
        .tensor()
}

/// Backward of a host map: the adjoint map of the incoming gradient.
#[derive(Debug)]
struct MapBackward;

impl<I: Backend> Backward<I, 1> for MapBackward {
    type State = (Geometry, Direction);

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let (g, dir) = ops.state;
        unary::<I, _>(ops.parents, ops.node, grads, |grad| {
            inner_primitive::<I>(grad, &g, dir.flip())
        });
    }
}

fn autodiff<I: Backend>(
    x: Tensor<Autodiff<I>, 2>,
    g: Geometry,
    dir: Direction,
) -> Tensor<Autodiff<I>, 2> {
    let x = x.into_primitive().tensor();
    let node = x.node.clone();
    let out = inner_primitive::<I>(x.primitive, &g, dir);
    let out = match MapBackward
        .prepare::<NoCheckpointing>([node])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish((g, dir), out),
        OpsKind::UnTracked(prep) => prep.finish(out),
    };
    Tensor::from_primitive(TensorPrimitive::Float(out))
}

/// The geometry of `layer` on `items` channels-last maps of `h x w`, when this path supports
/// it (one group, no dilation, explicit or no padding) and the sizes fit; else `None`.
pub(crate) fn conv2d_geometry<B: Backend>(
    layer: &Conv2d<B>,
    items: usize,
    h: usize,
    w: usize,
) -> Option<Geometry> {
    let [_, c_in, kh, kw] = layer.weight.dims();
    let (top, left, bottom, right) = match layer.padding {
        PaddingConfig2d::Valid => (0, 0, 0, 0),
        PaddingConfig2d::Explicit(t, l, b, r) => (t, l, b, r),
        PaddingConfig2d::Same => return None,
    };
    if layer.groups != 1 || layer.dilation != [1, 1] || layer.stride.contains(&0) {
        return None;
    }
    let oh = (h + top + bottom).checked_sub(kh)? / layer.stride[0] + 1;
    let ow = (w + left + right).checked_sub(kw)? / layer.stride[1] + 1;
    Some(Geometry {
        items,
        channels: c_in,
        small_h: oh,
        small_w: ow,
        big_h: h,
        big_w: w,
        kernel_h: kh,
        kernel_w: kw,
        stride_h: layer.stride[0],
        stride_w: layer.stride[1],
        pad_h: top,
        pad_w: left,
    })
}

/// The geometry of the transposed convolution `layer` on `items` channels-last maps of
/// `h x w`, when this path supports it (one group, no dilation); else `None`.
pub(crate) fn conv_transpose2d_geometry<B: Backend>(
    layer: &ConvTranspose2d<B>,
    items: usize,
    h: usize,
    w: usize,
) -> Option<Geometry> {
    let [_, c_out, kh, kw] = layer.weight.dims();
    if layer.groups != 1 || layer.dilation != [1, 1] || h == 0 || w == 0 {
        return None;
    }
    let [sh, sw] = layer.stride;
    let [ph, pw] = layer.padding;
    let [oph, opw] = layer.padding_out;
    Some(Geometry {
        items,
        channels: c_out,
        small_h: h,
        small_w: w,
        big_h: ((h - 1) * sh + kh + oph).checked_sub(2 * ph)?,
        big_w: ((w - 1) * sw + kw + opw).checked_sub(2 * pw)?,
        kernel_h: kh,
        kernel_w: kw,
        stride_h: sh,
        stride_w: sw,
        pad_h: ph,
        pad_w: pw,
    })
}

/// `layer` on channels-last rows: `im2col(x) @ W + bias`.
///
/// # Shapes
/// - `x`: `[items * h * w, c_in]` (the big grid of `g`, from [`conv2d_geometry`])
/// - output: `[items * h_out * w_out, c_out]`
pub(crate) fn conv2d<B: Backend>(layer: &Conv2d<B>, x: Tensor<B, 2>, g: &Geometry) -> Tensor<B, 2> {
    conv_rows(
        layer.weight.val(),
        layer.bias.as_ref().map(|b| b.val()),
        x,
        g,
    )
}

/// The transposed convolution `layer` on channels-last rows: `col2im(x @ W) + bias`.
///
/// # Shapes
/// - `x`: `[items * h * w, c_in]` (the small grid of `g`, from [`conv_transpose2d_geometry`])
/// - output: `[items * h_out * w_out, c_out]`
pub(crate) fn conv_transpose2d<B: Backend>(
    layer: &ConvTranspose2d<B>,
    x: Tensor<B, 2>,
    g: &Geometry,
) -> Tensor<B, 2> {
    conv_transpose_rows(
        layer.weight.val(),
        layer.bias.as_ref().map(|b| b.val()),
        x,
        g,
    )
}

/// A convolution with `weight` `[c_out, c_in, kh, kw]` on channels-last rows:
/// `im2col(x) @ W + bias`, `[items * h * w, c_in]` to `[items * h_out * w_out, c_out]`.
fn conv_rows<B: Backend>(
    weight: Tensor<B, 4>,
    bias: Option<Tensor<B, 1>>,
    x: Tensor<B, 2>,
    g: &Geometry,
) -> Tensor<B, 2> {
    let [c_out, c_in, kh, kw] = weight.dims();
    let weight = weight
        .permute([2, 3, 1, 0]) // [kh, kw, c_in, c_out]
        .reshape([kh * kw * c_in, c_out]);
    add_bias(im2col(x, *g).matmul(weight), bias) // [items * h_out * w_out, c_out]
}

/// A transposed convolution with `weight` `[c_in, c_out, kh, kw]` on channels-last rows:
/// `col2im(x @ W) + bias`, `[items * h * w, c_in]` to `[items * h_out * w_out, c_out]`.
fn conv_transpose_rows<B: Backend>(
    weight: Tensor<B, 4>,
    bias: Option<Tensor<B, 1>>,
    x: Tensor<B, 2>,
    g: &Geometry,
) -> Tensor<B, 2> {
    let [c_in, c_out, kh, kw] = weight.dims();
    let weight = weight
        .permute([0, 2, 3, 1]) // [c_in, kh, kw, c_out]
        .reshape([c_in, kh * kw * c_out]);
    let cols = x.matmul(weight); // [items * h * w, kh * kw * c_out]
    add_bias(col2im(cols, *g), bias)
}

/// The geometry of the 1-D convolution `layer` on `items` channels-last signals of `len`
/// (a `1 x len` grid), when this path supports it; else `None`.
pub(crate) fn conv1d_geometry<B: Backend>(
    layer: &Conv1d<B>,
    items: usize,
    len: usize,
) -> Option<Geometry> {
    let [_, c_in, k] = layer.weight.dims();
    let (left, right) = match layer.padding {
        PaddingConfig1d::Valid => (0, 0),
        PaddingConfig1d::Explicit(l, r) => (l, r),
        PaddingConfig1d::Same => return None,
    };
    if layer.groups != 1 || layer.dilation != 1 || layer.stride == 0 {
        return None;
    }
    Some(Geometry {
        small_w: (len + left + right).checked_sub(k)? / layer.stride + 1,
        big_w: len,
        kernel_w: k,
        stride_w: layer.stride,
        pad_w: left,
        ..Geometry::line(items, c_in)
    })
}

/// The geometry of the 1-D transposed convolution `layer` on `items` channels-last signals of
/// `len`, when this path supports it; else `None`.
pub(crate) fn conv_transpose1d_geometry<B: Backend>(
    layer: &ConvTranspose1d<B>,
    items: usize,
    len: usize,
) -> Option<Geometry> {
    let [_, c_out, k] = layer.weight.dims();
    if layer.groups != 1 || layer.dilation != 1 || len == 0 {
        return None;
    }
    Some(Geometry {
        small_w: len,
        big_w: ((len - 1) * layer.stride + k + layer.padding_out).checked_sub(2 * layer.padding)?,
        kernel_w: k,
        stride_w: layer.stride,
        pad_w: layer.padding,
        ..Geometry::line(items, c_out)
    })
}

/// The 1-D `layer` on channels-last rows: `im2col(x) @ W + bias` (its weight as a
/// `1 x k` kernel, the `1 x len` grid of [`conv1d_geometry`]).
///
/// # Shapes
/// - `x`: `[items * len, c_in]`; output: `[items * len_out, c_out]`
pub(crate) fn conv1d<B: Backend>(layer: &Conv1d<B>, x: Tensor<B, 2>, g: &Geometry) -> Tensor<B, 2> {
    let weight = layer.weight.val().unsqueeze_dim(2); // [c_out, c_in, 1, k]
    conv_rows(weight, layer.bias.as_ref().map(|b| b.val()), x, g)
}

/// The 1-D transposed convolution `layer` on channels-last rows: `col2im(x @ W) + bias`.
///
/// # Shapes
/// - `x`: `[items * len, c_in]`; output: `[items * len_out, c_out]`
pub(crate) fn conv_transpose1d<B: Backend>(
    layer: &ConvTranspose1d<B>,
    x: Tensor<B, 2>,
    g: &Geometry,
) -> Tensor<B, 2> {
    let weight = layer.weight.val().unsqueeze_dim(2); // [c_in, c_out, 1, k]
    conv_transpose_rows(weight, layer.bias.as_ref().map(|b| b.val()), x, g)
}

/// `x + bias` per row (`[rows, c] + [1, c]`, the row broadcast CPU backends vectorise).
fn add_bias<B: Backend>(x: Tensor<B, 2>, bias: Option<Tensor<B, 1>>) -> Tensor<B, 2> {
    match bias {
        Some(bias) => {
            let c = bias.dims()[0];
            x.add(bias.reshape([1, c]))
        }
        None => x,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geometry() -> Geometry {
        Geometry {
            items: 2,
            channels: 3,
            small_h: 3,
            small_w: 2,
            big_h: 6,
            big_w: 4,
            kernel_h: 4,
            kernel_w: 4,
            stride_h: 2,
            stride_w: 2,
            pad_h: 1,
            pad_w: 1,
        }
    }

    fn pseudo(n: usize, seed: u32) -> Vec<f32> {
        (0..n as u32)
            .map(|i| {
                ((i.wrapping_mul(2654435761).wrapping_add(seed) >> 8) % 1000) as f32 / 500.0 - 1.0
            })
            .collect()
    }

    #[test]
    fn im2col_is_the_adjoint_of_col2im() {
        // <col2im(c), b> == <c, im2col(b)> for all c, b: each op's backward is the other.
        let g = geometry();
        let [cr, cw] = g.cols_shape();
        let [br, bw] = g.big_shape();
        let c = pseudo(cr * cw, 1);
        let b = pseudo(br * bw, 2);
        let lhs: f64 = g
            .col2im(&c)
            .iter()
            .zip(&b)
            .map(|(x, y)| f64::from(x * y))
            .sum();
        let rhs: f64 = c
            .iter()
            .zip(&g.im2col(&b))
            .map(|(x, y)| f64::from(x * y))
            .sum();
        assert!(
            (lhs - rhs).abs() < 1e-3 * lhs.abs().max(1.0),
            "{lhs} vs {rhs}"
        );
    }

    #[test]
    fn col2im_counts_each_meeting_once() {
        // With all-ones columns, a big position holds the number of (position, tap) pairs that
        // meet it: 4 inside for kernel 4 / stride 2 / padding 1 (2 per axis), fewer at edges.
        let g = geometry();
        let [cr, cw] = g.cols_shape();
        let out = g.col2im(&vec![1.0; cr * cw]);
        let at = |y: usize, x: usize| out[(y * g.big_w + x) * g.channels];
        assert_eq!(at(2, 2), 4.0);
        assert_eq!(at(0, 2), 2.0); // top row: one vertical tap
        assert_eq!(at(0, 0), 1.0);
        assert_eq!(at(5, 3), 1.0);
    }

    #[test]
    fn shape_mismatch_gives_nan_not_a_panic() {
        let g = geometry();
        assert!(g.col2im(&[1.0; 5]).iter().all(|v| v.is_nan()));
        assert!(g.im2col(&[1.0; 5]).iter().all(|v| v.is_nan()));
    }
}
