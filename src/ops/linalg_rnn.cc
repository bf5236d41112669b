// Recurrent layers: RNN, GRU and LSTM with forward/reverse/bidirectional
// directions, activations (with activation_alpha/beta), clip,
// sequence_lens, initial states, layout 0/1, GRU linear_before_reset, LSTM
// peepholes and input_forget. One cell loop serves all three; computation is
// in double, rounded to the input type at the outputs.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <string>
#include <vector>

#include "ops/linalg_util.h"
#include "ops/op_table.h"

namespace kiln {
namespace ops {
namespace {

enum class Cell { kRnn, kGru, kLstm };

int Gates(Cell c) { return c == Cell::kRnn ? 1 : (c == Cell::kGru ? 3 : 4); }
int ActsPerDirection(Cell c) { return c == Cell::kRnn ? 1 : (c == Cell::kGru ? 2 : 3); }

struct Activation {
  std::string name;  // lower case
  double alpha = 0.0, beta = 0.0;
  double operator()(double x) const {
    if (name == "sigmoid") return 1.0 / (1.0 + std::exp(-x));
    if (name == "tanh") return std::tanh(x);
    if (name == "relu") return std::max(0.0, x);
    if (name == "affine") return alpha * x + beta;
    if (name == "leakyrelu") return x < 0 ? alpha * x : x;
    if (name == "thresholdedrelu") return x > alpha ? x : 0.0;
    if (name == "scaledtanh") return alpha * std::tanh(beta * x);
    if (name == "hardsigmoid") return std::max(0.0, std::min(1.0, alpha * x + beta));
    if (name == "elu") return x < 0 ? alpha * (std::exp(x) - 1.0) : x;
    if (name == "softsign") return x / (1.0 + std::fabs(x));
    return std::log1p(std::exp(x));  // softplus
  }
};

// Parses the activations attribute (defaults per cell type), consuming
// activation_alpha/beta in order for the activations that take them.
Status ParseActivations(const NodeContext& ctx, Cell cell, int64_t dirs, std::vector<Activation>* out) {
  std::vector<std::string> names = ctx.attr_strings("activations");
  const int per = ActsPerDirection(cell);
  if (names.empty()) {
    std::vector<std::string> def = cell == Cell::kRnn   ? std::vector<std::string>{"Tanh"}
                                   : cell == Cell::kGru ? std::vector<std::string>{"Sigmoid", "Tanh"}
                                                        : std::vector<std::string>{"Sigmoid", "Tanh", "Tanh"};
    for (int64_t d = 0; d < dirs; ++d) names.insert(names.end(), def.begin(), def.end());
  }
  if (static_cast<int64_t>(names.size()) != per * dirs)
    return ctx.Error("expected " + std::to_string(per * dirs) + " activations, got " +
                     std::to_string(names.size()));
  std::vector<float> alphas = ctx.attr_floats("activation_alpha"), betas = ctx.attr_floats("activation_beta");
  size_t ai = 0, bi = 0;
  for (const std::string& n : names) {
    Activation a;
    for (char c : n) a.name += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    double def_alpha = 0.0, def_beta = 0.0;
    bool uses_alpha = true, uses_beta = false;
    if (a.name == "leakyrelu")
      def_alpha = 0.01;
    else if (a.name == "thresholdedrelu" || a.name == "elu")
      def_alpha = 1.0;
    else if (a.name == "scaledtanh")
      def_alpha = 1.0, def_beta = 1.0, uses_beta = true;
    else if (a.name == "hardsigmoid")
      def_alpha = 0.2, def_beta = 0.5, uses_beta = true;
    else if (a.name == "affine")
      def_alpha = 1.0, def_beta = 0.0, uses_beta = true;
    else if (a.name == "sigmoid" || a.name == "tanh" || a.name == "relu" || a.name == "softsign" ||
             a.name == "softplus")
      uses_alpha = false;
    else
      return ctx.UnsupportedError("unknown activation '" + n + "'");
    a.alpha = uses_alpha && ai < alphas.size() ? alphas[ai++] : def_alpha;
    a.beta = uses_beta && bi < betas.size() ? betas[bi++] : def_beta;
    out->push_back(a);
  }
  return Status::Ok();
}

Status Directions(const NodeContext& ctx, int64_t* dirs) {
  const std::string dir = ctx.attr_string("direction", "forward");
  if (dir != "forward" && dir != "reverse" && dir != "bidirectional")
    return ctx.Error("direction must be forward, reverse or bidirectional, not '" + dir + "'");
  *dirs = dir == "bidirectional" ? 2 : 1;
  return Status::Ok();
}

Status InferRecurrent(InferContext& ctx, Cell cell) {
  int64_t dirs = 1;
  KILN_RETURN_IF_ERROR(Directions(ctx, &dirs));
  const bool batch_first = ctx.attr_int("layout", 0) != 0;
  const Shape& x = ctx.input_shape(0);
  if (x.rank_known() && x.rank() != 3) return ctx.Error("X must be 3-D");
  Dim seq = x.rank_known() ? x[batch_first ? 1 : 0] : Dim();
  Dim batch = x.rank_known() ? x[batch_first ? 0 : 1] : Dim();
  Dim hidden = ctx.has_attr("hidden_size") ? Dim(ctx.attr_int("hidden_size", 0)) : Dim();
  const Shape& r = ctx.input_shape(2);
  if (hidden.unknown() && r.rank_known() && r.rank() == 3) hidden = r[2];
  const DataType dt = ctx.input_dtype(0);
  ctx.set_output(
      0, dt, batch_first ? Shape({batch, seq, Dim(dirs), hidden}) : Shape({seq, Dim(dirs), batch, hidden}));
  Shape state = batch_first ? Shape({batch, Dim(dirs), hidden}) : Shape({Dim(dirs), batch, hidden});
  ctx.set_output(1, dt, state);
  if (cell == Cell::kLstm) ctx.set_output(2, dt, state);
  return Status::Ok();
}

// Reads an optional [dirs, batch, H] (layout 0) or [batch, dirs, H] (layout 1)
// state into [dirs, batch, H] order; zeros when absent.
Status ReadState(const RunContext& ctx, size_t idx, bool batch_first, int64_t dirs, int64_t batch, int64_t H,
                 std::vector<double>* out) {
  out->assign(static_cast<size_t>(dirs * batch * H), 0.0);
  if (!ctx.has_input(idx) || !ctx.input(idx).defined()) return Status::Ok();
  const Tensor& t = ctx.input(idx);
  const std::vector<int64_t> want =
      batch_first ? std::vector<int64_t>{batch, dirs, H} : std::vector<int64_t>{dirs, batch, H};
  if (t.dims() != want)
    return ctx.Error("initial state must be " + DimsToString(want) + ", got " + t.Describe());
  std::vector<double> v = linalg::ReadAs<double>(t);
  for (int64_t d = 0; d < dirs; ++d)
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t h = 0; h < H; ++h)
        (*out)[static_cast<size_t>((d * batch + b) * H + h)] =
            v[static_cast<size_t>(batch_first ? (b * dirs + d) * H + h : (d * batch + b) * H + h)];
  return Status::Ok();
}

Status RunRecurrent(RunContext& ctx, Cell cell) {
  int64_t dirs = 1;
  KILN_RETURN_IF_ERROR(Directions(ctx, &dirs));
  const bool reverse_only = ctx.attr_string("direction", "forward") == "reverse";
  const bool batch_first = ctx.attr_int("layout", 0) != 0;
  const Tensor& xt = ctx.input(0);
  const Tensor& wt = ctx.input(1);
  const Tensor& rt = ctx.input(2);
  if (!IsFloatingPoint(xt.dtype())) return ctx.Error("X must be floating point");
  if (xt.rank() != 3 || wt.rank() != 3 || rt.rank() != 3) return ctx.Error("X, W and R must be 3-D");
  const int64_t G = Gates(cell);
  const int64_t H = rt.dim(2);
  if (ctx.has_attr("hidden_size") && ctx.attr_int("hidden_size", 0) != H)
    return ctx.Error("hidden_size does not match R");
  const int64_t seq = xt.dim(batch_first ? 1 : 0), batch = xt.dim(batch_first ? 0 : 1), in = xt.dim(2);
  if (wt.dims() != std::vector<int64_t>{dirs, G * H, in} || rt.dims() != std::vector<int64_t>{dirs, G * H, H})
    return ctx.Error("W must be [" + std::to_string(dirs) + "," + std::to_string(G * H) + ",input] and R [" +
                     std::to_string(dirs) + "," + std::to_string(G * H) + ",hidden]");
  std::vector<Activation> acts;
  KILN_RETURN_IF_ERROR(ParseActivations(ctx, cell, dirs, &acts));
  const bool has_clip = ctx.has_attr("clip");
  const double clip = ctx.attr_float("clip", 0.0f);
  const bool linear_before_reset = ctx.attr_int("linear_before_reset", 0) != 0;
  const bool input_forget = ctx.attr_int("input_forget", 0) != 0;

  std::vector<double> x = linalg::ReadAs<double>(xt), w = linalg::ReadAs<double>(wt),
                      r = linalg::ReadAs<double>(rt);
  std::vector<double> bias(static_cast<size_t>(dirs * 2 * G * H), 0.0);
  if (ctx.has_input(3) && ctx.input(3).defined()) {
    if (ctx.input(3).dims() != std::vector<int64_t>{dirs, 2 * G * H})
      return ctx.Error("B has the wrong shape");
    bias = linalg::ReadAs<double>(ctx.input(3));
  }
  std::vector<int64_t> lens(static_cast<size_t>(batch), seq);
  if (ctx.has_input(4) && ctx.input(4).defined()) {
    lens = ctx.input(4).ToInt64s();
    if (static_cast<int64_t>(lens.size()) != batch) return ctx.Error("sequence_lens must be [batch]");
    for (int64_t l : lens)
      if (l < 0 || l > seq) return ctx.Error("sequence_lens value " + std::to_string(l) + " out of range");
  }
  std::vector<double> h0, c0;
  KILN_RETURN_IF_ERROR(ReadState(ctx, 5, batch_first, dirs, batch, H, &h0));
  std::vector<double> peep(static_cast<size_t>(dirs * 3 * H), 0.0);
  if (cell == Cell::kLstm) {
    KILN_RETURN_IF_ERROR(ReadState(ctx, 6, batch_first, dirs, batch, H, &c0));
    if (ctx.has_input(7) && ctx.input(7).defined()) {
      if (ctx.input(7).dims() != std::vector<int64_t>{dirs, 3 * H}) return ctx.Error("P has the wrong shape");
      peep = linalg::ReadAs<double>(ctx.input(7));
    }
  }

  // Y in [seq, dirs, batch, H]; final states in [dirs, batch, H].
  std::vector<double> y(static_cast<size_t>(seq * dirs * batch * H), 0.0);
  std::vector<double> yh = h0, yc = c0;
  std::vector<double> xw(static_cast<size_t>(G * H)), hr(static_cast<size_t>(G * H));
  auto clipped = [&](double v) { return has_clip ? std::max(-clip, std::min(clip, v)) : v; };
  for (int64_t d = 0; d < dirs; ++d) {
    const bool backward = reverse_only || d == 1;
    const double* W = w.data() + d * G * H * in;
    const double* R = r.data() + d * G * H * H;
    const double* Wb = bias.data() + d * 2 * G * H;
    const double* Rb = Wb + G * H;
    const double* P = peep.data() + d * 3 * H;
    const Activation* A = acts.data() + d * ActsPerDirection(cell);
    for (int64_t b = 0; b < batch; ++b) {
      double* h = yh.data() + (d * batch + b) * H;
      double* c = cell == Cell::kLstm ? yc.data() + (d * batch + b) * H : nullptr;
      const int64_t len = lens[static_cast<size_t>(b)];
      for (int64_t step = 0; step < len; ++step) {
        const int64_t t = backward ? len - 1 - step : step;
        const double* xv = x.data() + (batch_first ? (b * seq + t) * in : (t * batch + b) * in);
        for (int64_t g = 0; g < G * H; ++g) {
          double s = Wb[g], u = Rb[g];
          for (int64_t i = 0; i < in; ++i) s += W[g * in + i] * xv[i];
          for (int64_t i = 0; i < H; ++i) u += R[g * H + i] * h[i];
          xw[g] = s;
          hr[g] = u;
        }
        std::vector<double> hn(static_cast<size_t>(H));
        if (cell == Cell::kRnn) {
          for (int64_t j = 0; j < H; ++j) hn[j] = A[0](clipped(xw[j] + hr[j]));
        } else if (cell == Cell::kGru) {
          // Gate order z, r, h. Without linear_before_reset the reset gate
          // scales H(t-1) before Rh: (r (.) H(t-1)) * Rh^T.
          std::vector<double> z(static_cast<size_t>(H)), rg(static_cast<size_t>(H));
          for (int64_t j = 0; j < H; ++j) {
            z[j] = A[0](clipped(xw[j] + hr[j]));
            rg[j] = A[0](clipped(xw[H + j] + hr[H + j]));
          }
          for (int64_t j = 0; j < H; ++j) {
            double pre;
            if (linear_before_reset) {
              pre = xw[2 * H + j] + rg[j] * hr[2 * H + j];
            } else {
              double u = Rb[2 * H + j];
              for (int64_t i = 0; i < H; ++i) u += R[(2 * H + j) * H + i] * (rg[i] * h[i]);
              pre = xw[2 * H + j] + u;
            }
            const double cand = A[1](clipped(pre));
            hn[j] = (1.0 - z[j]) * cand + z[j] * h[j];
          }
        } else {
          // Gate order i, o, f, c; peepholes i, o, f.
          for (int64_t j = 0; j < H; ++j) {
            const double ig = A[0](clipped(xw[j] + hr[j] + P[j] * c[j]));
            const double fg =
                input_forget ? 1.0 - ig : A[0](clipped(xw[2 * H + j] + hr[2 * H + j] + P[2 * H + j] * c[j]));
            const double cand = A[1](clipped(xw[3 * H + j] + hr[3 * H + j]));
            const double cn = fg * c[j] + ig * cand;
            const double og = A[0](clipped(xw[H + j] + hr[H + j] + P[H + j] * cn));
            c[j] = cn;
            hn[j] = og * A[2](cn);
          }
        }
        std::copy(hn.begin(), hn.end(), h);
        std::copy(hn.begin(), hn.end(), y.begin() + ((t * dirs + d) * batch + b) * H);
      }
    }
  }

  const DataType dt = xt.dtype();
  if (ctx.wants_output(0)) {
    if (!batch_first) {
      ctx.set_output(0, linalg::WriteAs<double>(dt, {seq, dirs, batch, H}, y));
    } else {
      std::vector<double> yb(y.size());
      for (int64_t t = 0; t < seq; ++t)
        for (int64_t d = 0; d < dirs; ++d)
          for (int64_t b = 0; b < batch; ++b)
            std::copy_n(y.begin() + ((t * dirs + d) * batch + b) * H, H,
                        yb.begin() + ((b * seq + t) * dirs + d) * H);
      ctx.set_output(0, linalg::WriteAs<double>(dt, {batch, seq, dirs, H}, yb));
    }
  }
  auto write_state = [&](size_t idx, const std::vector<double>& s) {
    if (!ctx.wants_output(idx)) return;
    if (!batch_first) {
      ctx.set_output(idx, linalg::WriteAs<double>(dt, {dirs, batch, H}, s));
      return;
    }
    std::vector<double> sb(s.size());
    for (int64_t d = 0; d < dirs; ++d)
      for (int64_t b = 0; b < batch; ++b)
        std::copy_n(s.begin() + (d * batch + b) * H, H, sb.begin() + (b * dirs + d) * H);
    ctx.set_output(idx, linalg::WriteAs<double>(dt, {batch, dirs, H}, sb));
  };
  write_state(1, yh);
  if (cell == Cell::kLstm) write_state(2, yc);
  return Status::Ok();
}

}  // namespace

Status InferRNN(InferContext& ctx) { return InferRecurrent(ctx, Cell::kRnn); }
Status RunRNN(RunContext& ctx) { return RunRecurrent(ctx, Cell::kRnn); }
Status InferGRU(InferContext& ctx) { return InferRecurrent(ctx, Cell::kGru); }
Status RunGRU(RunContext& ctx) { return RunRecurrent(ctx, Cell::kGru); }
Status InferLSTM(InferContext& ctx) { return InferRecurrent(ctx, Cell::kLstm); }
Status RunLSTM(RunContext& ctx) { return RunRecurrent(ctx, Cell::kLstm); }

}  // namespace ops
}  // namespace kiln
