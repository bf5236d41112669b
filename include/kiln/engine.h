// kiln's public runtime API: build an Engine from ONNX (or load a plan), make a
// Context per stream, set input shapes, bind device pointers, enqueue.
//
//   kiln::BuildOptions opt;  opt.fp16 = true;
//   auto engine = kiln::Engine::Build("model.onnx", opt);      // or Engine::Load("model.plan")
//   auto ctx = (*engine)->CreateContext();
//   (*ctx)->SetInputShape("input", {8, 3, 224, 224});
//   (*ctx)->SetTensorAddress("input", d_in);  (*ctx)->SetTensorAddress("output", d_out);
//   (*ctx)->Enqueue(stream);                                    // async; never allocates or syncs
//
// An Engine is immutable and may be shared by threads; a Context belongs to one
// thread/stream at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "kiln/status.h"

namespace kiln {

struct ShapeRange {
  std::vector<int64_t> min, opt, max;
};

struct BuildOptions {
  // Where the engine runs: the CUDA backend, or the CPU reference executor
  // (same API; tensor addresses are host pointers, Enqueue(nullptr) runs
  // synchronously; FP32 only).
  enum class Backend { kCuda, kCpu };
  Backend backend = Backend::kCuda;
  bool fp16 = false;  // FP16 storage + tensor cores (FP32 accumulation; FP32 inside Softmax/LayerNorm/reductions)
  bool tf32 = false;  // allow TF32 for FP32 matrix products
  // With fp16: overflow-prone subgraphs (decomposed LayerNorm/RMSNorm/Softmax,
  // sums of squares, exponentials, large sums) stay FP32 (src/passes/fp32_islands.h).
  bool fp32_islands = true;
  // With fp16: a directory of .npy calibration inputs (NAME.npy per graph
  // input, or subdirectories of them); values measured beyond FP16's range on
  // the CPU reference stay FP32 too (--calib-inputs DIR).
  std::string calib_inputs;
  // Connected elementwise ops (activations, bias/residual arithmetic, Casts,
  // Where) run as one generated kernel per group, compiled at build time
  // (src/passes/fuse_pointwise.h); off: one kernel per op (--no-pointwise-fusion).
  bool fuse_pointwise = true;
  // INT8 (docs/PRECISION.md). QDQ models are always folded into INT8 ops
  // (explicit quantization); `int8` quantizes a float model too (implicit):
  // calibration over `calib` (a directory of .npy inputs as calib_inputs, or a
  // calibration cache file a previous build wrote), activation scales by
  // `calib_method` (entropy, percentile, max), per-channel weight scales.
  // Layers whose isolated INT8 error (rel L2 against FP32 on the first
  // calibration input) exceeds int8_fallback_rel_l2 stay FP32 (FP16 with fp16).
  bool int8 = false;
  // FP8 E4M3 matrix products (MatMul/Gemm with constant weights, kiln.F8MatMul):
  // per-tensor activation scales amax/448 measured over `calib` (a directory;
  // random inputs when empty), per-tensor weight scales, FP32 accumulation,
  // output in the float type of the graph (FP16 with fp16). Not with int8.
  bool fp8 = false;
  std::string calib;
  std::string calib_method = "percentile";  // measured best of the three on trained models (docs/PRECISION.md)
  double calib_percentile = 99.99;
  std::string calib_cache;  // where to write the calibration cache ("" = nowhere)
  double int8_fallback_rel_l2 = 0.05;
  // --int8-model-rel-l2: when the whole INT8 model's output error (rel L2 vs
  // FP32, on the first calibration input) exceeds this, more layers stay float,
  // those with the largest isolated error first, until it does not (0: off).
  // Isolated errors miss error that builds up through a network (depthwise
  // stacks: mobilenet_v2 0.61, efficientnet_b0 0.93 without it).
  // 0.1 since 2026-12-05 (was 0.25): PP-OCRv4 rec, see docs/PRECISION.md.
  double int8_model_rel_l2 = 0.1;
  // With int8 (implicit): the residual stream in int8 too, as TensorRT's implicit mode (an INT8 layer whose
  // output is quantized for the next layer writes that int8 tensor, and the residual Add reads it; half a
  // step of error per block, in the whole-model check above); off: the residuals stay float
  // (--no-int8-residuals, src/passes/qconv_epilogue.h).
  bool int8_residuals = true;
  // The residual Add, ReLU/Clip and requantization after an INT8 layer in its epilogue
  // (src/passes/qconv_epilogue.h); off: separate ops, every float value of the graph kept (`kiln compare
  // --int8 --bisect` compares them).
  bool int8_epilogues = true;
  // The same two checks for --fp8 (build/mixed_precision.h): a product whose
  // isolated FP8 error exceeds fp8_fallback_rel_l2 stays float
  // (--fp8-fallback-rel-l2), and while the whole FP8 model's error exceeds
  // fp8_model_rel_l2 more stay float (--fp8-model-rel-l2; 0: off).
  double fp8_fallback_rel_l2 = 0.1;
  double fp8_model_rel_l2 = 0.1;
  // With fp8: the next product's E4M3 quantization in the kernel that makes its input, an FP8 product's
  // cuBLASLt epilogue (with a GELU before it) or a LayerNorm (passes/f8_epilogue.h); off: separate
  // quantize kernels, as before 2026-12-06 (--no-fp8-producer-fusion, for A/B timing).
  bool fp8_producer_fusion = true;
  // A GELU after a matrix product in the product's cuBLASLt epilogue (src/passes/gelu_epilogue.h): the tanh
  // form always, the erf form in float16/bfloat16 (as cuBLASLt's tanh form, within 4.8e-4); off: the GELU
  // is its own kernel (--no-gelu-epilogue, for A/B timing).
  bool gelu_epilogue = true;
  // The Q/K/V projections of one input as one product that the attention reads as head ranges
  // (src/passes/pack_qkv.h); off: one product each (--no-pack-qkv, for A/B timing).
  bool pack_qkv = true;
  size_t workspace_bytes = size_t{1} << 30;  // --memPoolSize workspace:1024M
  // Layout of convolution/pooling activations: kAuto is NHWC for FP16 builds
  // (cuDNN's tensor-core layout) and NCHW otherwise (--layout nchw|nhwc|auto).
  enum class Layout { kAuto, kNchw, kNhwc };
  Layout layout = Layout::kAuto;
  // Channels-last float16/bfloat16 convolutions (src/backend/cuda/conv_graph.h):
  // kAuto times cuDNN's graph API (convolution, bias, residual and activation
  // in one engine) against the legacy API and keeps the faster; kGraph takes
  // the graph API wherever it runs the convolution; kLegacy never uses it.
  // kIm2Col runs ungrouped ones as im2col and one cuBLASLt product wherever
  // that fits, else does what kAuto does (--conv-tactics auto|graph|legacy|im2col).
  enum class ConvTactics { kAuto, kGraph, kLegacy, kIm2Col };
  ConvTactics conv_tactics = ConvTactics::kAuto;
  // cuDNN's eng4 engine in convolution graphs (--cudnn-eng4): the fastest INT8 engine on Hopper, and unsafe
  // when contexts run it concurrently (cuDNN 9.19, H100, kiln soak with 8 contexts: FP16 resnet18 64x64 b4
  // 784 of 16000 runs wrong, INT8 9458 of 16000; INT8 ResNet-50 b32 2400 of 2400 right). One context per
  // process only.
  bool cudnn_eng4 = false;
  // Channels-last convolutions of fewer than 8 input channels (RGB stems) run
  // as kiln.Im2Col + one GEMM (src/passes/stem_im2col.h) instead of cuDNN on 8
  // zero-padded channels (--no-stem-gemm turns it off). On by default since
  // 2026-12-06: the fastest variant on every row measured (docs/GPU.md).
  bool stem_gemm = true;
  // With stem_gemm in FP16 builds: the window gather and its product as one kernel that never writes the
  // windows (kiln.Im2ColConv, src/passes/im2col_conv.h; --im2col-conv). Off by default: the kernel is correct
  // but slower than the pair so far (ResNet-50's stem at batch 32, H100: 0.212 ms against 0.171, 2026-12-07).
  bool im2col_conv = false;
  // Optimization profile per dynamic input (trtexec's --minShapes/--optShapes/--maxShapes).
  std::map<std::string, ShapeRange> profiles;
  // A persistent timing cache (trtexec's --timingCacheFile; src/build/timing_cache.h):
  // its entries are loaded before timing, so nothing timed before is timed
  // again, and the merged cache is written back after a successful build. A
  // missing file is created; a damaged one, or one from another GPU, fails
  // the build. "" = none.
  std::string timing_cache_file;
};

struct BuildReport {
  double build_seconds = 0;
  size_t weight_bytes = 0;
  size_t activation_bytes = 0;  // arena at the max profile shapes
  size_t peak_bytes = 0;        // weights + arena + workspace
  size_t num_nodes = 0;
  size_t num_kernels = 0;
  std::vector<std::string> notes;
  // With fp16: the nodes that stayed FP32, and why ("node 'x' (Mul): squares 'a' ...");
  // with int8 (or a QDQ model): the nodes that run INT8, and those that stayed FP32 and why.
  std::vector<std::string> precision;
};

struct TensorInfo {
  std::string name;
  std::string dtype;               // "float32", "int64", ...
  std::vector<int64_t> dims;       // -1 for dynamic
  std::vector<std::string> names;  // symbolic names of dynamic dims ("" if none)
  // A shape tensor (inputs only): the engine needs its values on the host
  // before the run (Context::SetInputValue), like TensorRT's shape tensors.
  bool shape_tensor = false;
};

class Context;
class ReferenceSupport;  // kiln::builder's shape inference and CPU engine (src/runtime/reference_support.h)

struct PlanLoadOptions {
  // The lean runtime (kiln::runtime) evaluates a plan's shape program and
  // links no shape inference and no CPU kernels. Plans whose shapes it
  // cannot express (value-dependent shapes such as NMS or NonZero, control
  // flow, shape-tensor inputs) and CPU plans need the builder library's
  // reference support: pass kiln::BuilderLoadOptions() (kiln::builder).
  // Without it, loading such a plan fails and names what needs it.
  std::shared_ptr<const ReferenceSupport> reference;
};

// kiln::builder: load options with its reference support (shape inference at
// run time, the CPU engine); what `kiln` and the Python module load with.
PlanLoadOptions BuilderLoadOptions();

// Storage for outputs whose shape depends on input values (NonZero,
// NonMaxSuppression, everything downstream of them): their size is known only
// during Enqueue, after the op that decides it ran (TensorRT's
// IOutputAllocator). Called on the Enqueue thread, with the stream idle.
class OutputAllocator {
 public:
  virtual ~OutputAllocator() = default;
  // A device pointer to at least `bytes` for output `name` (may return
  // `current` when it is big enough); nullptr fails the Enqueue.
  virtual void* Reallocate(const std::string& name, void* current, size_t bytes) = 0;
  // The output's dims for this run.
  virtual void NotifyShape(const std::string& name, const std::vector<int64_t>& dims) = 0;
};

class Engine {
 public:
  virtual ~Engine() = default;
  // Builds from an ONNX file for the current GPU (or the CPU: options.backend).
  static Expected<std::shared_ptr<Engine>> Build(const std::string& onnx_path, const BuildOptions& options,
                                                 BuildReport* report = nullptr);
  // Loads a plan (GPU or CPU, as it was built); fails cleanly on another format version or GPU arch, or a
  // corrupted/truncated file, or a plan that needs options.reference without it (PlanLoadOptions).
  static Expected<std::shared_ptr<Engine>> Load(const std::string& plan_path,
                                                const PlanLoadOptions& options = {});
  static Expected<std::shared_ptr<Engine>> Deserialize(const void* data, size_t size,
                                                       const PlanLoadOptions& options = {});

  virtual Expected<std::string> Serialize() const = 0;
  virtual Status Save(const std::string& plan_path) const = 0;
  virtual Expected<std::unique_ptr<Context>> CreateContext() const = 0;
  virtual std::vector<TensorInfo> Inputs() const = 0;
  virtual std::vector<TensorInfo> Outputs() const = 0;
  virtual std::map<std::string, ShapeRange> Profiles() const = 0;
  virtual std::string Describe() const = 0;  // GPU, precision, kernels per op
};

class Context {
 public:
  virtual ~Context() = default;
  // Must lie within the engine's profile; error names the input and range.
  // Once every dynamic input has a shape and the inputs agree on the named
  // dims they share, the context prepares here (shapes, memory, kernels), so
  // that Enqueue allocates nothing and can run inside a CUDA graph capture.
  // A preparation error is reported by the next Enqueue.
  virtual Status SetInputShape(const std::string& name, const std::vector<int64_t>& dims) = 0;
  // The values of a shape-tensor input (TensorInfo::shape_tensor), read on
  // the host (copied; `bytes` must match its shape). Set after its shape;
  // new values prepare the context again, like a new shape.
  virtual Status SetInputValue(const std::string& name, const void* host_data, size_t bytes) = 0;
  // Valid once every dynamic input has a shape. A dim that depends on input
  // values is -1 until an Enqueue has computed it (then it is that run's).
  virtual Expected<std::vector<int64_t>> GetOutputShape(const std::string& name) const = 0;
  // Device pointer of an input or output (at least its size in bytes).
  virtual Status SetTensorAddress(const std::string& name, void* device_ptr) = 0;
  // Where an output with a value-dependent shape goes (required for those
  // outputs; the allocator must outlive its use). Not owned.
  virtual Status SetOutputAllocator(const std::string& name, OutputAllocator* allocator) = 0;
  // Runs on `stream` (a cudaStream_t). The first run at a shape runs the ops
  // directly; later runs replay a captured CUDA graph (inside the caller's
  // capture, the ops are launched into it). An unprepared context (shapes
  // that disagree) prepares here, except inside a capture. An engine with
  // value-dependent shapes syncs the stream once after each op that decides a
  // shape (SyncPoints()), prepares what follows at the shapes it computed, and
  // replays CUDA graphs of the segments between sync points whose shapes did
  // not change.
  virtual Status Enqueue(void* cuda_stream) = 0;
  // Nodes after which Enqueue syncs to read value-dependent shapes, in run
  // order (empty for engines whose shapes follow from the input shapes).
  virtual std::vector<std::string> SyncPoints() const = 0;
  // Bytes of the activation arena at the current shapes.
  virtual size_t ActivationBytes() const = 0;
  // One run with a CUDA event around every kernel, replayed as a CUDA graph
  // (an eager run where it cannot be captured): (node label, ms) in schedule
  // order, like trtexec --dumpProfile. Synchronises `cuda_stream`.
  virtual Expected<std::vector<std::pair<std::string, float>>> ProfileLayers(void* cuda_stream) = 0;
};

}  // namespace kiln
