// Tests for the generated pointwise kernels (src/build/codegen/): one case per
// row of the generator's op table (PointwiseOpNames: a new row without a case
// fails here), plus casts, broadcasts and FP16/BF16 chains. Each case is a
// model whose nodes fuse into one kiln.Pointwise (src/passes/fuse_pointwise.h);
// its generated source is compiled for the host (-DKILN_PW_HOST, the same
// text the GPU gets, with the prelude's host conversions) and run on the
// case's inputs, and must match the CPU reference on the unfused model. With
// CUDA, NVRTC compiles every case's source for sm_90 (no GPU needed), so a
// kernel the host accepts but the device compiler does not fails here too.
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <set>

#include "build/codegen/pointwise_ops.h"
#include "build/codegen/pointwise_source.h"
#include "ir/clone.h"
#include "ir/printer.h"
#include "ops/pointwise_abi.h"
#include "passes/fuse_pointwise.h"
#include "passes/pass_util.h"
#include "passes/shape_inference.h"
#include "reference/compare.h"
#include "reference/executor.h"
#ifdef KILN_HAS_CUDA
#include "build/cuda/nvrtc_compile.h"
#endif

namespace kiln {
namespace {

// A model built by hand with explicit element types.
class CaseBuilder {
 public:
  explicit CaseBuilder(int64_t opset) : m_(std::make_unique<Model>()) {
    m_->ir_version = 8;
    m_->opsets[""] = opset;
    m_->graph = std::make_shared<Graph>();
    m_->graph->name = "main";
  }
  Value* Input(const std::string& name, DataType dt, std::vector<int64_t> dims) {
    Value* v = g().AddValue(name);
    v->type = TypeInfo::Tensor(dt, Shape::Of(dims));
    g().inputs.push_back(v);
    return v;
  }
  Value* Const(const std::string& name, DataType dt, std::vector<int64_t> dims, std::vector<double> values) {
    Value* v = g().AddValue(name);
    v->data = passes::FromDoubles(dt, dims, values);
    v->type = TypeInfo::Tensor(dt, Shape::Of(dims));
    g().initializers.push_back(v);
    return v;
  }
  Value* Ints(const std::string& name, const std::vector<int64_t>& values) {
    return passes::AddInt64Initializer(g(), name, values);  // a unique name
  }
  Value* Op(const std::string& op, std::vector<Value*> in, AttributeMap attrs = {}, const std::string& domain = "") {
    const std::string name = op + std::to_string(count_++);
    Node* n = g().AddNode(op, name, domain);
    for (Value* v : in) n->AddInput(v);
    n->attrs = std::move(attrs);
    n->AddOutput(g().AddValue(name));
    if (!domain.empty()) m_->opsets[domain] = 1;
    return n->output(0);
  }
  void Output(Value* v) { g().outputs.push_back(v); }
  std::unique_ptr<Model> Done() {
    Status s = InferShapes(*m_);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return std::move(m_);
  }

 private:
  Graph& g() { return *m_->graph; }
  std::unique_ptr<Model> m_;
  int count_ = 0;
};

Attribute To(DataType dt) { return Attribute::FromInt(static_cast<int64_t>(dt)); }

struct Case {
  std::string label;
  std::unique_ptr<Model> model;
  bool quantize = false;  // inputs on a grid of 0.5 (comparisons see ties)
};

const std::vector<int64_t> kDims = {2, 3, 5};
const std::vector<int64_t> kRow = {1, 5};

// x * 3 over [2,3,5], so unary cases see [-3, 3].
Value* Scaled(CaseBuilder& b, Value* x) {
  return b.Op("Mul", {x, b.Const("three", x->dtype(), {}, {3.0})});
}

Case UnaryCase(const std::string& name) {
  const bool kiln_op = name.rfind("kiln.", 0) == 0;
  const std::string op = kiln_op ? name.substr(5) : name;
  CaseBuilder b(op == "Gelu" ? 20 : 17);
  Value* x = b.Input("x", DataType::kFloat, kDims);
  AttributeMap attrs;
  if (op == "LeakyRelu" || op == "Elu" || op == "ThresholdedRelu" || op == "Celu") attrs["alpha"] = Attribute::FromFloat(0.3f);
  if (op == "HardSigmoid") {
    attrs["alpha"] = Attribute::FromFloat(0.3f);
    attrs["beta"] = Attribute::FromFloat(0.4f);
  }
  if (kiln_op) attrs["approximate"] = Attribute::FromString("tanh");
  b.Output(b.Op(op, {Scaled(b, x)}, attrs, kiln_op ? "kiln" : ""));
  return {name, b.Done()};
}

Case BinaryCase(const std::string& op, bool compare) {
  CaseBuilder b(17);
  Value* x = b.Input("x", DataType::kFloat, kDims);
  Value* y = b.Input("y", DataType::kFloat, kRow);  // broadcast: strided reads
  b.Output(b.Op(op, {Scaled(b, x), y}));
  return {op, b.Done(), compare};
}

Case LogicCase(const std::string& op) {
  CaseBuilder b(17);
  Value* x = b.Input("x", DataType::kFloat, kDims);
  Value* y = b.Input("y", DataType::kFloat, kRow);
  Value* c1 = b.Op("Less", {x, y});
  if (op == "Not") {
    b.Output(b.Op("Not", {c1}));
  } else {
    Value* c2 = b.Op("Greater", {x, b.Const("q", DataType::kFloat, {}, {0.25})});
    b.Output(b.Op(op, {c1, c2}));
  }
  return {op, b.Done(), true};
}

// IsNaN over Log of [-3, 3] (NaN below 0); IsInf over x / Round(x) (±inf where
// Round gives 0), once detecting only +inf.
std::vector<Case> TestCases(const std::string& op) {
  std::vector<Case> cases;
  for (int variant = 0; variant < (op == "IsInf" ? 2 : 1); ++variant) {
    CaseBuilder b(17);
    Value* x = Scaled(b, b.Input("x", DataType::kFloat, kDims));
    AttributeMap attrs;
    if (variant == 1) attrs["detect_negative"] = Attribute::FromInt(0);
    Value* v = op == "IsNaN" ? b.Op("Log", {x}) : b.Op("Div", {x, b.Op("Round", {x})});
    b.Output(b.Op(op, {v}, attrs));
    cases.push_back({op + (variant ? "(positive only)" : ""), b.Done()});
  }
  return cases;
}

// Sum / Mean of three operands read three ways.
Case FoldCase(const std::string& op) {
  CaseBuilder b(17);
  Value* x = b.Input("x", DataType::kFloat, kDims);
  b.Output(b.Op(op, {Scaled(b, x), b.Input("y", DataType::kFloat, kRow), b.Input("z", DataType::kFloat, {})}));
  return {op, b.Done()};
}

Case WhereCase() {
  CaseBuilder b(17);
  Value* x = b.Input("x", DataType::kFloat, kDims);
  Value* y = b.Input("y", DataType::kFloat, kRow);
  Value* c = b.Op("Less", {x, y});
  b.Output(b.Op("Where", {c, x, b.Op("Neg", {x})}));
  return {"Where", b.Done()};
}

// Clip with constant bounds (inlined), a computed lower bound (a scalar input)
// and, at opset 6, attribute bounds.
std::vector<Case> ClipCases() {
  std::vector<Case> cases;
  {
    CaseBuilder b(17);
    Value* x = b.Input("x", DataType::kFloat, kDims);
    b.Output(b.Op("Clip", {Scaled(b, x), b.Const("lo", DataType::kFloat, {}, {-1.0}),
                           b.Const("hi", DataType::kFloat, {}, {1.5})}));
    cases.push_back({"Clip", b.Done()});
  }
  {
    CaseBuilder b(17);
    Value* x = b.Input("x", DataType::kFloat, kDims);
    Value* lo = b.Input("lo", DataType::kFloat, {});
    b.Output(b.Op("Clip", {Scaled(b, x), lo}));
    cases.push_back({"Clip(computed min)", b.Done()});
  }
  {
    CaseBuilder b(6);
    Value* x = b.Input("x", DataType::kFloat, kDims);
    b.Output(b.Op("Clip", {Scaled(b, x)}, {{"min", Attribute::FromFloat(-0.5f)}, {"max", Attribute::FromFloat(2.f)}}));
    cases.push_back({"Clip(opset 6)", b.Done()});
  }
  return cases;
}

std::vector<Case> CastCases() {
  std::vector<Case> cases;
  {  // FP32 → FP16 store
    CaseBuilder b(17);
    Value* x = b.Input("x", DataType::kFloat, kDims);
    b.Output(b.Op("Cast", {Scaled(b, x)}, {{"to", To(DataType::kFloat16)}}));
    cases.push_back({"Cast(f32->f16)", b.Done()});
  }
  {  // an FP16 chain with an FP32 island: f16 → f32 → Exp → f16 → Mul (f16)
    CaseBuilder b(17);
    Value* x = b.Input("x", DataType::kFloat16, kDims);
    Value* e = b.Op("Exp", {b.Op("Cast", {x}, {{"to", To(DataType::kFloat)}})});
    Value* h = b.Op("Cast", {e}, {{"to", To(DataType::kFloat16)}});
    b.Output(b.Op("Mul", {h, b.Input("s", DataType::kFloat16, {3, 1})}));
    cases.push_back({"Cast(f16 island)", b.Done()});
  }
  {  // BF16 in and out
    CaseBuilder b(17);
    Value* x = b.Input("x", DataType::kBFloat16, kDims);
    Value* f = b.Op("Cast", {x}, {{"to", To(DataType::kFloat)}});
    b.Output(b.Op("Cast", {b.Op("Tanh", {f})}, {{"to", To(DataType::kBFloat16)}}));
    cases.push_back({"Cast(bf16)", b.Done()});
  }
  {  // an int64 mask → float, (1 - m) * -10000 (BERT's attention mask)
    CaseBuilder b(17);
    Value* m = b.Input("mask", DataType::kInt64, {2, 1, 5});
    Value* f = b.Op("Cast", {m}, {{"to", To(DataType::kFloat)}});
    Value* inv = b.Op("Sub", {b.Const("one", DataType::kFloat, {}, {1.0}), f});
    b.Output(b.Op("Mul", {inv, b.Const("big", DataType::kFloat, {}, {-10000.0})}));
    cases.push_back({"Cast(int64 mask)", b.Done()});
  }
  {  // bool ↔ float, int32 and uint8 sources
    CaseBuilder b(17);
    Value* x = b.Input("x", DataType::kFloat, kDims);
    Value* c = b.Op("Cast", {x}, {{"to", To(DataType::kBool)}});
    Value* f = b.Op("Cast", {c}, {{"to", To(DataType::kFloat)}});
    Value* i = b.Op("Cast", {b.Input("i", DataType::kInt32, kDims)}, {{"to", To(DataType::kFloat)}});
    Value* u = b.Op("Cast", {b.Input("u", DataType::kUInt8, kDims)}, {{"to", To(DataType::kFloat)}});
    b.Output(b.Op("Add", {b.Op("Add", {f, i}), u}));
    cases.push_back({"Cast(bool, int32, uint8)", b.Done(), true});
  }
  return cases;
}

// Rank-4 broadcasts: a per-channel [C,1,1] scale, a [1,1,1,1] scalar input and
// a [N,1,1,W] input, over an NCHW domain.
Case BroadcastCase() {
  CaseBuilder b(17);
  Value* x = b.Input("x", DataType::kFloat, {2, 4, 3, 5});
  Value* s = b.Input("scale", DataType::kFloat, {4, 1, 1});
  Value* one = b.Input("one", DataType::kFloat, {1, 1, 1, 1});
  Value* w = b.Input("w", DataType::kFloat, {2, 1, 1, 5});
  Value* y = b.Op("Add", {b.Op("Mul", {x, s}), one});
  b.Output(b.Op("Sigmoid", {b.Op("Sub", {y, w})}));
  return {"broadcast(rank 4)", b.Done()};
}

// Row kernels: reductions over the last axis with keepdims, in the forms
// exporters write. Rows of 37 (odd, not a warp multiple) over [2,3,37].
const std::vector<int64_t> kRows = {2, 3, 37};
AttributeMap LastAxis() { return {{"axes", Attribute::FromInts({-1})}}; }

// LayerNorm as torch exports it before opset 17: mean, centred square, eps, sqrt, scale.
Value* DecomposedLayerNorm(CaseBuilder& b, Value* x, DataType dt, int64_t columns = 37) {
  Value* mean = b.Op("ReduceMean", {x}, LastAxis());
  Value* d = b.Op("Sub", {x, mean});
  Value* var = b.Op("ReduceMean", {b.Op("Pow", {d, b.Const("two", dt, {}, {2.0})})}, LastAxis());
  Value* sd = b.Op("Sqrt", {b.Op("Add", {var, b.Const("eps", dt, {}, {1e-5})})});
  Value* gamma = b.Input("gamma", dt, {columns});
  Value* beta = b.Input("beta", dt, {columns});
  return b.Op("Add", {b.Op("Mul", {b.Op("Div", {d, sd}), gamma}), beta});
}

std::vector<Case> RowCases() {
  std::vector<Case> cases;
  {
    CaseBuilder b(17);
    b.Output(DecomposedLayerNorm(b, Scaled(b, b.Input("x", DataType::kFloat, kRows)), DataType::kFloat));
    cases.push_back({"LayerNorm (decomposed)", b.Done()});
  }
  {  // FP16 storage, FP32 inside (what the FP32-island pass leaves)
    CaseBuilder b(17);
    Value* x = b.Op("Cast", {b.Input("x", DataType::kFloat16, kRows)}, {{"to", To(DataType::kFloat)}});
    Value* y = DecomposedLayerNorm(b, x, DataType::kFloat);
    b.Output(b.Op("Cast", {y}, {{"to", To(DataType::kFloat16)}}));
    cases.push_back({"LayerNorm (fp16 island)", b.Done()});
  }
  {  // 8 | C: the host entry runs the packed body (eight columns a step, as the GPU's _wrow8)
    CaseBuilder b(17);
    b.Output(
        DecomposedLayerNorm(b, Scaled(b, b.Input("x", DataType::kFloat, {2, 3, 40})), DataType::kFloat, 40));
    cases.push_back({"LayerNorm (decomposed, packed)", b.Done()});
  }
  {  // packed FP16: a residual Add, the sum kept as a second output (ViT's pre-norm blocks), FP32 inside
    CaseBuilder b(17);
    Value* sum = b.Op(
        "Add", {b.Input("x", DataType::kFloat16, {4, 5, 64}), b.Input("r", DataType::kFloat16, {4, 5, 64})});
    Value* y =
        DecomposedLayerNorm(b, b.Op("Cast", {sum}, {{"to", To(DataType::kFloat)}}), DataType::kFloat, 64);
    b.Output(sum);  // first: the fused node lists its outputs in the order the body computes them
    b.Output(b.Op("Cast", {y}, {{"to", To(DataType::kFloat16)}}));
    cases.push_back({"LayerNorm of a residual sum (fp16, packed)", b.Done()});
  }
  {  // RMSNorm (Llama): x * 1/sqrt(mean(x^2) + eps) * w
    CaseBuilder b(17);
    Value* x = Scaled(b, b.Input("x", DataType::kFloat, kRows));
    Value* ms = b.Op("ReduceMean", {b.Op("Mul", {x, x})}, LastAxis());
    Value* inv = b.Op("Reciprocal", {b.Op("Sqrt", {b.Op("Add", {ms, b.Const("eps", DataType::kFloat, {}, {1e-6})})})});
    b.Output(b.Op("Mul", {b.Op("Mul", {x, inv}), b.Input("w", DataType::kFloat, {37})}));
    cases.push_back({"RMSNorm", b.Done()});
  }
  {  // Softmax written out: max, exp of the shift, sum (axes as an input), divide
    CaseBuilder b(17);
    Value* x = Scaled(b, b.Input("x", DataType::kFloat, kRows));
    Value* e = b.Op("Exp", {b.Op("Sub", {x, b.Op("ReduceMax", {x}, LastAxis())})});
    b.Output(b.Op("Div", {e, b.Op("ReduceSum", {e, b.Ints("axes", {-1})})}));
    cases.push_back({"Softmax (decomposed)", b.Done()});
  }
  {  // E[x^2] - E[x]^2 variance (two reductions in one phase), ReduceMin, L2 norms
    CaseBuilder b(17);
    Value* x = Scaled(b, b.Input("x", DataType::kFloat, kRows));
    Value* m = b.Op("ReduceMean", {x}, LastAxis());
    Value* var = b.Op("Sub", {b.Op("ReduceMean", {b.Op("Mul", {x, x})}, LastAxis()), b.Op("Mul", {m, m})});
    Value* lo = b.Op("ReduceMin", {x}, LastAxis());
    Value* l2 = b.Op("ReduceL2", {x}, LastAxis());
    Value* ss = b.Op("ReduceSumSquare", {x}, LastAxis());
    Value* y = b.Op("Add", {b.Op("Mul", {b.Op("Sub", {x, lo}), var}), b.Op("Div", {x, l2})});
    b.Output(b.Op("Add", {y, b.Op("Sqrt", {ss})}));
    cases.push_back({"variance, min, L2", b.Done()});
  }
  return cases;
}

// Transposes read through their perm: NCHW → NHWC with a per-channel bias
// (elementwise), and ConvNeXt's permute → LayerNorm over channels (row kernel).
std::vector<Case> TransposeCases() {
  std::vector<Case> cases;
  {
    CaseBuilder b(17);
    Value* x = b.Input("x", DataType::kFloat, {2, 5, 3, 4});
    Value* t = b.Op("Transpose", {x}, {{"perm", Attribute::FromInts({0, 2, 3, 1})}});
    Value* y = b.Input("y", DataType::kFloat, {2, 3, 4, 5});
    b.Output(b.Op("Mul", {b.Op("Add", {t, b.Input("bias", DataType::kFloat, {5})}), y}));
    cases.push_back({"Transpose(elementwise)", b.Done()});
  }
  {
    CaseBuilder b(17);
    Value* x = b.Input("x", DataType::kFloat, {2, 37, 3, 2});
    Value* t = b.Op("Transpose", {x}, {{"perm", Attribute::FromInts({0, 2, 3, 1})}});
    Value* scaled = b.Op("Mul", {t, b.Const("three", DataType::kFloat, {}, {3.0})});  // t has no type yet
    b.Output(DecomposedLayerNorm(b, scaled, DataType::kFloat));
    cases.push_back({"Transpose(row kernel)", b.Done()});
  }
  {  // no perm attribute: the axes reverse
    CaseBuilder b(17);
    Value* x = b.Input("x", DataType::kFloat, {5, 3, 2});
    b.Output(b.Op("Sigmoid", {b.Op("Neg", {b.Op("Transpose", {x})})}));
    cases.push_back({"Transpose(reversed)", b.Done()});
  }
  return cases;
}

// Slices as views and Concats inside a kernel: Llama's rotary embedding as
// transformers writes it (rotate_half = cat(-x2, x1) over a transposed q),
// GPT-NeoX's partial rotary (the first rotary_dim channels rotated, a Slice of
// a Slice, the rest passed through by a second Concat), a plain cat of two
// computed branches, and Slices with steps, negative starts and axes.
constexpr int64_t kEnd = std::numeric_limits<int64_t>::max();

Value* Slice(CaseBuilder& b, Value* x, const std::vector<int64_t>& starts, const std::vector<int64_t>& ends,
             const std::vector<int64_t>& axes, const std::vector<int64_t>& steps = {}) {
  std::vector<Value*> in = {x, b.Ints("starts", starts), b.Ints("ends", ends), b.Ints("axes", axes)};
  if (!steps.empty()) in.push_back(b.Ints("steps", steps));
  return b.Op("Slice", in);
}

AttributeMap Axis(int64_t axis) { return {{"axis", Attribute::FromInt(axis)}}; }

// x * cos + cat(-x[..., h:], x[..., :h]) * sin over x's last axis of 2h.
Value* Rotary(CaseBuilder& b, Value* x, int64_t h, Value* cos, Value* sin) {
  Value* x1 = Slice(b, x, {0}, {h}, {-1});
  Value* x2 = Slice(b, x, {h}, {kEnd}, {-1});
  Value* rot = b.Op("Concat", {b.Op("Neg", {x2}), x1}, Axis(-1));
  return b.Op("Add", {b.Op("Mul", {x, cos}), b.Op("Mul", {rot, sin})});
}

std::vector<Case> ViewCases() {
  std::vector<Case> cases;
  for (DataType dt : {DataType::kFloat, DataType::kFloat16}) {  // [b, s, heads, d] → [b, heads, s, d]
    CaseBuilder b(17);
    Value* q =
        b.Op("Transpose", {b.Input("q", dt, {2, 5, 3, 8})}, {{"perm", Attribute::FromInts({0, 2, 1, 3})}});
    b.Output(Rotary(b, q, 4, b.Input("cos", dt, {2, 1, 5, 8}), b.Input("sin", dt, {2, 1, 5, 8})));
    cases.push_back(
        {std::string("rotary (transformers") + (dt == DataType::kFloat16 ? ", fp16)" : ")"), b.Done()});
  }
  {  // rotary_dim 6 of 10 channels
    CaseBuilder b(17);
    Value* q = b.Input("q", DataType::kFloat, {2, 3, 4, 10});
    Value* rot = Slice(b, q, {0}, {6}, {3});
    Value* pass = Slice(b, q, {6}, {kEnd}, {3});
    Value* r =
        Rotary(b, rot, 3, b.Input("cos", DataType::kFloat, {4, 6}), b.Input("sin", DataType::kFloat, {4, 6}));
    b.Output(b.Op("Concat", {r, pass}, Axis(-1)));
    cases.push_back({"rotary (partial, NeoX)", b.Done()});
  }
  {  // the same with the rotated channels last: the inner Concat in a shifted branch
    CaseBuilder b(17);
    Value* q = b.Input("q", DataType::kFloat, {2, 3, 4, 10});
    Value* rot = Slice(b, q, {4}, {kEnd}, {3});
    Value* r =
        Rotary(b, rot, 3, b.Input("cos", DataType::kFloat, {4, 6}), b.Input("sin", DataType::kFloat, {4, 6}));
    b.Output(b.Op("Concat", {Slice(b, q, {0}, {4}, {3}), r}, Axis(-1)));
    cases.push_back({"rotary (partial, rotated last)", b.Done()});
  }
  {  // cat of two computed branches along a middle axis, then more math
    CaseBuilder b(17);
    Value* a = b.Op("Relu", {Scaled(b, b.Input("a", DataType::kFloat, {2, 3, 5}))});
    Value* c = b.Op("Tanh", {b.Input("c", DataType::kFloat, {2, 4, 5})});
    Value* y = b.Op("Concat", {a, c, b.Input("e", DataType::kFloat, {2, 1, 5})}, Axis(1));
    b.Output(b.Op("Sigmoid", {b.Op("Add", {y, b.Input("bias", DataType::kFloat, {8, 1})})}));
    cases.push_back({"Concat (two branches and an input)", b.Done()});
  }
  {  // reversed axis 0 (negative start, "to the start" end), steps of 2 on axis -1
    CaseBuilder b(17);
    Value* x = b.Input("x", DataType::kFloat, {4, 6, 8});
    Value* s = Slice(b, x, {-1, 1}, {-kEnd, 7}, {-3, -1}, {-1, 2});
    Value* t = Slice(b, x, {1, -3}, {3, kEnd}, {1, 2});  // [4, 2, 3], then a Slice of it: [4, 1, 3]
    b.Output(b.Op("Exp", {b.Op("Mul", {s, b.Op("Neg", {Slice(b, t, {0}, {1}, {1})})})}));
    cases.push_back({"Slice (steps, negative starts and axes)", b.Done()});
  }
  {  // opset 9: the bounds are attributes
    CaseBuilder b(9);
    Value* x = b.Input("x", DataType::kFloat, {3, 7});
    Value* s = b.Op("Slice", {x},
                    {{"starts", Attribute::FromInts({1})},
                     {"ends", Attribute::FromInts({-1})},
                     {"axes", Attribute::FromInts({1})}});
    b.Output(b.Op("Sigmoid", {b.Op("Neg", {s})}));
    cases.push_back({"Slice (opset 9)", b.Done()});
  }
  {  // Expand to a constant shape, alone and then sliced (a view of a broadcast)
    CaseBuilder b(17);
    Value* e = b.Op("Expand", {b.Input("x", DataType::kFloat, {3, 1, 5}), b.Ints("shape", {2, 3, 4, 5})});
    Value* y = b.Op("Mul", {e, b.Input("y", DataType::kFloat, {2, 3, 4, 5})});
    Value* z = b.Op("Expand", {b.Input("z", DataType::kFloat, {1, 5}), b.Ints("shape", {1, 4, 5})});
    Value* cat = b.Op("Concat", {Slice(b, z, {1}, {3}, {2}), Slice(b, z, {-3}, {kEnd}, {2})}, Axis(-1));
    b.Output(b.Op("Sub", {y, b.Op("Sigmoid", {cat})}));  // [1, 4, 5] recomputed over [2, 3, 4, 5]
    cases.push_back({"Expand (alone, sliced, in a Concat)", b.Done()});
  }
  {  // a lone Concat of Slices (interleave_concat's chunk of a channel shuffle): channels 3..5 of each
     // operand, interleaved along a last axis of 2, FP16
    CaseBuilder b(17);
    std::vector<Value*> parts;
    for (const char* name : {"a", "b"})
      parts.push_back(Slice(b, b.Input(name, DataType::kFloat16, {2, 3, 6, 1}), {3}, {6}, {2}));
    b.Output(b.Op("Concat", parts, Axis(3)));
    cases.push_back({"Concat of Slices (channel interleave)", b.Done()});
  }
  {  // a row kernel reading its rows through a Slice
    CaseBuilder b(17);
    Value* x = Slice(b, b.Input("x", DataType::kFloat, {2, 3, 40}), {1}, {-2}, {2});
    Value* scaled = b.Op("Mul", {x, b.Const("three", DataType::kFloat, {}, {3.0})});  // x has no type yet
    b.Output(DecomposedLayerNorm(b, scaled, DataType::kFloat));
    cases.push_back({"Slice (row kernel)", b.Done()});
  }
  return cases;
}

// kiln.QuantizeE4M3 as a kernel's store (kiln_st_e4m3): saturating (|x|/scale
// up to 600), subnormal (scale 64: a third of the values below 2^-6), after an
// FP16 Add, and after a row kernel (a LayerNorm that is also an output). The
// E4M3 outputs must equal the reference's bits (core/float8.h).
std::vector<Case> QuantizeCases() {
  std::vector<Case> cases;
  for (double scale : {0.005, 64.0}) {
    CaseBuilder b(17);
    Value* x = Scaled(b, b.Input("x", DataType::kFloat, kDims));
    b.Output(b.Op("QuantizeE4M3", {x, b.Const("scale", DataType::kFloat, {}, {scale})}, {}, "kiln"));
    cases.push_back({"QuantizeE4M3(scale " + std::to_string(scale) + ")", b.Done()});
  }
  {
    CaseBuilder b(17);
    Value* x = b.Op("Add", {b.Input("x", DataType::kFloat16, kDims), b.Input("y", DataType::kFloat16, kRow)});
    b.Output(b.Op("QuantizeE4M3", {x, b.Const("scale", DataType::kFloat, {}, {0.01})}, {}, "kiln"));
    cases.push_back({"QuantizeE4M3(f16)", b.Done()});
  }
  {
    CaseBuilder b(17);
    Value* y = DecomposedLayerNorm(b, Scaled(b, b.Input("x", DataType::kFloat, kRows)), DataType::kFloat);
    b.Output(y);
    b.Output(b.Op("QuantizeE4M3", {y, b.Const("scale", DataType::kFloat, {}, {1.0 / 128})}, {}, "kiln"));
    cases.push_back({"LayerNorm then QuantizeE4M3", b.Done()});
  }
  return cases;
}

std::vector<Case> AllCases() {
  const std::set<std::string> binary = {"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "PRelu"};
  const std::set<std::string> compare = {"Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual"};
  const std::set<std::string> logic = {"And", "Or", "Xor", "Not"};
  std::vector<Case> cases;
  for (const std::string& name : codegen::PointwiseOpNames()) {
    if (binary.count(name) || compare.count(name)) {
      cases.push_back(BinaryCase(name, compare.count(name) > 0));
    } else if (logic.count(name)) {
      cases.push_back(LogicCase(name));
    } else if (name == "IsNaN" || name == "IsInf") {
      for (Case& c : TestCases(name)) cases.push_back(std::move(c));
    } else if (name == "Sum" || name == "Mean") {
      cases.push_back(FoldCase(name));
    } else if (name == "Where") {
      cases.push_back(WhereCase());
    } else if (name == "Clip") {
      for (Case& c : ClipCases()) cases.push_back(std::move(c));
    } else if (name == "Cast") {
      for (Case& c : CastCases()) cases.push_back(std::move(c));
    } else if (name == "kiln.QuantizeE4M3") {
      for (Case& c : QuantizeCases()) cases.push_back(std::move(c));
    } else {
      cases.push_back(UnaryCase(name));
    }
  }
  cases.push_back(BroadcastCase());
  for (Case& c : RowCases()) cases.push_back(std::move(c));
  for (Case& c : TransposeCases()) cases.push_back(std::move(c));
  for (Case& c : ViewCases()) cases.push_back(std::move(c));
  return cases;
}

std::map<std::string, RtValue> Feed(const Model& m, bool quantize, std::mt19937& rng) {
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  std::map<std::string, RtValue> feed;
  for (const Value* in : m.graph->inputs) {
    const std::vector<int64_t> dims = *in->shape().concrete();
    int64_t n = 1;
    for (int64_t d : dims) n *= d;
    std::vector<double> v(n);
    for (double& e : v) e = quantize ? std::round(u(rng) * 4) / 2 : u(rng);
    Tensor t;
    if (passes::IsArithmeticFloat(in->dtype())) {
      t = passes::FromDoubles(in->dtype(), dims, v);
    } else {
      t = Tensor(in->dtype(), dims);
      for (int64_t i = 0; i < n; ++i) {
        const int64_t k = static_cast<int64_t>(std::lround(v[i] * 3));
        if (in->dtype() == DataType::kInt64) t.mutable_data<int64_t>()[i] = k > 0;  // a 0/1 mask
        if (in->dtype() == DataType::kInt32) t.mutable_data<int32_t>()[i] = static_cast<int32_t>(k);
        if (in->dtype() == DataType::kUInt8) t.mutable_data<uint8_t>()[i] = static_cast<uint8_t>(k + 3);
      }
    }
    feed[in->name()] = RtValue::FromTensor(std::move(t));
  }
  return feed;
}

// The case's fused node; a failure unless the whole model fused into one.
const Node* TheFusedNode(const Model& fused, const std::string& label) {
  const auto nodes = fused.graph->nodes();
  EXPECT_EQ(nodes.size(), 1u) << label << ": the model did not fuse into one node:\n" << PrintGraph(fused);
  if (nodes.size() != 1 || nodes[0]->op_type != "Pointwise") return nullptr;
  return nodes[0];
}

// Compiles the sources into a shared library for the host.
std::string CompileForHost(const std::string& source, const std::string& dir) {
  const std::string src = dir + "/kernels.cc", lib = dir + "/kernels.so", log = dir + "/cc.log";
  std::ofstream(src) << source;
  const char* cxx = std::getenv("CXX");
  const std::string cmd = std::string(cxx && *cxx ? cxx : "c++") + " -std=c++17 -O1 -fPIC -shared -DKILN_PW_HOST -o " +
                          lib + " " + src + " > " + log + " 2>&1";
  if (std::system(cmd.c_str()) != 0) {
    std::ifstream in(log);
    std::stringstream ss;
    ss << in.rdbuf();
    ADD_FAILURE() << "the generated sources do not compile on the host:\n" << ss.str();
    return "";
  }
  return lib;
}

using HostEntry = void (*)(const KilnPwParams*);

// Runs the fused node's host entry on the feed; the outputs in node order.
std::vector<Tensor> RunOnHost(HostEntry entry, const Node& n, const codegen::PointwiseKernel& kernel,
                              const std::map<std::string, RtValue>& feed, const std::vector<Tensor>& want) {
  KilnPwParams p{};
  std::vector<Tensor> out;
  const std::vector<int64_t>& dims = want.at(0).dims();
  for (size_t k = 0; k < n.num_outputs(); ++k) out.emplace_back(n.output(k)->dtype(), dims);
  p.n = out[0].numel();
  for (size_t d = 0; d < dims.size(); ++d) p.dims[d] = dims[d];
  for (size_t k = 0; k < n.num_inputs(); ++k) {
    const Value* v = n.input(k);
    const Tensor& t = v->data ? *v->data : feed.at(v->name()).tensor;
    long long base = 0;
    EXPECT_TRUE(PointwiseStrides(t.dims(), dims, p.strides[k], kernel.input_views[k], &base))
        << n.Label() << " input " << k;
    p.in[k] = static_cast<const char*>(t.raw()) + base * static_cast<long long>(ElementSize(t.dtype()));
    if (kernel.input_modes[k] == codegen::InputMode::kBlock) {
      EXPECT_TRUE(PointwiseBlock(t.dims(), dims, &p.div[k], &p.mod[k])) << n.Label() << " input " << k;
    }
  }
  for (size_t k = 0; k < out.size(); ++k) p.out[k] = out[k].mutable_raw();
  entry(&p);
  return out;
}

TEST(PointwiseCodegen, EveryRowMatchesTheReference) {
  std::vector<Case> cases = AllCases();
  std::mt19937 rng(5);
  struct Prepared {
    std::unique_ptr<Model> fused;
    const Node* node = nullptr;
    std::map<std::string, RtValue> feed;
    std::vector<Tensor> want;
    std::string name;
    bool rows = false;
    codegen::PointwiseKernel kernel;
  };
  std::vector<Prepared> prepared;
  std::string all;
  for (size_t i = 0; i < cases.size(); ++i) {
    Case& c = cases[i];
    SCOPED_TRACE(c.label);
    Prepared p;
    p.fused = CloneModel(*c.model);
    PassContext ctx;
    ASSERT_TRUE(RunFusePointwise(*p.fused, ctx).ok());
    p.node = TheFusedNode(*p.fused, c.label);
    if (!p.node) continue;
    p.feed = Feed(*c.model, c.quantize, rng);
    auto want = ReferenceExecutor(*c.model).Run(p.feed);
    ASSERT_TRUE(want.ok()) << want.status().ToString();
    for (RtValue& v : *want) p.want.push_back(v.tensor);
    p.name = "k" + std::to_string(i);
    auto k = codegen::GeneratePointwise(*p.node, p.fused->OpsetOf(""), p.name);
    ASSERT_TRUE(k.ok()) << k.status().ToString();
    p.rows = k->rows;
    all += k->source;
    p.kernel = *k;
    prepared.push_back(std::move(p));
  }
  ASSERT_EQ(prepared.size(), cases.size());

  char tmpl[] = "/tmp/kiln_pw_XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string lib = CompileForHost(all, tmpl);
  ASSERT_FALSE(lib.empty());
  void* handle = dlopen(lib.c_str(), RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(handle, nullptr) << dlerror();
  // The host entry runs the eight-element function on all but a kernel's tail: most elementwise cases take
  // it.
  int vec8 = 0, elementwise = 0;
  for (const Prepared& p : prepared) {
    elementwise += !p.rows;
    vec8 += p.kernel.vec8 && p.want.at(0).numel() >= 8;
  }
  EXPECT_GT(vec8 * 2, elementwise) << vec8 << " of " << elementwise
                                   << " elementwise cases run eight elements a thread";
  for (size_t i = 0; i < prepared.size(); ++i) {
    Prepared& p = prepared[i];
    SCOPED_TRACE(cases[i].label);
    auto entry = reinterpret_cast<HostEntry>(dlsym(handle, (p.name + "_host").c_str()));
    ASSERT_NE(entry, nullptr);
    std::vector<Tensor> got = RunOnHost(entry, *p.node, p.kernel, p.feed, p.want);
    ASSERT_EQ(got.size(), p.want.size());
    for (size_t k = 0; k < got.size(); ++k) {
      const Tensor& w = p.want[k];
      ASSERT_EQ(got[k].dtype(), w.dtype());
      Tolerance tol;
      // The kernel computes in float and rounds a 16-bit result once; the
      // reference rounds after every op of an FP16 chain.
      const bool half = w.dtype() == DataType::kFloat16 || w.dtype() == DataType::kBFloat16;
      tol.rtol = half ? 4e-3 : 2e-6;
      tol.atol = half ? 4e-3 : 1e-6;
      if (w.dtype() == DataType::kFloat8E4M3FN) {
        // The same codes (one E4M3 step is 6-12%). After an FP16 chain the reference quantizes the FP16-rounded
        // value and the kernel the float one, so a value next to an E4M3 rounding boundary may take the
        // neighbouring code: one code apart at most, on few elements.
        bool half_chain = false;
        for (const Value* in : cases[i].model->graph->inputs) half_chain = half_chain || in->dtype() == DataType::kFloat16;
        int64_t differ = 0;
        for (int64_t e = 0; e < w.numel(); ++e) {
          const int a = w.data<uint8_t>()[e], b = got[k].data<uint8_t>()[e];
          if (a == b) continue;
          ++differ;
          EXPECT_TRUE(half_chain && (a & 0x80) == (b & 0x80) && std::abs(a - b) == 1)
              << "output " << k << " element " << e << ": code " << b << ", reference " << a;
        }
        EXPECT_LE(differ * 10, w.numel()) << "output " << k << ": " << differ << " codes differ";
        continue;
      }
      Comparison cmp = CompareTensors(w, got[k], tol);
      EXPECT_TRUE(cmp.ok) << "output " << k << ": " << cmp.message;
    }
  }
  dlclose(handle);
  std::filesystem::remove_all(tmpl);

#ifdef KILN_HAS_CUDA
  // The same text through the device compiler (sm_90), all cases in one program.
  auto cubin = cuda::CompileCubin(all, "every case", 90);
  ASSERT_TRUE(cubin.ok()) << cubin.status().ToString();
  for (const Prepared& p : prepared) {
    std::vector<const char*> entries = {"_row", "_wrow", "_wrow8"};
    if (!p.rows)
      entries = p.kernel.vec8 ? std::vector<const char*>{"_i32", "_i64", "_v8_i32", "_v8_i64"}
                              : std::vector<const char*>{"_i32", "_i64"};
    for (const char* entry : entries)
      EXPECT_NE(cubin->find(p.name + entry), std::string::npos) << p.name << entry;
  }
#endif
}

TEST(PointwiseCodegen, InputModesFollowShapes) {
  const Shape domain({Dim::Symbol("batch"), 8, 16});
  EXPECT_EQ(codegen::ModeOf(domain, domain), codegen::InputMode::kFull);
  EXPECT_EQ(codegen::ModeOf(Shape::Of({1, 1}), domain), codegen::InputMode::kScalar);
  EXPECT_EQ(codegen::ModeOf(Shape::Scalar(), domain), codegen::InputMode::kScalar);
  EXPECT_EQ(codegen::ModeOf(Shape::Of({16}), domain), codegen::InputMode::kBlock);    // a bias
  EXPECT_EQ(codegen::ModeOf(Shape::Of({8, 1}), domain), codegen::InputMode::kBlock);  // a per-row scale
  EXPECT_EQ(codegen::ModeOf(Shape({Dim::Symbol("batch"), 1, 16}), domain), codegen::InputMode::kStrided);
  EXPECT_EQ(codegen::ModeOf(Shape({Dim::Unknown(), 16}), domain), codegen::InputMode::kStrided);
}

TEST(PointwiseCodegen, BlockInputsAreOneDivisionAndOneModulo) {
  long long div = 0, mod = 0;
  ASSERT_TRUE(PointwiseBlock({5}, {2, 3, 5}, &div, &mod));
  EXPECT_EQ(std::make_pair(div, mod), std::make_pair(1LL, 5LL));
  ASSERT_TRUE(PointwiseBlock({4, 1, 1}, {2, 4, 3, 5}, &div, &mod));
  EXPECT_EQ(std::make_pair(div, mod), std::make_pair(15LL, 4LL));
  ASSERT_TRUE(PointwiseBlock({1, 1}, {2, 4}, &div, &mod));
  EXPECT_EQ(mod, 1);
  EXPECT_FALSE(PointwiseBlock({2, 1, 1, 5}, {2, 4, 3, 5}, &div, &mod));  // two blocks
  EXPECT_FALSE(PointwiseBlock({3}, {2, 4}, &div, &mod));                 // does not broadcast
}

// The source of the one kernel `m` fuses into ("" when it does not), and how often `what` occurs in it.
std::string FusedSource(Model& m, bool rows) {
  PassContext ctx;
  EXPECT_TRUE(RunFusePointwise(m, ctx).ok());
  const Node* n = TheFusedNode(m, "source");
  if (!n) return "";
  auto k = codegen::GeneratePointwise(*n, m.OpsetOf(""), "k");
  EXPECT_TRUE(k.ok()) << k.status().ToString();
  EXPECT_EQ(k.ok() && k->rows, rows);
  return k.ok() ? k->source : "";
}
size_t Occurrences(const std::string& text, const std::string& what) {
  size_t c = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++c;
  return c;
}

// A row kernel reads a norm's [C] scale and bias at the column index, with no
// per-element division (a [3, 1] input still divides: it varies across rows).
TEST(PointwiseCodegen, RowKernelReadsRowVectorsByColumn) {
  CaseBuilder b(17);
  Value* y = DecomposedLayerNorm(b, b.Input("x", DataType::kFloat, kRows), DataType::kFloat);
  b.Output(b.Op("Mul", {y, b.Input("per_row", DataType::kFloat, {3, 1})}));
  const std::string source = FusedSource(*b.Done(), true);
  // per_row's, not gamma's or beta's: once in each body (columns one at a time and eight at a time) of each
  // entry (the host's or a block per row, a warp per row).
  EXPECT_EQ(Occurrences(source, "/ p.div["), 4u) << source;
}

// A row kernel reading an input through a Transpose finds where each row starts once (kiln_offset per row,
// in each entry), then steps along the row by the last axis's stride.
TEST(PointwiseCodegen, RowKernelDecomposesStridedRowsOncePerRow) {
  CaseBuilder b(17);
  Value* t =
      b.Op("Transpose", {b.Input("x", DataType::kFloat, {37, 6})}, {{"perm", Attribute::FromInts({1, 0})}});
  b.Output(DecomposedLayerNorm(b, t, DataType::kFloat));
  const std::string source = FusedSource(*b.Done(), true);
  EXPECT_EQ(Occurrences(source, "kiln_offset(p, "), 4u) << source;  // the row's start, in each body
  EXPECT_EQ(Occurrences(source, ", row * C);"), 4u) << source;
  EXPECT_NE(source.find("_wrow8("), std::string::npos) << source;
  EXPECT_NE(source.find("_wrow("), std::string::npos) << source;
}

// An elementwise kernel reads a last-axis vector as i % C, a [3, 1] block as (i / div) % mod.
TEST(PointwiseCodegen, ElementKernelReadsLastAxisVectorsByOneModulo) {
  CaseBuilder b(17);
  Value* x = Scaled(b, b.Input("x", DataType::kFloat, kDims));
  Value* y = b.Op("Add", {x, b.Input("bias", DataType::kFloat, {5})});
  b.Output(b.Op("Mul", {y, b.Input("per_row", DataType::kFloat, {3, 1})}));
  const std::string source = FusedSource(*b.Done(), false);
  // per_row's only, and the bias: once in the per-element function and once in the eight-element one. The
  // dims are known: constants, which the compiler divides by without a division.
  EXPECT_EQ(Occurrences(source, "(i / (I)5) % (I)3"), 2u) << source;
  EXPECT_EQ(Occurrences(source, "i % (I)5)"), 2u) << source;
  EXPECT_EQ(Occurrences(source, "p.div["), 0u) << source;
  EXPECT_NE(source.find("KILN_V8_LOAD(r0"), std::string::npos) << source;  // x, the full input, as packs
}

// A block over a symbolic dim divides by the runtime's div and mod; known inner dims stay constants. A
// strided input's coordinates divide by the known dims as constants and by p.dims where a dim is symbolic.
TEST(PointwiseCodegen, SymbolicDimsDivideAtRunTime) {
  CaseBuilder b(17);
  Value* x = b.Input("x", DataType::kFloat, kDims);
  Value* per_batch = b.Input("per_batch", DataType::kFloat, {2, 1, 1});
  Value* t = b.Op("Transpose", {b.Input("t", DataType::kFloat, {2, 5, 3})},
                  {{"perm", Attribute::FromInts({0, 2, 1})}});
  b.Output(b.Op("Mul", {b.Op("Add", {Scaled(b, x), t}), per_batch}));
  std::unique_ptr<Model> m = b.Done();
  Graph& g = *m->graph;
  for (Value* v : g.values())  // batch: a symbol from here on
    if (v->shape().rank_known() && v->shape().rank() == 3 && v->shape()[0].known() &&
        v->shape()[0].value() == 2) {
      std::vector<Dim> dims = v->shape().dims();
      dims[0] = Dim::Symbol("batch");
      v->type = TypeInfo::Tensor(v->dtype(), Shape(dims));
    }
  const std::string source = FusedSource(*m, false);
  EXPECT_EQ(Occurrences(source, "(i / (I)p.div["), 1u) << source;  // per_batch, per element (no packs)
  EXPECT_NE(source.find("r % (I)5;"), std::string::npos) << source;
  EXPECT_NE(source.find("r % (I)3;"), std::string::npos) << source;
  EXPECT_EQ(Occurrences(source, "(I)p.dims["), 0u) << source;  // the outermost coordinate is what is left
}

TEST(PointwiseCodegen, ViewsRoundTripThroughTheirAttribute) {
  PwViewOp t, sl, ex;
  t.perm = {0, 2, 1, 3};
  sl.kind = PwViewOp::kSlice;
  sl.axes = {3, 1};
  sl.starts = {8, -1};
  sl.ends = {std::numeric_limits<int64_t>::max(), -std::numeric_limits<int64_t>::max()};
  sl.steps = {1, -2};
  ex.kind = PwViewOp::kExpand;
  ex.shape = {2, 1, 4};
  PwView a;
  a.ops = {t, sl, ex};
  a.read_dims = {{3, 8}};
  const std::vector<int64_t> e = EncodePwViews({a, PwView{}});
  std::vector<PwView> back;
  ASSERT_TRUE(DecodePwViews(e, &back));
  ASSERT_EQ(back.size(), 2u);
  EXPECT_TRUE(back[1].empty());
  ASSERT_EQ(back[0].ops.size(), 3u);
  EXPECT_EQ(back[0].ops[0].perm, t.perm);
  EXPECT_EQ(back[0].ops[1].kind, PwViewOp::kSlice);
  EXPECT_EQ(back[0].ops[1].steps, sl.steps);
  EXPECT_EQ(back[0].ops[1].ends, sl.ends);
  EXPECT_EQ(back[0].ops[2].shape, ex.shape);
  EXPECT_EQ(back[0].read_dims, a.read_dims);
  EXPECT_EQ(EncodePwViews(back), e);
  const size_t whole_a = EncodePwViews({a}).size();
  for (size_t n = 1; n < e.size(); ++n) {  // a cut encoding is refused, unless cut between views
    std::vector<PwView> cut;
    EXPECT_EQ(
        DecodePwViews(std::vector<int64_t>(e.begin(), e.begin() + static_cast<std::ptrdiff_t>(n)), &cut),
        n == whole_a)
        << n;
  }
  std::vector<PwView> bad;
  EXPECT_FALSE(DecodePwViews({1, 7, 0, 0}, &bad));  // an unknown kind
}

TEST(PointwiseCodegen, ViewStridesAndBase) {
  // x[::-1, 1::2] of a [4, 6] input: from element 3*6 + 1, strides -6 and 2.
  PwViewOp sl;
  sl.kind = PwViewOp::kSlice;
  sl.axes = {0, 1};
  sl.starts = {-1, 1};
  sl.ends = {-std::numeric_limits<int64_t>::max(), std::numeric_limits<int64_t>::max()};
  sl.steps = {-1, 2};
  PwView v;
  v.ops = {sl};
  long long strides[3] = {}, base = 0;
  ASSERT_TRUE(PointwiseStrides({4, 6}, {2, 4, 3}, strides, v, &base));
  EXPECT_EQ(base, 19);
  EXPECT_EQ(strides[0], 0);  // broadcast
  EXPECT_EQ(strides[1], -6);
  EXPECT_EQ(strides[2], 2);
  EXPECT_FALSE(PointwiseStrides({4, 6}, {2, 4, 3}, strides, v));      // a Slice needs its base taken
  EXPECT_FALSE(PointwiseStrides({4, 6}, {4, 4}, strides, v, &base));  // 3 columns do not broadcast to 4
  v.read_dims = {{1, 3}};  // a Concat operand: read over 3 of the 4 columns
  EXPECT_TRUE(PointwiseStrides({4, 6}, {4, 4}, strides, v, &base));
}

TEST(PointwiseCodegen, FloatLiteralsReadBackExactly) {
  EXPECT_EQ(codegen::FloatLiteral(0.5f), "0x1p-1f");
  EXPECT_EQ(codegen::FloatLiteral(-2.0f), "(-0x1p+1f)");
  EXPECT_EQ(codegen::FloatLiteral(INFINITY), "kiln_f32_bits(0x7f800000u)");
  EXPECT_EQ(codegen::FloatLiteral(-INFINITY), "kiln_f32_bits(0xff800000u)");
}

#ifdef KILN_HAS_CUDA
TEST(PointwiseCodegen, KernelCacheCompilesRepeatsOnce) {
  CaseBuilder b(17);
  Value* x = b.Input("x", DataType::kFloat, kDims);
  Value* y = b.Op("Tanh", {b.Op("Relu", {x})});
  b.Output(b.Op("Tanh", {b.Op("Relu", {b.Op("MatMul", {y, b.Const("w", DataType::kFloat, {5, 5},
                                                                      std::vector<double>(25, 0.1))})})}));
  auto m = b.Done();
  PassContext ctx;
  ASSERT_TRUE(RunFusePointwise(*m, ctx).ok());
  cuda::KernelCache cache;
  ASSERT_TRUE(cuda::CompilePointwiseKernels(*m, 90, cache).ok());
  EXPECT_EQ(cache.compiled(), 1u);  // the two Relu → Tanh groups are the same kernel
  EXPECT_EQ(cache.hits(), 1u);
  for (const Node* n : m->graph->nodes()) {
    if (n->op_type != "Pointwise") continue;
    EXPECT_FALSE(n->attr("cubin")->s.empty());
    EXPECT_EQ(n->attr("kernel")->s, "kiln_pw");
    EXPECT_EQ(n->attr("input_modes")->ints, std::vector<int64_t>{0});
    // The parameter block's size the kernel was compiled against (the runtime refuses another).
    EXPECT_EQ(n->attr("params_bytes")->i, static_cast<int64_t>(sizeof(KilnPwParams)));
  }
}
#endif

}  // namespace
}  // namespace kiln
