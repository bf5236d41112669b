// What an op sees: NodeContext (attributes, opset, error helpers) and its two
// faces, InferContext (types/shapes, no data beyond known constants) and
// RunContext (CPU reference: tensors in, tensors out).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "ir/graph.h"
#include "kiln/status.h"

namespace kiln {

// A runtime value of the CPU reference: a tensor, a sequence of tensors, or an
// optional (present == false: empty optional).
struct RtValue {
  ValueKind kind = ValueKind::kTensor;
  Tensor tensor;
  std::vector<Tensor> sequence;
  bool present = true;
  ValueKind elem_kind = ValueKind::kTensor;  // for optionals: what is inside

  static RtValue FromTensor(Tensor t) {
    RtValue v;
    v.tensor = std::move(t);
    return v;
  }
  static RtValue FromSequence(std::vector<Tensor> s) {
    RtValue v;
    v.kind = ValueKind::kSequence;
    v.sequence = std::move(s);
    return v;
  }
  std::string Describe() const;
};

class NodeContext {
 public:
  NodeContext(const Node& node, int64_t opset) : node_(node), opset_(opset) {}
  virtual ~NodeContext() = default;

  const Node& node() const { return node_; }
  // Version of the node's domain in the model's opset_import.
  int64_t opset() const { return opset_; }

  bool has_attr(const std::string& name) const { return node_.attr(name) != nullptr; }
  int64_t attr_int(const std::string& name, int64_t def) const;
  float attr_float(const std::string& name, float def) const;
  std::string attr_string(const std::string& name, const std::string& def = "") const;
  std::vector<int64_t> attr_ints(const std::string& name) const;  // empty when absent
  std::vector<float> attr_floats(const std::string& name) const;
  std::vector<std::string> attr_strings(const std::string& name) const;
  const Tensor* attr_tensor(const std::string& name) const;
  const Graph* attr_graph(const std::string& name) const;

  // InvalidArgument / Unsupported errors that name the node, op and inputs:
  // "node 'conv1' (Conv): <msg> (inputs: X float32[1,3,224,224], W float32[64,3,7,7])".
  Status Error(const std::string& msg) const;
  Status UnsupportedError(const std::string& msg) const;
  // The same context on an Internal error (a kiln bug, not the model's).
  Status InternalError(const std::string& msg) const;

 protected:
  virtual std::string DescribeInput(size_t i) const = 0;
  virtual size_t input_count() const = 0;
  std::string Context(const std::string& msg) const;

 private:
  const Node& node_;
  int64_t opset_;
};

class InferContext : public NodeContext {
 public:
  using SubgraphInfer =
      std::function<Expected<std::vector<TypeInfo>>(const Graph&, const std::vector<TypeInfo>&)>;

  InferContext(Node& node, int64_t opset, SubgraphInfer subgraph_infer = nullptr)
      : NodeContext(node, opset), mnode_(node), subgraph_infer_(std::move(subgraph_infer)) {}

  size_t num_inputs() const { return mnode_.num_inputs(); }
  // True when input i exists and is not the empty name (omitted optional).
  bool has_input(size_t i) const { return mnode_.input(i) != nullptr; }
  const TypeInfo& input_type(size_t i) const;
  DataType input_dtype(size_t i) const { return input_type(i).dtype; }
  const Shape& input_shape(size_t i) const { return input_type(i).shape; }
  // Constant contents of input i when known (initializer, Constant, folded).
  const Tensor* input_data(size_t i) const;
  // Symbolic contents of a small int64 input when known (e.g. from Shape).
  const std::vector<Dim>* input_sym(size_t i) const;
  // The symbolic contents of the integer value a Cast turned into input i
  // (input_sym covers an integer input itself): torch.arange(n) with a float
  // dtype exports Range(0.0, Cast(n), 1.0). Exact while the values fit the
  // float type's integers (2^24 for float32).
  const std::vector<Dim>* input_sym_through_cast(size_t i) const;

  size_t num_outputs() const { return mnode_.num_outputs(); }
  bool has_output(size_t i) const { return mnode_.output(i) != nullptr; }
  void set_output(size_t i, DataType dtype, Shape shape);
  void set_output_type(size_t i, TypeInfo type);
  void set_output_sym(size_t i, std::vector<Dim> values);
  // Constant output (ops whose result is fully known at inference time).
  void set_output_data(size_t i, Tensor t);

  // Output types of subgraph `g` given its input types (If/Loop/Scan bodies).
  Expected<std::vector<TypeInfo>> InferSubgraph(const Graph& g, const std::vector<TypeInfo>& inputs) const;

 protected:
  std::string DescribeInput(size_t i) const override;
  size_t input_count() const override { return num_inputs(); }

 private:
  Node& mnode_;
  SubgraphInfer subgraph_infer_;
};

class RunContext : public NodeContext {
 public:
  using SubgraphRun =
      std::function<Expected<std::vector<RtValue>>(const Graph&, const std::vector<RtValue>&)>;

  RunContext(const Node& node, int64_t opset, std::vector<const RtValue*> inputs, SubgraphRun subgraph_run = nullptr)
      : NodeContext(node, opset), inputs_(std::move(inputs)), outputs_(node.num_outputs()),
        subgraph_run_(std::move(subgraph_run)) {}

  size_t num_inputs() const { return inputs_.size(); }
  // True when input i was given (not omitted); optionals may still be empty.
  bool has_input(size_t i) const { return i < inputs_.size() && inputs_[i] != nullptr; }
  // Tensor input i. Call when has_input(i) and the input is a tensor; an input
  // the node lacks (a malformed node, e.g. MatMul with none) reads as an
  // undefined tensor (no dtype, rank 0), which the kernel's checks reject.
  const Tensor& input(size_t i) const { return has_input(i) ? inputs_[i]->tensor : MissingInput().tensor; }
  const RtValue& input_value(size_t i) const { return has_input(i) ? *inputs_[i] : MissingInput(); }

  size_t num_outputs() const { return outputs_.size(); }
  // False when output i is omitted in the node (empty name): may be skipped.
  bool wants_output(size_t i) const { return node().output(i) != nullptr; }
  // An output the node does not have (a malformed node, e.g. a Constant with
  // no outputs in a leniently loaded model) is dropped, as InferContext does.
  void set_output(size_t i, Tensor t) {
    if (i < outputs_.size()) outputs_[i] = RtValue::FromTensor(std::move(t));
  }
  void set_output_value(size_t i, RtValue v) {
    if (i < outputs_.size()) outputs_[i] = std::move(v);
  }
  std::vector<RtValue>& outputs() { return outputs_; }
  static const RtValue& MissingInput();

  // Runs subgraph `g` with the given inputs; outer-scope values resolve to the
  // enclosing executor's values.
  Expected<std::vector<RtValue>> RunSubgraph(const Graph& g, const std::vector<RtValue>& inputs) const;

 protected:
  std::string DescribeInput(size_t i) const override;
  size_t input_count() const override { return num_inputs(); }

 private:
  std::vector<const RtValue*> inputs_;
  std::vector<RtValue> outputs_;
  SubgraphRun subgraph_run_;
};

}  // namespace kiln
