// kiln.Attention's head ranges for the passes that make one tensor hold the
// heads of several inputs (pack_qkv, pack_products): the inputs' layouts, and
// the whole-head ranges of the inputs read as they are.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "ir/graph.h"
#include "ops/attention_layout.h"

namespace kiln::passes {

// Q's, K's and V's layouts (attributes layout and layouts); false when they do not parse.
bool AttentionSlotLayouts(const Node& a, AttentionLayout slot_layout[3]);

// The head count of attention input `slot` read whole; 0 when unknown.
int64_t WholeHeads(const Node& a, size_t slot, AttentionLayout layout);

// The inputs not given a range (count 0 in `ranges`, six ints: first and count for Q, K, V) read their whole
// head axis; false when a head count is unknown.
bool CompleteRanges(const Node& a, const AttentionLayout slot_layout[3], std::vector<int64_t>* ranges);

}  // namespace kiln::passes
