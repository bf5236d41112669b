// Helpers shared by the simplifier's passes (src/passes/pipeline.h): what
// counts as a constant, making initializers, rewiring a value while keeping
// graph output names, proving two shapes equal, reading int attributes/inputs.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "passes/pass.h"

namespace kiln::passes {

// Ops whose result is not a function of their inputs (never folded or merged).
bool IsRandomOp(const Node& n);
// True when the node has a graph-valued attribute (If/Loop/Scan bodies).
bool HasSubgraphs(const Node& n);
// The node's subgraphs.
std::vector<Graph*> Subgraphs(const Node& n);
// Calls fn on the graph and every nested subgraph (outer graphs first).
void ForEachGraph(Graph& g, const std::function<void(Graph&)>& fn);

bool IsGraphInput(const Graph& g, const Value* v);
bool IsGraphOutput(const Graph& g, const Value* v);
// The value is an output of its own graph or of any graph nested in `root`
// (a subgraph may list an outer value as its output).
bool IsAnyGraphOutput(Graph& root, const Value* v);

// Constant whose value cannot change at run time: it has data and is not a
// graph input (an initializer listed as an input is a default the caller may
// override).
bool IsConstant(const Value* v);
// Both absent, one value, or two constants of one type, shape and contents (numeric types).
bool SameConstant(const Value* a, const Value* b);
// Its int32/int64 contents, when constant.
std::optional<std::vector<int64_t>> ConstInts(const Value* v);
// Its only element as a double, when constant and numeric with one element.
std::optional<double> ConstScalar(const Value* v);

// New initializer named after `base` (made unique) holding `t`.
Value* AddInitializer(Graph& g, const std::string& base, Tensor t);
Value* AddInt64Initializer(Graph& g, const std::string& base, const std::vector<int64_t>& values);
// New (unproduced) tensor value named after `base` (made unique).
Value* NewTensorValue(Graph& g, const std::string& base, DataType dt, Shape shape);
// A new default-domain node `op` inserted before `before`, reading `inputs`,
// making one new value of type dt/shape (both named after `base`); returns it.
Value* InsertOp(Graph& g, Node* before, const char* op, const std::string& base, const std::vector<Value*>& inputs,
                DataType dt, Shape shape);
// The end of a pass that made `count` kiln-domain nodes in model's main graph:
// when count > 0, declares opset "kiln" = 1, drops unused values, sets ctx.changed.
void FinishKilnRewrite(Model& model, PassContext& ctx, int count);
// A kiln rewrite node by node: `rewrite` on each node of model's main graph (in a snapshot of its order; it
// may replace the node it is given), then, when any returned true, a topological sort and FinishKilnRewrite.
Status RewriteEachNode(Model& model, PassContext& ctx, const std::function<bool(Graph&, Node*)>& rewrite);

// Elementwise ops whose output element i reads element i of each input (after broadcasting): unary ones
// (activations, Exp, Sqrt, Cast, kiln.Gelu) and binary arithmetic (Add, Sub, Mul, Div, Max, Min, PRelu,
// Pow), which layout changes commute with.
bool IsUnaryElementwise(const Node& n);
// The dims [start, end) a Shape node reads of an input of `rank` dims (Shape-15's start/end: negative counts
// from the back, clamped to [0, rank]; empty when end <= start).
void ShapeReadRange(const Node& shape, int64_t rank, int64_t* start, int64_t* end);
// The parts (one type, equal dims but along `axis`) concatenated along `axis` (constant weights side by
// side: pack_qkv, pack_products).
Tensor ConcatTensors(const std::vector<const Tensor*>& parts, int axis);
bool IsBinaryElementwise(const Node& n);

// n is op `op` of the default domain ("" or "ai.onnx"); false for nullptr.
bool IsOnnxOp(const Node* n, const char* op);
// n is kiln's op `op` (domain "kiln"); false for nullptr.
bool IsKilnOp(const Node* n, const char* op);
// kiln's INT8 layers: kiln.QConv, kiln.QConvNhwc, kiln.QMatMul (ops/kiln_quant.cc).
bool IsInt8Layer(const Node* n);
// n is a one-input, one-output GELU: kiln.Gelu or ONNX Gelu (either form, its "approximate" attribute).
bool IsGeluNode(const Node* n);
// n has exactly `inputs` inputs, all given, and one output; false for nullptr.
bool IsPlainNode(const Node* n, size_t inputs);
// A convolution's geometry attributes are the identity's: group 1, strides and dilations 1, no padding
// (absent attributes count as such); the kernel's extent is the weights'.
bool HasUnitConvGeometry(const Node& conv);
// Replaces Shape node `shape` (no start/end) by Gather(Shape(source), perm):
// the shape of a value holding `source`'s elements with permuted axes (its
// axis j is source's axis perm[j]). The Shape's output value is kept.
void ReadShapeThroughPermutation(Graph& g, Node* shape, Value* source, const std::vector<int64_t>& perm);
// The nodes of `g` (not its subgraphs) of kiln-domain op `op`, in schedule order.
std::vector<Node*> KilnNodes(Graph& g, const char* op);

// Every use of `from` (nodes of `g` and of its subgraphs, graph output lists
// of `g` and its subgraphs) becomes `to`.
void ReplaceAllUsesDeep(Graph& g, Value* from, Value* to);
// Removes node `n` whose output `out` always equals `in` (its other outputs
// must be unused), rewiring users of `out` to `in`. When `out` is a graph
// output, `in`'s producer produces `out` instead, so the output keeps its
// name. Returns false (changing nothing) when that is impossible (e.g. `in` is
// a graph input or also a graph output).
bool BypassNode(Node* n, Value* out, Value* in);
// Removes a node; nodes inside its subgraphs first drop their uses of outer
// values (so no Value keeps a pointer to a destroyed node).
void RemoveNodeDeep(Graph& g, Node* n);

// True only when a and b are provably the same at run time: same rank, each
// dim known and equal or the same symbol (unknown dims never match).
bool SameDims(const Shape& a, const Shape& b);
// The same for one dim.
bool SameDim(const Dim& a, const Dim& b);
// d is known to be 1.
bool IsKnownOne(const Dim& d);

// v is a value of known rank r.
bool HasRank(const Value* v, int r);
// The value has exactly one use and is not an output of any graph.
bool HasSingleUse(Graph& root, const Value* v);
// The producer of v when v is its only link to the rest of a chain: v has one
// use, is not a graph output, and is made by a node of g (else nullptr).
Node* SoleProducer(Graph& g, Value* v);
// The user of v when v is its only link onwards: v has one use, is not a graph output, and that use is a
// node of g (else nullptr).
Node* SoleUser(Graph& g, Value* v);
// Whether `is_scores` holds for v or, through up to `max_adds` single-use plain
// two-input Adds of g (bias and mask sums), for one of their addends: how the
// attention passes find the scores under their biases.
bool ReachesThroughAdds(Graph& g, Value* v, int max_adds, const std::function<bool(Value*)>& is_scores);

// t with its last axis zero-padded to `to` (>= its extent) entries: each row
// copied bytewise, zeros after it (a weight's channels or taps padded).
Tensor PadLastAxis(const Tensor& t, int64_t to);

// float32, float64, float16, bfloat16: types the arithmetic rewrites handle.
bool IsArithmeticFloat(DataType dt);
// Elements as doubles (numeric tensors).
std::vector<double> ToDoubles(const Tensor& t);
// A tensor of an IsArithmeticFloat type from doubles (rounded once).
Tensor FromDoubles(DataType dt, std::vector<int64_t> dims, const std::vector<double>& values);

// Attribute helpers.
int64_t AttrInt(const Node& n, const std::string& name, int64_t def);
float AttrFloat(const Node& n, const std::string& name, float def);
// When `act` is a plain one-input HardSwish or HardSigmoid: writes the fused activation attributes of kiln's
// convolutions for it into `attrs` (activation; activation_alpha/beta with ONNX's HardSigmoid defaults) and
// returns true. False (attrs untouched) for anything else, nullptr included.
bool SetHardActivation(const Node* act, AttributeMap* attrs);
// The same for the activations every kiln convolution takes: a plain one-input Relu, Sigmoid, LeakyRelu
// (activation_alpha its slope) or erf GELU (kiln.Gelu or ONNX Gelu, approximate "none": cuDNN's graph
// GELU_FWD, kiln's kernels' epilogue or the legacy call's activation pass).
bool SetConvActivation(const Node* act, AttributeMap* attrs);
std::string AttrString(const Node& n, const std::string& name, const std::string& def);
std::optional<std::vector<int64_t>> AttrInts(const Node& n, const std::string& name);

// Axes of Squeeze/Unsqueeze/Reduce*: the `axes` attribute (older opsets) or
// the constant input `input_index`. nullopt when not known; an empty vector
// when the node has no axes.
std::optional<std::vector<int64_t>> NodeAxes(const Node& n, int64_t opset, int64_t attr_until_opset,
                                             size_t input_index);
// Sorted axes in [0, rank); nullopt when out of range or repeated.
std::optional<std::vector<int64_t>> NormalizeAxes(const std::vector<int64_t>& axes, int64_t rank);

// Adds a warning unless the same text is already there.
void Warn(PassContext& ctx, const std::string& message);

}  // namespace kiln::passes
