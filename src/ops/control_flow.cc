// If, Loop and Scan: ops whose work is a subgraph (graph attribute). Type
// inference runs the bodies through InferContext::InferSubgraph; the CPU
// reference runs them through RunContext::RunSubgraph (outer-scope values
// resolve in the executor). Scan covers opset 8 (batched, sequence_lens input,
// `directions`) and opset 9+ (scan axes and directions per input/output).
#include <algorithm>
#include <limits>

#include "ops/control_util.h"
#include "ops/op_table.h"
#include "ops/op_util.h"

namespace kiln {
namespace ops {
namespace {

using ctrl::CommonType;

Expected<std::vector<TypeInfo>> InferBody(const InferContext& ctx, const Graph& g,
                                          const std::vector<TypeInfo>& in, const char* which) {
  auto r = ctx.InferSubgraph(g, in);
  if (!r.ok()) return r.status().WithPrefix(ctx.node().Label() + " " + which);
  return r;
}

Expected<std::vector<RtValue>> RunBody(const RunContext& ctx, const Graph& g, const std::vector<RtValue>& in,
                                       const char* which) {
  auto r = ctx.RunSubgraph(g, in);
  if (!r.ok()) return r.status().WithPrefix(ctx.node().Label() + " " + which);
  if (r->size() != g.outputs.size())
    return ctx.Error(std::string(which) + " returned " + std::to_string(r->size()) + " values, expected " +
                     std::to_string(g.outputs.size()));
  return r;
}

// Shape `s` with `d` inserted at position `axis` (unknown rank stays unknown).
Shape InsertDim(const Shape& s, int64_t axis, Dim d) {
  if (!s.rank_known()) return s;
  std::vector<Dim> dims = s.dims();
  dims.insert(dims.begin() + axis, d);
  return Shape(std::move(dims));
}

// Shape `s` without the dim at `axis`.
Shape RemoveDim(const Shape& s, int64_t axis) {
  if (!s.rank_known()) return s;
  std::vector<Dim> dims = s.dims();
  dims.erase(dims.begin() + axis);
  return Shape(std::move(dims));
}

TypeInfo WithShape(TypeInfo t, Shape s) {
  t.shape = std::move(s);
  return t;
}

// An empty stack of body output `v` (zero iterations): [0] + its shape at
// `axis`, when the shape is known.
Expected<Tensor> EmptyStack(const RunContext& ctx, const Value& v, int64_t axis) {
  auto dims = v.type.shape.concrete();
  if (v.type.kind != ValueKind::kTensor || !v.type.known() || !dims)
    return ctx.UnsupportedError("zero iterations: the shape of scan output '" + v.name() + "' (" +
                                v.type.ToString() + ") is not known");
  if (axis < 0 || axis > static_cast<int64_t>(dims->size())) axis = 0;
  dims->insert(dims->begin() + axis, 0);
  return Tensor(v.type.dtype, *dims);
}

}  // namespace

// ---------------------------------------------------------------- If

Status InferIf(InferContext& ctx) {
  const Graph* then_g = ctx.attr_graph("then_branch");
  const Graph* else_g = ctx.attr_graph("else_branch");
  if (!then_g || !else_g) return ctx.Error("needs graph attributes then_branch and else_branch");
  if (then_g->outputs.size() != ctx.num_outputs() || else_g->outputs.size() != ctx.num_outputs())
    return ctx.Error("branches return " + std::to_string(then_g->outputs.size()) + " and " +
                     std::to_string(else_g->outputs.size()) + " values for " +
                     std::to_string(ctx.num_outputs()) + " outputs");
  const Tensor* cond = ctx.input_data(0);
  if (cond && cond->numel() == 1) {
    // Constant condition: the other branch is dead code and may not even be
    // valid for these shapes (exporters branch on rank): its errors are
    // ignored.
    const bool taken_then = ctrl::TensorTruth(*cond);
    auto dead =
        InferBody(ctx, taken_then ? *else_g : *then_g, {}, taken_then ? "else_branch" : "then_branch");
    (void)dead;
    KILN_ASSIGN_OR_RETURN(auto taken, InferBody(ctx, taken_then ? *then_g : *else_g, {},
                                                taken_then ? "then_branch" : "else_branch"));
    const Graph& g = taken_then ? *then_g : *else_g;
    for (size_t i = 0; i < ctx.num_outputs(); ++i) {
      // Constant or symbolic contents flow out of the taken branch (shape
      // arithmetic behind an If on a constant condition stays exact).
      const Value* v = g.outputs[i];
      if (v->data && v->type.kind == ValueKind::kTensor) {
        ctx.set_output_data(i, *v->data);
        continue;
      }
      ctx.set_output_type(i, taken[i]);
      if (v->sym_data) ctx.set_output_sym(i, *v->sym_data);
    }
    return Status::Ok();
  }
  KILN_ASSIGN_OR_RETURN(auto then_t, InferBody(ctx, *then_g, {}, "then_branch"));
  KILN_ASSIGN_OR_RETURN(auto else_t, InferBody(ctx, *else_g, {}, "else_branch"));
  for (size_t i = 0; i < ctx.num_outputs(); ++i) {
    auto t = CommonType(then_t[i], else_t[i], "output " + std::to_string(i) + " of the two branches");
    if (!t.ok()) return ctx.Error(t.status().message());
    ctx.set_output_type(i, *t);
  }
  return Status::Ok();
}

Status RunIf(RunContext& ctx) {
  if (!ctx.has_input(0) || ctx.input_value(0).kind != ValueKind::kTensor || ctx.input(0).numel() != 1)
    return ctx.Error("cond must be a single-element tensor");
  const bool cond = ctrl::TensorTruth(ctx.input(0));
  const Graph* g = ctx.attr_graph(cond ? "then_branch" : "else_branch");
  if (!g) return ctx.Error("missing graph attribute then_branch/else_branch");
  KILN_ASSIGN_OR_RETURN(auto outs, RunBody(ctx, *g, {}, cond ? "then_branch" : "else_branch"));
  if (outs.size() < ctx.num_outputs())
    return ctx.Error("branch returned " + std::to_string(outs.size()) + " values for " +
                     std::to_string(ctx.num_outputs()) + " outputs");
  for (size_t i = 0; i < ctx.num_outputs(); ++i) ctx.set_output_value(i, std::move(outs[i]));
  return Status::Ok();
}

// ---------------------------------------------------------------- Loop
// Inputs: M (optional trip count), cond (optional), v_initial... (N).
// Body: (iter_num, cond_in, v...) -> (cond_out, v..., scan_elt...) (K scans).
// Outputs: v_final... (N), scan outputs stacked on a new axis 0 (K).

Status InferLoop(InferContext& ctx) {
  const Graph* body = ctx.attr_graph("body");
  if (!body) return ctx.Error("needs graph attribute body");
  const size_t n_in = std::max<size_t>(ctx.num_inputs(), 2);
  const size_t n_carried = n_in - 2;
  if (body->inputs.size() != n_carried + 2 || body->outputs.size() < n_carried + 1)
    return ctx.Error("body has " + std::to_string(body->inputs.size()) + " inputs and " +
                     std::to_string(body->outputs.size()) + " outputs for " + std::to_string(n_carried) +
                     " loop-carried values");
  const size_t n_scan = body->outputs.size() - 1 - n_carried;
  if (ctx.num_outputs() > n_carried + n_scan)
    return ctx.Error("has " + std::to_string(ctx.num_outputs()) + " outputs, the body gives " +
                     std::to_string(n_carried + n_scan));
  std::vector<TypeInfo> in{TypeInfo::Tensor(DataType::kInt64, Shape::Scalar()),
                           TypeInfo::Tensor(DataType::kBool, Shape::Scalar())};
  for (size_t i = 0; i < n_carried; ++i) in.push_back(ctx.input_type(2 + i));
  KILN_ASSIGN_OR_RETURN(auto out, InferBody(ctx, *body, in, "body"));

  for (size_t i = 0; i < n_carried && i < ctx.num_outputs(); ++i) {
    // An optional initial value may be replaced by a plain value of its
    // element kind (loop16_seq_none): the body's kind is what comes out.
    TypeInfo initial = ctx.input_type(2 + i);
    if (initial.kind == ValueKind::kOptional && out[1 + i].kind == initial.elem_kind) {
      initial.kind = initial.elem_kind;
      initial.elem_kind = ValueKind::kTensor;
    }
    auto t = CommonType(initial, out[1 + i],
                        "loop-carried value " + std::to_string(i) + " (initial and body output)");
    if (!t.ok()) return ctx.Error(t.status().message());
    ctx.set_output_type(i, *t);
  }
  // Number of iterations: known only for a constant trip count without cond.
  Dim trips = Dim::Unknown();
  const Tensor* m = ctx.has_input(0) ? ctx.input_data(0) : nullptr;
  if (m && m->numel() == 1 && !ctx.has_input(1)) trips = Dim(std::max<int64_t>(m->IntAt(0), 0));
  for (size_t k = 0; k < n_scan && n_carried + k < ctx.num_outputs(); ++k) {
    const TypeInfo& e = out[1 + n_carried + k];
    ctx.set_output_type(n_carried + k, WithShape(e, InsertDim(e.shape, 0, trips)));
  }
  return Status::Ok();
}

Status RunLoop(RunContext& ctx) {
  const Graph* body = ctx.attr_graph("body");
  if (!body) return ctx.Error("needs graph attribute body");
  const size_t n_in = std::max<size_t>(ctx.num_inputs(), 2);
  const size_t n_carried = n_in - 2;
  if (body->inputs.size() != n_carried + 2 || body->outputs.size() < n_carried + 1)
    return ctx.Error("body signature does not match the loop-carried values");
  const size_t n_scan = body->outputs.size() - 1 - n_carried;

  const bool has_m = ctx.has_input(0);
  const bool has_cond = ctx.has_input(1);
  int64_t max_trips = std::numeric_limits<int64_t>::max();
  if (has_m) {
    if (ctx.input_value(0).kind != ValueKind::kTensor || ctx.input(0).numel() != 1)
      return ctx.Error("M must be a single-element tensor");
    max_trips = ctx.input(0).IntAt(0);
  }
  bool cond = true;
  if (has_cond) {
    if (ctx.input_value(1).kind != ValueKind::kTensor || ctx.input(1).numel() != 1)
      return ctx.Error("cond must be a single-element tensor");
    cond = ctrl::TensorTruth(ctx.input(1));
  }
  if (!has_m && !has_cond) return ctx.UnsupportedError("neither M nor cond is given: the loop never ends");

  std::vector<RtValue> carried;
  for (size_t i = 0; i < n_carried; ++i) {
    if (!ctx.has_input(2 + i)) return ctx.Error("loop-carried input " + std::to_string(i) + " is missing");
    carried.push_back(ctx.input_value(2 + i));
  }
  std::vector<std::vector<Tensor>> scans(n_scan);
  int64_t it = 0;
  for (; it < max_trips && cond; ++it) {
    std::vector<RtValue> in;
    in.reserve(n_carried + 2);
    in.push_back(RtValue::FromTensor(Tensor::ScalarInt64(it)));
    in.push_back(RtValue::FromTensor(Tensor::FromVector<bool>(DataType::kBool, {}, {cond})));
    for (RtValue& v : carried) in.push_back(std::move(v));
    KILN_ASSIGN_OR_RETURN(auto out, RunBody(ctx, *body, in, "body"));
    if (has_cond) {
      if (out[0].kind != ValueKind::kTensor || out[0].tensor.numel() != 1)
        return ctx.Error("body's cond output must be a single-element tensor");
      cond = ctrl::TensorTruth(out[0].tensor);
    }
    for (size_t i = 0; i < n_carried; ++i) carried[i] = std::move(out[1 + i]);
    for (size_t k = 0; k < n_scan; ++k) {
      RtValue& s = out[1 + n_carried + k];
      if (s.kind != ValueKind::kTensor)
        return ctx.Error("scan output " + std::to_string(k) + " is not a tensor");
      scans[k].push_back(std::move(s.tensor));
    }
  }

  for (size_t i = 0; i < n_carried && i < ctx.num_outputs(); ++i)
    ctx.set_output_value(i, std::move(carried[i]));
  for (size_t k = 0; k < n_scan && n_carried + k < ctx.num_outputs(); ++k) {
    if (!ctx.wants_output(n_carried + k)) continue;
    if (scans[k].empty()) {
      KILN_ASSIGN_OR_RETURN(Tensor t, EmptyStack(ctx, *body->outputs[1 + n_carried + k], 0));
      ctx.set_output(n_carried + k, std::move(t));
      continue;
    }
    auto t = ctrl::StackAxis(scans[k], 0);
    if (!t.ok()) return ctx.Error("scan output " + std::to_string(k) + ": " + t.status().message());
    ctx.set_output(n_carried + k, std::move(*t));
  }
  return Status::Ok();
}

// ---------------------------------------------------------------- Scan

namespace {

// Attribute `name` (one entry per scan input/output), default 0.
std::vector<int64_t> PerItem(const NodeContext& ctx, const char* name, size_t n) {
  std::vector<int64_t> v = ctx.attr_ints(name);
  v.resize(n, 0);
  return v;
}

struct ScanLayout {
  size_t first = 0;  // index of the first state input (1 in opset 8: sequence_lens)
  size_t n_state = 0;
  size_t n_scan_in = 0;
  size_t n_scan_out = 0;
};

template <class Ctx>
Expected<ScanLayout> GetScanLayout(const Ctx& ctx, const Graph* body) {
  if (!body) return ctx.Error("needs graph attribute body");
  ScanLayout l;
  l.first = ctx.opset() < 9 ? 1 : 0;
  int64_t m = ctx.attr_int("num_scan_inputs", 0);
  if (m <= 0) return ctx.Error("num_scan_inputs must be positive");
  l.n_scan_in = static_cast<size_t>(m);
  if (ctx.num_inputs() < l.first + l.n_scan_in) return ctx.Error("fewer inputs than num_scan_inputs");
  l.n_state = ctx.num_inputs() - l.first - l.n_scan_in;
  if (body->inputs.size() != l.n_state + l.n_scan_in || body->outputs.size() < l.n_state)
    return ctx.Error("body has " + std::to_string(body->inputs.size()) + " inputs and " +
                     std::to_string(body->outputs.size()) + " outputs for " + std::to_string(l.n_state) +
                     " states and " + std::to_string(l.n_scan_in) + " scan inputs");
  l.n_scan_out = body->outputs.size() - l.n_state;
  return l;
}

Status InferScan8(InferContext& ctx, const Graph& body, const ScanLayout& l) {
  std::vector<TypeInfo> in;
  for (size_t i = 0; i < l.n_state; ++i) {
    const TypeInfo& t = ctx.input_type(l.first + i);
    if (t.shape.rank_known() && t.shape.rank() < 1) return ctx.Error("states need a batch axis");
    in.push_back(WithShape(t, RemoveDim(t.shape, 0)));
  }
  Dim batch, seq;
  for (size_t i = 0; i < l.n_scan_in; ++i) {
    const TypeInfo& t = ctx.input_type(l.first + l.n_state + i);
    if (t.shape.rank_known() && t.shape.rank() < 2)
      return ctx.Error("scan inputs need batch and sequence axes");
    if (i == 0 && t.shape.rank_known()) {
      batch = t.shape[0];
      seq = t.shape[1];
    }
    in.push_back(WithShape(t, RemoveDim(RemoveDim(t.shape, 0), 0)));
  }
  KILN_ASSIGN_OR_RETURN(auto out, InferBody(ctx, body, in, "body"));
  for (size_t i = 0; i < l.n_state && i < ctx.num_outputs(); ++i) {
    auto t = CommonType(in[i], out[i], "state " + std::to_string(i) + " (initial and body output)");
    if (!t.ok()) return ctx.Error(t.status().message());
    ctx.set_output_type(i, WithShape(*t, InsertDim(t->shape, 0, batch)));
  }
  for (size_t k = 0; k < l.n_scan_out && l.n_state + k < ctx.num_outputs(); ++k) {
    const TypeInfo& e = out[l.n_state + k];
    ctx.set_output_type(l.n_state + k, WithShape(e, InsertDim(InsertDim(e.shape, 0, seq), 0, batch)));
  }
  return Status::Ok();
}

Status InferScan9(InferContext& ctx, const Graph& body, const ScanLayout& l) {
  std::vector<TypeInfo> in;
  for (size_t i = 0; i < l.n_state; ++i) in.push_back(ctx.input_type(i));
  std::vector<int64_t> axes = PerItem(ctx, "scan_input_axes", l.n_scan_in);
  Dim seq;
  bool seq_set = false;
  for (size_t i = 0; i < l.n_scan_in; ++i) {
    const TypeInfo& t = ctx.input_type(l.n_state + i);
    if (!t.shape.rank_known()) {
      in.push_back(t);
      continue;
    }
    int64_t axis = 0;
    KILN_RETURN_IF_ERROR(NormalizeAxis(ctx, axes[i], t.shape.rank(), &axis));
    if (!seq_set) {
      seq = t.shape[static_cast<size_t>(axis)];
      seq_set = true;
    }
    in.push_back(WithShape(t, RemoveDim(t.shape, axis)));
  }
  KILN_ASSIGN_OR_RETURN(auto out, InferBody(ctx, body, in, "body"));
  for (size_t i = 0; i < l.n_state && i < ctx.num_outputs(); ++i) {
    auto t = CommonType(in[i], out[i], "state " + std::to_string(i) + " (initial and body output)");
    if (!t.ok()) return ctx.Error(t.status().message());
    ctx.set_output_type(i, *t);
  }
  std::vector<int64_t> out_axes = PerItem(ctx, "scan_output_axes", l.n_scan_out);
  for (size_t k = 0; k < l.n_scan_out && l.n_state + k < ctx.num_outputs(); ++k) {
    const TypeInfo& e = out[l.n_state + k];
    if (!e.shape.rank_known()) {
      ctx.set_output_type(l.n_state + k, e);
      continue;
    }
    int64_t axis = 0;
    KILN_RETURN_IF_ERROR(NormalizeAxis(ctx, out_axes[k], e.shape.rank() + 1, &axis));
    ctx.set_output_type(l.n_state + k, WithShape(e, InsertDim(e.shape, axis, seq)));
  }
  return Status::Ok();
}

// One scan over `len` steps: states in/out, per-step scan inputs from
// `slice(i, t)`, per-step scan outputs collected in order of t.
template <class SliceFn>
Status RunScanSteps(const RunContext& ctx, const Graph& body, const ScanLayout& l, int64_t len,
                    std::vector<RtValue>* states, std::vector<std::vector<Tensor>>* scans, SliceFn slice) {
  scans->assign(l.n_scan_out, {});
  for (int64_t t = 0; t < len; ++t) {
    std::vector<RtValue> in = *states;
    for (size_t i = 0; i < l.n_scan_in; ++i) in.push_back(RtValue::FromTensor(slice(i, t)));
    KILN_ASSIGN_OR_RETURN(auto out, RunBody(ctx, body, in, "body"));
    for (size_t i = 0; i < l.n_state; ++i) (*states)[i] = std::move(out[i]);
    for (size_t k = 0; k < l.n_scan_out; ++k) {
      if (out[l.n_state + k].kind != ValueKind::kTensor)
        return ctx.Error("scan output " + std::to_string(k) + " is not a tensor");
      (*scans)[k].push_back(std::move(out[l.n_state + k].tensor));
    }
  }
  return Status::Ok();
}

Status RunScan8(RunContext& ctx, const Graph& body, const ScanLayout& l) {
  std::vector<int64_t> dirs = PerItem(ctx, "directions", l.n_scan_in);
  std::vector<const Tensor*> xs;
  for (size_t i = 0; i < l.n_scan_in; ++i) {
    const Tensor& x = ctx.input(l.first + l.n_state + i);
    if (x.rank() < 2) return ctx.Error("scan inputs need batch and sequence axes");
    xs.push_back(&x);
  }
  const int64_t batch = xs[0]->dim(0);
  const int64_t max_len = xs[0]->dim(1);
  for (const Tensor* x : xs)
    if (x->dim(0) != batch || x->dim(1) != max_len)
      return ctx.Error("scan inputs differ in batch or sequence size");
  for (size_t i = 0; i < l.n_state; ++i)
    if (ctx.input(l.first + i).rank() < 1 || ctx.input(l.first + i).dim(0) != batch)
      return ctx.Error("state " + std::to_string(i) + " must have batch size " + std::to_string(batch));
  std::vector<int64_t> lens(static_cast<size_t>(batch), max_len);
  if (ctx.has_input(0)) {
    std::vector<int64_t> given = ctx.input(0).ToInt64s();
    if (static_cast<int64_t>(given.size()) != batch)
      return ctx.Error("sequence_lens must have batch size entries");
    for (size_t b = 0; b < given.size(); ++b) {
      if (given[b] < 0 || given[b] > max_len) return ctx.Error("sequence_lens entry out of range");
      lens[b] = given[b];
    }
  }

  std::vector<std::vector<Tensor>> state_parts(l.n_state), scan_parts(l.n_scan_out);
  for (int64_t b = 0; b < batch; ++b) {
    std::vector<RtValue> states;
    for (size_t i = 0; i < l.n_state; ++i)
      states.push_back(RtValue::FromTensor(ctrl::TakeAxis(ctx.input(l.first + i), 0, b)));
    std::vector<Tensor> batch_x;
    for (const Tensor* x : xs) batch_x.push_back(ctrl::TakeAxis(*x, 0, b));
    const int64_t len = lens[static_cast<size_t>(b)];
    std::vector<std::vector<Tensor>> scans;
    KILN_RETURN_IF_ERROR(RunScanSteps(ctx, body, l, len, &states, &scans, [&](size_t i, int64_t t) {
      return ctrl::TakeAxis(batch_x[i], 0, dirs[i] == 1 ? len - 1 - t : t);
    }));
    for (size_t i = 0; i < l.n_state; ++i) {
      if (states[i].kind != ValueKind::kTensor) return ctx.Error("states must be tensors");
      state_parts[i].push_back(states[i].tensor);
    }
    for (size_t k = 0; k < l.n_scan_out; ++k) {
      const Value& v = *body.outputs[l.n_state + k];
      Tensor stacked;
      if (scans[k].empty()) {
        KILN_ASSIGN_OR_RETURN(stacked, EmptyStack(ctx, v, 0));
      } else {
        auto s = ctrl::StackAxis(scans[k], 0);
        if (!s.ok()) return ctx.Error(s.status().message());
        stacked = std::move(*s);
      }
      if (len < max_len) {  // pad to the longest sequence with zeros
        std::vector<int64_t> pad_dims = stacked.dims();
        pad_dims[0] = max_len - len;
        auto s = ctrl::ConcatAxis({stacked, Tensor(stacked.dtype(), pad_dims)}, 0);
        if (!s.ok()) return ctx.Error(s.status().message());
        stacked = std::move(*s);
      }
      scan_parts[k].push_back(std::move(stacked));
    }
  }
  for (size_t i = 0; i < l.n_state + l.n_scan_out && i < ctx.num_outputs(); ++i) {
    std::vector<Tensor>& parts = i < l.n_state ? state_parts[i] : scan_parts[i - l.n_state];
    if (parts.empty()) return ctx.UnsupportedError("batch size 0");
    auto s = ctrl::StackAxis(parts, 0);
    if (!s.ok()) return ctx.Error(s.status().message());
    ctx.set_output(i, std::move(*s));
  }
  return Status::Ok();
}

Status RunScan9(RunContext& ctx, const Graph& body, const ScanLayout& l) {
  std::vector<int64_t> in_axes = PerItem(ctx, "scan_input_axes", l.n_scan_in);
  std::vector<int64_t> in_dirs = PerItem(ctx, "scan_input_directions", l.n_scan_in);
  std::vector<int64_t> out_axes = PerItem(ctx, "scan_output_axes", l.n_scan_out);
  std::vector<int64_t> out_dirs = PerItem(ctx, "scan_output_directions", l.n_scan_out);
  int64_t len = -1;
  for (size_t i = 0; i < l.n_scan_in; ++i) {
    const Tensor& x = ctx.input(l.n_state + i);
    KILN_RETURN_IF_ERROR(NormalizeAxis(ctx, in_axes[i], x.rank(), &in_axes[i]));
    int64_t n = x.dim(static_cast<int>(in_axes[i]));
    if (len >= 0 && n != len) return ctx.Error("scan inputs differ in sequence length");
    len = n;
  }
  std::vector<RtValue> states;
  for (size_t i = 0; i < l.n_state; ++i) states.push_back(ctx.input_value(i));
  std::vector<std::vector<Tensor>> scans;
  KILN_RETURN_IF_ERROR(RunScanSteps(ctx, body, l, len, &states, &scans, [&](size_t i, int64_t t) {
    return ctrl::TakeAxis(ctx.input(l.n_state + i), static_cast<int>(in_axes[i]),
                          in_dirs[i] == 1 ? len - 1 - t : t);
  }));
  for (size_t i = 0; i < l.n_state && i < ctx.num_outputs(); ++i)
    ctx.set_output_value(i, std::move(states[i]));
  for (size_t k = 0; k < l.n_scan_out && l.n_state + k < ctx.num_outputs(); ++k) {
    const Value& v = *body.outputs[l.n_state + k];
    std::vector<Tensor>& parts = scans[k];
    int64_t rank = parts.empty() ? v.type.shape.rank() : parts[0].rank();
    int64_t axis = 0;
    if (rank >= 0) KILN_RETURN_IF_ERROR(NormalizeAxis(ctx, out_axes[k], rank + 1, &axis));
    if (parts.empty()) {
      KILN_ASSIGN_OR_RETURN(Tensor t, EmptyStack(ctx, v, axis));
      ctx.set_output(l.n_state + k, std::move(t));
      continue;
    }
    if (out_dirs[k] == 1) std::reverse(parts.begin(), parts.end());
    auto s = ctrl::StackAxis(parts, static_cast<int>(axis));
    if (!s.ok()) return ctx.Error("scan output " + std::to_string(k) + ": " + s.status().message());
    ctx.set_output(l.n_state + k, std::move(*s));
  }
  return Status::Ok();
}

}  // namespace

Status InferScan(InferContext& ctx) {
  const Graph* body = ctx.attr_graph("body");
  KILN_ASSIGN_OR_RETURN(ScanLayout l, GetScanLayout(ctx, body));
  return ctx.opset() < 9 ? InferScan8(ctx, *body, l) : InferScan9(ctx, *body, l);
}

Status RunScan(RunContext& ctx) {
  const Graph* body = ctx.attr_graph("body");
  KILN_ASSIGN_OR_RETURN(ScanLayout l, GetScanLayout(ctx, body));
  for (size_t i = l.first; i < ctx.num_inputs(); ++i)
    if (!ctx.has_input(i) || (i >= l.first + l.n_state && ctx.input_value(i).kind != ValueKind::kTensor))
      return ctx.Error("input " + std::to_string(i) + " is missing or not a tensor");
  return ctx.opset() < 9 ? RunScan8(ctx, *body, l) : RunScan9(ctx, *body, l);
}

}  // namespace ops
}  // namespace kiln
