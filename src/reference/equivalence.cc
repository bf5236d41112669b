// Model equivalence on the CPU reference (see equivalence.h).
#include "reference/equivalence.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <sstream>

#include "passes/pass_util.h"
#include "reference/compare.h"
#include "reference/executor.h"

namespace kiln {

Tensor RandomTensor(DataType dt, const std::vector<int64_t>& dims, int int_limit, std::mt19937_64& rng) {
  Tensor t(dt, dims);
  int64_t n = t.numel();
  std::uniform_real_distribution<double> real(-1.0, 1.0);
  std::uniform_int_distribution<int> small(0, int_limit - 1);
  auto fill = [&](auto* p, auto gen) {
    for (int64_t i = 0; i < n; ++i) p[i] = gen();
  };
  switch (dt) {
    case DataType::kFloat:
      fill(t.mutable_data<float>(), [&] { return static_cast<float>(real(rng)); });
      break;
    case DataType::kDouble:
      fill(t.mutable_data<double>(), [&] { return real(rng); });
      break;
    case DataType::kFloat16:
      fill(t.mutable_data<uint16_t>(), [&] { return FloatToHalfBits(static_cast<float>(real(rng))); });
      break;
    case DataType::kBFloat16:
      fill(t.mutable_data<uint16_t>(), [&] { return FloatToBFloat16Bits(static_cast<float>(real(rng))); });
      break;
    case DataType::kBool:
      fill(t.mutable_data<uint8_t>(), [&] { return static_cast<uint8_t>(rng() & 1u); });
      break;
    case DataType::kInt8:
    case DataType::kInt4:
    case DataType::kInt2:
      fill(t.mutable_data<int8_t>(), [&] { return static_cast<int8_t>(small(rng) % 2); });
      break;
    case DataType::kUInt8:
    case DataType::kUInt4:
    case DataType::kUInt2:
      fill(t.mutable_data<uint8_t>(), [&] { return static_cast<uint8_t>(small(rng) % 4); });
      break;
    case DataType::kInt16:
      fill(t.mutable_data<int16_t>(), [&] { return static_cast<int16_t>(small(rng)); });
      break;
    case DataType::kUInt16:
      fill(t.mutable_data<uint16_t>(), [&] { return static_cast<uint16_t>(small(rng)); });
      break;
    case DataType::kInt32:
      fill(t.mutable_data<int32_t>(), [&] { return static_cast<int32_t>(small(rng)); });
      break;
    case DataType::kUInt32:
      fill(t.mutable_data<uint32_t>(), [&] { return static_cast<uint32_t>(small(rng)); });
      break;
    case DataType::kInt64:
      fill(t.mutable_data<int64_t>(), [&] { return static_cast<int64_t>(small(rng)); });
      break;
    case DataType::kUInt64:
      fill(t.mutable_data<uint64_t>(), [&] { return static_cast<uint64_t>(small(rng)); });
      break;
    case DataType::kString: {
      auto& s = t.mutable_strings();
      for (auto& e : s) e = "s" + std::to_string(small(rng));
      break;
    }
    default:
      break;  // float8 and others: zeros
  }
  return t;
}

namespace {

// Compares one output; appends to `vacuous` when its check could not have failed.
Status CompareTensor(const std::string& what, const Tensor& ref, const Tensor& got, const EquivalenceOptions& o,
                     std::vector<std::string>* vacuous) {
  Tolerance tol;
  tol.rtol = o.rtol;
  tol.atol = o.atol;
  if (ref.dtype() != got.dtype())
    return InvalidArgument(what + " has type " + std::string(DataTypeName(got.dtype())) + ", the original " +
                           std::string(DataTypeName(ref.dtype())));
  Comparison c = CompareTensors(ref, got, tol);
  if (!c.ok) return InvalidArgument(what + " " + c.message);
  Status can_fail = CheckCanFail(ref, tol);
  if (!can_fail.ok() && vacuous) vacuous->push_back(what + ": " + can_fail.message());
  return Status::Ok();
}

Status CompareValues(const std::string& what, const RtValue& ref, const RtValue& got,
                     const EquivalenceOptions& o, std::vector<std::string>* vacuous) {
  if (ref.kind != got.kind) return InvalidArgument(what + " is a different kind of value than the original");
  if (ref.kind == ValueKind::kTensor) return CompareTensor(what, ref.tensor, got.tensor, o, vacuous);
  if (ref.present != got.present) return InvalidArgument(what + ": one optional is empty, the other is not");
  if (ref.kind == ValueKind::kOptional && ref.elem_kind == ValueKind::kTensor && ref.sequence.empty())
    return CompareTensor(what, ref.tensor, got.tensor, o, vacuous);
  if (ref.sequence.size() != got.sequence.size())
    return InvalidArgument(what + " holds " + std::to_string(got.sequence.size()) +
                           " tensors, the original " + std::to_string(ref.sequence.size()));
  for (size_t i = 0; i < ref.sequence.size(); ++i)
    KILN_RETURN_IF_ERROR(CompareTensor(what + " element " + std::to_string(i), ref.sequence[i], got.sequence[i],
                                       o, vacuous));
  return Status::Ok();
}

// The first random node of the model (subgraphs included), or nullptr.
const Node* FindRandomNode(const Model& m) {
  const Node* found = nullptr;
  passes::ForEachGraph(*m.graph, [&](Graph& g) {
    for (const Node* n : g.nodes())
      if (!found && passes::IsRandomOp(*n)) found = n;
  });
  return found;
}

// 10, or less where `v` indexes a Gather whose data axis is shorter (token
// type ids into a 2-row embedding): random indices stay in range.
int IntLimit(const Value* v) {
  int64_t limit = 10;
  for (const Node* n : v->uses()) {
    if (n->op_type != "Gather" || !n->domain.empty() || n->num_inputs() < 2 || n->input(1) != v) continue;
    const Value* data = n->input(0);
    if (!data || !data->type.shape.rank_known()) continue;
    int64_t rank = data->type.shape.rank();
    int64_t axis = passes::AttrInt(*n, "axis", 0);
    if (axis < 0) axis += rank;
    if (axis < 0 || axis >= rank) continue;
    const Dim& d = data->type.shape[static_cast<size_t>(axis)];
    if (d.known() && d.value() > 0) limit = std::min(limit, d.value());
  }
  return static_cast<int>(limit);
}

}  // namespace

Expected<std::map<std::string, RtValue>> RandomInputs(const Model& model, const EquivalenceOptions& options) {
  if (!model.graph) return InvalidArgument("model has no graph");
  std::mt19937_64 rng(options.seed);
  std::map<std::string, int64_t> symbols;
  std::map<std::string, RtValue> feeds;
  for (const Value* v : model.graph->inputs) {
    if (v->data) continue;  // has a default
    if (v->type.kind != ValueKind::kTensor)
      return Unsupported("input '" + v->name() + "' is a " + v->type.ToString() +
                         "; only tensor inputs can be fed");
    if (!v->type.known()) return Unsupported("input '" + v->name() + "' has no element type");
    std::vector<int64_t> dims;
    auto it = options.input_dims.find(v->name());
    const Shape& s = v->type.shape;
    if (it != options.input_dims.end()) {
      dims = it->second;
    } else if (!s.rank_known()) {
      return InvalidArgument("input '" + v->name() + "' has unknown rank; give its shape");
    } else {
      for (const Dim& d : s.dims()) {
        if (d.known()) {
          dims.push_back(d.value());
        } else if (d.symbolic()) {
          dims.push_back(symbols.emplace(d.symbol(), options.symbolic_dim).first->second);
        } else {
          dims.push_back(options.symbolic_dim);
        }
      }
    }
    feeds[v->name()] = RtValue::FromTensor(RandomTensor(v->type.dtype, dims, IntLimit(v), rng));
  }
  return feeds;
}

Status CheckEquivalent(const Model& reference, const Model& candidate, const EquivalenceOptions& options,
                       EquivalenceReport* report) {
  KILN_ASSIGN_OR_RETURN(auto feeds, RandomInputs(reference, options));
  auto expected = ReferenceExecutor(reference).Run(feeds);
  if (!expected.ok())
    return Unsupported("the original model cannot run on the CPU reference: " + expected.status().message());
  if (const Node* random = FindRandomNode(reference)) {
    // Unseeded random ops make every run different: nothing to compare.
    auto again = ReferenceExecutor(reference).Run(feeds);
    for (size_t i = 0; again.ok() && i < again->size(); ++i)
      if (!CompareValues("", (*expected)[i], (*again)[i], options, nullptr).ok())
        return Unsupported("the original model gives different outputs on each run (" + random->Label() +
                           " is random)");
  }
  auto got = ReferenceExecutor(candidate).Run(feeds);
  if (!got.ok())
    return InvalidArgument("the simplified model fails on the CPU reference: " + got.status().message());
  const Graph& rg = *reference.graph;
  const Graph& cg = *candidate.graph;
  if (rg.outputs.size() != cg.outputs.size())
    return InvalidArgument("the simplified model has " + std::to_string(cg.outputs.size()) +
                           " outputs, the original " + std::to_string(rg.outputs.size()));
  for (size_t i = 0; i < rg.outputs.size(); ++i) {
    const std::string& name = rg.outputs[i]->name();
    if (cg.outputs[i]->name() != name)
      return InvalidArgument("output " + std::to_string(i) + " is named '" + cg.outputs[i]->name() +
                             "' in the simplified model, '" + name + "' in the original");
    KILN_RETURN_IF_ERROR(CompareValues("output '" + name + "'", (*expected)[i], (*got)[i], options,
                                       report ? &report->vacuous : nullptr));
  }
  return Status::Ok();
}

}  // namespace kiln
