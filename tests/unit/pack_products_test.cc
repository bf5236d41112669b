// pack_products: products of one input that one generated kernel reads (a gated MLP's gate and up) become
// one product read through column Slices. Oracles: the graph before the pass on the CPU reference, and the
// whole GPU build (fuse_pointwise absorbs the Slices: no copy kernels) against the unpacked build.
#include "passes/pack_products.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>

#include "build/build_passes.h"
#include "graph_builder.h"
#include "ir/clone.h"
#include "reference/compare.h"
#include "reference/executor.h"
#ifdef KILN_HAS_CUDA
#include "build/cuda/nvrtc_compile.h"
#endif

namespace kiln {
namespace {

using testing_build::CountOps;
using testing_build::GraphBuilder;
using testing_build::RunPassAndCompare;

struct Form {
  bool gate_reduced = false;  // gate is also read by a ReduceSum (no generated elementwise kernel)
  bool apart = false;         // gate and up end in separate outputs: no kernel reads both
};

// Llama's MLP: down(SiLU(gate(x)) · up(x)).
std::unique_ptr<Model> GatedMlp(const Form& f) {
  GraphBuilder b;
  Value* x = b.Input("x", Shape({Dim::Symbol("b"), 5, 16}));
  Value* gate = b.Op("MatMul", "gate", {x, b.Const("wg", {16, 32})});
  Value* up = b.Op("MatMul", "up", {x, b.Const("wu", {16, 32})});
  Value* silu = b.Op("Mul", "silu", {gate, b.Op("Sigmoid", "sig", {gate})});
  if (f.gate_reduced) b.Output(b.Op("ReduceSum", "gate_sum", {gate, b.Int64s("axes", {-1})}));
  if (f.apart) {
    b.Output(silu);
    b.Output(b.Op("Relu", "up_relu", {up}));
    return b.Done();
  }
  b.Output(b.Op("MatMul", "down", {b.Op("Mul", "gated", {silu, up}), b.Const("wd", {32, 16})}));
  return b.Done();
}

TEST(PackProducts, GateAndUpBecomeOneProduct) {
  auto m = RunPassAndCompare(*GatedMlp({}), RunPackProducts, 2, 1e-6);
  EXPECT_EQ(CountOps(*m, "MatMul"), 2) << "gate+up, down";
  EXPECT_EQ(CountOps(*m, "Slice"), 2);
}

TEST(PackProducts, OtherFormsStay) {
  Form reduced;
  reduced.gate_reduced = true;
  EXPECT_EQ(CountOps(*RunPassAndCompare(*GatedMlp(reduced), RunPackProducts), "MatMul"), 3);
  Form apart;
  apart.apart = true;
  EXPECT_EQ(CountOps(*RunPassAndCompare(*GatedMlp(apart), RunPackProducts), "MatMul"), 2) << "gate, up";
}

// Llama's Q and K (grouped: 4 and 2 heads of 8): each product viewed as heads, transposed and rotated
// (x·cos + rotate_half(x)·sin) by its own kernel. They pack as one product viewed as 6 heads, each kernel
// reading its heads through a Slice it absorbs.
// With `attention`, V (2 heads) is a third product whose view a kiln.Attention reads with the rotated Q and
// K: it reads V as a head range of the packed view instead.
// With `seq` > 0 the sequence length is known and the head views write it out ([0, seq, H, D], as torch 2
// exports Llama) instead of copying it (0).
std::unique_ptr<Model> RotaryQk(bool attention = false, int64_t seq = 0) {
  GraphBuilder b;
  const Dim s = seq > 0 ? Dim(seq) : Dim::Symbol("s");
  Value* x = b.Input("x", Shape({Dim::Symbol("b"), s, 16}));
  Value* cos = b.Input("cos", Shape({s, 8}));
  Value* sin = b.Input("sin", Shape({s, 8}));
  std::vector<Value*> rotated;
  for (const auto& named : {std::pair<std::string, int64_t>{"q", 4}, {"k", 2}}) {
    const std::string name = named.first;  // not a structured binding: the lambda below captures it
    const int64_t heads = named.second;
    Value* y = b.Op("MatMul", name, {x, b.Const(name + "_w", {16, heads * 8})});
    Value* h = b.Op("Reshape", name + "_heads", {y, b.Int64s(name + "_shape", {0, seq, heads, 8})},
                    {{"allowzero", Attribute::FromInt(0)}});
    Value* t = b.Op("Transpose", name + "_t", {h}, {{"perm", Attribute::FromInts({0, 2, 1, 3})}});
    auto half = [&](const char* tag, int64_t from, int64_t to) {
      return b.Op("Slice", name + tag,
                  {t, b.Int64s(name + tag + "_s", {from}), b.Int64s(name + tag + "_e", {to}),
                   b.Int64s(name + tag + "_a", {3})});
    };
    Value* rot =
        b.Op("Concat", name + "_rot", {b.Op("Neg", name + "_neg", {half("_hi", 4, 8)}), half("_lo", 0, 4)},
             {{"axis", Attribute::FromInt(-1)}});
    rotated.push_back(b.Op("Add", name + "_rope",
                           {b.Op("Mul", name + "_c", {t, cos}), b.Op("Mul", name + "_s", {rot, sin})}));
  }
  if (!attention) {
    for (Value* r : rotated) b.Output(r);
    return b.Done();
  }
  Value* v = b.Op("Reshape", "v_heads",
                  {b.Op("MatMul", "v", {x, b.Const("v_w", {16, 16})}), b.Int64s("v_shape", {0, seq, 2, 8})},
                  {{"allowzero", Attribute::FromInt(0)}});
  Attribute layouts;
  layouts.type = Attribute::Type::kStrings;
  layouts.strings = {"bhsd", "bhsd", "bshd", "bshd"};
  b.Output(b.Op("Attention", "attn", {rotated[0], rotated[1], v},
                {{"scale", Attribute::FromFloat(0.35f)}, {"layouts", layouts}}, "kiln"));
  return b.Done();
}

TEST(PackProducts, RotatedQAndKBecomeOneProductOfHeads) {
  auto m = RunPassAndCompare(*RotaryQk(), RunPackProducts, 3, 1e-6);
  EXPECT_EQ(CountOps(*m, "MatMul"), 1);
  EXPECT_EQ(CountOps(*m, "Reshape"), 1) << "one view of the packed product as 6 heads";
  std::unique_ptr<Model> built = RotaryQk();
  BuildOptions opts;
  std::vector<std::string> notes;
  ASSERT_TRUE(RunBuildPasses(*built, opts, &notes).ok());
  EXPECT_EQ(CountOps(*built, "Slice"), 0) << "each rotation kernel reads its heads in place";
  EXPECT_EQ(CountOps(*built, "MatMul"), 1);
  EXPECT_EQ(CountOps(*built, "Pointwise"), 2);
#ifdef KILN_HAS_CUDA
  cuda::KernelCache cache;  // the kernels that read the packed heads compile (NVRTC)
  Status compiled = cuda::CompilePointwiseKernels(*built, 90, cache);
  EXPECT_TRUE(compiled.ok()) << compiled.ToString();
#endif
}

TEST(PackProducts, TheAttentionReadsVAsAHeadRange) {
  auto m = RunPassAndCompare(*RotaryQk(true), RunPackProducts, 3, 1e-6);
  EXPECT_EQ(CountOps(*m, "MatMul"), 1) << "Q, K and V";
  for (const Node* n : m->graph->nodes()) {
    if (n->op_type != "Attention") continue;
    ASSERT_NE(n->attr("head_ranges"), nullptr);
    EXPECT_EQ(n->attr("head_ranges")->ints, (std::vector<int64_t>{0, 4, 0, 2, 6, 2}));
  }
}

TEST(PackProducts, ViewsThatWriteOutTheSequenceLengthPackToo) {
  auto m = RunPassAndCompare(*RotaryQk(true, 5), RunPackProducts, 3, 1e-6);
  EXPECT_EQ(CountOps(*m, "MatMul"), 1) << "Q, K and V";
}

// The GPU build: the Slices are views of the generated kernel (none left), one product fewer, and the built
// graph computes what the build without pointwise fusion (hence without the packing) does.
TEST(PackProducts, TheBuildsKernelReadsTheColumnsInPlace) {
  for (bool fp16 : {false, true}) {
    SCOPED_TRACE(fp16 ? "fp16" : "fp32");
    std::unique_ptr<Model> packed = GatedMlp({}), plain = CloneModel(*packed);
    BuildOptions opts;
    opts.fp16 = fp16;
    std::vector<std::string> notes;
    ASSERT_TRUE(RunBuildPasses(*packed, opts, &notes).ok());
    opts.fuse_pointwise = false;
    ASSERT_TRUE(RunBuildPasses(*plain, opts, &notes).ok());
    EXPECT_EQ(CountOps(*packed, "Slice"), 0);
    EXPECT_EQ(CountOps(*packed, "MatMul") + CountOps(*packed, "FusedMatMul"),
              CountOps(*plain, "MatMul") + CountOps(*plain, "FusedMatMul") - 1);
    auto feed = testing_build::RandomFeed(*plain, 2);
    auto want = ReferenceExecutor(*plain).Run(feed);
    auto got = ReferenceExecutor(*packed).Run(feed);
    ASSERT_TRUE(want.ok() && got.ok());
    const double bound = fp16 ? 2e-3 : 1e-6;
    const Tensor& w = (*want)[0].tensor;
    EXPECT_LE(CompareTensors(w, (*got)[0].tensor, Tolerance::RelL2(bound)).rel_l2, bound);
#ifdef KILN_HAS_CUDA
    cuda::KernelCache cache;  // the kernel that reads the packed product's columns compiles (NVRTC)
    Status compiled = cuda::CompilePointwiseKernels(*packed, 90, cache);
    EXPECT_TRUE(compiled.ok()) << compiled.ToString();
#endif
  }
}

}  // namespace
}  // namespace kiln
