// Control-family ops (If, Loop, Scan, sequences, optionals) and a few misc
// ops, on small hand-built graphs: shape inference and CPU reference results.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "fixtures.h"
#include "graph_nodes.h"
#include "ir/graph.h"
#include "onnx/import.h"
#include "passes/shape_inference.h"
#include "reference/executor.h"

namespace kiln {
namespace {

using testing_ir::Builder;

struct TestModel {
  Model model;
  Graph* g;
  explicit TestModel(int64_t opset = 18) {
    model.opsets[""] = opset;
    model.graph = std::make_shared<Graph>();
    g = model.graph.get();
  }
  std::shared_ptr<Graph> Subgraph() {
    auto sg = std::make_shared<Graph>();
    sg->parent = g;
    return sg;
  }
  Status Infer() { return InferShapes(model); }
  Expected<std::vector<RtValue>> Run(const std::map<std::string, RtValue>& in) {
    return ReferenceExecutor(model).Run(in);
  }
};

Tensor Floats(std::vector<int64_t> dims, std::vector<float> v) {
  return Tensor::FromVector<float>(DataType::kFloat, std::move(dims), v);
}
std::vector<float> FloatsOf(const Tensor& t) {
  return std::vector<float>(t.data<float>(), t.data<float>() + t.numel());
}
std::vector<int64_t> IntsOf(const Tensor& t) { return t.ToInt64s(); }

TypeInfo SeqType(DataType dt, Shape s) {
  TypeInfo t = TypeInfo::Tensor(dt, std::move(s));
  t.kind = ValueKind::kSequence;
  return t;
}

// ---------------------------------------------------------------- If

TEST(If, BranchesWithDifferentShapesMergeToUnknownDims) {
  TestModel m(13);
  Builder b(m.g);
  Value* cond = b.Input("cond", DataType::kBool, Shape::Scalar());
  Value* x = b.Input("x", DataType::kFloat, Shape({Dim::Symbol("n"), Dim(2)}));
  auto then_g = m.Subgraph();
  Builder tb(then_g.get());
  tb.Output(tb.Op1("Identity", {x}));  // outer-scope read
  auto else_g = m.Subgraph();
  Builder eb(else_g.get());
  eb.Output(eb.Const(Floats({1, 3}, {7, 8, 9})));
  Value* y = b.Op1("If", {cond}, {{"then_branch", Attribute::FromGraph(then_g)}, {"else_branch", Attribute::FromGraph(else_g)}});
  b.Output(y);
  ASSERT_TRUE(m.Infer().ok());
  EXPECT_EQ(y->type.ToString(), "float32[?,?]");

  Tensor xv = Floats({2, 2}, {1, 2, 3, 4});
  auto r = m.Run({{"cond", RtValue::FromTensor(Tensor::FromVector<bool>(DataType::kBool, {}, {true}))},
                  {"x", RtValue::FromTensor(xv)}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(FloatsOf((*r)[0].tensor), std::vector<float>({1, 2, 3, 4}));
  r = m.Run({{"cond", RtValue::FromTensor(Tensor::FromVector<bool>(DataType::kBool, {}, {false}))},
             {"x", RtValue::FromTensor(xv)}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)[0].tensor.dims(), std::vector<int64_t>({1, 3}));
}

// A constant condition: only the taken branch's type counts (the other one
// does not even infer), and its constant result flows out.
TEST(If, ConstantConditionTakesOneBranch) {
  TestModel m(13);
  Builder b(m.g);
  Value* cond = b.Const(Tensor::FromVector<bool>(DataType::kBool, {}, {false}));
  auto then_g = m.Subgraph();
  Builder tb(then_g.get());
  // Invalid on purpose: Concat of mismatched ranks.
  tb.Output(tb.Op1("Concat", {tb.Const(Tensor::Int64s({1})), tb.Const(Tensor::ScalarInt64(1))},
                   {{"axis", Attribute::FromInt(0)}}));
  auto else_g = m.Subgraph();
  Builder eb(else_g.get());
  eb.Output(eb.Const(Tensor::Int64s({2, 3})));
  Value* y = b.Op1("If", {cond}, {{"then_branch", Attribute::FromGraph(then_g)}, {"else_branch", Attribute::FromGraph(else_g)}});
  b.Output(y);
  Status s = m.Infer();
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(y->type.ToString(), "int64[2]");
  ASSERT_TRUE(y->data.has_value());
  EXPECT_EQ(IntsOf(*y->data), std::vector<int64_t>({2, 3}));
}

// ---------------------------------------------------------------- Loop

// Loop body: (i, cond, acc) -> (cond, acc + x, acc + x as scan output), x
// read from the outer scope.
TEST(Loop, CarriedAndScanOutputsWithOuterScopeValue) {
  TestModel m(13);
  Builder b(m.g);
  Value* trip = b.Input("M", DataType::kInt64, Shape::Scalar());
  Value* acc0 = b.Input("acc", DataType::kFloat, Shape({Dim(2)}));
  Value* x = b.Input("x", DataType::kFloat, Shape({Dim(2)}));
  auto body = m.Subgraph();
  Builder bb(body.get());
  bb.Input("i", DataType::kInt64, Shape::Scalar());
  Value* c = bb.Input("c", DataType::kBool, Shape::Scalar());
  Value* acc = bb.Input("acc_in", TypeInfo{});
  Value* sum = bb.Op1("Add", {acc, x});
  bb.Output(bb.Op1("Identity", {c}));
  bb.Output(sum);
  bb.Output(bb.Op1("Identity", {sum}));
  auto outs = b.Op("Loop", {trip, nullptr, acc0}, {{"body", Attribute::FromGraph(body)}}, 2);
  b.Output(outs[0]);
  b.Output(outs[1]);
  Status s = m.Infer();
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(outs[0]->type.ToString(), "float32[2]");
  EXPECT_EQ(outs[1]->type.ToString(), "float32[?,2]");

  auto r = m.Run({{"M", RtValue::FromTensor(Tensor::ScalarInt64(3))},
                  {"acc", RtValue::FromTensor(Floats({2}, {0, 1}))},
                  {"x", RtValue::FromTensor(Floats({2}, {10, 20}))}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(FloatsOf((*r)[0].tensor), std::vector<float>({30, 61}));
  EXPECT_EQ((*r)[1].tensor.dims(), std::vector<int64_t>({3, 2}));
  EXPECT_EQ(FloatsOf((*r)[1].tensor), std::vector<float>({10, 21, 20, 41, 30, 61}));

  // Zero iterations: the carried value passes through, the scan output is
  // empty with the body's element shape.
  r = m.Run({{"M", RtValue::FromTensor(Tensor::ScalarInt64(0))},
             {"acc", RtValue::FromTensor(Floats({2}, {0, 1}))},
             {"x", RtValue::FromTensor(Floats({2}, {10, 20}))}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(FloatsOf((*r)[0].tensor), std::vector<float>({0, 1}));
  EXPECT_EQ((*r)[1].tensor.dims(), std::vector<int64_t>({0, 2}));
}

// Loop with cond only: runs while acc < 5 (acc += 2 each step).
TEST(Loop, StopsOnCondition) {
  TestModel m(13);
  Builder b(m.g);
  Value* cond = b.Input("cond", DataType::kBool, Shape::Scalar());
  Value* acc0 = b.Input("acc", DataType::kInt64, Shape::Scalar());
  auto body = m.Subgraph();
  Builder bb(body.get());
  bb.Input("i", DataType::kInt64, Shape::Scalar());
  bb.Input("c", DataType::kBool, Shape::Scalar());
  Value* acc = bb.Input("acc_in", DataType::kInt64, Shape::Scalar());
  Value* next = bb.Op1("Add", {acc, bb.Const(Tensor::ScalarInt64(2))});
  bb.Output(bb.Op1("Less", {next, bb.Const(Tensor::ScalarInt64(5))}));
  bb.Output(next);
  Value* out = b.Op1("Loop", {nullptr, cond, acc0}, {{"body", Attribute::FromGraph(body)}});
  b.Output(out);
  auto r = m.Run({{"cond", RtValue::FromTensor(Tensor::FromVector<bool>(DataType::kBool, {}, {true}))},
                  {"acc", RtValue::FromTensor(Tensor::ScalarInt64(0))}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)[0].tensor.IntAt(0), 6);
}

// ---------------------------------------------------------------- Scan

// Scan (opset 9+): running sum over axis 1 of x [2,3], reversed input, scan
// output on axis 1.
TEST(Scan, AxesAndDirections) {
  TestModel m(16);
  Builder b(m.g);
  Value* init = b.Input("init", DataType::kFloat, Shape({Dim(2)}));
  Value* x = b.Input("x", DataType::kFloat, Shape({Dim(2), Dim::Symbol("t")}));
  auto body = m.Subgraph();
  Builder bb(body.get());
  Value* s = bb.Input("s", DataType::kFloat, Shape({Dim(2)}));
  Value* e = bb.Input("e", DataType::kFloat, Shape({Dim(2)}));
  Value* sum = bb.Op1("Add", {s, e});
  bb.Output(sum);
  bb.Output(bb.Op1("Identity", {sum}));
  auto outs = b.Op("Scan", {init, x},
                   {{"body", Attribute::FromGraph(body)},
                    {"num_scan_inputs", Attribute::FromInt(1)},
                    {"scan_input_axes", Attribute::FromInts({1})},
                    {"scan_input_directions", Attribute::FromInts({1})},
                    {"scan_output_axes", Attribute::FromInts({-1})}},
                   2);
  b.Output(outs[0]);
  b.Output(outs[1]);
  Status st = m.Infer();
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(outs[0]->type.ToString(), "float32[2]");
  EXPECT_EQ(outs[1]->type.ToString(), "float32[2,t]");

  auto r = m.Run({{"init", RtValue::FromTensor(Floats({2}, {0, 100}))},
                  {"x", RtValue::FromTensor(Floats({2, 3}, {1, 2, 3, 4, 5, 6}))}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(FloatsOf((*r)[0].tensor), std::vector<float>({6, 115}));
  // Steps take columns 2, 1, 0: sums [3,106], [5,111], [6,115].
  EXPECT_EQ(FloatsOf((*r)[1].tensor), std::vector<float>({3, 5, 6, 106, 111, 115}));
}

// Scan opset 8: batch axis 0, sequence axis 1, sequence_lens shorter than the
// maximum pads the scan output with zeros.
TEST(Scan, Opset8BatchedWithSequenceLens) {
  TestModel m(8);
  Builder b(m.g);
  Value* lens = b.Input("lens", DataType::kInt64, Shape({Dim(2)}));
  Value* init = b.Input("init", DataType::kFloat, Shape({Dim(2), Dim(1)}));
  Value* x = b.Input("x", DataType::kFloat, Shape({Dim(2), Dim(3), Dim(1)}));
  auto body = m.Subgraph();
  Builder bb(body.get());
  Value* s = bb.Input("s", DataType::kFloat, Shape({Dim(1)}));
  Value* e = bb.Input("e", DataType::kFloat, Shape({Dim(1)}));
  Value* sum = bb.Op1("Add", {s, e});
  bb.Output(sum);
  bb.Output(bb.Op1("Identity", {sum}));
  auto outs = b.Op("Scan", {lens, init, x}, {{"body", Attribute::FromGraph(body)}, {"num_scan_inputs", Attribute::FromInt(1)}}, 2);
  b.Output(outs[0]);
  b.Output(outs[1]);
  Status st = m.Infer();
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(outs[0]->type.ToString(), "float32[2,1]");
  EXPECT_EQ(outs[1]->type.ToString(), "float32[2,3,1]");
  auto r = m.Run({{"lens", RtValue::FromTensor(Tensor::Int64s({3, 2}))},
                  {"init", RtValue::FromTensor(Floats({2, 1}, {0, 10}))},
                  {"x", RtValue::FromTensor(Floats({2, 3, 1}, {1, 2, 3, 4, 5, 6}))}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(FloatsOf((*r)[0].tensor), std::vector<float>({6, 19}));
  EXPECT_EQ(FloatsOf((*r)[1].tensor), std::vector<float>({1, 3, 6, 14, 19, 0}));
}

// ---------------------------------------------------------------- Sequences

TEST(Sequence, SplitInsertAtEraseConcat) {
  TestModel m(18);
  Builder b(m.g);
  Value* x = b.Input("x", DataType::kFloat, Shape({Dim(4), Dim(2)}));
  Value* seq = b.Op1("SplitToSequence", {x, b.Const(Tensor::ScalarInt64(2))});
  Value* ins =
      b.Op1("SequenceInsert", {seq, b.Const(Floats({1, 2}, {9, 9})), b.Const(Tensor::ScalarInt64(0))});
  Value* er = b.Op1("SequenceErase", {ins, b.Const(Tensor::ScalarInt64(-1))});
  Value* len = b.Op1("SequenceLength", {er});
  Value* at = b.Op1("SequenceAt", {er, b.Const(Tensor::ScalarInt64(1))});
  Value* cat = b.Op1("ConcatFromSequence", {er}, {{"axis", Attribute::FromInt(0)}});
  Value* stk = b.Op1("ConcatFromSequence", {seq}, {{"axis", Attribute::FromInt(0)}, {"new_axis", Attribute::FromInt(1)}});
  for (Value* v : {len, at, cat, stk}) b.Output(v);
  Status st = m.Infer();
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(seq->type.ToString(), "seq(float32[2,2])");
  EXPECT_EQ(ins->type.ToString(), "seq(float32[?,2])");
  EXPECT_EQ(len->type.ToString(), "int64[]");
  EXPECT_EQ(cat->type.ToString(), "float32[?,2]");
  EXPECT_EQ(stk->type.ToString(), "float32[?,2,2]");

  auto r = m.Run({{"x", RtValue::FromTensor(Floats({4, 2}, {1, 2, 3, 4, 5, 6, 7, 8}))}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)[0].tensor.IntAt(0), 2);
  EXPECT_EQ(FloatsOf((*r)[1].tensor), std::vector<float>({1, 2, 3, 4}));
  EXPECT_EQ((*r)[2].tensor.dims(), std::vector<int64_t>({3, 2}));
  EXPECT_EQ(FloatsOf((*r)[2].tensor), std::vector<float>({9, 9, 1, 2, 3, 4}));
  EXPECT_EQ((*r)[3].tensor.dims(), std::vector<int64_t>({2, 2, 2}));
}

TEST(Sequence, OutOfRangePositionIsAnError) {
  TestModel m(18);
  Builder b(m.g);
  Value* s = b.Input("s", SeqType(DataType::kFloat, Shape::Unranked()));
  b.Output(b.Op1("SequenceAt", {s, b.Const(Tensor::ScalarInt64(3))}));
  auto r = m.Run({{"s", RtValue::FromSequence({Floats({1}, {1})})}});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("out of range"), std::string::npos) << r.status().message();
}

TEST(SequenceMap, RunsBodyPerElement) {
  TestModel m(18);
  Builder b(m.g);
  Value* s = b.Input("s", SeqType(DataType::kFloat, Shape({Dim::Symbol("n")})));
  Value* y = b.Input("y", DataType::kFloat, Shape({Dim(1)}));
  auto body = m.Subgraph();
  Builder bb(body.get());
  Value* e = bb.Input("e", DataType::kFloat, Shape::Unranked());
  Value* k = bb.Input("k", DataType::kFloat, Shape::Unranked());
  bb.Output(bb.Op1("Add", {e, k}));
  Value* out = b.Op1("SequenceMap", {s, y}, {{"body", Attribute::FromGraph(body)}});
  b.Output(out);
  Status st = m.Infer();
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(out->type.ToString(), "seq(float32[n])");
  auto r = m.Run({{"s", RtValue::FromSequence({Floats({2}, {1, 2}), Floats({1}, {5})})},
                  {"y", RtValue::FromTensor(Floats({1}, {10}))}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ((*r)[0].sequence.size(), 2u);
  EXPECT_EQ(FloatsOf((*r)[0].sequence[0]), std::vector<float>({11, 12}));
  EXPECT_EQ(FloatsOf((*r)[0].sequence[1]), std::vector<float>({15}));
}

// ---------------------------------------------------------------- Optionals

TEST(Optional, WrapHasGet) {
  TestModel m(18);
  Builder b(m.g);
  Value* x = b.Input("x", DataType::kFloat, Shape({Dim(3)}));
  Value* opt = b.Op1("Optional", {x});
  Value* has = b.Op1("OptionalHasElement", {opt});
  Value* get = b.Op1("OptionalGetElement", {opt});
  Attribute type_attr;
  type_attr.type = Attribute::Type::kTypeProto;
  type_attr.type_proto = TypeInfo::Tensor(DataType::kInt64, Shape::Unranked());
  Value* empty = b.Op1("Optional", {}, {{"type", type_attr}});
  Value* has_empty = b.Op1("OptionalHasElement", {empty});
  for (Value* v : {has, get, has_empty}) b.Output(v);
  Status st = m.Infer();
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(opt->type.ToString(), "optional(float32[3])");
  EXPECT_EQ(get->type.ToString(), "float32[3]");
  auto r = m.Run({{"x", RtValue::FromTensor(Floats({3}, {1, 2, 3}))}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE((*r)[0].tensor.data<bool>()[0]);
  EXPECT_EQ(FloatsOf((*r)[1].tensor), std::vector<float>({1, 2, 3}));
  EXPECT_FALSE((*r)[2].tensor.data<bool>()[0]);
}

// ---------------------------------------------------------------- misc

TEST(NonMaxSuppression, SuppressesOverlapsPerClass) {
  TestModel m(11);
  Builder b(m.g);
  Value* boxes = b.Input("boxes", DataType::kFloat, Shape({Dim(1), Dim(3), Dim(4)}));
  Value* scores = b.Input("scores", DataType::kFloat, Shape({Dim(1), Dim(1), Dim(3)}));
  Value* out = b.Op1("NonMaxSuppression", {boxes, scores, b.Const(Tensor::Int64s({3})),
                                           b.Const(Floats({1}, {0.5f})), b.Const(Floats({1}, {0.0f}))});
  b.Output(out);
  ASSERT_TRUE(m.Infer().ok());
  EXPECT_EQ(out->type.ToString(), "int64[?,3]");
  // Box 1 overlaps box 0 almost fully; box 2 is apart.
  auto r =
      m.Run({{"boxes", RtValue::FromTensor(Floats({1, 3, 4}, {0, 0, 1, 1, 0, 0.1f, 1, 1.1f, 5, 5, 6, 6}))},
             {"scores", RtValue::FromTensor(Floats({1, 1, 3}, {0.8f, 0.9f, 0.1f}))}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(IntsOf((*r)[0].tensor), std::vector<int64_t>({0, 0, 1, 0, 0, 2}));
}

TEST(StringSplit, WhitespaceAndMaxsplit) {
  TestModel m(20);
  Builder b(m.g);
  Value* x = b.Input("x", DataType::kString, Shape({Dim(2)}));
  auto outs = b.Op("StringSplit", {x}, {{"maxsplit", Attribute::FromInt(1)}}, 2);
  b.Output(outs[0]);
  b.Output(outs[1]);
  Tensor xs(DataType::kString, {2});
  xs.mutable_strings() = {"  a b  c ", "d"};
  auto r = m.Run({{"x", RtValue::FromTensor(xs)}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)[0].tensor.strings(), std::vector<std::string>({"a", "b  c ", "d", ""}));
  EXPECT_EQ(IntsOf((*r)[1].tensor), std::vector<int64_t>({2, 1}));
}

TEST(BitCast, FloatToInt32KeepsBits) {
  TestModel m(26);
  Builder b(m.g);
  Value* x = b.Input("x", DataType::kFloat, Shape({Dim(2)}));
  Value* y = b.Op1("BitCast", {x}, {{"to", Attribute::FromInt(static_cast<int64_t>(DataType::kInt32))}});
  b.Output(y);
  ASSERT_TRUE(m.Infer().ok());
  EXPECT_EQ(y->type.ToString(), "int32[2]");
  auto r = m.Run({{"x", RtValue::FromTensor(Floats({2}, {1.0f, -2.0f}))}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(IntsOf((*r)[0].tensor), std::vector<int64_t>({0x3f800000, static_cast<int32_t>(0xc0000000)}));
}

TEST(TfIdfVectorizer, CountsBigramsWithSkips) {
  TestModel m(9);
  Builder b(m.g);
  Value* x = b.Input("x", DataType::kInt64, Shape({Dim(6)}));
  Value* y = b.Op1("TfIdfVectorizer", {x},
                   {{"mode", Attribute::FromString("TF")},
                    {"min_gram_length", Attribute::FromInt(2)},
                    {"max_gram_length", Attribute::FromInt(2)},
                    {"max_skip_count", Attribute::FromInt(1)},
                    {"ngram_counts", Attribute::FromInts({0, 0})},
                    {"ngram_indexes", Attribute::FromInts({0, 1})},
                    {"pool_int64s", Attribute::FromInts({1, 2, 1, 3})}});
  b.Output(y);
  ASSERT_TRUE(m.Infer().ok());
  EXPECT_EQ(y->type.ToString(), "float32[2]");
  // Bigrams (skip 0): 12 23 31 12 23; (skip 1): 13 21 32 13 -> (1,2)=2, (1,3)=2.
  auto r = m.Run(
      {{"x", RtValue::FromTensor(Tensor::FromVector<int64_t>(DataType::kInt64, {6}, {1, 2, 3, 1, 2, 3}))}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(FloatsOf((*r)[0].tensor), std::vector<float>({2, 2}));
}

// ImageDecoder on truncated and bit-flipped images must fail cleanly (or
// decode), never crash. Uses the backend test images (fixture "nodetests").
TEST(ImageDecoder, SurvivesCorruptedInput) {
  const std::string root = fixtures::NodeTests();
  if (root.empty()) return;
  const char* cases[] = {"bmp_rgb", "pnm_rgb", "png_rgb", "tiff_rgb", "jpeg_rgb"};
  int tried = 0;
  for (const char* c : cases) {
    std::string path = root + "/test_image_decoder_decode_" + c + "/test_data_set_0/input_0.pb";
    auto t = LoadTensorFile(path);
    EXPECT_TRUE(t.ok()) << path << ": " << t.status().ToString();
    if (!t.ok()) continue;
    ++tried;
    TestModel m(20);
    Builder b(m.g);
    Value* x = b.Input("x", DataType::kUInt8, Shape({Dim::Unknown()}));
    b.Output(b.Op1("ImageDecoder", {x}));
    const std::vector<uint8_t> orig(t->data<uint8_t>(), t->data<uint8_t>() + t->numel());
    uint32_t rng = 12345;
    auto next = [&] { return rng = rng * 1103515245u + 12345u; };
    for (int trial = 0; trial < 300; ++trial) {
      std::vector<uint8_t> bytes = orig;
      if (trial % 3 == 0) bytes.resize(next() % bytes.size());
      for (int k = 0; k < 1 + trial % 5; ++k)
        if (!bytes.empty()) bytes[next() % bytes.size()] ^= static_cast<uint8_t>(1u << (next() % 8));
      Tensor in = Tensor::FromVector<uint8_t>(DataType::kUInt8, {static_cast<int64_t>(bytes.size())}, bytes);
      auto r = m.Run({{"x", RtValue::FromTensor(in)}});
      if (r.ok()) {
        EXPECT_EQ((*r)[0].tensor.rank(), 3);
      }
    }
  }
  EXPECT_EQ(tried, 5);
}

}  // namespace
}  // namespace kiln
