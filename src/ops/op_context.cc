#include "ops/op_context.h"

namespace kiln {

std::string RtValue::Describe() const {
  switch (kind) {
    case ValueKind::kTensor: return tensor.Describe();
    case ValueKind::kSequence: return "seq(" + std::to_string(sequence.size()) + ")";
    case ValueKind::kOptional:
      if (!present) return "optional(empty)";
      return elem_kind == ValueKind::kSequence ? "optional(seq(" + std::to_string(sequence.size()) + "))"
                                               : "optional(" + tensor.Describe() + ")";
    default: return "value";
  }
}

int64_t NodeContext::attr_int(const std::string& name, int64_t def) const {
  const Attribute* a = node_.attr(name);
  return a ? a->i : def;
}

float NodeContext::attr_float(const std::string& name, float def) const {
  const Attribute* a = node_.attr(name);
  return a ? a->f : def;
}

std::string NodeContext::attr_string(const std::string& name, const std::string& def) const {
  const Attribute* a = node_.attr(name);
  return a ? a->s : def;
}

std::vector<int64_t> NodeContext::attr_ints(const std::string& name) const {
  const Attribute* a = node_.attr(name);
  return a ? a->ints : std::vector<int64_t>{};
}

std::vector<float> NodeContext::attr_floats(const std::string& name) const {
  const Attribute* a = node_.attr(name);
  return a ? a->floats : std::vector<float>{};
}

std::vector<std::string> NodeContext::attr_strings(const std::string& name) const {
  const Attribute* a = node_.attr(name);
  return a ? a->strings : std::vector<std::string>{};
}

const Tensor* NodeContext::attr_tensor(const std::string& name) const {
  const Attribute* a = node_.attr(name);
  return a && a->type == Attribute::Type::kTensor ? &a->t : nullptr;
}

const Graph* NodeContext::attr_graph(const std::string& name) const {
  const Attribute* a = node_.attr(name);
  return a && a->type == Attribute::Type::kGraph ? a->g.get() : nullptr;
}

std::string NodeContext::Context(const std::string& msg) const {
  std::string s = node_.Label() + ": " + msg;
  if (input_count() == 0) return s;
  s += " (inputs:";
  for (size_t i = 0; i < input_count(); ++i) s += (i ? ", " : " ") + DescribeInput(i);
  return s + ")";
}

Status NodeContext::Error(const std::string& msg) const { return InvalidArgument(Context(msg)); }
Status NodeContext::UnsupportedError(const std::string& msg) const { return Unsupported(Context(msg)); }
Status NodeContext::InternalError(const std::string& msg) const { return Internal(Context(msg)); }

const TypeInfo& InferContext::input_type(size_t i) const {
  static const TypeInfo kNone;
  const Value* v = mnode_.input(i);
  return v ? v->type : kNone;
}

const Tensor* InferContext::input_data(size_t i) const {
  const Value* v = mnode_.input(i);
  return v && v->data ? &*v->data : nullptr;
}

const std::vector<Dim>* InferContext::input_sym(size_t i) const {
  const Value* v = mnode_.input(i);
  return v && v->sym_data ? &*v->sym_data : nullptr;
}

const std::vector<Dim>* InferContext::input_sym_through_cast(size_t i) const {
  const Value* v = mnode_.input(i);
  if (!v) return nullptr;
  const Node* p = v->producer();
  if (!p || !p->domain.empty() || p->op_type != "Cast" || p->num_inputs() < 1 || !p->input(0)) return nullptr;
  const Value* x = p->input(0);
  const bool integer = IsSignedInteger(x->dtype()) || IsUnsignedInteger(x->dtype());
  return x->sym_data && integer ? &*x->sym_data : nullptr;
}

void InferContext::set_output(size_t i, DataType dtype, Shape shape) {
  set_output_type(i, TypeInfo::Tensor(dtype, std::move(shape)));
}

void InferContext::set_output_type(size_t i, TypeInfo type) {
  // A shape made from symbolic contents may carry their negative constants.
  if (type.shape.rank_known())
    for (Dim& d : type.shape.mutable_dims()) d = d.AsDim();
  if (Value* v = mnode_.output(i)) v->type = std::move(type);
}

void InferContext::set_output_sym(size_t i, std::vector<Dim> values) {
  if (Value* v = mnode_.output(i)) v->sym_data = std::move(values);
}

void InferContext::set_output_data(size_t i, Tensor t) {
  if (Value* v = mnode_.output(i)) {
    v->type = TypeInfo::Tensor(t.dtype(), t.shape());
    v->data = std::move(t);
  }
}

Expected<std::vector<TypeInfo>> InferContext::InferSubgraph(const Graph& g,
                                                            const std::vector<TypeInfo>& inputs) const {
  if (!subgraph_infer_) return Internal(Context("subgraph inference is not available here"));
  return subgraph_infer_(g, inputs);
}

std::string InferContext::DescribeInput(size_t i) const {
  const Value* v = mnode_.input(i);
  if (!v) return "<omitted>";
  return v->name() + " " + v->type.ToString();
}

const RtValue& RunContext::MissingInput() {
  static const RtValue kMissing;  // immutable: an undefined tensor
  return kMissing;
}

Expected<std::vector<RtValue>> RunContext::RunSubgraph(const Graph& g, const std::vector<RtValue>& inputs) const {
  if (!subgraph_run_) return Internal(Context("subgraph execution is not available here"));
  return subgraph_run_(g, inputs);
}

std::string RunContext::DescribeInput(size_t i) const {
  const Value* v = node().input(i);
  std::string name = v ? v->name() : "<omitted>";
  if (!has_input(i)) return name;
  return name + " " + inputs_[i]->Describe();
}

}  // namespace kiln
