// The shape program (runtime/shape_program.h) against shape inference, the
// path it replaces at SetInputShape: on zoo models after the build passes (as
// the GPU builder leaves them), every value's dims and every host-computed
// value at several input shapes must be what InferShapes computes on a clone
// at those shapes (the runtime's fold limit). InferShapes is itself checked
// against onnxruntime's output shapes by the zoo and conformance tests.
#include "runtime/shape_program.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <set>

#include "build/build_passes.h"
#include "fixtures.h"
#include "graph_builder.h"
#include "ir/clone.h"
#include "onnx/import.h"
#include "passes/shape_inference.h"

namespace kiln {
namespace {

using Shapes = std::map<std::string, std::vector<int64_t>>;

std::unique_ptr<Model> BuiltZooModel(const std::string& name, bool fp16) {
  auto m = LoadModel(fixtures::ZooModel(name));
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  if (!m.ok()) return nullptr;
  EXPECT_TRUE(InferShapes(**m).ok());
  BuildOptions opts;
  opts.fp16 = fp16;
  std::vector<std::string> notes;
  Status s = RunBuildPasses(**m, opts, &notes);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return std::move(*m);
}

// Input shapes with each named dim set to `value(k)` for the k-th name (sorted).
Shapes InputShapes(const Graph& g, const std::function<int64_t(size_t)>& value) {
  std::map<std::string, int64_t> symbols;
  for (const Value* v : g.inputs)
    for (const Dim& d : v->type.shape.dims())
      if (d.symbolic()) symbols.emplace(d.symbol(), 0);
  size_t k = 0;
  for (auto& [name, x] : symbols) x = value(k++);
  Shapes shapes;
  for (const Value* v : g.inputs) {
    if (v->data) continue;
    std::vector<int64_t> dims;
    for (const Dim& d : v->type.shape.dims()) dims.push_back(d.known() ? d.value() : symbols.at(d.symbol()));
    shapes[v->name()] = dims;
  }
  return shapes;
}

// The program's dims and host values against InferShapes on a clone at `shapes`.
void ExpectSameAsInference(const Model& built, const ShapeProgram& program, const Shapes& shapes) {
  auto r = program.Evaluate(shapes);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  std::unique_ptr<Model> m = CloneModel(built);
  ShapeInferenceOptions opt;
  opt.max_fold_elements = 1 << 16;  // the GPU context's
  for (const auto& [name, dims] : shapes) opt.input_shapes[name] = Shape::Of(dims);
  ASSERT_TRUE(InferShapes(*m, opt).ok());
  const std::vector<std::string> listed = program.DeviceValues();
  const std::set<std::string> device(listed.begin(), listed.end());
  int checked = 0, host = 0;
  for (const Node* n : m->graph->nodes())
    for (const Value* v : n->outputs()) {
      if (!v) continue;
      const Value* orig = built.graph->FindValue(v->name());
      ASSERT_NE(orig, nullptr);
      if (orig->data) continue;  // a constant of the engine
      auto dims = r->dims.find(v->name());
      ASSERT_NE(dims, r->dims.end()) << v->name() << " has no dims in the program";
      ASSERT_EQ(v->type.shape.concrete(), dims->second)
          << v->name() << ": inference " << v->type.ToString() << ", program " << DimsToString(dims->second);
      ++checked;
      auto data = r->data.find(v->name());
      // A device value: inference folds it, the runtime computes it with a step.
      if (device.count(v->name())) {
        ASSERT_TRUE(v->data.has_value()) << v->name() << " is no value computable from shapes";
        ASSERT_EQ(data, r->data.end()) << v->name() << " is both a host and a device value";
        continue;
      }
      // What the runtime folds on the host is exactly what the program computes.
      ASSERT_EQ(v->data.has_value(), data != r->data.end()) << v->name() << " (" << n->Label() << ")";
      if (!v->data) continue;
      ++host;
      ASSERT_EQ(v->data->dtype(), data->second.dtype()) << v->name();
      ASSERT_EQ(v->data->dims(), data->second.dims()) << v->name();
      for (int64_t i = 0; i < v->data->numel(); ++i)
        ASSERT_EQ(v->data->ScalarAt(i), data->second.ScalarAt(i)) << v->name() << "[" << i << "]";
    }
  EXPECT_GT(checked, 0);
  std::printf("  %d values, %d of them host-computed\n", checked, host);
}

void CheckZooModel(const std::string& name, bool fp16) {
  SCOPED_TRACE(name + (fp16 ? " fp16" : " fp32"));
  std::unique_ptr<Model> built = BuiltZooModel(name, fp16);
  ASSERT_TRUE(built);
  ShapeProgram program = ShapeProgram::Compile(*built);
  ASSERT_TRUE(program.complete()) << program.incomplete();
  for (int trial = 0; trial < 3; ++trial) {
    Shapes shapes = InputShapes(*built->graph, [trial](size_t k) -> int64_t {
      return trial == 0 ? 1 : trial == 1 ? 2 : 9 + 7 * static_cast<int64_t>(k);
    });
    SCOPED_TRACE("trial " + std::to_string(trial));
    ExpectSameAsInference(*built, program, shapes);
  }
}

TEST(ShapeProgram, SuperResolutionMatchesInference) { CheckZooModel("super_resolution", false); }
TEST(ShapeProgram, ResNet50MatchesInference) { CheckZooModel("resnet50", true); }
TEST(ShapeProgram, MobileNetV2MatchesInference) { CheckZooModel("mobilenet_v2", false); }
TEST(ShapeProgram, EfficientNetMatchesInference) { CheckZooModel("efficientnet_b0", true); }
TEST(ShapeProgram, TransformersMatchInference) {
  for (const char* name : {"bert_encoder", "bert_encoder_opset13", "vit_b_16", "llama_decoder"})
    CheckZooModel(name, true);
}

// Host shape arithmetic the program carries: x [batch, c, h, w] flattened by
// Reshape(x, Concat(Shape(x)[0:1], h*w*c as Mul of Shape values)). Without
// build passes, so the chain stays.
TEST(ShapeProgram, HostShapeArithmeticMatchesInference) {
  testing_build::GraphBuilder b;
  Value* x = b.Input("x", Shape({Dim::Symbol("batch"), Dim(3), Dim::Symbol("h"), Dim::Symbol("w")}));
  Value* shape = b.Op("Shape", "shape", {x});
  Value* head = b.Op("Slice", "head", {shape, b.Int64s("s0", {0}), b.Int64s("e1", {1})});
  Value* c = b.Op("Gather", "c", {shape, b.Int64s("i1", {1})});
  Value* h = b.Op("Gather", "h", {shape, b.Int64s("i2", {2})});
  Value* w = b.Op("Gather", "w", {shape, b.Int64s("i3", {3})});
  Value* hw = b.Op("Mul", "hw", {h, w});
  Value* chw = b.Op("Mul", "chw", {hw, c});
  Value* target = b.Op("Concat", "target", {head, chw}, {{"axis", Attribute::FromInt(0)}});
  b.Output(b.Op("Reshape", "flat", {x, target}));
  b.Output(chw);  // a host value that is a graph output
  auto m = b.Done();
  ShapeProgram program = ShapeProgram::Compile(*m);
  ASSERT_TRUE(program.complete()) << program.incomplete();
  EXPECT_EQ(program.HostValues().size(), 7u);  // c = 3 is a constant already
  for (int64_t batch : {1, 4}) ExpectSameAsInference(*m, program, {{"x", {batch, 3, 5 + batch, 7}}});
}

// A generated kernel's body (kiln.Pointwise) is no control flow: the build
// passes fuse this elementwise chain into one, and the program stays complete.
TEST(ShapeProgram, GeneratedKernelsAreNoControlFlow) {
  testing_build::GraphBuilder b;
  Value* x = b.Input("x", Shape({Dim::Symbol("batch"), Dim::Symbol("seq"), Dim(16)}));
  Value* y = b.Op("Mul", "scaled", {x, b.Const("gain", {16})});
  y = b.Op("Add", "shifted", {y, b.Const("shift", {16})});
  y = b.Op("Tanh", "squashed", {y});
  b.Output(b.Op("Mul", "gated", {y, x}));
  auto m = b.Done();
  std::vector<std::string> notes;
  ASSERT_TRUE(RunBuildPasses(*m, BuildOptions{}, &notes).ok());
  int generated = 0;
  for (const Node* n : m->graph->nodes()) generated += n->domain == "kiln" && n->op_type == "Pointwise";
  ASSERT_GT(generated, 0) << "no generated kernel: the test would not cover one";
  ShapeProgram program = ShapeProgram::Compile(*m);
  ASSERT_TRUE(program.complete()) << program.incomplete();
  for (int64_t batch : {1, 3}) ExpectSameAsInference(*m, program, {{"x", {batch, 5 * batch, 16}}});
}

// Values computable from shapes that are no shape arithmetic are device
// values: BERT's position ids (Range(0, seq), a run of values) and ViT's class
// token expanded to the batch (a float tensor). The program gives their dims
// and the runtime computes them with ordinary steps; everything else matches
// inference.
TEST(ShapeProgram, TransformersComputeNonShapeValuesOnTheDevice) {
  for (const auto& [name, op] :
       std::vector<std::pair<std::string, std::string>>{{"bert_encoder", "Range"}, {"vit_b_16", "Expand"}}) {
    SCOPED_TRACE(name);
    std::unique_ptr<Model> built = BuiltZooModel(name, true);
    ASSERT_TRUE(built);
    ShapeProgram program = ShapeProgram::Compile(*built);
    ASSERT_TRUE(program.complete()) << program.incomplete();
    bool found = false;
    for (const std::string& v : program.DeviceValues()) {
      const Node* p = built->graph->FindValue(v)->producer();
      found |= p && p->op_type == op;
    }
    EXPECT_TRUE(found) << "no " << op << " output among the device values";
    for (int trial = 0; trial < 2; ++trial) {
      Shapes shapes =
          InputShapes(*built->graph, [trial](size_t k) -> int64_t { return trial ? 3 + 5 * k : 1; });
      ExpectSameAsInference(*built, program, shapes);
    }
  }
}

// A value a kernel reads on the host (here a Reshape's shape) that is no shape
// arithmetic (a float round trip) cannot be a device value: the program is
// incomplete and names it.
TEST(ShapeProgram, HostReadValuesMustBeShapeArithmetic) {
  testing_build::GraphBuilder b;
  Value* x = b.Input("x", Shape({Dim::Symbol("batch"), Dim(6)}));
  Value* shape = b.Op("Shape", "shape", {x});
  Value* f = b.Op("Cast", "as_float", {shape}, {{"to", Attribute::FromInt(1)}});
  Value* half = b.Op("Div", "halved", {f, b.Scalar("two", 2.0, {1})});
  Value* back = b.Op("Cast", "as_int", {half}, {{"to", Attribute::FromInt(7)}});
  b.Output(b.Op("Reshape", "reshaped", {x, back}));
  auto m = b.Done();
  ShapeProgram program = ShapeProgram::Compile(*m);
  EXPECT_FALSE(program.complete());
  EXPECT_NE(program.incomplete().find("'as_int'"), std::string::npos) << program.incomplete();
  EXPECT_NE(program.incomplete().find("not shape arithmetic"), std::string::npos) << program.incomplete();
}

// The plan's 'shapes' section: a decoded program evaluates as the compiled
// one (dims and host values), encodes to the same bytes, and damaged bytes
// are "corrupted plan" errors, never a crash.
TEST(ShapeProgram, PlanSectionRoundTrips) {
  for (const char* name : {"bert_encoder", "efficientnet_b0", "llama_decoder"}) {
    SCOPED_TRACE(name);
    std::unique_ptr<Model> built = BuiltZooModel(name, true);
    ASSERT_TRUE(built);
    ShapeProgram program = ShapeProgram::Compile(*built);
    const std::string bytes = program.Encode();
    auto back = ShapeProgram::Decode(bytes);
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(back->Encode(), bytes);
    EXPECT_EQ(back->incomplete(), program.incomplete());
    EXPECT_EQ(back->DeviceValues(), program.DeviceValues());
    Shapes shapes = InputShapes(*built->graph, [](size_t k) -> int64_t { return 2 + 3 * k; });
    auto want = program.Evaluate(shapes);
    auto got = back->Evaluate(shapes);
    ASSERT_TRUE(want.ok() && got.ok());
    EXPECT_EQ(got->dims, want->dims);
    ASSERT_EQ(got->data.size(), want->data.size());
    for (const auto& [value, t] : want->data) {
      ASSERT_TRUE(got->data.count(value)) << value;
      const Tensor& g = got->data.at(value);
      ASSERT_EQ(g.dims(), t.dims()) << value;
      EXPECT_EQ(std::memcmp(g.raw(), t.raw(), t.nbytes()), 0) << value;
    }
    // Every cut is an error; so is a byte flipped in the header.
    for (size_t n = 0; n < bytes.size(); n += 1 + n / 64) {
      auto cut = ShapeProgram::Decode(std::string_view(bytes).substr(0, n));
      ASSERT_FALSE(cut.ok()) << n;
      EXPECT_NE(cut.status().message().find("corrupted plan"), std::string::npos) << cut.status().ToString();
    }
    std::string flipped = bytes;
    flipped[1] ^= 0x40;
    EXPECT_FALSE(ShapeProgram::Decode(flipped).ok());
  }
}

std::unique_ptr<Model> TwoInputAdd();

// A binding to an input dim that does not exist would index past the input's
// shape at evaluation: Decode refuses it.
TEST(ShapeProgram, DecodeRefusesBindingsPastAnInputsRank) {
  std::unique_ptr<Model> m = TwoInputAdd();
  ASSERT_TRUE(InferShapes(*m).ok());
  std::string bytes = ShapeProgram::Compile(*m).Encode();
  // The first binding's axis (u32) follows its input name: "x" (u32 length 1 + 1 byte).
  const std::string name("\x01\0\0\0x", 5);
  size_t at = bytes.find(name, bytes.find(name) + 1);  // the inputs list names x first, then the bindings
  ASSERT_NE(at, std::string::npos);
  bytes[at + 5] = 7;
  auto r = ShapeProgram::Decode(bytes);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("no such input dim"), std::string::npos) << r.status().ToString();
}

// Value-dependent shapes (NonZero, the detectors' NMS/TopK) leave the
// program incomplete, naming a value; the runtime then infers shapes.
TEST(ShapeProgram, ValueDependentShapesAreIncomplete) {
  for (const char* name : {"maskrcnn_resnet50_fpn", "ssdlite320_mobilenet_v3_large"}) {
    SCOPED_TRACE(name);
    auto m = LoadModel(fixtures::ZooModel(name));
    ASSERT_TRUE(m.ok());
    ASSERT_TRUE(InferShapes(**m).ok());
    ShapeProgram program = ShapeProgram::Compile(**m);
    EXPECT_FALSE(program.complete());
    EXPECT_NE(program.incomplete().find('\''), std::string::npos) << program.incomplete();
    auto r = program.Evaluate({{"image", {1, 3, 320, 320}}});
    EXPECT_FALSE(r.ok());
  }
}

std::unique_ptr<Model> TwoInputAdd() {
  testing_build::GraphBuilder b;
  Value* x = b.Input("x", Shape({Dim::Symbol("batch"), Dim::Symbol("seq")}));
  Value* y = b.Input("y", Shape({Dim::Symbol("batch"), Dim::Symbol("seq")}));
  b.Output(b.Op("Add", "sum", {x, y}));
  return b.Done();
}

TEST(ShapeProgram, DisagreeingInputsNameTheDim) {
  auto m = TwoInputAdd();
  ShapeProgram program = ShapeProgram::Compile(*m);
  ASSERT_TRUE(program.complete()) << program.incomplete();
  auto ok = program.Evaluate({{"x", {2, 5}}, {"y", {2, 5}}});
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->dims.at(m->graph->outputs[0]->name()), (std::vector<int64_t>{2, 5}));
  auto bad = program.Evaluate({{"x", {2, 5}}, {"y", {2, 6}}});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("'seq'"), std::string::npos) << bad.status().ToString();
  EXPECT_NE(bad.status().message().find("'y' dim 1 is 6"), std::string::npos) << bad.status().ToString();
  auto missing = program.Evaluate({{"x", {2, 5}}});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("'y'"), std::string::npos);
}

// BindInputs decides when SetInputShape prepares a GPU context. BERT's inputs:
// ids and mask share [batch, seq]; a third input has a dim of its own and a
// fixed one.
std::unique_ptr<Model> ThreeInputsSharingDims() {
  testing_build::GraphBuilder b;
  b.Input("ids", Shape({Dim::Symbol("batch"), Dim::Symbol("seq")}));
  b.Input("mask", Shape({Dim::Symbol("batch"), Dim::Symbol("seq")}));
  b.Input("pixels", Shape({Dim::Symbol("batch"), Dim(3), Dim::Symbol("width")}));
  return b.Done();
}

bool Agree(const Model& m, const Shapes& shapes) { return ShapeProgram::Compile(m).BindInputs(shapes).ok(); }

TEST(ShapeProgram, BindInputsNeedsEveryDynamicInput) {
  auto m = ThreeInputsSharingDims();
  EXPECT_FALSE(Agree(*m, Shapes{{"ids", {2, 16}}, {"mask", {2, 16}}}));
  EXPECT_TRUE(Agree(*m, Shapes{{"ids", {2, 16}}, {"mask", {2, 16}}, {"pixels", {2, 3, 40}}}));
}

TEST(ShapeProgram, BindInputsNeedsSharedNamedDimsEqual) {
  auto m = ThreeInputsSharingDims();
  // Half-way from seq 16 to seq 32: ids moved, mask not yet.
  EXPECT_FALSE(Agree(*m, Shapes{{"ids", {2, 32}}, {"mask", {2, 16}}, {"pixels", {2, 3, 40}}}));
  // batch disagrees between mask and pixels.
  EXPECT_FALSE(Agree(*m, Shapes{{"ids", {2, 32}}, {"mask", {2, 32}}, {"pixels", {4, 3, 40}}}));
  // Dims of their own are free.
  EXPECT_TRUE(Agree(*m, Shapes{{"ids", {4, 32}}, {"mask", {4, 32}}, {"pixels", {4, 3, 7}}}));
}

TEST(ShapeProgram, BindInputsNeedsNoShapeForInitializerInputs) {
  testing_build::GraphBuilder b;
  b.Input("x", Shape({Dim::Symbol("n"), Dim(4)}));
  Value* w = b.Input("w", Shape({Dim(4)}));
  w->data = Tensor(DataType::kFloat, {4});
  auto m = b.Done();
  EXPECT_TRUE(Agree(*m, Shapes{{"x", {5, 4}}}));
  EXPECT_FALSE(Agree(*m, Shapes{}));
}

TEST(ShapeProgram, NegativeDimIsAnError) {
  // A 5-wide max pool without padding: x [n, c, w] gives [n, c, w-4].
  testing_build::GraphBuilder b;
  Value* x = b.Input("x", Shape({Dim::Symbol("n"), Dim(2), Dim::Symbol("w")}));
  b.Output(b.Op("MaxPool", "pool", {x}, {{"kernel_shape", Attribute::FromInts({5})}}));
  auto m = b.Done();
  ShapeProgram program = ShapeProgram::Compile(*m);
  ASSERT_TRUE(program.complete()) << program.incomplete();
  auto ok = program.Evaluate({{"x", {3, 2, 10}}});
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->dims.at(m->graph->outputs[0]->name()), (std::vector<int64_t>{3, 2, 6}));
  auto bad = program.Evaluate({{"x", {3, 2, 2}}});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("negative dim"), std::string::npos) << bad.status().ToString();
}

// torch's export of `t.expand(batch, -1, -1)`: the target Concat(batch, -1,
// -1) goes through Where(Equal(target, -1), 1, target), the -1s become 1s.
// The -1 constants and the Equal's booleans are shape arithmetic: the Expand
// is [batch, 1, 8] at build time, and the host values are all in the program.
TEST(ShapeProgram, ExpandWithMinusOnesIsShapeArithmetic) {
  testing_build::GraphBuilder b;
  Value* x = b.Input("x", Shape({Dim::Symbol("batch"), Dim(4), Dim(8)}));
  Value* token = b.Input("token", Shape({Dim(1), Dim(1), Dim(8)}));
  Value* batch = b.Op("Gather", "batch", {b.Op("Shape", "shape", {x}), b.Int64s("i0", {0})});
  Value* target = b.Op("Concat", "target", {batch, b.Int64s("m1", {-1}), b.Int64s("m2", {-1})},
                       {{"axis", Attribute::FromInt(0)}});
  Tensor one = Tensor::Int64s({1});
  Value* ones = b.Op("ConstantOfShape", "ones", {b.Op("Shape", "target_shape", {target})},
                     {{"value", Attribute::FromTensor(one)}});
  Value* minus = b.Op("Mul", "minus_ones", {ones, b.Int64s("minus", {-1})});
  Value* is_minus = b.Op("Equal", "is_minus", {target, minus});
  Value* sizes = b.Op("Where", "sizes", {is_minus, ones, target});
  Value* tokens = b.Op("Expand", "tokens", {token, sizes});
  Value* out = b.Op("Concat", "with_token", {tokens, x}, {{"axis", Attribute::FromInt(1)}});
  b.Output(out);
  auto m = b.Done();
  EXPECT_EQ(tokens->type.ToString(), "float32[batch,1,8]");
  EXPECT_EQ(out->type.ToString(), "float32[batch,5,8]");
  ShapeProgram program = ShapeProgram::Compile(*m);
  ASSERT_TRUE(program.complete()) << program.incomplete();
  const std::vector<std::string> host = program.HostValues();
  EXPECT_NE(std::find(host.begin(), host.end(), is_minus->name()), host.end());  // booleans
  EXPECT_NE(std::find(host.begin(), host.end(), target->name()), host.end());    // holds the -1s
  for (int64_t n : {1, 3}) ExpectSameAsInference(*m, program, {{"x", {n, 4, 8}}, {"token", {1, 1, 8}}});
}

}  // namespace
}  // namespace kiln
