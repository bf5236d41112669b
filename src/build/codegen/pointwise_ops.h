// The generator's op table: which ONNX nodes a generated pointwise kernel can
// compute, and the C expression of each. The fusion pass
// (src/passes/fuse_pointwise.h) groups only nodes this table accepts, and the
// source generator (pointwise_source.h) writes their expressions, so the two
// cannot disagree.
//
// Values inside a kernel live in a compute type: float for float32, float16
// and bfloat16 (loads widen, stores round to nearest even; a Cast to a 16-bit
// type rounds in place), bool for bool, and int / long long for int32 / int64
// values, which may only be read by a Cast. The expressions follow the CPU
// reference's formulas (src/ops/unary_activation.cc, unary_math.cc,
// binary_*.cc), NaN handling included, evaluated in float.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "ir/graph.h"
#include "kiln/status.h"

namespace kiln::codegen {

// float32, float16, bfloat16: the types generated arithmetic takes.
bool IsPointwiseFloat(DataType dt);
// The C type a value of `dt` is held in ("float", "bool", "int", "long long"),
// or nullptr when kernels cannot hold it.
const char* ComputeTypeName(DataType dt);
// True when the generator can write node n: its op has a row, its attributes
// are ones the row reads, and its inputs and outputs have types the row takes.
// `opset` is the model's ai.onnx opset (Clip's bounds are attributes before 11).
bool CanGeneratePointwise(const Node& n, int64_t opset);
// The C expression of n's (only) output from its operands' expressions, in
// input order ("" for an omitted optional input). Requires
// CanGeneratePointwise(n, opset).
Expected<std::string> PointwiseExpr(const Node& n, int64_t opset, const std::vector<std::string>& args);
// Reductions a generated row kernel computes: over the last axis only, with
// keepdims (the result broadcasts back over the row), of a float input.
enum class RowReduce { kNone, kSum, kMean, kMax, kMin, kSumSquare, kL2 };
RowReduce RowReduceOf(const Node& n, int64_t opset);

// The ops with a row, as "Domain.Op" names ("Add", "kiln.Gelu"): the tests
// walk it so that a new row is tested without a new test.
std::vector<std::string> PointwiseOpNames();

}  // namespace kiln::codegen

namespace kiln::codegen {
// `v` as a C float expression that reads back exactly (hex float; infinities
// and NaN through the prelude's kiln_f32_bits).
std::string FloatLiteral(float v);
}  // namespace kiln::codegen
