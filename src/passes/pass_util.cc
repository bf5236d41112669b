// Helpers shared by the simplifier's passes.
#include "passes/pass_util.h"

#include <algorithm>
#include <cstring>
#include <set>

namespace kiln::passes {

bool IsRandomOp(const Node& n) {
  static const char* kRandom[] = {"RandomNormal",      "RandomNormalLike", "RandomUniform",
                                  "RandomUniformLike", "Bernoulli",        "Multinomial"};
  if (!n.domain.empty() && n.domain != "ai.onnx") return false;
  for (const char* r : kRandom)
    if (n.op_type == r) return true;
  return false;
}

bool HasSubgraphs(const Node& n) {
  for (const auto& [k, a] : n.attrs)
    if (a.g || !a.graphs.empty()) return true;
  return false;
}

std::vector<Graph*> Subgraphs(const Node& n) {
  std::vector<Graph*> out;
  for (const auto& [k, a] : n.attrs) {
    if (a.g) out.push_back(a.g.get());
    for (const auto& g : a.graphs)
      if (g) out.push_back(g.get());
  }
  return out;
}

void ForEachGraph(Graph& g, const std::function<void(Graph&)>& fn) {
  fn(g);
  for (Node* n : g.nodes())
    for (Graph* sg : Subgraphs(*n)) ForEachGraph(*sg, fn);
}

bool IsGraphInput(const Graph& g, const Value* v) {
  return std::find(g.inputs.begin(), g.inputs.end(), v) != g.inputs.end();
}

bool IsGraphOutput(const Graph& g, const Value* v) {
  return std::find(g.outputs.begin(), g.outputs.end(), v) != g.outputs.end();
}

bool IsAnyGraphOutput(Graph& root, const Value* v) {
  bool found = false;
  ForEachGraph(root, [&](Graph& g) { found = found || IsGraphOutput(g, v); });
  return found;
}

bool IsConstant(const Value* v) {
  if (!v || !v->data) return false;
  return !v->graph() || !IsGraphInput(*v->graph(), v);
}

bool SameConstant(const Value* a, const Value* b) {
  if (a == b) return true;
  if (!IsConstant(a) || !IsConstant(b)) return false;
  const Tensor &x = *a->data, &y = *b->data;
  if (x.dtype() != y.dtype() || x.dims() != y.dims() || x.dtype() == DataType::kString) return false;
  return std::memcmp(x.raw(), y.raw(), x.nbytes()) == 0;
}

std::optional<std::vector<int64_t>> ConstInts(const Value* v) {
  if (!IsConstant(v)) return std::nullopt;
  const Tensor& t = *v->data;
  if (t.dtype() != DataType::kInt64 && t.dtype() != DataType::kInt32) return std::nullopt;
  return t.ToInt64s();
}

std::optional<double> ConstScalar(const Value* v) {
  if (!IsConstant(v)) return std::nullopt;
  const Tensor& t = *v->data;
  if (t.numel() != 1 || t.dtype() == DataType::kString) return std::nullopt;
  if (!IsFloatingPoint(t.dtype()) && !IsSignedInteger(t.dtype()) && !IsUnsignedInteger(t.dtype()) &&
      t.dtype() != DataType::kBool)
    return std::nullopt;
  return t.ScalarAt(0);
}

Value* AddInitializer(Graph& g, const std::string& base, Tensor t) {
  Value* v = g.AddValue(g.UniqueName(base.empty() ? "const" : base));
  v->type = TypeInfo::Tensor(t.dtype(), t.shape());
  v->data = std::move(t);
  g.initializers.push_back(v);
  return v;
}

Value* AddInt64Initializer(Graph& g, const std::string& base, const std::vector<int64_t>& values) {
  return AddInitializer(g, base, Tensor::Int64s(values));
}

bool IsOnnxOp(const Node* n, const char* op) {
  return n && n->op_type == op && (n->domain.empty() || n->domain == "ai.onnx");
}

bool IsKilnOp(const Node* n, const char* op) { return n && n->domain == "kiln" && n->op_type == op; }

bool IsInt8Layer(const Node* n) {
  return IsKilnOp(n, "QConv") || IsKilnOp(n, "QConvNhwc") || IsKilnOp(n, "QMatMul");
}

void ReadShapeThroughPermutation(Graph& g, Node* shape, Value* source, const std::vector<int64_t>& perm) {
  Node* sx = g.InsertNode(shape, "Shape", g.UniqueName(shape->name + "/source"));
  sx->AddInput(source);
  Value* read = shape->output(0);
  Value* dims = NewTensorValue(g, read->name() + "/source", DataType::kInt64,
                               Shape({static_cast<int64_t>(perm.size())}));
  sx->AddOutput(dims);
  Node* gather = g.InsertNode(shape, "Gather", g.UniqueName(shape->name + "/permuted"));
  gather->AddInput(dims);
  gather->AddInput(AddInt64Initializer(g, shape->name + "/perm", perm));
  gather->attrs["axis"] = Attribute::FromInt(0);
  g.RemoveNode(shape);
  gather->AddOutput(read);
}

bool IsUnaryElementwise(const Node& n) {
  static const char* kOps[] = {"Relu",        "Sigmoid",   "Tanh",     "Clip",       "HardSwish",
                               "HardSigmoid", "LeakyRelu", "Elu",      "Exp",        "Neg",
                               "Abs",         "Erf",       "Sqrt",     "Gelu",       "Softplus",
                               "Mish",        "Selu",      "Softsign", "Reciprocal", "Cast"};
  if (n.domain == "kiln" && n.op_type == "Gelu") return true;  // fuse_gpu's erf GELU (MaxViT, ConvNeXt)
  if (!n.domain.empty() && n.domain != "ai.onnx") return false;
  for (const char* op : kOps)
    if (n.op_type == op) return true;
  return false;
}

bool IsBinaryElementwise(const Node& n) {
  static const char* kOps[] = {"Add", "Sub", "Mul", "Div", "Max", "Min", "PRelu", "Pow"};
  if ((!n.domain.empty() && n.domain != "ai.onnx") || n.num_inputs() != 2) return false;
  for (const char* op : kOps)
    if (n.op_type == op) return true;
  return false;
}

Tensor ConcatTensors(const std::vector<const Tensor*>& parts, int axis) {
  std::vector<int64_t> dims = parts[0]->dims();
  const size_t elem = ElementSize(parts[0]->dtype());
  size_t outer = 1, inner = elem;
  for (int i = 0; i < axis; ++i) outer *= static_cast<size_t>(dims[static_cast<size_t>(i)]);
  for (size_t i = static_cast<size_t>(axis) + 1; i < dims.size(); ++i) inner *= static_cast<size_t>(dims[i]);
  int64_t total = 0;
  for (const Tensor* p : parts) total += p->dim(axis);
  dims[static_cast<size_t>(axis)] = total;
  Tensor out(parts[0]->dtype(), dims);
  auto* dst = static_cast<char*>(out.mutable_raw());
  for (size_t o = 0; o < outer; ++o)
    for (const Tensor* p : parts) {
      const size_t row = static_cast<size_t>(p->dim(axis)) * inner;
      std::memcpy(dst, static_cast<const char*>(p->raw()) + o * row, row);
      dst += row;
    }
  return out;
}

void ShapeReadRange(const Node& shape, int64_t rank, int64_t* start, int64_t* end) {
  auto clamp = [rank](int64_t i) { return std::clamp(i < 0 ? i + rank : i, int64_t{0}, rank); };
  *start = clamp(AttrInt(shape, "start", 0));
  *end = std::max(*start, clamp(AttrInt(shape, "end", rank)));
}

bool IsGeluNode(const Node* n) {
  return (IsKilnOp(n, "Gelu") || IsOnnxOp(n, "Gelu")) && n->num_inputs() == 1 && n->num_outputs() == 1;
}

bool HasRank(const Value* v, int r) { return v && v->shape().rank_known() && v->shape().rank() == r; }

std::vector<Node*> KilnNodes(Graph& g, const char* op) {
  std::vector<Node*> found;
  for (Node* n : g.nodes())
    if (IsKilnOp(n, op)) found.push_back(n);
  return found;
}

bool SetConvActivation(const Node* act, AttributeMap* attrs) {
  if (!act || !IsPlainNode(act, 1)) return false;
  if (IsOnnxOp(act, "Relu") || IsOnnxOp(act, "Sigmoid")) {
    (*attrs)["activation"] = Attribute::FromString(act->op_type);
  } else if (IsOnnxOp(act, "LeakyRelu")) {
    (*attrs)["activation"] = Attribute::FromString("LeakyRelu");
    (*attrs)["activation_alpha"] = Attribute::FromFloat(AttrFloat(*act, "alpha", 0.01f));
  } else if (IsGeluNode(act) && AttrString(*act, "approximate", "none") == "none") {
    (*attrs)["activation"] = Attribute::FromString("Gelu");
  } else {
    return false;
  }
  return true;
}

bool HasUnitConvGeometry(const Node& conv) {
  auto all = [&](const char* attr, int64_t v) {
    for (int64_t x : AttrInts(conv, attr).value_or(std::vector<int64_t>{}))
      if (x != v) return false;
    return true;
  };
  return AttrInt(conv, "group", 1) == 1 && all("strides", 1) && all("dilations", 1) && all("pads", 0);
}

bool IsPlainNode(const Node* n, size_t inputs) {
  if (!n || n->num_inputs() != inputs || n->num_outputs() != 1 || !n->output(0)) return false;
  for (const Value* v : n->inputs())
    if (!v) return false;
  return true;
}

Value* NewTensorValue(Graph& g, const std::string& base, DataType dt, Shape shape) {
  Value* v = g.AddValue(g.UniqueName(base));
  v->type = TypeInfo::Tensor(dt, std::move(shape));
  return v;
}

Value* InsertOp(Graph& g, Node* before, const char* op, const std::string& base, const std::vector<Value*>& inputs,
                DataType dt, Shape shape) {
  Node* n = g.InsertNode(before, op, g.UniqueName(base));
  for (Value* in : inputs) n->AddInput(in);
  Value* out = NewTensorValue(g, base, dt, std::move(shape));
  n->AddOutput(out);
  return out;
}

void FinishKilnRewrite(Model& model, PassContext& ctx, int count) {
  if (count == 0) return;
  if (!model.opsets.count("kiln")) model.opsets["kiln"] = 1;
  model.graph->RemoveUnusedValues();
  ctx.changed = true;
}

Status RewriteEachNode(Model& model, PassContext& ctx, const std::function<bool(Graph&, Node*)>& rewrite) {
  if (!model.graph) return InvalidArgument("model has no graph");
  Graph& g = *model.graph;
  int count = 0;
  for (Node* n : g.nodes())
    if (rewrite(g, n)) ++count;
  if (count == 0) return Status::Ok();
  KILN_RETURN_IF_ERROR(g.TopologicalSort());
  FinishKilnRewrite(model, ctx, count);
  return Status::Ok();
}

void ReplaceAllUsesDeep(Graph& g, Value* from, Value* to) {
  // Uses in subgraphs are in from->uses() too (nodes hold the outer Value).
  g.ReplaceAllUses(from, to);
  ForEachGraph(g, [&](Graph& sg) {
    if (&sg == &g) return;
    for (Value*& o : sg.outputs)
      if (o == from) o = to;
  });
}

bool BypassNode(Node* n, Value* out, Value* in) {
  Graph& g = *n->graph();
  if (out == in) return false;
  if (!IsGraphOutput(g, out)) {
    // A subgraph may list `out` as its output: ReplaceAllUsesDeep covers it.
    ReplaceAllUsesDeep(g, out, in);
    g.RemoveNode(n);
    return true;
  }
  // `out` names a graph output: let in's producer produce it under that name.
  Node* p = in->producer();
  if (!p || p->graph() != &g || in->graph() != &g || IsAnyGraphOutput(g, in)) return false;
  g.RemoveNode(n);
  ReplaceAllUsesDeep(g, in, out);
  for (size_t i = 0; i < p->num_outputs(); ++i)
    if (p->output(i) == in) p->SetOutput(i, out);
  if (!out->data) out->data = in->data;
  if (!out->sym_data) out->sym_data = in->sym_data;
  if (!out->type.known()) out->type = in->type;
  return true;
}

void RemoveNodeDeep(Graph& g, Node* n) {
  for (Graph* sg : Subgraphs(*n))
    ForEachGraph(*sg, [](Graph& inner) {
      for (Node* m : inner.nodes()) m->ClearInputs();
    });
  g.RemoveNode(n);
}

bool SameDims(const Shape& a, const Shape& b) {
  if (!a.rank_known() || !b.rank_known() || a.rank() != b.rank()) return false;
  for (int i = 0; i < a.rank(); ++i) {
    const Dim& x = a[static_cast<size_t>(i)];
    const Dim& y = b[static_cast<size_t>(i)];
    if (!SameDim(x, y)) return false;
  }
  return true;
}

bool SameDim(const Dim& a, const Dim& b) { return !a.unknown() && !b.unknown() && a == b; }

bool IsKnownOne(const Dim& d) { return d.known() && d.value() == 1; }

bool HasSingleUse(Graph& root, const Value* v) { return v->uses().size() == 1 && !IsAnyGraphOutput(root, v); }

Node* SoleProducer(Graph& g, Value* v) {
  Node* p = v ? v->producer() : nullptr;
  return p && p->graph() == &g && HasSingleUse(g, v) ? p : nullptr;
}

Node* SoleUser(Graph& g, Value* v) {
  if (!HasSingleUse(g, v)) return nullptr;
  Node* u = v->uses()[0];
  return u->graph() == &g ? u : nullptr;
}

bool ReachesThroughAdds(Graph& g, Value* v, int max_adds, const std::function<bool(Value*)>& is_scores) {
  if (is_scores(v)) return true;
  Node* a = SoleProducer(g, v);
  if (max_adds <= 0 || !IsOnnxOp(a, "Add") || !IsPlainNode(a, 2)) return false;
  return ReachesThroughAdds(g, a->input(0), max_adds - 1, is_scores) ||
         ReachesThroughAdds(g, a->input(1), max_adds - 1, is_scores);
}

Tensor PadLastAxis(const Tensor& t, int64_t to) {
  std::vector<int64_t> dims = t.dims();
  const int64_t c = dims.back();
  dims.back() = to;
  Tensor out(t.dtype(), dims);  // zeros
  const int64_t rows = c > 0 ? t.numel() / c : 0, bytes = static_cast<int64_t>(ElementSize(t.dtype()));
  const auto* src = static_cast<const uint8_t*>(t.raw());
  auto* dst = static_cast<uint8_t*>(out.mutable_raw());
  for (int64_t r = 0; r < rows; ++r)
    std::copy(src + r * c * bytes, src + (r + 1) * c * bytes, dst + r * to * bytes);
  return out;
}

bool IsArithmeticFloat(DataType dt) {
  return dt == DataType::kFloat || dt == DataType::kDouble || dt == DataType::kFloat16 ||
         dt == DataType::kBFloat16;
}

std::vector<double> ToDoubles(const Tensor& t) {
  std::vector<double> out(static_cast<size_t>(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i) out[static_cast<size_t>(i)] = t.ScalarAt(i);
  return out;
}

Tensor FromDoubles(DataType dt, std::vector<int64_t> dims, const std::vector<double>& values) {
  Tensor t(dt, std::move(dims));
  size_t n = static_cast<size_t>(t.numel());
  switch (dt) {
    case DataType::kFloat: {
      float* p = t.mutable_data<float>();
      for (size_t i = 0; i < n; ++i) p[i] = static_cast<float>(values[i]);
      break;
    }
    case DataType::kDouble: {
      double* p = t.mutable_data<double>();
      for (size_t i = 0; i < n; ++i) p[i] = values[i];
      break;
    }
    case DataType::kFloat16: {
      Half* p = t.mutable_data<Half>();
      for (size_t i = 0; i < n; ++i) p[i] = Half(static_cast<float>(values[i]));
      break;
    }
    case DataType::kBFloat16: {
      uint16_t* p = t.mutable_data<uint16_t>();
      for (size_t i = 0; i < n; ++i) p[i] = FloatToBFloat16Bits(static_cast<float>(values[i]));
      break;
    }
    default:
      return Tensor();
  }
  return t;
}

int64_t AttrInt(const Node& n, const std::string& name, int64_t def) {
  const Attribute* a = n.attr(name);
  return a && a->type == Attribute::Type::kInt ? a->i : def;
}

std::string AttrString(const Node& n, const std::string& name, const std::string& def) {
  const Attribute* a = n.attr(name);
  return a && a->type == Attribute::Type::kString ? a->s : def;
}

float AttrFloat(const Node& n, const std::string& name, float def) {
  const Attribute* a = n.attr(name);
  return a && a->type == Attribute::Type::kFloat ? a->f : def;
}

bool SetHardActivation(const Node* act, AttributeMap* attrs) {
  if (!IsPlainNode(act, 1)) return false;
  if (IsOnnxOp(act, "HardSwish")) {
    (*attrs)["activation"] = Attribute::FromString("HardSwish");
    return true;
  }
  if (!IsOnnxOp(act, "HardSigmoid")) return false;
  (*attrs)["activation"] = Attribute::FromString("HardSigmoid");
  (*attrs)["activation_alpha"] = Attribute::FromFloat(AttrFloat(*act, "alpha", 0.2f));
  (*attrs)["activation_beta"] = Attribute::FromFloat(AttrFloat(*act, "beta", 0.5f));
  return true;
}

std::optional<std::vector<int64_t>> AttrInts(const Node& n, const std::string& name) {
  const Attribute* a = n.attr(name);
  if (!a || a->type != Attribute::Type::kInts) return std::nullopt;
  return a->ints;
}

std::optional<std::vector<int64_t>> NodeAxes(const Node& n, int64_t opset, int64_t attr_until_opset,
                                             size_t input_index) {
  if (opset < attr_until_opset) {
    if (const Attribute* a = n.attr("axes")) {
      if (a->type != Attribute::Type::kInts) return std::nullopt;
      return a->ints;
    }
    return std::vector<int64_t>{};
  }
  Value* v = n.input(input_index);
  if (!v) return std::vector<int64_t>{};
  return ConstInts(v);
}

std::optional<std::vector<int64_t>> NormalizeAxes(const std::vector<int64_t>& axes, int64_t rank) {
  std::set<int64_t> out;
  for (int64_t a : axes) {
    int64_t x = a < 0 ? a + rank : a;
    if (x < 0 || x >= rank || !out.insert(x).second) return std::nullopt;
  }
  return std::vector<int64_t>(out.begin(), out.end());
}

void Warn(PassContext& ctx, const std::string& message) {
  if (std::find(ctx.warnings.begin(), ctx.warnings.end(), message) == ctx.warnings.end())
    ctx.warnings.push_back(message);
}

}  // namespace kiln::passes
