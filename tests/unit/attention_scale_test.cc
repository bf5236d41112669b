// attention_scale: scalar Muls and Divs on kiln.Attention's Q and K, through views, go into its scale. The
// oracle is the graph before the pass on the CPU reference (kiln.Attention's reference against itself with
// the Muls applied as ONNX ops).
#include "passes/attention_scale.h"

#include <gtest/gtest.h>

#include "graph_builder.h"

namespace kiln {
namespace {

using testing_build::CountOps;
using testing_build::GraphBuilder;
using testing_build::RunPassAndCompare;

struct Form {
  bool k_read_elsewhere = false;
  bool per_channel = false;  // Q's Mul by a [D] constant: no scalar
};

// Q = Transpose(Reshape(Mul(q, 0.5)))  (BART: scaled before the head split), K = Div(Transpose(k), 4)
// (openai-whisper scales after it), V plain; bhsd attention with scale 0.25.
std::unique_ptr<Model> Scaled(const Form& f) {
  GraphBuilder b;
  const Dim batch = Dim::Symbol("b");
  Value* q = b.Input("q", Shape({batch, 5, 8}));
  Value* k = b.Input("k", Shape({batch, 5, 2, 4}));
  Value* v = b.Input("v", Shape({batch, 2, 5, 4}));
  Value* qs = b.Op("Mul", "q_scaling", {q, f.per_channel ? b.Const("q_c", {8}) : b.Scalar("q_c", 0.5)});
  Value* qh = b.Op("Transpose", "q_t", {b.Op("Reshape", "q_heads", {qs, b.Int64s("q_shape", {0, 0, 2, 4})})},
                   {{"perm", Attribute::FromInts({0, 2, 1, 3})}});
  Value* kt = b.Op("Transpose", "k_t", {k}, {{"perm", Attribute::FromInts({0, 2, 1, 3})}});
  Value* ks = b.Op("Div", "k_scaling", {kt, b.Scalar("k_c", 4.0)});
  if (f.k_read_elsewhere) b.Output(ks);
  b.Output(b.Op("Attention", "attn", {qh, ks, v}, {{"scale", Attribute::FromFloat(0.25f)}}, "kiln"));
  return b.Done();
}

float Scale(const Model& m) {
  for (const Node* n : m.graph->nodes())
    if (n->op_type == "Attention") return n->attr("scale")->f;
  return 0.f;
}

TEST(AttentionScale, QAndKScalesThroughViewsGoIntoTheOp) {
  auto m = RunPassAndCompare(*Scaled({}), RunAttentionScale, 2, 1e-6);
  EXPECT_EQ(CountOps(*m, "Mul") + CountOps(*m, "Div"), 0);
  EXPECT_FLOAT_EQ(Scale(*m), 0.25f * 0.5f / 4.f);
}

TEST(AttentionScale, OtherFormsStay) {
  Form shared;
  shared.k_read_elsewhere = true;
  auto m = RunPassAndCompare(*Scaled(shared), RunAttentionScale, 2, 1e-6);
  EXPECT_EQ(CountOps(*m, "Div"), 1) << "K's scaled tensor is read elsewhere";
  EXPECT_FLOAT_EQ(Scale(*m), 0.25f * 0.5f);
  Form channels;
  channels.per_channel = true;
  m = RunPassAndCompare(*Scaled(channels), RunAttentionScale, 2, 1e-6);
  EXPECT_EQ(CountOps(*m, "Mul"), 1) << "a per-channel Mul is no scale";
}

}  // namespace
}  // namespace kiln
