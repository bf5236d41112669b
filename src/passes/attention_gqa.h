// Build pass (run by RunBuildPasses after fuse_attention): grouped-query and
// multi-query attention (Llama, Mistral, Qwen, Gemma, Falcon) share each K/V
// head among a group of query heads. Exporters write HF's repeat_kv, which
// copies K and V to one head per query head before the attention:
//
//   K = Reshape(Expand(Unsqueeze(K0, h + 1), [.., Hkv, g, ..]), [.., Hkv·g, ..])
//
// with h the layout's head axis and K0 [B, Hkv, S, D] in "bhsd" (the other
// layouts alike). kiln.Attention reads K0 and V0 directly (query head h uses
// K/V head h / g; ops/attention_layout.h), so the two copies go, with the
// shape arithmetic that sized them. Conditions: K and V both come through
// the chain with the same Hkv; the Expand only broadcasts the new group axis;
// every intermediate has one use and is not a graph output. Only the main
// graph.
#pragma once

#include "passes/pass.h"

namespace kiln {

Status RunAttentionGqa(Model& model, PassContext& ctx);

}  // namespace kiln
