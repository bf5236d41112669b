// permute_chains: Transpose/reshape chains become one permutation (the oracle:
// the original chain on the CPU reference, bit for bit).
#include "passes/permute_chains.h"

#include <gtest/gtest.h>

#include "graph_builder.h"

namespace kiln {
namespace {

using testing_build::CountOps;
using testing_build::GraphBuilder;
using testing_build::Perm;
using testing_build::RunPassAndCompare;

Value* Reshaped(GraphBuilder& b, const std::string& name, Value* x, const std::vector<int64_t>& shape) {
  return b.Op("Reshape", name, {x, b.Int64s(name + "_shape", shape)});
}

// MaxViT's window partition after a layout Transpose: NHWC [B, 8, 8, 3] → NCHW
// → [B, 3, 2, 4, 2, 4] → [B, 2, 2, 4, 4, 3] → [B, 4, 16, 3] (windows, pixels, channels).
TEST(PermuteChains, WindowPartitionAfterALayoutTransposeIsOneCopy) {
  GraphBuilder b;
  Value* x = b.Input("x", Shape({Dim::Symbol("batch"), 8, 8, 3}));
  Value* nchw = b.Op("Transpose", "to_nchw", {x}, Perm({0, 3, 1, 2}));
  Value* split = Reshaped(b, "split", nchw, {-1, 3, 2, 4, 2, 4});
  Value* windows = b.Op("Transpose", "windows", {split}, Perm({0, 2, 4, 3, 5, 1}));
  b.Output(Reshaped(b, "merged", windows, {-1, 4, 16, 3}));
  auto f = RunPassAndCompare(*b.Done(), RunPermuteChains, 3, 0.0);
  EXPECT_EQ(CountOps(*f, "Transpose"), 1);
}

// Transposes that undo each other through reshapes: no copy at all.
TEST(PermuteChains, ChainThatIsTheIdentityBecomesAReshape) {
  GraphBuilder b;
  Value* x = b.Input("x", Shape({2, 3, 4}));
  Value* t = b.Op("Transpose", "t", {x}, Perm({0, 2, 1}));  // [2, 4, 3]
  Value* r = Reshaped(b, "r", Reshaped(b, "u", t, {2, 4, 3, 1}), {2, 4, 3});
  b.Output(b.Op("Transpose", "back", {r}, Perm({0, 2, 1})));
  auto f = RunPassAndCompare(*b.Done(), RunPermuteChains, 2, 0.0);
  EXPECT_EQ(CountOps(*f, "Transpose"), 0);
}

// MaxViT's window departition then grid partition regroups H = 2·3 (windows,
// pixels) as 3·2 (grid, cells): a gather, not a permutation. The chain splits
// there; the grid partition and its head swap merge.
TEST(PermuteChains, RegroupingThatIsNoPermutationSplitsTheChain) {
  GraphBuilder b;
  Value* x = b.Input("x", Shape({2, 4, 9, 3}));  // [B, windows, pixels, C]
  Value* w = Reshaped(b, "w", x, {2, 2, 2, 3, 3, 3});
  Value* nchw = b.Op("Transpose", "departition", {w}, Perm({0, 5, 1, 3, 2, 4}));  // [B, C, 2, 3, 2, 3]
  Value* g = Reshaped(b, "grid", nchw, {2, 3, 3, 2, 3, 2});
  Value* gp = b.Op("Transpose", "partition", {g}, Perm({0, 2, 4, 3, 5, 1}));  // [B, 3, 3, 2, 2, C]
  Value* m = Reshaped(b, "m", gp, {2, 9, 4, 3});
  b.Output(b.Op("Transpose", "swap", {m}, Perm({0, 2, 1, 3})));  // [B, 4, 9, C]
  auto f = RunPassAndCompare(*b.Done(), RunPermuteChains, 2, 0.0);
  EXPECT_EQ(CountOps(*f, "Transpose"), 2);
}

// A single Transpose that moves data, and a value read twice, stay as they are.
TEST(PermuteChains, NothingToSaveStays) {
  GraphBuilder b;
  Value* x = b.Input("x", Shape({2, 3, 4}));
  Value* t = b.Op("Transpose", "t", {x}, Perm({0, 2, 1}));
  Value* r = Reshaped(b, "r", t, {2, 12});
  b.Output(r);
  b.Output(b.Op("Transpose", "t2", {Reshaped(b, "r2", t, {8, 3})}, Perm({1, 0})));
  auto f = RunPassAndCompare(*b.Done(), RunPermuteChains, 2, 0.0);
  EXPECT_EQ(CountOps(*f, "Transpose"), 2);
}

}  // namespace
}  // namespace kiln
