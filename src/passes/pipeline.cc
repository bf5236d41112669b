// The simplifier's pass pipeline (see pipeline.h).
#include "passes/pipeline.h"

#include <string>

#include "ir/verifier.h"
#include "passes/constant_fold.h"
#include "passes/cse.h"
#include "passes/dce.h"
#include "passes/drop_expand_as.h"
#include "passes/eliminate_identity.h"
#include "passes/eliminate_nop.h"
#include "passes/flatten_concat.h"
#include "passes/fold_pad.h"
#include "passes/fold_prenorm.h"
#include "passes/fold_scale.h"
#include "passes/fold_shapes.h"
#include "passes/fuse_batchnorm.h"
#include "passes/fuse_bias.h"
#include "passes/global_pool.h"
#include "passes/infer_shapes_pass.h"
#include "passes/inline_if.h"
#include "passes/merge_layout.h"
#include "passes/scatter_nd_grid.h"

namespace kiln {
namespace {

// Unknown parts of `t` taken from `declared` (same kind, dtype and rank only).
void FillFromDeclared(TypeInfo& t, const TypeInfo& declared) {
  if (!t.known()) {
    t = declared;
    return;
  }
  if (declared.kind != t.kind || declared.dtype != t.dtype || !declared.shape.rank_known()) return;
  if (!t.shape.rank_known()) {
    t.shape = declared.shape;
    return;
  }
  if (t.shape.rank() != declared.shape.rank()) return;
  for (int i = 0; i < t.shape.rank(); ++i)
    if (t.shape[static_cast<size_t>(i)].unknown())
      t.shape[static_cast<size_t>(i)] = declared.shape[static_cast<size_t>(i)];
}

}  // namespace

const std::vector<Pass>& SimplifyPipeline() {
  static const std::vector<Pass> kPipeline = {
      {"shape_inference", RunShapeInference},        // types, small constants, symbolic shape contents
      {"constant_fold", RunConstantFold},            // all-constant nodes → initializers
      {"fold_shapes", RunFoldShapes},                // known shape arithmetic → initializers
      {"inline_if", RunInlineIf},                    // If on a known condition → its branch
      {"eliminate_identity", RunEliminateIdentity},  // Identity, inference Dropout
      {"eliminate_nop", RunEliminateNop},            // Cast to same type, same-shape Reshape, x*1 ...
      {"drop_expand_as", RunDropExpandAs},           // Op(Expand(x, Shape(y)), y) → Op(x, y)
      {"scatter_nd_grid", RunScatterNdGrid},         // ScatterND over every position of data → updates
      {"global_pool", RunGlobalPool},                // ReduceMean over the spatial axes → GlobalAveragePool
      {"merge_layout", RunMergeLayout},      // Reshape∘Reshape, Transpose∘Transpose, (Un)Squeeze pairs
      {"flatten_concat", RunFlattenConcat},  // Concat(a, Concat(b, c)) on one axis → Concat(a, b, c)
      {"fuse_batchnorm", RunFuseBatchNorm},  // Conv/Gemm/MatMul(+Add) → BatchNormalization
      {"fold_prenorm", RunFoldPrenorm},      // BatchNormalization → unpadded Conv
      {"fold_scale", RunFoldScale},          // MatMul/Conv(+Add) → Mul(per-channel constant): layer scales
      {"fuse_bias", RunFuseBias},            // Conv → Add(bias), MatMul → Add(bias) → Gemm
      {"fold_pad", RunFoldPad},              // zero Pad → Conv / AveragePool pads
      {"cse", RunCse},                       // duplicate constants and nodes
      {"dce", RunDeadCodeElimination},       // unused nodes and initializers
  };
  return kPipeline;
}

Status RunSimplify(Model& model, PassContext& ctx) {
  if (!model.graph) return InvalidArgument("model has no graph");
  const std::vector<Pass>& pipeline = SimplifyPipeline();
  for (const std::string& name : ctx.skip) {
    bool known = false;
    std::string names;
    for (const Pass& p : pipeline) {
      known = known || name == p.name;
      names += (names.empty() ? "" : ", ") + std::string(p.name);
    }
    if (!known) return InvalidArgument("unknown pass '" + name + "' (passes: " + names + ")");
  }
  // Declared graph output types, put back where inference knows less.
  std::vector<TypeInfo> declared;
  for (const Value* v : model.graph->outputs) declared.push_back(v->type);
  bool changed_any = false;
  for (int round = 0; round < kMaxSimplifyRounds; ++round) {
    bool changed = false;
    for (const Pass& p : pipeline) {
      if (ctx.skip.count(p.name)) continue;
      ctx.changed = false;
      Status st = p.run(model, ctx);
      if (!st.ok()) return st.WithPrefix(std::string("pass '") + p.name + "'");
      if (!ctx.changed) continue;
      changed = true;
      Status valid = VerifyModel(model);
      if (!valid.ok())
        return Internal(std::string("pass '") + p.name + "' left the model invalid: " + valid.message());
    }
    changed_any = changed_any || changed;
    if (!changed) break;
  }
  for (size_t i = 0; i < declared.size() && i < model.graph->outputs.size(); ++i)
    FillFromDeclared(model.graph->outputs[i]->type, declared[i]);
  ctx.changed = changed_any;
  return Status::Ok();
}

}  // namespace kiln
