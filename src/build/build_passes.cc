#include "build/build_passes.h"

#include <string>

#include "build/calibrate.h"
#include "build/fp8.h"
#include "build/int8.h"
#include "ir/verifier.h"
#include "passes/attention_gqa.h"
#include "passes/attention_heads.h"
#include "passes/attention_scale.h"
#include "passes/attention_views.h"
#include "passes/attention_windows.h"
#include "passes/batch_first_attention.h"
#include "passes/bmm_attention.h"
#include "passes/cancel_transposes.h"
#include "passes/cast_into_im2col.h"
#include "passes/conv1d_as_2d.h"
#include "passes/cse.h"
#include "passes/dce.h"
#include "passes/einsum_matmul.h"
#include "passes/f8_epilogue.h"
#include "passes/flat_gemm.h"
#include "passes/fold_qdq.h"
#include "passes/fp16.h"
#include "passes/fuse_attention.h"
#include "passes/fuse_gpu.h"
#include "passes/fuse_pointwise.h"
#include "passes/gate_into_projection.h"
#include "passes/gate_mul.h"
#include "passes/gather_transpose.h"
#include "passes/gelu_epilogue.h"
#include "passes/im2col_conv.h"
#include "passes/inner_axis_last.h"
#include "passes/interleave_concat.h"
#include "passes/layout_nhwc.h"
#include "passes/lower_qlinear.h"
#include "passes/lower_row_ops.h"
#include "passes/merge_layout.h"
#include "passes/pack_products.h"
#include "passes/pack_qkv.h"
#include "passes/pad_channels.h"
#include "passes/patch_conv.h"
#include "passes/permute_chains.h"
#include "passes/pipeline.h"
#include "passes/post_act_residual.h"
#include "passes/qconv_epilogue.h"
#include "passes/quant_casts.h"
#include "passes/reshape_epilogue.h"
#include "passes/shape_from_inputs.h"
#include "passes/split_projection.h"
#include "passes/stem_im2col.h"
#include "passes/transpose_shapes.h"

namespace kiln {
namespace {

// Runs one build pass; a pass that leaves the model invalid is an internal error naming it.
template <class Run>
Status RunChecked(const char* name, Model& model, PassContext& ctx, Run run) {
  ctx.changed = false;
  KILN_RETURN_IF_ERROR(run().WithPrefix(std::string(name) + " pass"));
  if (!ctx.changed) return Status::Ok();
  Status valid = VerifyModel(model);
  if (!valid.ok()) return Internal(std::string(name) + " pass left the model invalid: " + valid.message());
  return Status::Ok();
}

Status RunChecked(const char* name, PassFn pass, Model& model, PassContext& ctx) {
  return RunChecked(name, model, ctx, [&] { return pass(model, ctx); });
}

// The same for a pass that also writes report lines.
using ReportingPassFn = Status (*)(Model&, PassContext&, std::vector<std::string>*);
Status RunChecked(const char* name, ReportingPassFn pass, Model& model, PassContext& ctx,
                  std::vector<std::string>* report) {
  return RunChecked(name, model, ctx, [&] { return pass(model, ctx, report); });
}

}  // namespace

Status ConvertToFp16WithReport(Model& model, const BuildOptions& options, PassContext& ctx,
                               std::vector<std::string>* precision) {
  std::vector<Fp32Node> kept;
  Fp16Options fp16;
  fp16.fp32_islands = options.fp32_islands;
  fp16.report = &kept;
  if (options.fp32_islands && !options.calib_inputs.empty()) {
    KILN_ASSIGN_OR_RETURN(fp16.islands.measured_max, MeasureRanges(model, options.calib_inputs));
  }
  KILN_RETURN_IF_ERROR(RunConvertToFp16(model, ctx, fp16).WithPrefix("fp16 pass"));
  if (precision)
    for (const Fp32Node& k : kept)
      if (k.reason != kQuantizedLayerReason) precision->push_back(k.node->Label() + " stays FP32: " + k.reason);
  return Status::Ok();
}

bool UsesNhwc(const BuildOptions& options) {
  return options.layout == BuildOptions::Layout::kNhwc ||
         (options.layout == BuildOptions::Layout::kAuto && options.fp16);
}

Status RunBuildPasses(Model& model, const BuildOptions& options, std::vector<std::string>* notes,
                      std::vector<std::string>* precision) {
  PassContext ctx;
  if (options.int8 && options.fp8) return InvalidArgument("--int8 and --fp8 exclude each other");
  bool folded = false;
  // 0. Explicit quantization: QDQ around Conv/MatMul/Gemm → kiln.QConv/QMatMul
  //    (before constant folding turns the weights' DequantizeLinear into floats).
  //    With --fp16 alone a QDQ model runs its QDQ pairs in float, as before.
  if (!options.fp16 || options.int8) {
    ctx.changed = false;
    KILN_RETURN_IF_ERROR(FoldQdq(model, ctx, precision).WithPrefix("fold_qdq pass"));
    folded = ctx.changed;
    if (ctx.changed) {
      Status valid = VerifyModel(model);
      if (!valid.ok()) return Internal("fold_qdq pass left the model invalid: " + valid.message());
    }
  }
  // 1. The simplifier: constant folding, Identity/no-op removal, BatchNorm and
  //    bias folding into Conv/Gemm, CSE, DCE (so the fusion sees Conv+bias).
  KILN_RETURN_IF_ERROR(RunSimplify(model, ctx).WithPrefix("simplifier"));
  //     QLinearConv / QLinearMatMul (the quantized operator form) → the same INT8 ops as folded QDQ.
  KILN_RETURN_IF_ERROR(RunChecked("lower_qlinear", RunLowerQLinear, model, ctx));
  // 1b. Implicit quantization (--int8 on a float model): calibration, QDQ
  //     insertion with the per-layer FP32 fallback, then the same folding.
  if (options.int8 && !folded) KILN_RETURN_IF_ERROR(QuantizeImplicitInt8(model, options, precision, notes));
  //     The residual Add, ReLU/Clip and requantization after an INT8 layer → its epilogue (explicit QDQ
  //     models; implicit quantization did it above, with the residual stream in int8).
  if (options.int8_epilogues)
    KILN_RETURN_IF_ERROR(RunChecked("qconv_epilogue", RunQConvEpilogue, model, ctx));
  // 2. Patch convolutions (kernel == stride) → one GEMM over the patches.
  KILN_RETURN_IF_ERROR(RunChecked("patch_conv", RunPatchConvToGemm, model, ctx));
  // 3. Shape reads of intermediate tensors (GPT-2's `query.size(-2)` on the transposed query) read the
  //    graph inputs' dims, or at least the untransposed tensor's, so that the fusions below own the
  //    tensors they rewrite; then Gathers through Transposes (Q/K/V splits), then attention chains →
  //    kiln.Attention (one fused kernel per attention).
  KILN_RETURN_IF_ERROR(RunChecked("shape_from_inputs", RunShapeFromInputs, model, ctx));
  //    Gemms on tokens flattened to 2-D and viewed back (GPT-2's Conv1D) → MatMuls on the tokens, so the
  //    Linear-layer fusions (epilogues, Q/K/V packing, attention) see them.
  KILN_RETURN_IF_ERROR(RunChecked("flat_gemm", RunFlatGemm, model, ctx));
  KILN_RETURN_IF_ERROR(RunChecked("transpose_shapes", RunTransposeShapes, model, ctx));
  KILN_RETURN_IF_ERROR(RunChecked("gather_transpose", RunGatherThroughTranspose, model, ctx));
  //    Packed QKV projections read in column blocks → one product per block.
  KILN_RETURN_IF_ERROR(RunChecked("split_projection", RunSplitProjection, model, ctx));
  //    Batched-matrix-product Einsums → MatMul (einsum-written attention fuses too).
  KILN_RETURN_IF_ERROR(RunChecked("einsum_matmul", RunEinsumToMatMul, model, ctx));
  //    Rank-5 windowed attention [B, G, H, S, D] (MaxViT) → rank 4, the window axis in the batch.
  KILN_RETURN_IF_ERROR(RunChecked("attention_windows", RunAttentionWindows, model, ctx));
  //    BART-style 3-D attention with its mask added to a 4-D view of the scores → 4-D.
  KILN_RETURN_IF_ERROR(RunChecked("bmm_attention", RunBmmAttention, model, ctx));
  KILN_RETURN_IF_ERROR(RunChecked("fuse_attention", RunFuseAttention, model, ctx));
  //    repeat_kv copies of K/V heads (Llama-style grouped-query attention) → the op's own GQA.
  KILN_RETURN_IF_ERROR(RunChecked("attention_gqa", RunAttentionGqa, model, ctx));
  //    BART-style head splits around a 3-D attention → the 4-D views, no copies.
  KILN_RETURN_IF_ERROR(RunChecked("attention_heads", RunAttentionHeads, model, ctx));
  //    nn.MultiheadAttention(batch_first=True): projections and attention batch-first, no Transposes.
  KILN_RETURN_IF_ERROR(RunChecked("batch_first_attention", RunBatchFirstAttention, model, ctx));
  //    Transposes between attention layouts around the op → its per-tensor layouts.
  KILN_RETURN_IF_ERROR(RunChecked("attention_views", RunAttentionViews, model, ctx));
  //    Shape reads of the Transposes the attention passes made or left.
  KILN_RETURN_IF_ERROR(RunChecked("transpose_shapes", RunTransposeShapes, model, ctx));
  //    Scalar Muls on Q and K (BART's `q_proj(x) * scaling`) → the op's scale.
  KILN_RETURN_IF_ERROR(RunChecked("attention_scale", RunAttentionScale, model, ctx));
  //    Reshape∘Reshape the passes above left (attention_windows' view of a split projection's heads:
  //    MaxViT) → one Reshape, which pack_qkv traces.
  KILN_RETURN_IF_ERROR(RunChecked("merge_layout", RunMergeLayout, model, ctx));
  //    The same bias sum made for every attention that shares its addends (T5's position bias plus the mask:
  //    six identical [B, H, S, S] Adds) → one.
  KILN_RETURN_IF_ERROR(RunChecked("cse", RunCse, model, ctx));
  KILN_RETURN_IF_ERROR(RunChecked("dce", RunDeadCodeElimination, model, ctx));
  //    The Q/K/V projections of one input → one product, read by the op as head ranges.
  if (options.pack_qkv) KILN_RETURN_IF_ERROR(RunChecked("pack_qkv", RunPackQkv, model, ctx));
  //     FP8 (--fp8): the matrix products with constant weights → kiln.F8MatMul (after the packing, so
  //     that a packed projection has one weight scale).
  if (options.fp8) KILN_RETURN_IF_ERROR(QuantizeFp8(model, options, precision, notes));
  // 4. Fusion into kiln's fused ops (cuDNN conv+bias+residual+ReLU, cuBLASLt
  //    bias/ReLU epilogues). Before fp16, which then converts the fused ops' weights.
  KILN_RETURN_IF_ERROR(RunChecked("fuse_gpu", RunFuseForGpu, model, ctx));
  // 5. Channels-last convolutions and pooling (before fp16, which then converts
  //    the permuted weights).
  if (UsesNhwc(options)) {
    //  1-D convolutions as 2-D ones of height 1 (Whisper's audio stem), so that they run channels-last too.
    KILN_RETURN_IF_ERROR(RunChecked("conv1d_as_2d", RunConv1dAs2d, model, ctx));
    KILN_RETURN_IF_ERROR(RunChecked("layout_nhwc", RunChannelsLast, model, ctx));
    //  RGB stems as one GEMM over their windows (kiln.Im2Col), straight from the NCHW input (default;
    //  --no-stem-gemm turns it off).
    if (options.stem_gemm) KILN_RETURN_IF_ERROR(RunChecked("stem_im2col", RunStemIm2Col, model, ctx));
    //  Other convolutions of few channels read them padded to 8 (cuDNN's tensor-core kernels want 16-byte rows).
    KILN_RETURN_IF_ERROR(RunChecked("pad_channels", RunPadConvChannels, model, ctx));
  }
  //    A Transpose and its inverse around elementwise ops (ConvNeXt's layer scale between its channels-last
  //    MLP and the residual) cancel.
  KILN_RETURN_IF_ERROR(RunChecked("cancel_transposes", RunCancelTransposes, model, ctx));
  //    Layout chains whose source and result end with the same axis keep it last in between (MaxViT's
  //    departition into NCHW and grid partition back: row copies instead of element-wise ones).
  KILN_RETURN_IF_ERROR(RunChecked("inner_axis_last", RunInnerAxisLast, model, ctx));
  //    Transpose/Reshape chains (window partitions, layout Transposes next to them) → one copy each.
  KILN_RETURN_IF_ERROR(RunChecked("permute_chains", RunPermuteChains, model, ctx));
  //    A residual Add or an activation that the layout left behind a Reshape (ConvNeXt's residual after a
  //    product, SegFormer's GELU after a convolution) → the product's or convolution's epilogue.
  KILN_RETURN_IF_ERROR(RunChecked("reshape_epilogue", RunReshapeEpilogue, model, ctx));
  //    A residual Add after a dense convolution's activation (YOLO's and CSPDarknet's bottlenecks) → its
  //    epilogue, in that order.
  KILN_RETURN_IF_ERROR(RunChecked("post_act_residual", RunPostActResidual, model, ctx));
  // 6. Precision: FP16, with FP32 islands where FP16 would overflow.
  if (options.fp16) KILN_RETURN_IF_ERROR(ConvertToFp16WithReport(model, options, ctx, precision));
  //    The Casts between the FP16 graph and its INT8 layers → the layers and QuantizeLinears read and write
  //    FP16.
  if (options.fp16) KILN_RETURN_IF_ERROR(RunChecked("quant_casts", RunQuantCasts, model, ctx));
  //    A GELU after a product into the product's cuBLASLt epilogue (the erf form only in FP16: it
  //    becomes the tanh form).
  if (options.gelu_epilogue)
    KILN_RETURN_IF_ERROR(RunChecked("gelu_epilogue", RunGeluEpilogue, model, ctx, precision));
  //    A stem's window gather converts the model's input itself (no Cast pass over it).
  KILN_RETURN_IF_ERROR(RunChecked("cast_into_im2col", RunCastIntoIm2Col, model, ctx));
  //    ... and with its product is one kernel that never writes the windows.
  if (options.fp16 && options.im2col_conv)
    KILN_RETURN_IF_ERROR(RunChecked("im2col_conv", RunFuseIm2ColConv, model, ctx));
  //    A squeeze-and-excitation gate's last 1x1 convolution and its Mul → one kernel that computes the gates.
  KILN_RETURN_IF_ERROR(RunChecked("gate_mul", RunFuseGateMul, model, ctx));
  //    ... and a gate right before a 1x1 projection scales the projection's weights per sample instead.
  KILN_RETURN_IF_ERROR(RunChecked("gate_into_projection", model, ctx,
                                  [&] { return RunGateIntoProjection(model, ctx, options.profiles); }));
  // 7. Connected elementwise ops (Casts of the precision pass included) → one
  //    kiln.Pointwise per group; the builder generates and compiles its kernel.
  //    LayerNorms and Softmaxes with a fusable neighbour are lowered to primitives
  //    first, so the residual or bias Add (or the Cast after) joins their row kernel.
  //    Products of one input that one generated kernel reads (a gated MLP's gate and up) → one product, read
  //    through column Slices the kernel absorbs.
  if (options.fuse_pointwise) KILN_RETURN_IF_ERROR(RunChecked("pack_products", RunPackProducts, model, ctx));
  //    A channel shuffle of a Concat and its chunks → interleaving Concats of the operands' Slices, one
  //    kernel each (ShuffleNet).
  if (options.fuse_pointwise)
    KILN_RETURN_IF_ERROR(RunChecked("interleave_concat", RunInterleaveConcat, model, ctx));
  if (options.fuse_pointwise) KILN_RETURN_IF_ERROR(RunChecked("lower_row_ops", RunLowerRowOps, model, ctx));
  //    FP8: the next product's E4M3 quantization into its producer, where that is an FP8 product with a
  //    float16 output (its cuBLASLt epilogue, with a GELU between) or a LayerNorm the row lowering left.
  if (options.fp8 && options.fp8_producer_fusion)
    KILN_RETURN_IF_ERROR(RunChecked("f8_epilogue", RunFuseF8Epilogue, model, ctx, precision));
  if (options.fuse_pointwise)
    KILN_RETURN_IF_ERROR(RunChecked("fuse_pointwise", RunFusePointwise, model, ctx));
  for (const std::string& w : ctx.warnings) notes->push_back(w);
  return Status::Ok();
}

}  // namespace kiln
