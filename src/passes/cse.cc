// Common-subexpression elimination (see cse.h).
#include "passes/cse.h"

#include <cstring>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "ir/printer.h"
#include "passes/pass_util.h"

namespace kiln {
namespace {

bool TensorEqual(const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype() || a.dims() != b.dims()) return false;
  if (!a.defined()) return true;
  if (a.dtype() == DataType::kString) return a.strings() == b.strings();
  return a.nbytes() == 0 || std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

bool FloatsEqual(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

bool AttrEqual(const Attribute& a, const Attribute& b) {
  using T = Attribute::Type;
  if (a.type != b.type || a.ref_attr_name != b.ref_attr_name) return false;
  switch (a.type) {
    case T::kFloat:
      return std::memcmp(&a.f, &b.f, sizeof(float)) == 0;
    case T::kInt:
      return a.i == b.i;
    case T::kString:
      return a.s == b.s;
    case T::kTensor:
      return TensorEqual(a.t, b.t);
    case T::kFloats:
      return FloatsEqual(a.floats, b.floats);
    case T::kInts:
      return a.ints == b.ints;
    case T::kStrings:
      return a.strings == b.strings;
    case T::kTensors:
      if (a.tensors.size() != b.tensors.size()) return false;
      for (size_t i = 0; i < a.tensors.size(); ++i)
        if (!TensorEqual(a.tensors[i], b.tensors[i])) return false;
      return true;
    case T::kTypeProto:
      // ToString shortens long symbolic dims; the shapes compare in full.
      return a.type_proto.ToString() == b.type_proto.ToString() && a.type_proto.shape == b.type_proto.shape;
    case T::kUndefined:
      return true;
    case T::kGraph:
    case T::kGraphs:
    case T::kSparseTensor:
      return false;  // never compared (skipped)
  }
  return false;
}

// FNV-1a over a few samples of the bytes (full comparison follows).
uint64_t SampleHash(const Tensor& t) {
  uint64_t h = 1469598103934665603ull;
  auto mix = [&](uint8_t b) {
    h ^= b;
    h *= 1099511628211ull;
  };
  if (t.dtype() == DataType::kString) {
    for (const std::string& s : t.strings())
      for (char c : s) mix(static_cast<uint8_t>(c));
    return h;
  }
  const auto* p = static_cast<const uint8_t*>(t.raw());
  size_t n = t.nbytes();
  if (n <= 1024) {
    for (size_t i = 0; i < n; ++i) mix(p[i]);
    return h;
  }
  for (size_t k = 0; k < 256; ++k) mix(p[k * (n - 1) / 255]);
  return h;
}

std::string DimsKey(const Tensor& t) {
  std::string s = std::to_string(static_cast<int>(t.dtype())) + ":";
  for (int64_t d : t.dims()) s += std::to_string(d) + ",";
  return s;
}

bool DedupConstants(Graph& root, Graph& g) {
  bool changed = false;
  std::map<std::pair<std::string, uint64_t>, std::vector<Value*>> groups;
  std::unordered_map<std::string, int> by_dims;
  for (Value* v : g.initializers)
    if (passes::IsConstant(v)) ++by_dims[DimsKey(*v->data)];
  for (Value* v : std::vector<Value*>(g.initializers)) {
    if (!passes::IsConstant(v) || by_dims[DimsKey(*v->data)] < 2 || v->uses().empty()) continue;
    auto& group = groups[{DimsKey(*v->data), SampleHash(*v->data)}];
    Value* same = nullptr;
    for (Value* k : group)
      if (TensorEqual(*k->data, *v->data)) same = k;
    if (!same) {
      group.push_back(v);
      continue;
    }
    if (passes::IsAnyGraphOutput(root, v)) continue;
    passes::ReplaceAllUsesDeep(g, v, same);
    changed = true;
  }
  return changed;
}

std::string NodeKey(const Node& n) {
  std::string key = n.domain + "|" + n.op_type + "|";
  for (const Value* v : n.inputs()) key += std::to_string(reinterpret_cast<uintptr_t>(v)) + ",";
  key += "|" + std::to_string(n.num_outputs()) + "|";
  for (const auto& [name, a] : n.attrs) key += name + "=" + PrintAttribute(a) + ";";
  return key;
}

bool SameNode(const Node& a, const Node& b) {
  if (a.op_type != b.op_type || a.domain != b.domain || a.inputs() != b.inputs() ||
      a.num_outputs() != b.num_outputs() || a.attrs.size() != b.attrs.size())
    return false;
  for (const auto& [name, attr] : a.attrs) {
    const Attribute* other = b.attr(name);
    if (!other || !AttrEqual(attr, *other)) return false;
  }
  return true;
}

bool MergeNodes(Graph& root, Graph& g) {
  bool changed = false;
  std::unordered_map<std::string, std::vector<Node*>> seen;
  for (Node* n : g.nodes()) {
    if (passes::IsRandomOp(*n) || passes::HasSubgraphs(*n) || n->num_outputs() == 0) continue;
    auto& candidates = seen[NodeKey(*n)];
    Node* first = nullptr;
    for (Node* c : candidates)
      if (SameNode(*c, *n)) first = c;
    bool mergeable = first != nullptr;
    for (size_t i = 0; mergeable && i < n->num_outputs(); ++i) {
      Value* o = n->output(i);
      if (o && (!first->output(i) || passes::IsAnyGraphOutput(root, o))) mergeable = false;
    }
    if (!mergeable) {
      candidates.push_back(n);
      continue;
    }
    for (size_t i = 0; i < n->num_outputs(); ++i)
      if (Value* o = n->output(i)) passes::ReplaceAllUsesDeep(g, o, first->output(i));
    g.RemoveNode(n);
    changed = true;
  }
  return changed;
}

}  // namespace

Status RunCse(Model& model, PassContext& ctx) {
  if (!model.graph) return InvalidArgument("model has no graph");
  Graph& root = *model.graph;
  passes::ForEachGraph(root, [&](Graph& g) {
    if (DedupConstants(root, g)) ctx.changed = true;
    if (MergeNodes(root, g)) ctx.changed = true;
  });
  return Status::Ok();
}

}  // namespace kiln
