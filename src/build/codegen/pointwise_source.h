// CUDA C++ source for a kiln.Pointwise node (made by src/passes/fuse_pointwise.h):
// one kernel that reads the node's inputs once per element, computes its body
// in registers and writes its outputs. The builder compiles the source with
// NVRTC (src/build/cuda/nvrtc_compile.h) and keeps the cubin in the plan; the
// runtime (src/backend/cuda/pointwise.cc) only loads and launches it.
//
// The kernel walks the output domain (every output has the same dims) with a
// grid-stride loop over a linear index: entry points <name>_i32 (32-bit index
// math, when the domain and the grid fit) and <name>_i64. Each input is read in
// one of three ways, chosen at build time from its symbolic shape:
//   kFull:    it has the domain's dims: its element is the linear index;
//   kScalar:  one element (every dim 1): element 0;
//   kBlock:   it is one contiguous block of the domain's dims, 1 elsewhere (a
//             bias [C] over [N,S,C], a scale [C,1,1] over [N,C,H,W]): element
//             (i / div) % mod, with div and mod filled by the runtime;
//   kStrided: it broadcasts otherwise, or is read through a view (absorbed
//             Transposes, Slices, Expands: pointwise_view.h), or inside a Concat:
//             the index is decomposed over the domain's dims and dotted with
//             the strides the runtime fills.
// A Concat in the body evaluates each operand's subtree in its own branch,
// picked by the coordinate along the concat axis: there the coordinate is
// shifted by the operand's offset (strided loads subtract offset × stride),
// so the concatenated value is never stored. Its operands' extents along the
// axis are build-time constants (ConcatBranches).
// A body with reductions over the last axis (codegen::RowReduceOf: decomposed
// LayerNorm, RMSNorm, Softmax, L2 norms) gives a row kernel instead
// (row_source.h): one block per row of the domain's last axis.
// Compiled with -DKILN_PW_HOST the same source is plain C++ with an entry
// <name>_host(const KilnPwParams*) that loops on the host: the unit tests run
// it against the CPU reference, which no GPU is needed for.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "kiln/status.h"
#include "ops/pointwise_abi.h"

namespace kiln::codegen {

enum class InputMode : int64_t { kFull = 0, kScalar = 1, kStrided = 2, kBlock = 3 };

struct PointwiseKernel {
  // Entry points: name + "_i32", "_i64" (device, elementwise), or name + "_row"
  // (device, one block per row) when `rows`; name + "_host" (KILN_PW_HOST).
  std::string name;
  bool rows = false;
  std::string source;  // self-contained: no #include, for NVRTC
  std::vector<InputMode> input_modes;  // one per input of the node
  // Per input: the view the kernel reads it through (absorbed Transposes and
  // Slices; the dims of a Concat operand it is read over), or empty. Inputs
  // with a view are kStrided.
  std::vector<PwView> input_views;
  int rank = 0;                        // of the output domain
  // Elementwise kernels whose inputs need no coordinates also have entries name + "_v8_i32"/"_v8_i64": eight
  // consecutive elements a thread, full inputs and outputs loaded and stored as aligned packs (the runtime
  // takes them when 8 divides the domain and those pointers are 16-byte aligned).
  bool vec8 = false;
};

// The kernel of kiln.Pointwise node `fused` (its "body" graph attribute);
// `opset` is the model's ai.onnx opset, which the body's nodes follow. Errors
// name the node and the body node the generator cannot write.
Expected<PointwiseKernel> GeneratePointwise(const Node& fused, int64_t opset, const std::string& name);

// How `input` is indexed over a domain of shape `domain`.
InputMode ModeOf(const Shape& input, const Shape& domain);
// A kBlock input that varies along the domain's last axis only ([C], [1, .., C]: a bias, a norm's scale): its
// element at flat index i is i % C, one modulo instead of (i / div) % mod (in a row kernel, the column).
bool AlongLastAxisOnly(const Shape& input, const Shape& domain);

// A kBlock input's (i / div) % mod at build time: true when the domain's dims from the block's first axis on
// are known (they are then the dims the kernel runs on).
bool KnownBlock(const Shape& input, const Shape& domain, int64_t* div, int64_t* mod);

// The extents along its axis of a Concat the generator can write (float or
// bool operands of one type, known extents along a normalized axis), one per
// operand; empty otherwise. *axis: the axis in n's output.
std::vector<int64_t> ConcatBranches(const Node& n, int* axis);

}  // namespace kiln::codegen
