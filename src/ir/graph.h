// The IR: Model → Graph → Node / Value. A Graph owns its nodes and values.
// Values are typed (TypeInfo: kind, element type, symbolic shape); a Value may
// carry constant data (initializers, folded constants). Subgraphs (If/Loop/Scan
// bodies) live in graph-typed attributes and see their outer graphs' values by
// name through Graph::Lookup.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/shape.h"
#include "core/tensor.h"
#include "kiln/status.h"

namespace kiln {

class Graph;
class Node;

enum class ValueKind { kTensor, kSequence, kOptional, kMap, kSparseTensor };

// Type of a value: a tensor's element type and shape; for a sequence or an
// optional, the element type/shape of the tensors inside it (elem_kind says
// whether an optional holds a tensor or a sequence).
struct TypeInfo {
  ValueKind kind = ValueKind::kTensor;
  ValueKind elem_kind = ValueKind::kTensor;
  DataType dtype = DataType::kUndefined;
  Shape shape;  // unknown rank unless set

  static TypeInfo Tensor(DataType dt, Shape s) { return {ValueKind::kTensor, ValueKind::kTensor, dt, std::move(s)}; }
  bool known() const { return dtype != DataType::kUndefined; }
  // "float32[batch,3,224,224]", "seq(float32[?])", "optional(int64[2])".
  std::string ToString() const;
};

class Value {
 public:
  const std::string& name() const { return name_; }
  TypeInfo type;
  // Constant contents when known (initializers, Constant outputs, folded).
  std::optional<Tensor> data;
  // Symbolic contents of a small 1-D/0-D int64 value (shape arithmetic): e.g.
  // Shape(x) of x:[batch,3] is {batch, 3}. Set by shape inference.
  std::optional<std::vector<Dim>> sym_data;

  Node* producer() const { return producer_; }
  const std::vector<Node*>& uses() const { return uses_; }  // one entry per input slot
  Graph* graph() const { return graph_; }
  DataType dtype() const { return type.dtype; }
  const Shape& shape() const { return type.shape; }
  bool is_constant() const { return data.has_value(); }

 private:
  friend class Graph;
  friend class Node;
  std::string name_;
  Node* producer_ = nullptr;
  std::vector<Node*> uses_;
  Graph* graph_ = nullptr;
};

struct Attribute {
  enum class Type { kUndefined, kFloat, kInt, kString, kTensor, kGraph, kFloats, kInts, kStrings, kTensors, kGraphs,
                    kSparseTensor, kTypeProto };
  Type type = Type::kUndefined;
  float f = 0.0f;
  int64_t i = 0;
  std::string s;
  Tensor t;
  std::shared_ptr<Graph> g;
  std::vector<float> floats;
  std::vector<int64_t> ints;
  std::vector<std::string> strings;
  std::vector<Tensor> tensors;
  std::vector<std::shared_ptr<Graph>> graphs;
  TypeInfo type_proto;         // for kTypeProto
  std::string ref_attr_name;   // function-body reference; kept, not resolved

  // Typed attributes in one expression (passes, tests): Attribute::FromInts({1, 1}).
  static Attribute FromInt(int64_t v) {
    Attribute a;
    a.type = Type::kInt;
    a.i = v;
    return a;
  }
  static Attribute FromInts(std::vector<int64_t> v) {
    Attribute a;
    a.type = Type::kInts;
    a.ints = std::move(v);
    return a;
  }
  static Attribute FromFloat(float v) {
    Attribute a;
    a.type = Type::kFloat;
    a.f = v;
    return a;
  }
  static Attribute FromString(std::string v) {
    Attribute a;
    a.type = Type::kString;
    a.s = std::move(v);
    return a;
  }
  static Attribute FromTensor(Tensor v) {
    Attribute a;
    a.type = Type::kTensor;
    a.t = std::move(v);
    return a;
  }
  static Attribute FromGraph(std::shared_ptr<Graph> v) {
    Attribute a;
    a.type = Type::kGraph;
    a.g = std::move(v);
    return a;
  }
};
const char* AttributeTypeName(Attribute::Type t);

using AttributeMap = std::map<std::string, Attribute>;

class Node {
 public:
  std::string name;
  std::string op_type;
  std::string domain;  // "" for the default ONNX domain
  AttributeMap attrs;
  std::string doc_string;

  const std::vector<Value*>& inputs() const { return inputs_; }
  const std::vector<Value*>& outputs() const { return outputs_; }
  Value* input(size_t i) const { return i < inputs_.size() ? inputs_[i] : nullptr; }  // nullptr: omitted
  Value* output(size_t i) const { return i < outputs_.size() ? outputs_[i] : nullptr; }
  size_t num_inputs() const { return inputs_.size(); }
  size_t num_outputs() const { return outputs_.size(); }
  Graph* graph() const { return graph_; }

  const Attribute* attr(const std::string& n) const {
    auto it = attrs.find(n);
    return it == attrs.end() ? nullptr : &it->second;
  }
  // Input/output list editing keeps Value::uses()/producer() in sync.
  void SetInput(size_t i, Value* v);
  void AddInput(Value* v);
  void SetOutput(size_t i, Value* v);
  void AddOutput(Value* v);
  void ClearInputs();
  // "node '/layer1/Conv' (Conv)" for messages.
  std::string Label() const;
  // The op as reports list it: "Conv" in the default domain ("" or
  // "ai.onnx"), else "domain.Op" ("kiln.Pointwise").
  std::string QualifiedOp() const;

 private:
  friend class Graph;
  std::vector<Value*> inputs_;
  std::vector<Value*> outputs_;
  Graph* graph_ = nullptr;
};

class Graph {
 public:
  std::string name;
  std::string doc_string;
  std::vector<Value*> inputs;        // graph inputs, in order
  std::vector<Value*> outputs;       // graph outputs, in order
  std::vector<Value*> initializers;  // values with data listed as ONNX initializers
  Graph* parent = nullptr;           // enclosing graph for subgraphs

  Graph() = default;
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;

  // New value owned by this graph. The name must be unique in this graph
  // (empty names are allowed for omitted values and get no map entry).
  Value* AddValue(const std::string& name);
  // Value of this graph (not outer scopes) or nullptr.
  Value* FindValue(const std::string& name) const;
  // Value of this graph or any enclosing graph, or nullptr.
  Value* Lookup(const std::string& name) const;
  // Unique name derived from base ("base", "base_1", ...).
  std::string UniqueName(const std::string& base) const;

  Node* AddNode(const std::string& op_type, const std::string& name = "", const std::string& domain = "");
  // Inserts before `before` in schedule order (appends when nullptr).
  Node* InsertNode(Node* before, const std::string& op_type, const std::string& name = "",
                   const std::string& domain = "");
  // Removes a node: its inputs lose the use; its outputs lose their producer.
  void RemoveNode(Node* n);
  // Removes values no node uses or produces and that are not graph IO.
  void RemoveUnusedValues();
  // Every use of `from` becomes `to` (graph outputs too).
  void ReplaceAllUses(Value* from, Value* to);

  // Nodes in schedule order. Pointers stay valid until the node is removed.
  std::vector<Node*> nodes() const;
  size_t num_nodes() const { return nodes_.size(); }
  std::vector<Value*> values() const;
  // Reorders nodes topologically (stable); error naming a node on a cycle.
  Status TopologicalSort();

 private:
  std::vector<std::unique_ptr<Node>> nodes_;
  std::vector<std::unique_ptr<Value>> values_;
  std::unordered_map<std::string, Value*> by_name_;
};

// Model-local function (FunctionProto), kept so it can be inlined.
struct Function {
  std::string name;
  std::string domain;
  std::vector<std::string> inputs;
  std::vector<std::string> outputs;
  std::vector<std::string> attributes;
  std::shared_ptr<Graph> body;  // nodes only; inputs/outputs by name
};

struct Model {
  int64_t ir_version = 0;
  std::map<std::string, int64_t> opsets;  // domain → version ("" = ai.onnx)
  std::string producer_name;
  std::string producer_version;
  std::string domain;
  int64_t model_version = 0;
  std::string doc_string;
  std::map<std::string, std::string> metadata;
  std::vector<Function> functions;
  std::shared_ptr<Graph> graph;
  std::string path;  // file it was loaded from ("" if built in memory)

  // Opset version of a domain ("" and "ai.onnx" are the same), 0 if absent.
  int64_t OpsetOf(const std::string& domain) const;
};

// Read-only walks over a graph and the graphs nested in its nodes'
// attributes (If/Loop/Scan bodies, kiln.Pointwise bodies), recursively.
// Nodes: each node, then the nodes of its subgraphs, in schedule order.
void ForEachNodeDeep(const Graph& g, const std::function<void(const Node&)>& fn);
// Graphs: g first, then each nested graph (outer graphs first).
void ForEachGraphDeep(const Graph& g, const std::function<void(const Graph&)>& fn);

}  // namespace kiln
