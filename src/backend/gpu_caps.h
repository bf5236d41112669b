// What each row of the CUDA op table accepts, declared next to its factory in
// backend/cuda/cuda_ops.def and readable without CUDA: the element types of
// its typed input (and output), its opset range, and which inputs must be
// known on the host (constants, or values computed from shapes alone, which
// the runtime folds per input shape). The builder checks every node against
// this before asking the factory, so an unsupported type fails `kiln build`,
// never the first run, and `kiln check --backend cuda` answers on a machine
// without a GPU.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "core/dtype.h"
#include "ir/graph.h"
#include "kiln/status.h"

namespace kiln {

// A set of element types (bit i = DataType value i).
using TypeSet = uint32_t;
constexpr TypeSet TypeBit(DataType t) { return TypeSet{1} << static_cast<int>(t); }
constexpr TypeSet kGpuFloat = TypeBit(DataType::kFloat) | TypeBit(DataType::kFloat16) | TypeBit(DataType::kBFloat16);
constexpr TypeSet kGpuFloatD = kGpuFloat | TypeBit(DataType::kDouble);
constexpr TypeSet kGpuIndex = TypeBit(DataType::kInt64) | TypeBit(DataType::kInt32);
// The storage types kiln's typed elementwise kernels instantiate.
constexpr TypeSet kGpuDevice = kGpuFloatD | kGpuIndex | TypeBit(DataType::kInt8) | TypeBit(DataType::kUInt8) |
                               TypeBit(DataType::kBool);
// The integer storage types of those (bitwise ops), and every numeric one.
constexpr TypeSet kGpuInteger = kGpuIndex | TypeBit(DataType::kInt8) | TypeBit(DataType::kUInt8);
constexpr TypeSet kGpuNumeric = kGpuFloatD | kGpuInteger;
// The integer types only the binary, comparison and bitwise kernels take
// (elementwise.cu's DispatchBinaryTypes).
constexpr TypeSet kGpuWideInt = TypeBit(DataType::kInt16) | TypeBit(DataType::kUInt16) |
                                TypeBit(DataType::kUInt32) | TypeBit(DataType::kUInt64);
// The small types only Cast/CastLike convert (float8, float4, the unpacked
// sub-byte integers; backend/cuda/cast_small.cu).
constexpr TypeSet kGpuCastSmall = TypeBit(DataType::kFloat8E4M3FN) | TypeBit(DataType::kFloat8E4M3FNUZ) |
                                  TypeBit(DataType::kFloat8E5M2) | TypeBit(DataType::kFloat8E5M2FNUZ) |
                                  TypeBit(DataType::kFloat8E8M0) | TypeBit(DataType::kFloat4E2M1) |
                                  TypeBit(DataType::kInt4) | TypeBit(DataType::kUInt4) | TypeBit(DataType::kInt2) |
                                  TypeBit(DataType::kUInt2);
// Every type moved as 1-, 2-, 4- or 8-byte words (data movement).
constexpr TypeSet kGpuAnyWord = ~(TypeBit(DataType::kUndefined) | TypeBit(DataType::kString) |
                                  TypeBit(DataType::kComplex128));
constexpr int64_t kAnyOpset = 1 << 30;

struct GpuOpCaps {
  TypeSet types = kGpuFloat;     // element types of input `typed_input`
  int typed_input = 0;
  TypeSet output_types = 0;      // of output 0 when it is typed separately (Cast); 0 = not checked
  int64_t min_opset = 1, max_opset = kAnyOpset;
  uint32_t host_inputs = 0;      // bit i: input i must be known on the host

  constexpr GpuOpCaps Typed(int input) const { GpuOpCaps c = *this; c.typed_input = input; return c; }
  constexpr GpuOpCaps Outputs(TypeSet t) const { GpuOpCaps c = *this; c.output_types = t; return c; }
  constexpr GpuOpCaps Opsets(int64_t lo, int64_t hi = kAnyOpset) const {
    GpuOpCaps c = *this;
    c.min_opset = lo;
    c.max_opset = hi;
    return c;
  }
  constexpr GpuOpCaps Host(int first, int last) const {
    GpuOpCaps c = *this;
    for (int i = first; i <= last; ++i) c.host_inputs |= 1u << i;
    return c;
  }
};
constexpr GpuOpCaps Caps(TypeSet types) { return GpuOpCaps{types}; }

// kiln.F8MatMul's row (backend/cuda/f8gemm.cu): cuBLASLt's FP8 kernels take
// the TN layout with K and N (the leading dimensions) multiples of 16.
// build/fp8.cc leaves the products outside this float.
constexpr int64_t kFp8GemmAlign = 16;
constexpr bool Fp8GemmShapeSupported(int64_t k, int64_t n) {
  return k > 0 && n > 0 && k % kFp8GemmAlign == 0 && n % kFp8GemmAlign == 0;
}
// kiln.QConv / kiln.QMatMul's fast path (backend/cuda/qgemm.cu): cuBLASLt's
// INT8 (IMMA) kernels need K and the output channels N multiples of 4 (and a
// convolution of group 1); other shapes run a one-thread-per-output int32
// kernel, correct but slow (6.4 ms for ResNet-50's 7×7 stem at batch 32 on an
// H100). build/int8.cc leaves such convolutions float.
constexpr int64_t kInt8GemmAlign = 4;
constexpr bool Int8GemmShapeSupported(int64_t k, int64_t n) {
  return k > 0 && n > 0 && k % kInt8GemmAlign == 0 && n % kInt8GemmAlign == 0;
}
// A convolution takes that path when it is 2-D, of group 1, and its GEMM
// (K = C·kh·kw, M output channels) does.
constexpr bool Int8ConvShapeSupported(int64_t spatial_rank, int64_t group, int64_t k, int64_t m) {
  return spatial_rank == 2 && group == 1 && Int8GemmShapeSupported(k, m);
}
struct GpuOpRow {
  std::string_view domain, op_type;
  GpuOpCaps caps;
};

// Every row of the CUDA op table, in table order.
const std::vector<GpuOpRow>& GpuOpRows();
// nullptr when the op has no CUDA kernel.
const GpuOpCaps* FindGpuCaps(std::string_view domain, std::string_view op_type);
// "float32, float16, bfloat16".
std::string TypeSetToString(TypeSet types);

// Ops whose output is a view of input 0 (no kernel; the runtime shares memory).
bool IsGpuAliasOp(const Node& n);

// Values computable on the host from shapes alone (constants, Shape/Size and
// arithmetic on them): the runtime evaluates them per input shape, like
// TensorRT's shape tensors.
// `seeds`: graph inputs whose values the caller gives on the host.
std::unordered_set<const Value*> HostShapeValues(const Graph& g,
                                                 const std::unordered_set<const Value*>& seeds = {});

// Graph inputs whose values the GPU runtime needs on the host before the run
// (TensorRT's shape tensors): numeric inputs of rank <= 1 that reach an input
// slot a CUDA row declares Host(...) (Reshape shapes, Tile repeats, reduction
// axes, Resize scales and sizes, ...), directly or through host shape
// arithmetic. The
// caller gives their values with Context::SetInputValue.
std::unordered_set<const Value*> ShapeTensorInputs(const Graph& g);

// Nodes whose output shapes depend on input values (NonZero, NMS, TopK with a
// computed K, ...): every input's shape follows from the input shapes (dims
// known or symbolic), no input is a host value that only a run can tell (a
// count read at an earlier sync point: such nodes fold on the host), but some
// output's shape does not follow. The GPU runtime syncs after
// each to read the extents (Context::SyncPoints at run time). Needs inferred
// shapes; top-level graph only.
std::vector<const Node*> FindSyncPoints(const Graph& g);

// Checks a node against its row: Unsupported naming the node, op, the input
// and its type when it does not fit.
Status CheckGpuCaps(const Node& n, int64_t opset, const std::unordered_set<const Value*>& host_values);

// One node the GPU cannot run, and why.
struct GpuGap {
  const Node* node = nullptr;
  std::string reason;
};

// A kernel factory's verdict on a node (the builder passes the CUDA table's
// factories; without CUDA only the declared capabilities are checked).
using GpuProbe = std::function<Status(const Node&, int64_t opset)>;

// Walks the graph the builder would hand to the CUDA backend: every node must
// be host shape arithmetic, an alias, or a row whose capabilities it fits
// (and that `probe`, when given, accepts). `kernels` (optional) receives node
// name → kernel for the nodes that fit.
std::vector<GpuGap> FindGpuGaps(const Model& m, const GpuProbe& probe,
                                std::vector<std::pair<std::string, std::string>>* kernels = nullptr);

}  // namespace kiln
