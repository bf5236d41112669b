// Signal processing ops: DFT (opset 17: axis attribute; opset 20: axis input),
// STFT, HannWindow, HammingWindow, BlackmanWindow and MelWeightMatrix.
// Complex values are held as a trailing dimension of 2 (real, imaginary); a
// trailing dimension of 1 is a real signal. Transforms are computed in double
// with a plain O(n^2) DFT over a precomputed twiddle table.
#include <cmath>
#include <complex>
#include <vector>

#include "ops/op_table.h"
#include "ops/unary_cast.h"
#include "ops/unary_util.h"

namespace kiln {
namespace ops {
namespace {

using Complex = std::complex<double>;
constexpr double kPi = 3.14159265358979323846;

// Reads a scalar (or 1-element) integer input.
Expected<int64_t> ScalarInt(const RunContext& ctx, size_t i, const char* what) {
  const Tensor& t = ctx.input(i);
  if (t.numel() != 1) return ctx.Error(std::string(what) + " must be a scalar");
  if (IsFloatingPoint(t.dtype())) return static_cast<int64_t>(FloatElement(t, 0));
  return t.IntAt(0);
}

// Tensor of doubles `v` with dims, converted to `dt`.
Expected<Tensor> DoublesTo(const std::vector<double>& v, std::vector<int64_t> dims, DataType dt) {
  Tensor d = Tensor::FromVector<double>(DataType::kDouble, std::move(dims), v);
  return CastTensor(d, dt);
}

// Transforms each line along one axis: out[k] = scale * sum_j in[j] * w^(j*k).
// `in` holds lines of in_len points; out lines of out_len points (n = period).
// Always in double, whatever the tensor type: float32 results are then the
// correctly rounded transform (an FFT in float32 is off by ~1e-7 of the peak).
void DftLines(const std::vector<Complex>& in, int64_t outer, int64_t in_len, int64_t inner, int64_t n,
              int64_t out_len, bool inverse, std::vector<Complex>* out) {
  std::vector<Complex> tw(static_cast<size_t>(n));
  const double sign = inverse ? 1.0 : -1.0;
  for (int64_t t = 0; t < n; ++t) tw[static_cast<size_t>(t)] = std::polar(1.0, sign * 2 * kPi * t / n);
  const double scale = inverse ? 1.0 / static_cast<double>(n) : 1.0;
  const int64_t used = std::min(in_len, n);  // input zero-padded or truncated to n
  out->assign(static_cast<size_t>(outer * out_len * inner), Complex());
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i)
      for (int64_t k = 0; k < out_len; ++k) {
        Complex acc;
        for (int64_t j = 0; j < used; ++j)
          acc += in[static_cast<size_t>((o * in_len + j) * inner + i)] * tw[static_cast<size_t>((j * k) % n)];
        (*out)[static_cast<size_t>((o * out_len + k) * inner + i)] = acc * scale;
      }
}

struct DftArgs {
  int64_t axis = 1;
  bool inverse = false;
  bool onesided = false;
};

}  // namespace

Status RunDFT(RunContext& ctx) {
  KILN_RETURN_IF_ERROR(RequireTensorInputs(ctx, {0}));
  const Tensor& x = ctx.input(0);
  const int64_t r = x.rank();
  if (r < 2 || (x.dims().back() != 1 && x.dims().back() != 2))
    return ctx.Error("input must have rank >= 2 with a last dimension of 1 (real) or 2 (complex)");
  if (!IsFloatingPoint(x.dtype())) return ctx.Error("input must be a float tensor");
  DftArgs a;
  a.inverse = ctx.attr_int("inverse", 0) != 0;
  a.onesided = ctx.attr_int("onesided", 0) != 0;
  int64_t axis = ctx.opset() >= 20 ? -2 : ctx.attr_int("axis", 1);
  if (ctx.opset() >= 20 && ctx.has_input(2)) {
    KILN_ASSIGN_OR_RETURN(axis, ScalarInt(ctx, 2, "axis"));
  }
  if (axis < 0) axis += r;
  if (axis < 0 || axis >= r - 1) return ctx.Error("axis " + std::to_string(axis) + " is out of range");
  const int64_t in_len = x.dim(static_cast<int>(axis));
  int64_t n = a.inverse && a.onesided ? 2 * (in_len - 1) : in_len;
  if (ctx.has_input(1)) {
    KILN_ASSIGN_OR_RETURN(n, ScalarInt(ctx, 1, "dft_length"));
  }
  if (n <= 0) return ctx.Error("dft_length must be positive");

  const bool complex_in = x.dims().back() == 2;
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= x.dim(static_cast<int>(d));
  for (int64_t d = axis + 1; d < r - 1; ++d) inner *= x.dim(static_cast<int>(d));
  std::vector<Complex> in(static_cast<size_t>(outer * in_len * inner));
  for (size_t i = 0; i < in.size(); ++i)
    in[i] = complex_in ? Complex(FloatElement(x, 2 * i), FloatElement(x, 2 * i + 1))
                       : Complex(FloatElement(x, i), 0);

  std::vector<int64_t> out_dims = x.dims();
  std::vector<double> out_vals;
  if (a.inverse && a.onesided) {
    // irfft: rebuild the Hermitian spectrum from its first n/2+1 points.
    const int64_t m = n / 2 + 1;
    std::vector<Complex> full(static_cast<size_t>(outer * n * inner));
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < inner; ++i) {
        auto at = [&](int64_t j) -> Complex {
          return j < in_len ? in[static_cast<size_t>((o * in_len + j) * inner + i)] : Complex();
        };
        for (int64_t j = 0; j < n; ++j) {
          Complex v = j < m ? at(j) : std::conj(at(n - j));
          if (j == 0 || (n % 2 == 0 && j == n / 2)) v = Complex(v.real(), 0);
          full[static_cast<size_t>((o * n + j) * inner + i)] = v;
        }
      }
    std::vector<Complex> res;
    DftLines(full, outer, n, inner, n, n, true, &res);
    out_dims[static_cast<size_t>(axis)] = n;
    out_dims.back() = 1;
    for (const Complex& c : res) out_vals.push_back(c.real());
  } else {
    const int64_t out_len = !a.inverse && a.onesided ? n / 2 + 1 : n;
    std::vector<Complex> res;
    DftLines(in, outer, in_len, inner, n, out_len, a.inverse, &res);
    out_dims[static_cast<size_t>(axis)] = out_len;
    out_dims.back() = 2;
    for (const Complex& c : res) {
      out_vals.push_back(c.real());
      out_vals.push_back(c.imag());
    }
  }
  KILN_ASSIGN_OR_RETURN(Tensor y, DoublesTo(out_vals, out_dims, x.dtype()));
  ctx.set_output(0, std::move(y));
  return Status::Ok();
}

Status InferDFT(InferContext& ctx) {
  const Shape& xs = ctx.input_shape(0);
  const DataType dt = ctx.input_dtype(0);
  if (!xs.rank_known()) {
    ctx.set_output(0, dt, Shape::Unranked());
    return Status::Ok();
  }
  const int64_t r = xs.rank();
  if (r < 2) return ctx.Error("input must have rank >= 2");
  const bool inverse = ctx.attr_int("inverse", 0) != 0;
  const bool onesided = ctx.attr_int("onesided", 0) != 0;
  std::vector<Dim> out = xs.dims();
  out.back() = Dim(inverse && onesided ? 1 : 2);
  bool axis_known = true;
  int64_t axis = ctx.opset() >= 20 ? -2 : ctx.attr_int("axis", 1);
  if (ctx.opset() >= 20 && ctx.has_input(2)) {
    const Tensor* t = ctx.input_data(2);
    if (t && t->numel() == 1)
      axis = t->IntAt(0);
    else
      axis_known = false;
  }
  if (!axis_known) {
    // Without onesided or dft_length the transformed axis keeps its size.
    if (onesided || ctx.has_input(1))
      for (int64_t d = 0; d < r - 1; ++d) out[static_cast<size_t>(d)] = Dim::Unknown();
    ctx.set_output(0, dt, Shape(std::move(out)));
    return Status::Ok();
  }
  if (axis < 0) axis += r;
  if (axis < 0 || axis >= r - 1) return ctx.Error("axis " + std::to_string(axis) + " is out of range");
  Dim& d = out[static_cast<size_t>(axis)];
  Dim n = d;
  if (ctx.has_input(1)) {
    const Tensor* t = ctx.input_data(1);
    n = t && t->numel() == 1 ? Dim(t->IntAt(0)) : Dim::Unknown();
  } else if (inverse && onesided) {
    n = (d - Dim(1)) * Dim(2);
  }
  if (!inverse && onesided)
    d = n.known() ? Dim(n.value() / 2 + 1) : Dim::Unknown();
  else
    d = n;
  ctx.set_output(0, dt, Shape(std::move(out)));
  return Status::Ok();
}

Status RunSTFT(RunContext& ctx) {
  KILN_RETURN_IF_ERROR(RequireTensorInputs(ctx, {0, 1}));
  const Tensor& x = ctx.input(0);
  if (x.rank() != 3 || (x.dim(2) != 1 && x.dim(2) != 2))
    return ctx.Error("signal must be [batch, length, 1 or 2]");
  KILN_ASSIGN_OR_RETURN(int64_t step, ScalarInt(ctx, 1, "frame_step"));
  const bool has_window = ctx.has_input(2);
  int64_t frame_length = has_window ? ctx.input(2).numel() : x.dim(1);
  if (ctx.has_input(3)) {
    KILN_ASSIGN_OR_RETURN(frame_length, ScalarInt(ctx, 3, "frame_length"));
  }
  const bool onesided = ctx.attr_int("onesided", 1) != 0;
  const int64_t batch = x.dim(0), len = x.dim(1);
  if (step <= 0 || frame_length <= 0 || frame_length > len)
    return ctx.Error("frame_step and frame_length must be positive and frame_length <= signal length");
  const bool complex_in = x.dim(2) == 2;
  if (complex_in && onesided) return ctx.Error("onesided STFT needs a real signal");
  const int64_t window_size = has_window ? ctx.input(2).numel() : frame_length;
  std::vector<double> window(static_cast<size_t>(window_size), 1.0);
  if (has_window)
    for (int64_t j = 0; j < window_size; ++j) window[static_cast<size_t>(j)] = FloatElement(ctx.input(2), j);
  const int64_t frames = 1 + (len - frame_length) / step;
  const int64_t bins = onesided ? frame_length / 2 + 1 : frame_length;
  // Frames laid out as lines of window_size points: [batch*frames, window_size].
  std::vector<Complex> in(static_cast<size_t>(batch * frames * window_size));
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t f = 0; f < frames; ++f)
      for (int64_t j = 0; j < window_size; ++j) {
        int64_t s = f * step + j;
        Complex v;
        if (s < len) {
          int64_t base = (b * len + s) * x.dim(2);
          v = complex_in ? Complex(FloatElement(x, base), FloatElement(x, base + 1))
                         : Complex(FloatElement(x, base), 0);
        }
        in[static_cast<size_t>((b * frames + f) * window_size + j)] = v * window[static_cast<size_t>(j)];
      }
  std::vector<Complex> res;
  DftLines(in, batch * frames, window_size, 1, frame_length, bins, false, &res);
  std::vector<double> vals;
  vals.reserve(res.size() * 2);
  for (const Complex& c : res) {
    vals.push_back(c.real());
    vals.push_back(c.imag());
  }
  KILN_ASSIGN_OR_RETURN(Tensor y, DoublesTo(vals, {batch, frames, bins, 2}, x.dtype()));
  ctx.set_output(0, std::move(y));
  return Status::Ok();
}

Status InferSTFT(InferContext& ctx) {
  const Shape& xs = ctx.input_shape(0);
  const DataType dt = ctx.input_dtype(0);
  std::vector<Dim> out = {Dim::Unknown(), Dim::Unknown(), Dim::Unknown(), Dim(2)};
  if (xs.rank_known()) {
    if (xs.rank() != 3) return ctx.Error("signal must be [batch, length, 1 or 2]");
    out[0] = xs[0];
  }
  const Tensor* step = ctx.input_data(1);
  const Tensor* fl = ctx.has_input(3) ? ctx.input_data(3) : nullptr;
  Dim frame_length = Dim::Unknown();
  if (fl && fl->numel() == 1)
    frame_length = Dim(fl->IntAt(0));
  else if (!ctx.has_input(3) && ctx.has_input(2) && ctx.input_shape(2).rank() == 1)
    frame_length = ctx.input_shape(2)[0];
  const bool onesided = ctx.attr_int("onesided", 1) != 0;
  if (frame_length.known()) out[2] = Dim(onesided ? frame_length.value() / 2 + 1 : frame_length.value());
  if (xs.rank_known() && xs[1].known() && frame_length.known() && step && step->numel() == 1 &&
      step->IntAt(0) > 0)
    out[1] = Dim(1 + (xs[1].value() - frame_length.value()) / step->IntAt(0));
  ctx.set_output(0, dt, Shape(std::move(out)));
  return Status::Ok();
}

// ---- windows ----

namespace {

enum class WindowKind { kHann, kHamming, kBlackman };

Status RunWindow(RunContext& ctx, WindowKind kind) {
  KILN_RETURN_IF_ERROR(RequireTensorInputs(ctx, {0}));
  KILN_ASSIGN_OR_RETURN(int64_t size, ScalarInt(ctx, 0, "size"));
  if (size < 0) return ctx.Error("size must be non-negative");
  const bool periodic = ctx.attr_int("periodic", 1) != 0;
  const auto dt =
      static_cast<DataType>(ctx.attr_int("output_datatype", static_cast<int64_t>(DataType::kFloat)));
  const double N = static_cast<double>(periodic ? size : size - 1);
  std::vector<double> v(static_cast<size_t>(size));
  for (int64_t i = 0; i < size; ++i) {
    const double n = static_cast<double>(i);
    double w;
    switch (kind) {
      case WindowKind::kHann:
        w = std::pow(std::sin(n * kPi / N), 2);
        break;
      case WindowKind::kHamming: {
        const double alpha = 25.0 / 46.0;
        w = alpha - std::cos(n * kPi * 2 / N) * (1 - alpha);
        break;
      }
      default:
        w = 0.42 - 0.5 * std::cos(n * kPi * 2 / N) + 0.08 * std::cos(n * kPi * 4 / N);
        break;
    }
    v[static_cast<size_t>(i)] = w;
  }
  auto y = DoublesTo(v, {size}, dt);
  if (!y.ok()) return ctx.Error(y.status().message());
  ctx.set_output(0, std::move(y).value());
  return Status::Ok();
}

}  // namespace

Status InferWindow(InferContext& ctx) {
  const auto dt =
      static_cast<DataType>(ctx.attr_int("output_datatype", static_cast<int64_t>(DataType::kFloat)));
  Dim n = Dim::Unknown();
  if (const Tensor* t = ctx.input_data(0); t && t->numel() == 1)
    n = Dim(t->IntAt(0));
  else if (const auto* sym = ctx.input_sym(0); sym && sym->size() == 1)
    n = (*sym)[0];
  ctx.set_output(0, dt, Shape({n}));
  return Status::Ok();
}

Status RunHannWindow(RunContext& ctx) { return RunWindow(ctx, WindowKind::kHann); }
Status RunHammingWindow(RunContext& ctx) { return RunWindow(ctx, WindowKind::kHamming); }
Status RunBlackmanWindow(RunContext& ctx) { return RunWindow(ctx, WindowKind::kBlackman); }

// MelWeightMatrix as the ONNX reference computes it: the mel edges in float32,
// the bin positions in double, triangles over integer bins.
Status RunMelWeightMatrix(RunContext& ctx) {
  KILN_RETURN_IF_ERROR(RequireTensorInputs(ctx, {0, 1, 2, 3, 4}));
  KILN_ASSIGN_OR_RETURN(int64_t num_mel_bins, ScalarInt(ctx, 0, "num_mel_bins"));
  KILN_ASSIGN_OR_RETURN(int64_t dft_length, ScalarInt(ctx, 1, "dft_length"));
  KILN_ASSIGN_OR_RETURN(int64_t sample_rate, ScalarInt(ctx, 2, "sample_rate"));
  if (ctx.input(3).numel() != 1 || ctx.input(4).numel() != 1)
    return ctx.Error("edge frequencies must be scalars");
  const float lower = static_cast<float>(FloatElement(ctx.input(3), 0));
  const float upper = static_cast<float>(FloatElement(ctx.input(4), 0));
  if (num_mel_bins <= 0 || dft_length <= 0 || sample_rate <= 0)
    return ctx.Error("num_mel_bins, dft_length and sample_rate must be positive");
  const int64_t spec_bins = dft_length / 2 + 1;
  const float ln10 = static_cast<float>(std::log(10.0));
  const float low_mel = 2595.0f * std::log1p(lower / 700.0f) / ln10;
  const float high_mel = 2595.0f * std::log1p(upper / 700.0f) / ln10;
  const float mel_step = (high_mel - low_mel) / static_cast<float>(num_mel_bins + 2);
  std::vector<int64_t> bins(static_cast<size_t>(num_mel_bins + 2));
  for (int64_t i = 0; i < num_mel_bins + 2; ++i) {
    double f = static_cast<double>(i) * mel_step + low_mel;
    f = 700 * std::expm1(f / 2595 * std::log(10.0));
    bins[static_cast<size_t>(i)] = static_cast<int64_t>(
        std::floor(static_cast<double>(dft_length + 1) * f / static_cast<double>(sample_rate)));
  }
  std::vector<double> out(static_cast<size_t>(spec_bins * num_mel_bins), 0.0);
  auto set = [&](int64_t row, int64_t col, double v) {
    if (row >= 0 && row < spec_bins) out[static_cast<size_t>(row * num_mel_bins + col)] = v;
  };
  for (int64_t i = 0; i < num_mel_bins; ++i) {
    const int64_t lo = bins[static_cast<size_t>(i)], c = bins[static_cast<size_t>(i + 1)],
                  hi = bins[static_cast<size_t>(i + 2)];
    if (c - lo == 0)
      set(c, i, 1.0);
    else
      for (int64_t j = lo; j <= c; ++j) set(j, i, static_cast<double>(j - lo) / static_cast<double>(c - lo));
    if (hi - c > 0)
      for (int64_t j = c; j < hi; ++j) set(j, i, static_cast<double>(hi - j) / static_cast<double>(hi - c));
  }
  const auto dt =
      static_cast<DataType>(ctx.attr_int("output_datatype", static_cast<int64_t>(DataType::kFloat)));
  auto y = DoublesTo(out, {spec_bins, num_mel_bins}, dt);
  if (!y.ok()) return ctx.Error(y.status().message());
  ctx.set_output(0, std::move(y).value());
  return Status::Ok();
}

Status InferMelWeightMatrix(InferContext& ctx) {
  const auto dt =
      static_cast<DataType>(ctx.attr_int("output_datatype", static_cast<int64_t>(DataType::kFloat)));
  Dim rows = Dim::Unknown(), cols = Dim::Unknown();
  if (const Tensor* t = ctx.input_data(1); t && t->numel() == 1) rows = Dim(t->IntAt(0) / 2 + 1);
  if (const Tensor* t = ctx.input_data(0); t && t->numel() == 1) cols = Dim(t->IntAt(0));
  ctx.set_output(0, dt, Shape({rows, cols}));
  return Status::Ok();
}

}  // namespace ops
}  // namespace kiln
