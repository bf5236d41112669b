// Build pass: Shape reads of intermediate tensors read the graph inputs' dims (see shape_from_inputs.h).
#include "passes/shape_from_inputs.h"

#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "passes/pass_util.h"

namespace kiln {
namespace {

// Where a symbol first appears among the graph's (non-constant) inputs.
struct InputDim {
  Value* input = nullptr;
  int64_t axis = 0;
};

std::map<std::string, InputDim> InputSymbols(const Graph& g) {
  std::map<std::string, InputDim> symbols;
  for (Value* in : g.inputs) {
    if (in->data || !in->shape().rank_known()) continue;
    const Shape& s = in->shape();
    for (int64_t a = 0; a < s.rank(); ++a) {
      const Dim& d = s[static_cast<size_t>(a)];
      if (d.symbolic()) symbols.emplace(d.symbol(), InputDim{in, a});
    }
  }
  return symbols;
}

// The dims a Shape node reads: its input's, from start to end (Shape-15: negative counts from the back,
// clamped to [0, rank]). nullopt when the rank is unknown.
std::optional<std::vector<Dim>> ReadDims(const Node& shape) {
  const Shape& s = shape.input(0)->shape();
  if (!s.rank_known()) return std::nullopt;
  int64_t start = 0, end = 0;
  passes::ShapeReadRange(shape, s.rank(), &start, &end);
  std::vector<Dim> dims;
  for (int64_t a = start; a < end; ++a) dims.push_back(s[static_cast<size_t>(a)]);
  return dims;
}

class ShapeRewriter {
 public:
  explicit ShapeRewriter(Graph& g) : g_(g), symbols_(InputSymbols(g)) {}

  // Rewrites `shape` when every dim it reads is a constant or an input's symbol.
  bool Rewrite(Node* shape) {
    std::optional<std::vector<Dim>> dims = ReadDims(*shape);
    if (!dims || dims->empty()) return false;
    // Each read dim as (source, index): source -1 = the constants, else inputs_[source]'s shape.
    std::vector<Value*> inputs;
    std::vector<int64_t> constants;
    std::vector<std::pair<int, int64_t>> picks;
    bool from_input = false;
    for (const Dim& d : *dims) {
      if (d.known()) {
        picks.emplace_back(-1, static_cast<int64_t>(constants.size()));
        constants.push_back(d.value());
        continue;
      }
      auto it = d.symbolic() ? symbols_.find(d.symbol()) : symbols_.end();
      if (it == symbols_.end()) return false;
      auto at = std::find(inputs.begin(), inputs.end(), it->second.input);
      if (at == inputs.end()) at = inputs.insert(inputs.end(), it->second.input);
      picks.emplace_back(static_cast<int>(at - inputs.begin()), it->second.axis);
      from_input = true;
    }
    if (!from_input) return false;  // all known: fold_shapes' business
    // The pieces, concatenated: each input's shape, then the constants.
    std::vector<Value*> pieces;
    std::vector<int64_t> offsets;
    int64_t total = 0;
    for (Value* in : inputs) {
      Node* read = g_.InsertNode(shape, "Shape", g_.UniqueName(shape->name + "/input_dims"));
      read->AddInput(in);
      Value* dims_of =
          passes::NewTensorValue(g_, in->name() + "/dims", DataType::kInt64, Shape({in->shape().rank()}));
      read->AddOutput(dims_of);
      pieces.push_back(dims_of);
      offsets.push_back(total);
      total += in->shape().rank();
    }
    if (!constants.empty())
      pieces.push_back(passes::AddInt64Initializer(g_, shape->name + "/known_dims", constants));
    Value* source = pieces[0];
    if (pieces.size() > 1) {
      Node* cat = g_.InsertNode(shape, "Concat", g_.UniqueName(shape->name + "/dims"));
      cat->attrs["axis"] = Attribute::FromInt(0);
      for (Value* p : pieces) cat->AddInput(p);
      source = passes::NewTensorValue(g_, shape->name + "/dims", DataType::kInt64,
                                      Shape({total + static_cast<int64_t>(constants.size())}));
      cat->AddOutput(source);
    }
    std::vector<int64_t> indices;
    for (const auto& [from, i] : picks)
      indices.push_back(from < 0 ? total + i : offsets[static_cast<size_t>(from)] + i);
    Value* read = shape->output(0);
    Node* gather = g_.InsertNode(shape, "Gather", g_.UniqueName(shape->name + "/from_inputs"));
    gather->AddInput(source);
    gather->AddInput(passes::AddInt64Initializer(g_, shape->name + "/picks", indices));
    gather->attrs["axis"] = Attribute::FromInt(0);
    g_.RemoveNode(shape);
    gather->AddOutput(read);
    return true;
  }

 private:
  Graph& g_;
  const std::map<std::string, InputDim> symbols_;
};

}  // namespace

Status RunShapeFromInputs(Model& model, PassContext& ctx) {
  if (!model.graph) return Status::Ok();
  Graph& g = *model.graph;
  ShapeRewriter rewriter(g);
  bool changed = false;
  for (Node* n : std::vector<Node*>(g.nodes())) {
    if (!passes::IsOnnxOp(n, "Shape") || !passes::IsPlainNode(n, 1) || n->input(0)->producer() == nullptr)
      continue;
    changed |= rewriter.Rewrite(n);
  }
  if (changed) {
    g.RemoveUnusedValues();
    ctx.changed = true;
  }
  return Status::Ok();
}

}  // namespace kiln
