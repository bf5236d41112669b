// quant_casts: the Casts between an FP16 graph and its INT8 layers fold into the layers and QuantizeLinears.
// The oracle is the graph before the pass on the CPU reference, bit for bit (float16 → float32 is exact, the
// QuantizeLinear of a float16 x divides in float32, and the layer rounds to float16 once, as the Cast did).
#include "passes/quant_casts.h"

#include <gtest/gtest.h>

#include "graph_builder.h"
#include "int8_graph.h"

namespace kiln {
namespace {

using testing_build::CountOps;
using testing_build::GraphBuilder;
using testing_build::RunPassAndCompare;
using namespace testing_int8;  // NOLINT: the INT8 graph helpers

Value* CastTo(GraphBuilder& b, const std::string& name, Value* v, DataType to) {
  return b.Op("Cast", name, {v}, {{"to", Attribute::FromInt(static_cast<int64_t>(to))}});
}

// x (float16) → Cast → QuantizeLinear → QConv (z: r (float16) → Cast) → Cast to float16.
std::unique_ptr<Model> Border(bool cast_read_elsewhere) {
  GraphBuilder b(DataType::kFloat16);
  Value* x = b.Input("x", Shape({Dim::Symbol("n"), 8, 6, 6}));
  Value* r = b.Input("r", Shape({Dim::Symbol("n"), 16, 6, 6}));
  Value* x32 = CastTo(b, "x32", x, DataType::kFloat);
  Value* y = QConv(b, "conv", Quantize(b, "xq", x32, 0.01f), 0.01f);
  y->producer()->AddInput(nullptr);  // y_scale, y_zp omitted: a float output
  y->producer()->AddInput(nullptr);
  y->producer()->AddInput(CastTo(b, "r32", r, DataType::kFloat));
  y->producer()->attrs["activation"] = Attribute::FromString("Relu");
  b.Output(CastTo(b, "y16", y, DataType::kFloat16));
  if (cast_read_elsewhere) b.Output(b.Op("Relu", "other", {x32}));
  return b.Done();
}

TEST(QuantCasts, BorderCastsFoldIntoTheLayerAndItsQuantizeLinear) {
  auto m = RunPassAndCompare(*Border(false), RunQuantCasts);
  EXPECT_EQ(CountOps(*m, "Cast"), 0);
  for (const Node* n : m->graph->nodes()) {
    if (n->op_type == "QuantizeLinear") {
      EXPECT_EQ(n->input(0)->dtype(), DataType::kFloat16);
      continue;
    }
    if (n->op_type != "QConv") continue;
    EXPECT_EQ(n->input(9)->dtype(), DataType::kFloat16);
    EXPECT_EQ(n->output(0)->dtype(), DataType::kFloat16);
  }
}

TEST(QuantCasts, ACastReadByOtherOpsStays) {
  auto m = RunPassAndCompare(*Border(true), RunQuantCasts);
  EXPECT_EQ(CountOps(*m, "Cast"), 1) << "x's, read by the Relu too";
}

}  // namespace
}  // namespace kiln
