// Shared quantization flags (see quant_flags.h).
#include "quant_flags.h"

namespace kiln::cli {

void AddQuantizationFlags(CLI::App* app, BuildOptions* o) {
  app->add_option("--calib", o->calib,
                  "With --int8: .npy calibration inputs (DIR, as --calib-inputs) or a calibration cache FILE; "
                  "with --fp8: DIR (random inputs without it)");
  app->add_option("--calib-method", o->calib_method,
                  "Activation scales: percentile (default; --calib-percentile), entropy (TensorRT's), max")
      ->check(CLI::IsMember({"entropy", "percentile", "max"}));
  app->add_option("--calib-percentile", o->calib_percentile, "With --calib-method percentile (default 99.99)");
  app->add_option("--int8-fallback-rel-l2", o->int8_fallback_rel_l2,
                  "Layers whose isolated INT8 error (rel L2 vs FP32) exceeds this stay FP32 (default 0.05)");
  app->add_option("--int8-model-rel-l2", o->int8_model_rel_l2,
                  "With --int8: above this whole-model rel L2 (vs FP32, up to 4 calibration inputs) more layers "
                  "stay float, largest isolated error first (0.1; 0: off)");
  app->add_flag("--int8-residuals,!--no-int8-residuals", o->int8_residuals,
                "With --int8: the residual stream in int8 too, as TensorRT's implicit mode (default on; off: "
                "residual Adds read float)");
  app->add_option("--fp8-fallback-rel-l2", o->fp8_fallback_rel_l2,
                  "With --fp8: products whose isolated FP8 error (rel L2 vs FP32) exceeds this stay float (0.1)");
  app->add_option("--fp8-model-rel-l2", o->fp8_model_rel_l2,
                  "With --fp8: above this whole-model rel L2 (vs FP32, up to 4 calibration inputs) more products "
                  "stay float, largest isolated error first (0.1; 0: off)");
  app->add_flag("--fp8-producer-fusion,!--no-fp8-producer-fusion", o->fp8_producer_fusion,
                "With --fp8: quantize each product's input in the kernel that makes it (an FP8 product's "
                "epilogue, with a GELU; a LayerNorm) (default on; off: separate quantize kernels)");
  app->add_flag(
      "--gelu-epilogue,!--no-gelu-epilogue", o->gelu_epilogue,
      "A GELU after a matrix product in the product's cuBLASLt epilogue: the tanh form always, the erf "
      "form with --fp16 as cuBLASLt's tanh form (within 4.8e-4) (default on; off: its own kernel)");
  app->add_flag(
      "--pack-qkv,!--no-pack-qkv", o->pack_qkv,
      "The Q/K/V projections of one input as one product the attention reads as head ranges (default on; "
      "off: one product each)");
}

}  // namespace kiln::cli
