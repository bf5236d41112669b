// Test helper for the passes after fuse_attention: a model with its attention
// chain already fused into one kiln.Attention.
#pragma once

#include <gtest/gtest.h>

#include <memory>

#include "graph_builder.h"
#include "passes/fuse_attention.h"

namespace kiln::testing_build {

// `m` after fuse_attention, which must have made exactly one kiln.Attention.
inline std::unique_ptr<Model> WithFusedAttention(std::unique_ptr<Model> m) {
  PassContext ctx;
  EXPECT_TRUE(RunFuseAttention(*m, ctx).ok());
  EXPECT_EQ(CountOps(*m, "Attention"), 1);
  return m;
}

}  // namespace kiln::testing_build
