// The parameter block of kiln's generated pointwise kernels (kiln.Pointwise,
// src/build/codegen/pointwise_source.h). It is defined once, here, as a macro:
// the runtime's launcher (src/backend/cuda/pointwise.cc) and the host tests
// compile it, and the generator pastes its text into every kernel's source, so
// the two sides cannot disagree. Plain C types only: NVRTC compiles the
// kernels without any header.
//   in[k], out[k]: device pointers of the fused node's inputs and outputs.
//   n: elements of the output domain (every output has the same dims).
//   dims[d]: the domain's dims (rank <= kPwMaxRank, right-aligned inputs).
//   strides[k][d]: input k's element stride along domain dim d (0 where the
//     input broadcasts). Used by inputs the kernel indexes with strides.
//   div[k], mod[k]: for an input that is one block of the domain's dims (a
//     bias [C] over [N, S, C], a scale [C, 1, 1] over [N, C, H, W]): its
//     element is (i / div) % mod, no per-dim decomposition.
#pragma once

#define KILN_PW_MAX_INPUTS 16
#define KILN_PW_MAX_OUTPUTS 8
#define KILN_PW_MAX_RANK 8

#define KILN_PW_PARAMS_STRUCT                 \
  struct KilnPwParams {                       \
    const void* in[KILN_PW_MAX_INPUTS];       \
    void* out[KILN_PW_MAX_OUTPUTS];           \
    long long n;                              \
    long long dims[KILN_PW_MAX_RANK];         \
    long long strides[KILN_PW_MAX_INPUTS][KILN_PW_MAX_RANK]; \
    long long div[KILN_PW_MAX_INPUTS];                      \
    long long mod[KILN_PW_MAX_INPUTS];                      \
  };

#define KILN_PW_STR2(x) #x
#define KILN_PW_STR(x) KILN_PW_STR2(x)
// The struct's definition as source text (macros expanded).
#define KILN_PW_PARAMS_SOURCE KILN_PW_STR(KILN_PW_PARAMS_STRUCT)

#include <cstdint>
#include <vector>

namespace kiln {
KILN_PW_PARAMS_STRUCT

// Fills strides[d] (d < out.size()) for an input of dims `in` read over the
// output dims `out`: numpy broadcasting, right-aligned, stride 0 where the
// input's dim is 1. False when `in` does not broadcast to `out`.
// With `perm` (a Transpose absorbed into the kernel), the input is read as
// Transpose(input, perm): view axis j is input axis perm[j].
inline bool PointwiseStrides(const std::vector<int64_t>& in, const std::vector<int64_t>& out, long long* strides,
                             const std::vector<int64_t>& perm = {}) {
  const int rank = static_cast<int>(out.size()), in_rank = static_cast<int>(in.size());
  if (in_rank > rank || (!perm.empty() && static_cast<int>(perm.size()) != in_rank)) return false;
  std::vector<long long> own(static_cast<size_t>(in_rank));  // the input's contiguous strides
  long long s = 1;
  for (int a = in_rank - 1; a >= 0; --a) {
    own[static_cast<size_t>(a)] = s;
    s *= in[static_cast<size_t>(a)];
  }
  for (int d = rank - 1, j = in_rank - 1; d >= 0; --d, --j) {
    int64_t axis = j;
    if (j >= 0 && !perm.empty()) axis = perm[static_cast<size_t>(j)];
    if (j >= 0 && (axis < 0 || axis >= in_rank)) return false;
    const int64_t dim = j >= 0 ? in[static_cast<size_t>(axis)] : 1;
    if (dim != 1 && dim != out[d]) return false;
    strides[d] = dim == 1 ? 0 : own[static_cast<size_t>(axis)];
  }
  return true;
}
// For an input whose dims (right-aligned) are 1 outside one contiguous range
// of the output's dims and equal to them inside it: *div = the product of the
// output dims after the range, *mod = the product inside it, so the input's
// element for output index i is (i / div) % mod. False otherwise.
inline bool PointwiseBlock(const std::vector<int64_t>& in, const std::vector<int64_t>& out, long long* div,
                           long long* mod) {
  const int rank = static_cast<int>(out.size()), off = rank - static_cast<int>(in.size());
  if (off < 0) return false;
  int lo = rank, hi = -1;
  for (int d = 0; d < rank; ++d) {
    const int64_t dim = d >= off ? in[static_cast<size_t>(d - off)] : 1;
    if (dim == 1) continue;
    if (dim != out[static_cast<size_t>(d)]) return false;
    lo = lo < d ? lo : d;
    hi = d;
  }
  for (int d = lo; d <= hi; ++d)  // no broadcast inside the block
    if ((d >= off ? in[static_cast<size_t>(d - off)] : 1) != out[static_cast<size_t>(d)]) return false;
  long long inner = 1, block = 1;
  for (int d = hi + 1; d < rank; ++d) inner *= out[static_cast<size_t>(d)];
  for (int d = lo; d <= hi; ++d) block *= out[static_cast<size_t>(d)];
  *div = hi < 0 ? 1 : inner;
  *mod = block;
  return true;
}
}  // namespace kiln
