// cancel_transposes: T⁻¹(elementwise chain(T(x), constants)) → the chain on x, constants permuted. The oracle
// is the graph before the pass on the CPU reference, bit for bit (elementwise ops commute with layouts).
#include "passes/cancel_transposes.h"

#include <gtest/gtest.h>

#include "graph_builder.h"

namespace kiln {
namespace {

using testing_build::CountOps;
using testing_build::GraphBuilder;
using testing_build::RunPassAndCompare;

const std::vector<int64_t> kToNchw = {0, 3, 1, 2}, kToNhwc = {0, 2, 3, 1};

struct Form {
  std::vector<int64_t> back = kToNhwc;  // the outer Transpose's perm (kToNhwc: the inverse)
  bool front_read_elsewhere = false;
  bool chain_read_elsewhere = false;
};

// ConvNeXt's block end: h [b, 5, 6, 8] (channels last) → Transpose to NCHW → Mul(layer scale [8, 1, 1]) →
// Add(scalar) → Relu → Transpose back → Add(residual r).
std::unique_ptr<Model> Block(const Form& f) {
  GraphBuilder b;
  Value* h = b.Input("h", Shape({Dim::Symbol("b"), 5, 6, 8}));
  Value* r = b.Input("r", Shape({Dim::Symbol("b"), 5, 6, 8}));
  Value* t = b.Op("Transpose", "to_nchw", {h}, {{"perm", Attribute::FromInts(kToNchw)}});
  Value* scaled = b.Op("Mul", "layer_scale", {b.Const("gamma", {8, 1, 1}), t});
  Value* shifted = b.Op("Add", "shift", {scaled, b.Scalar("c", 0.25)});
  Value* act = b.Op("Relu", "act", {shifted});
  Value* back = b.Op("Transpose", "to_nhwc", {act}, {{"perm", Attribute::FromInts(f.back)}});
  b.Output(b.Op("Add", "residual",
                {back, f.back == kToNhwc ? r : b.Input("r2", Shape({Dim::Symbol("b"), 6, 5, 8}))}));
  if (f.front_read_elsewhere) b.Output(b.Op("Sigmoid", "other", {t}));
  if (f.chain_read_elsewhere) b.Output(scaled);
  return b.Done();
}

TEST(CancelTransposes, TheLayerScaleChainRunsOnTheChannelsLastTensor) {
  auto m = RunPassAndCompare(*Block({}), RunCancelTransposes);
  EXPECT_EQ(CountOps(*m, "Transpose"), 0);
  EXPECT_EQ(CountOps(*m, "Mul"), 1);
  for (const Node* n : m->graph->nodes()) {
    if (n->op_type != "Mul") continue;
    EXPECT_EQ(n->input(1)->name(), "h");
    EXPECT_EQ(n->input(0)->shape().ToString(), Shape({1, 1, 1, 8}).ToString()) << "gamma, permuted";
  }
}

TEST(CancelTransposes, AFrontTransposeReadElsewhereStays) {
  Form f;
  f.front_read_elsewhere = true;
  auto m = RunPassAndCompare(*Block(f), RunCancelTransposes);
  EXPECT_EQ(CountOps(*m, "Transpose"), 1);
}

TEST(CancelTransposes, OtherFormsStay) {
  Form not_inverse;
  not_inverse.back = {0, 3, 2, 1};
  auto m = RunPassAndCompare(*Block(not_inverse), RunCancelTransposes);
  EXPECT_EQ(CountOps(*m, "Transpose"), 2);
  Form shared;
  shared.chain_read_elsewhere = true;
  EXPECT_EQ(CountOps(*RunPassAndCompare(*Block(shared), RunCancelTransposes), "Transpose"), 2);
}

}  // namespace
}  // namespace kiln
