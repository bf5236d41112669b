// Compares a computed tensor with a reference one, and proves that the
// comparison could have failed. One criterion for every place kiln checks
// outputs: the GPU op harness, pass and model tests, `kiln simplify`'s
// verification (and `kiln compare`).
//
// The criterion is relative to the reference's magnitude, so it means the same
// for logits of size 10 and activations of size 1e-6:
//   per element   |got - ref| <= rtol * |ref| + atol * rms(ref)
//   and, if set,  ||got - ref||_2 / ||ref||_2 <= max_rel_l2
// NaN must meet NaN and an infinity the same infinity; integers, bools and
// strings compare exactly.
//
// CheckCanFail is mutation testing built into the comparison: the same
// tolerance must reject an all-zeros result and the reference perturbed by 5%,
// and the reference must not be degenerate (all zeros, no finite element).
// A check that would pass those is vacuous and reported as an error.
#pragma once

#include <cstdint>
#include <string>

#include "core/tensor.h"
#include "kiln/status.h"

namespace kiln {

struct Tolerance {
  double rtol = 1e-4;        // relative to each reference element
  double atol = 1e-5;        // relative to the reference's RMS
  bool elementwise = true;   // false: only the rel-L2 bound applies
  double max_rel_l2 = -1;    // < 0: no rel-L2 bound

  static Tolerance RelL2(double bound) {
    Tolerance t;
    t.elementwise = false;
    t.max_rel_l2 = bound;
    return t;
  }
  std::string ToString() const;
};

struct Comparison {
  bool ok = false;
  int64_t bad = 0;         // elements beyond the per-element bound
  int64_t worst = -1;      // flat index of the largest |got - ref| (or first mismatch)
  double max_abs = 0;      // max |got - ref| over finite elements
  double rel_l2 = 0;       // ||got - ref|| / ||ref|| over finite elements
  double ref_rms = 0;      // RMS of the reference's finite elements
  std::string message;     // empty when ok; else what differs, where, and the tolerance
};

// `ref` is the oracle's tensor, `got` the one under test.
Comparison CompareTensors(const Tensor& ref, const Tensor& got, const Tolerance& tol);

// Ok when comparing against `ref` with `tol` could fail: `ref` is not
// degenerate and both zeros and a 5%-perturbed `ref` are rejected. Otherwise
// InvalidArgument saying why the check is vacuous.
Status CheckCanFail(const Tensor& ref, const Tolerance& tol);

// CheckCanFail, then CompareTensors; errors start with `what`.
Status ExpectClose(const std::string& what, const Tensor& ref, const Tensor& got, const Tolerance& tol);

}  // namespace kiln
