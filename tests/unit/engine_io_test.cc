// engine_io: the input-shape rules every Context shares. InputShapesAgree
// decides when SetInputShape prepares a GPU context (include/kiln/engine.h).
#include "runtime/engine_io.h"

#include <gtest/gtest.h>

#include "graph_builder.h"

namespace kiln {
namespace {

using testing_build::GraphBuilder;

// BERT's inputs: ids and mask share [batch, seq]; a third input has a dim
// of its own and a fixed one.
std::unique_ptr<Model> TwoInputsSharingDims() {
  GraphBuilder b;
  b.Input("ids", Shape({Dim::Symbol("batch"), Dim::Symbol("seq")}));
  b.Input("mask", Shape({Dim::Symbol("batch"), Dim::Symbol("seq")}));
  b.Input("pixels", Shape({Dim::Symbol("batch"), Dim(3), Dim::Symbol("width")}));
  return b.Done();
}

using Shapes = std::map<std::string, std::vector<int64_t>>;

TEST(InputShapesAgree, NeedsEveryDynamicInput) {
  auto m = TwoInputsSharingDims();
  EXPECT_FALSE(InputShapesAgree(*m->graph, Shapes{{"ids", {2, 16}}, {"mask", {2, 16}}}));
  EXPECT_TRUE(
      InputShapesAgree(*m->graph, Shapes{{"ids", {2, 16}}, {"mask", {2, 16}}, {"pixels", {2, 3, 40}}}));
}

TEST(InputShapesAgree, SharedNamedDimsMustBeEqual) {
  auto m = TwoInputsSharingDims();
  // Half-way from seq 16 to seq 32: ids moved, mask not yet.
  EXPECT_FALSE(
      InputShapesAgree(*m->graph, Shapes{{"ids", {2, 32}}, {"mask", {2, 16}}, {"pixels", {2, 3, 40}}}));
  // batch disagrees between mask and pixels.
  EXPECT_FALSE(
      InputShapesAgree(*m->graph, Shapes{{"ids", {2, 32}}, {"mask", {2, 32}}, {"pixels", {4, 3, 40}}}));
  // Dims of their own are free.
  EXPECT_TRUE(
      InputShapesAgree(*m->graph, Shapes{{"ids", {4, 32}}, {"mask", {4, 32}}, {"pixels", {4, 3, 7}}}));
}

TEST(InputShapesAgree, InitializerInputsNeedNoShape) {
  GraphBuilder b;
  b.Input("x", Shape({Dim::Symbol("n"), Dim(4)}));
  Value* w = b.Input("w", Shape({Dim(4)}));
  w->data = Tensor(DataType::kFloat, {4});
  auto m = b.Done();
  EXPECT_TRUE(InputShapesAgree(*m->graph, Shapes{{"x", {5, 4}}}));
  EXPECT_FALSE(InputShapesAgree(*m->graph, Shapes{}));
}

}  // namespace
}  // namespace kiln
