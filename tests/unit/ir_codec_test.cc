// kiln's binary IR (plan/ir_codec.h, the plan's graph and weights sections):
// models with subgraphs and zoo models round-trip (printed IR with types and
// every weight's bytes), weights are 64-byte aligned, and damaged bytes give
// a "corrupted plan" error, never a crash.
#include "plan/ir_codec.h"

#include <gtest/gtest.h>

#include <cstring>

#include "fixtures.h"
#include "graph_builder.h"
#include "ir/printer.h"
#include "onnx/import.h"
#include "passes/shape_inference.h"

namespace kiln {
namespace {

std::string Printed(const Model& m) {
  PrintOptions po;
  po.value_types = true;
  po.max_tensor_elements = 1 << 20;
  return PrintGraph(m, po);
}

std::unique_ptr<Model> Load(const std::string& path) {
  auto m = LoadModel(path);
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  if (!m.ok()) return nullptr;
  EXPECT_TRUE(InferShapes(**m).ok());
  return std::move(m).value();
}

void ExpectRoundTrip(const std::string& path) {
  SCOPED_TRACE(path);
  std::unique_ptr<Model> m = Load(path);
  ASSERT_TRUE(m);
  EncodedModel e = EncodeModel(*m);
  auto back = DecodeModel(e.graph, e.weights);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ASSERT_TRUE(DecodeFolded(e.folded, e.weights, nullptr, back->get()).ok());
  // The runtime runs no shape inference on a plan: the decoded types and
  // folded values are already what inference gives.
  EXPECT_EQ(Printed(*m), Printed(**back));
  ASSERT_TRUE(InferShapes(**back).ok());
  EXPECT_EQ(Printed(*m), Printed(**back));
  EXPECT_EQ(EncodeModel(**back).weights, e.weights);
}

// Node outputs inference folded (a Shape of a static input and arithmetic on
// it) come back with their values from the 'folded' section; a folded value
// that names no node output, or disagrees with its type, is an error.
TEST(IrCodec, FoldedValuesRoundTrip) {
  testing_build::GraphBuilder b;
  Value* x = b.Input("x", Shape({Dim(2), Dim(3), Dim(4)}));
  Value* shape = b.Op("Shape", "shape", {x});
  Value* head = b.Op("Slice", "head", {shape, b.Int64s("s0", {0}), b.Int64s("e1", {1})});
  Value* target = b.Op("Concat", "target", {head, b.Int64s("rest", {-1})}, {{"axis", Attribute::FromInt(0)}});
  b.Output(b.Op("Reshape", "flat", {x, target}));
  std::unique_ptr<Model> m = b.Done();
  ASSERT_TRUE(InferShapes(*m).ok());
  size_t folded = 0;
  for (const Value* v : m->graph->values()) folded += v->data && v->producer();
  ASSERT_EQ(folded, 3u) << "the shape arithmetic on a static input folds";
  EncodedModel e = EncodeModel(*m);
  auto back = DecodeModel(e.graph, e.weights);
  ASSERT_TRUE(back.ok());
  ASSERT_TRUE(DecodeFolded(e.folded, e.weights, nullptr, back->get()).ok());
  size_t found = 0;
  for (const Value* v : (*back)->graph->values()) found += v->data && v->producer();
  EXPECT_EQ(found, folded);
  // Twice: the values are set already.
  Status again = DecodeFolded(e.folded, e.weights, nullptr, back->get());
  EXPECT_NE(again.message().find("corrupted plan: folded section"), std::string::npos) << again.ToString();
  for (size_t n = 0; n < e.folded.size(); ++n) {
    auto fresh = DecodeModel(e.graph, e.weights);
    ASSERT_TRUE(fresh.ok());
    EXPECT_FALSE(
        DecodeFolded(std::string_view(e.folded).substr(0, n), e.weights, nullptr, fresh->get()).ok());
  }
}

TEST(IrCodec, SubgraphsRoundTrip) {
  for (const char* name :
       {"test_if", "test_loop11", "test_scan9_sum", "test_sequence_map_identity_1_sequence"})
    ExpectRoundTrip(fixtures::NodeTests() + "/" + name + "/model.onnx");
}

TEST(IrCodec, ZooModelsRoundTrip) {
  for (const char* name : {"resnet18", "bert_encoder"}) ExpectRoundTrip(fixtures::ZooModel(name));
}

TEST(IrCodec, WeightsAreAligned) {
  std::unique_ptr<Model> m = Load(fixtures::ZooModel("resnet18"));
  ASSERT_TRUE(m);
  EncodedModel e = EncodeModel(*m);
  size_t n = 0;
  for (const Value* v : m->graph->values())
    if (v->data && !v->producer() && v->data->nbytes() >= 64) {
      size_t at = e.weights.find(std::string(static_cast<const char*>(v->data->raw()), 64));
      ASSERT_NE(at, std::string::npos) << v->name();
      EXPECT_EQ(at % kWeightAlignment, 0u) << v->name();
      ++n;
    }
  EXPECT_GT(n, 10u);
}

TEST(IrCodec, DamagedBytesAreErrors) {
  std::unique_ptr<Model> m = Load(fixtures::NodeTests() + "/test_if/model.onnx");
  ASSERT_TRUE(m);
  EncodedModel e = EncodeModel(*m);
  for (size_t n = 0; n < e.graph.size(); ++n) {
    auto r = DecodeModel(std::string_view(e.graph).substr(0, n), e.weights);
    ASSERT_FALSE(r.ok()) << n;
    EXPECT_EQ(r.status().message().rfind("corrupted plan: ", 0), 0u) << r.status().message();
  }
  std::unique_ptr<Model> r18 = Load(fixtures::ZooModel("resnet18"));
  ASSERT_TRUE(r18);
  EncodedModel w = EncodeModel(*r18);
  auto short_blob = DecodeModel(w.graph, std::string_view(w.weights).substr(0, w.weights.size() / 2));
  ASSERT_FALSE(short_blob.ok());
  EXPECT_NE(short_blob.status().message().find("past the end of the weights section"), std::string::npos)
      << short_blob.status().message();
  std::string flipped = w.graph;
  for (size_t i = 4; i < flipped.size(); i += 97) flipped[i] = static_cast<char>(~flipped[i]);
  EXPECT_FALSE(DecodeModel(flipped, w.weights).ok());
}

}  // namespace
}  // namespace kiln
