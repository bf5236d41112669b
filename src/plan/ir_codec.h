// kiln's own binary form of the IR, the plan's 'graph' and 'weights'
// sections (docs/PLAN.md): nodes, attributes (subgraphs too), values with
// their types and symbolic dims; constant bytes live in a separate weights
// blob, each at a 64-byte aligned offset, referenced by (offset, size) u64s,
// so the blob can be memory-mapped and has no 2 GB limit. No protobuf.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "ir/graph.h"

namespace kiln {

struct EncodedModel {
  std::string graph;    // the IR, constants by reference
  std::string weights;  // the constants' bytes, 64-byte aligned
  std::string folded;   // the main graph's node outputs folded at build time, by reference
};

inline constexpr size_t kWeightAlignment = 64;

EncodedModel EncodeModel(const Model& model);
// Checks every count, offset, size, enum and name against the bytes: an error
// "corrupted plan: graph section: ..." instead of a crash or a large allocation.
// With `owner` (the storage `weights` lies in, e.g. a memory-mapped plan), the
// constants borrow their bytes from it instead of being copied.
Expected<std::unique_ptr<Model>> DecodeModel(std::string_view graph, std::string_view weights,
                                             std::shared_ptr<const void> owner = nullptr);
// Gives the decoded model's folded node outputs their values (EncodedModel::folded), checked
// against their types, so the runtime needs no shape inference to fold them again.
Status DecodeFolded(std::string_view folded, std::string_view weights, std::shared_ptr<const void> owner,
                    Model* model);

}  // namespace kiln
