// Matrix products: MatMul (numpy batched broadcasting, 1-D operands), Gemm,
// MatMulInteger, QLinearMatMul; and Det. Products run through Gemm
// (nn_gemm.h) in the accumulator type of the element type.
#include "ops/linalg_matmul.h"

#include <cmath>
#include <limits>
#include <string>

#include "ops/linalg_util.h"
#include "ops/op_table.h"

namespace kiln {
namespace linalg {

double RoundToType(DataType dt, double v) {
  switch (dt) {
    case DataType::kFloat16:
      return static_cast<float>(Half(static_cast<float>(v)));
    case DataType::kBFloat16:
      return static_cast<float>(BFloat16(static_cast<float>(v)));
    case DataType::kFloat:
      return static_cast<float>(v);
    default:
      return v;
  }
}

Expected<Shape> MatMulShape(const NodeContext& ctx, const Shape& a, const Shape& b) {
  if (!a.rank_known() || !b.rank_known()) return Shape::Unranked();
  if (a.rank() == 0 || b.rank() == 0) return ctx.Error("MatMul operands must have rank >= 1");
  std::vector<Dim> ad = a.dims(), bd = b.dims();
  const bool a_vec = ad.size() == 1, b_vec = bd.size() == 1;
  if (a_vec) ad.insert(ad.begin(), Dim(1));
  if (b_vec) bd.push_back(Dim(1));
  const Dim& ka = ad.back();
  const Dim& kb = bd[bd.size() - 2];
  if (ka.known() && kb.known() && ka.value() != kb.value())
    return ctx.Error("inner dimensions differ: " + ka.ToString() + " vs " + kb.ToString());
  Shape a_batch(std::vector<Dim>(ad.begin(), ad.end() - 2));
  Shape b_batch(std::vector<Dim>(bd.begin(), bd.end() - 2));
  Expected<Shape> batch = BroadcastShapes({a_batch, b_batch});
  if (!batch.ok()) return ctx.Error("batch dimensions: " + batch.status().message());
  std::vector<Dim> out = batch->dims();
  if (!a_vec) out.push_back(ad[ad.size() - 2]);
  if (!b_vec) out.push_back(bd.back());
  return Shape(std::move(out));
}

template <class Acc>
Status BatchedMatMul(const NodeContext& ctx, const std::vector<int64_t>& a_dims, const Acc* a,
                     const std::vector<int64_t>& b_dims, const Acc* b, std::vector<int64_t>* out_dims,
                     std::vector<Acc>* out) {
  if (a_dims.empty() || b_dims.empty()) return ctx.Error("MatMul operands must have rank >= 1");
  std::vector<int64_t> ad = a_dims, bd = b_dims;
  const bool a_vec = ad.size() == 1, b_vec = bd.size() == 1;
  if (a_vec) ad.insert(ad.begin(), 1);
  if (b_vec) bd.push_back(1);
  const int64_t M = ad[ad.size() - 2], K = ad.back(), N = bd.back();
  if (bd[bd.size() - 2] != K)
    return ctx.Error("inner dimensions differ: " + std::to_string(K) + " vs " +
                     std::to_string(bd[bd.size() - 2]));
  std::vector<int64_t> a_batch(ad.begin(), ad.end() - 2), b_batch(bd.begin(), bd.end() - 2), batch;
  if (!BroadcastDims({a_batch, b_batch}, &batch)) return ctx.Error("batch dimensions do not broadcast");
  *out_dims = batch;
  if (!a_vec) out_dims->push_back(M);
  if (!b_vec) out_dims->push_back(N);
  int64_t batch_count = 1;
  for (int64_t d : batch) batch_count *= d;
  out->assign(static_cast<size_t>(batch_count * M * N), Acc(0));
  Acc* c = out->data();
  std::vector<int64_t> as = BroadcastStrides(a_batch, batch), bs = BroadcastStrides(b_batch, batch);
  int64_t index = 0;
  ForEachBroadcast(batch, {as, bs}, [&](const std::vector<int64_t>& off) {
    const Acc* am = a + off[0] * M * K;
    const Acc* bm = b + off[1] * K * N;
    Product<Acc>(M, N, K, MatrixRef<Acc>::RowMajor(am, K), MatrixRef<Acc>::RowMajor(bm, N),
                 c + index * M * N);
    ++index;
  });
  return Status::Ok();
}

template Status BatchedMatMul<float>(const NodeContext&, const std::vector<int64_t>&, const float*,
                                     const std::vector<int64_t>&, const float*, std::vector<int64_t>*,
                                     std::vector<float>*);
template Status BatchedMatMul<double>(const NodeContext&, const std::vector<int64_t>&, const double*,
                                      const std::vector<int64_t>&, const double*, std::vector<int64_t>*,
                                      std::vector<double>*);
template Status BatchedMatMul<int64_t>(const NodeContext&, const std::vector<int64_t>&, const int64_t*,
                                       const std::vector<int64_t>&, const int64_t*, std::vector<int64_t>*,
                                       std::vector<int64_t>*);
template Status BatchedMatMul<uint64_t>(const NodeContext&, const std::vector<int64_t>&, const uint64_t*,
                                        const std::vector<int64_t>&, const uint64_t*, std::vector<int64_t>*,
                                        std::vector<uint64_t>*);

Expected<Tensor> MatMulTensors(const NodeContext& ctx, const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype()) return ctx.Error("operands have different element types");
  Expected<Tensor> result = Tensor();
  bool ok = DispatchAcc(a.dtype(), [&](auto acc_tag) {
    using Acc = decltype(acc_tag);
    AccData<Acc> ad = AsAcc<Acc>(a), bd = AsAcc<Acc>(b);
    std::vector<int64_t> dims;
    std::vector<Acc> out;
    Status st = BatchedMatMul<Acc>(ctx, a.dims(), ad.ptr, b.dims(), bd.ptr, &dims, &out);
    if (!st.ok()) {
      result = st;
      return;
    }
    result = WriteAs<Acc>(a.dtype(), dims, out);
  });
  if (!ok) return ctx.UnsupportedError("element type " + std::string(DataTypeName(a.dtype())));
  return result;
}

}  // namespace linalg

namespace ops {
namespace {

using linalg::MatMulShape;

// Broadcasts a per-row quantization parameter (1-D of size rows) as [rows, 1];
// other shapes broadcast numpy-style.
std::vector<int64_t> RowParamDims(const Tensor& p, const std::vector<int64_t>& operand_dims) {
  if (p.rank() == 1 && p.numel() > 1 && operand_dims.size() >= 2 &&
      p.dim(0) == operand_dims[operand_dims.size() - 2])
    return {p.dim(0), 1};
  return p.dims();
}

// operand - zero_point as int64, zero_point broadcast to the operand's shape.
Expected<std::vector<int64_t>> Dequantize(const NodeContext& ctx, const Tensor& x, const Tensor* zp,
                                          bool per_row) {
  std::vector<int64_t> v = linalg::ReadAs<int64_t>(x);
  if (!zp || zp->numel() == 0) return v;
  std::vector<int64_t> zdims = per_row ? RowParamDims(*zp, x.dims()) : zp->dims();
  std::vector<int64_t> bdims;
  if (!BroadcastDims({x.dims(), zdims}, &bdims) || bdims != x.dims())
    return ctx.Error("zero point " + zp->Describe() + " does not broadcast to " + x.Describe());
  std::vector<int64_t> z = linalg::ReadAs<int64_t>(*zp);
  size_t i = 0;
  ForEachBroadcast(x.dims(), {BroadcastStrides(zdims, x.dims())},
                   [&](const std::vector<int64_t>& off) { v[i++] -= z[static_cast<size_t>(off[0])]; });
  return v;
}

}  // namespace

Status InferMatMul(InferContext& ctx) {
  KILN_ASSIGN_OR_RETURN(Shape s, MatMulShape(ctx, ctx.input_shape(0), ctx.input_shape(1)));
  ctx.set_output(0, ctx.input_dtype(0), std::move(s));
  return Status::Ok();
}

Status RunMatMul(RunContext& ctx) {
  KILN_ASSIGN_OR_RETURN(Tensor y, linalg::MatMulTensors(ctx, ctx.input(0), ctx.input(1)));
  ctx.set_output(0, std::move(y));
  return Status::Ok();
}

Status InferMatMulInteger(InferContext& ctx) {
  KILN_ASSIGN_OR_RETURN(Shape s, MatMulShape(ctx, ctx.input_shape(0), ctx.input_shape(1)));
  ctx.set_output(0, DataType::kInt32, std::move(s));
  return Status::Ok();
}

Status RunMatMulInteger(RunContext& ctx) {
  const Tensor& a = ctx.input(0);
  const Tensor& b = ctx.input(1);
  if (!IsInt8Type(a.dtype()) || !IsInt8Type(b.dtype())) return ctx.Error("A and B must be int8 or uint8");
  KILN_ASSIGN_OR_RETURN(std::vector<int64_t> av,
                        Dequantize(ctx, a, ctx.has_input(2) ? &ctx.input(2) : nullptr, true));
  KILN_ASSIGN_OR_RETURN(std::vector<int64_t> bv,
                        Dequantize(ctx, b, ctx.has_input(3) ? &ctx.input(3) : nullptr, false));
  std::vector<int64_t> dims;
  std::vector<int64_t> out;
  KILN_RETURN_IF_ERROR(
      linalg::BatchedMatMul<int64_t>(ctx, a.dims(), av.data(), b.dims(), bv.data(), &dims, &out));
  ctx.set_output(0, linalg::WriteAs<int64_t>(DataType::kInt32, dims, out));
  return Status::Ok();
}

Status InferQLinearMatMul(InferContext& ctx) {
  KILN_ASSIGN_OR_RETURN(Shape s, MatMulShape(ctx, ctx.input_shape(0), ctx.input_shape(3)));
  DataType dt = ctx.has_input(7) ? ctx.input_dtype(7) : ctx.input_dtype(0);
  ctx.set_output(0, dt, std::move(s));
  return Status::Ok();
}

Status RunQLinearMatMul(RunContext& ctx) {
  for (size_t i : {0, 1, 3, 4, 6})
    if (!ctx.has_input(i)) return ctx.Error("input " + std::to_string(i) + " is required");
  const Tensor& a = ctx.input(0);
  const Tensor& b = ctx.input(3);
  if (!IsInt8Type(a.dtype()) || !IsInt8Type(b.dtype()))
    return ctx.UnsupportedError("only int8/uint8 a and b are supported (float8 is not yet)");
  KILN_ASSIGN_OR_RETURN(std::vector<int64_t> av,
                        Dequantize(ctx, a, ctx.has_input(2) ? &ctx.input(2) : nullptr, true));
  KILN_ASSIGN_OR_RETURN(std::vector<int64_t> bv,
                        Dequantize(ctx, b, ctx.has_input(5) ? &ctx.input(5) : nullptr, false));
  std::vector<int64_t> dims;
  std::vector<int64_t> acc;
  KILN_RETURN_IF_ERROR(
      linalg::BatchedMatMul<int64_t>(ctx, a.dims(), av.data(), b.dims(), bv.data(), &dims, &acc));

  const Tensor& a_scale = ctx.input(1);
  const Tensor& b_scale = ctx.input(4);
  const Tensor& y_scale = ctx.input(6);
  const DataType scale_dt = a_scale.dtype();
  const bool has_yzp = ctx.has_input(7) && ctx.input(7).numel() > 0;
  const DataType out_dt = has_yzp ? ctx.input(7).dtype() : a.dtype();
  // Per-row a_scale, per-column b_scale, per-tensor y_scale (or numpy broadcast).
  std::vector<int64_t> as_dims = RowParamDims(a_scale, a.dims());
  std::vector<int64_t> ys_dims = RowParamDims(y_scale, dims);
  std::vector<int64_t> yzp_dims = has_yzp ? RowParamDims(ctx.input(7), dims) : std::vector<int64_t>{};
  std::vector<int64_t> check;
  for (const std::vector<int64_t>& pd : {as_dims, b_scale.dims(), ys_dims, yzp_dims})
    if (!BroadcastDims({dims, pd}, &check) || check != dims)
      return ctx.Error("quantization parameters do not broadcast to the output shape");
  std::vector<double> as = linalg::ReadAs<double>(a_scale), bs = linalg::ReadAs<double>(b_scale),
                      ys = linalg::ReadAs<double>(y_scale);
  std::vector<int64_t> yzp = has_yzp ? linalg::ReadAs<int64_t>(ctx.input(7)) : std::vector<int64_t>{0};
  const double qmin = out_dt == DataType::kInt8 ? -128 : 0, qmax = out_dt == DataType::kInt8 ? 127 : 255;
  std::vector<int64_t> out(acc.size());
  size_t i = 0;
  ForEachBroadcast(dims,
                   {BroadcastStrides(as_dims, dims), BroadcastStrides(b_scale.dims(), dims),
                    BroadcastStrides(ys_dims, dims), BroadcastStrides(yzp_dims, dims)},
                   [&](const std::vector<int64_t>& off) {
                     // The scale product is formed in the scale type, as the reference does.
                     double s = linalg::RoundToType(scale_dt, as[off[0]] * bs[off[1]]);
                     s = linalg::RoundToType(scale_dt, s / ys[off[2]]);
                     double q =
                         std::nearbyint(static_cast<double>(acc[i]) * s) + static_cast<double>(yzp[off[3]]);
                     out[i] = static_cast<int64_t>(std::min(qmax, std::max(qmin, q)));
                     ++i;
                   });
  ctx.set_output(0, linalg::WriteAs<int64_t>(out_dt, dims, out));
  return Status::Ok();
}

Status InferGemm(InferContext& ctx) {
  const Shape& a = ctx.input_shape(0);
  const Shape& b = ctx.input_shape(1);
  const bool ta = ctx.attr_int("transA", 0) != 0, tb = ctx.attr_int("transB", 0) != 0;
  if (!a.rank_known() || !b.rank_known()) {
    ctx.set_output(0, ctx.input_dtype(0), Shape(std::vector<Dim>(2)));
    return Status::Ok();
  }
  if (a.rank() != 2 || b.rank() != 2) return ctx.Error("A and B must be 2-D");
  const Dim& m = ta ? a[1] : a[0];
  const Dim& ka = ta ? a[0] : a[1];
  const Dim& kb = tb ? b[1] : b[0];
  const Dim& n = tb ? b[0] : b[1];
  if (ka.known() && kb.known() && ka.value() != kb.value())
    return ctx.Error("inner dimensions differ: " + ka.ToString() + " vs " + kb.ToString());
  Shape out({m, n});
  if (ctx.has_input(2)) {
    Expected<Shape> bc = BroadcastShapes({out, ctx.input_shape(2)});
    if (!bc.ok()) return ctx.Error("C does not broadcast to [M, N]: " + bc.status().message());
  }
  ctx.set_output(0, ctx.input_dtype(0), std::move(out));
  return Status::Ok();
}

Status RunGemm(RunContext& ctx) {
  const Tensor& a = ctx.input(0);
  const Tensor& b = ctx.input(1);
  if (a.rank() != 2 || b.rank() != 2) return ctx.Error("A and B must be 2-D");
  if (a.dtype() != b.dtype()) return ctx.Error("A and B have different element types");
  const bool ta = ctx.attr_int("transA", 0) != 0, tb = ctx.attr_int("transB", 0) != 0;
  const double alpha = ctx.attr_float("alpha", 1.0f), beta = ctx.attr_float("beta", 1.0f);
  const int64_t M = ta ? a.dim(1) : a.dim(0), K = ta ? a.dim(0) : a.dim(1);
  const int64_t N = tb ? b.dim(0) : b.dim(1);
  if ((tb ? b.dim(1) : b.dim(0)) != K)
    return ctx.Error("inner dimensions differ: " + std::to_string(K) + " vs " +
                     std::to_string(tb ? b.dim(1) : b.dim(0)));
  const Tensor* c = ctx.has_input(2) && ctx.input(2).defined() ? &ctx.input(2) : nullptr;
  const std::vector<int64_t> out_dims = {M, N};
  std::vector<int64_t> bc;
  if (c && (!BroadcastDims({out_dims, c->dims()}, &bc) || bc != out_dims))
    return ctx.Error("C " + c->Describe() + " does not broadcast to [" + std::to_string(M) + "," +
                     std::to_string(N) + "]");
  bool ok = linalg::DispatchAcc(a.dtype(), [&](auto acc_tag) {
    using Acc = decltype(acc_tag);
    // Floating types finish in their accumulator type; integers in double.
    using Epi = std::conditional_t<std::is_floating_point_v<Acc>, Acc, double>;
    linalg::AccData<Acc> ad = linalg::AsAcc<Acc>(a), bd = linalg::AsAcc<Acc>(b);
    std::vector<Acc> prod(static_cast<size_t>(M * N));
    auto view = [](const Acc* p, int64_t ld, bool t) {
      return t ? MatrixRef<Acc>::Transposed(p, ld) : MatrixRef<Acc>::RowMajor(p, ld);
    };
    linalg::Product<Acc>(M, N, K, view(ad.ptr, a.dim(1), ta), view(bd.ptr, b.dim(1), tb), prod.data());
    std::vector<Epi> y(prod.size());
    for (size_t i = 0; i < y.size(); ++i) {
      // Integer products wrapped in uint64_t: read them back as signed.
      const auto v = std::is_floating_point_v<Acc> ? static_cast<Epi>(prod[i])
                                                   : static_cast<Epi>(static_cast<int64_t>(prod[i]));
      y[i] = static_cast<Epi>(alpha) * v;
    }
    if (c && beta != 0.0) {
      std::vector<Epi> cv = linalg::ReadAs<Epi>(*c);
      size_t i = 0;
      ForEachBroadcast(out_dims, {BroadcastStrides(c->dims(), out_dims)},
                       [&](const std::vector<int64_t>& off) {
                         y[i++] += static_cast<Epi>(beta) * cv[static_cast<size_t>(off[0])];
                       });
    }
    ctx.set_output(0, linalg::WriteAs<Epi>(a.dtype(), out_dims, y));
  });
  if (!ok) return ctx.UnsupportedError("element type " + std::string(DataTypeName(a.dtype())));
  return Status::Ok();
}

Status InferDet(InferContext& ctx) {
  const Shape& x = ctx.input_shape(0);
  if (!x.rank_known()) {
    ctx.set_output(0, ctx.input_dtype(0), Shape());
    return Status::Ok();
  }
  if (x.rank() < 2) return ctx.Error("Det needs rank >= 2");
  const Dim& r = x[x.rank() - 2];
  const Dim& c = x[x.rank() - 1];
  if (r.known() && c.known() && r.value() != c.value()) return ctx.Error("Det needs square matrices");
  ctx.set_output(0, ctx.input_dtype(0), Shape(std::vector<Dim>(x.dims().begin(), x.dims().end() - 2)));
  return Status::Ok();
}

Status RunDet(RunContext& ctx) {
  const Tensor& x = ctx.input(0);
  if (x.rank() < 2 || x.dim(x.rank() - 1) != x.dim(x.rank() - 2)) return ctx.Error("Det needs [..., M, M]");
  if (!IsFloatingPoint(x.dtype())) return ctx.Error("Det needs a floating-point input");
  const int64_t n = x.dim(x.rank() - 1);
  std::vector<int64_t> out_dims(x.dims().begin(), x.dims().end() - 2);
  std::vector<double> v = linalg::ReadAs<double>(x);
  const int64_t count = n == 0 ? 0 : static_cast<int64_t>(v.size()) / (n * n);
  std::vector<double> out(static_cast<size_t>(count), 1.0);
  if (n == 0) out.assign(static_cast<size_t>(Tensor(x.dtype(), out_dims).numel()), 1.0);
  for (int64_t m = 0; m < count; ++m) {
    // LU decomposition with partial pivoting; det = sign * prod(diagonal).
    double* a = v.data() + m * n * n;
    double det = 1.0;
    for (int64_t col = 0; col < n && det != 0.0; ++col) {
      int64_t piv = col;
      for (int64_t r = col + 1; r < n; ++r)
        if (std::fabs(a[r * n + col]) > std::fabs(a[piv * n + col])) piv = r;
      if (a[piv * n + col] == 0.0) {
        det = 0.0;
        break;
      }
      if (piv != col) {
        for (int64_t k = 0; k < n; ++k) std::swap(a[piv * n + k], a[col * n + k]);
        det = -det;
      }
      det *= a[col * n + col];
      for (int64_t r = col + 1; r < n; ++r) {
        const double f = a[r * n + col] / a[col * n + col];
        for (int64_t k = col; k < n; ++k) a[r * n + k] -= f * a[col * n + k];
      }
    }
    out[static_cast<size_t>(m)] = det;
  }
  ctx.set_output(0, linalg::WriteAs<double>(x.dtype(), out_dims, out));
  return Status::Ok();
}

}  // namespace ops
}  // namespace kiln
