// Tensor comparison with a can-fail check (see compare.h).
#include "reference/compare.h"

#include <cmath>
#include <cstring>
#include <sstream>

namespace kiln {
namespace {

std::string Num(double v) {
  std::ostringstream s;
  s.precision(7);
  s << v;
  return s.str();
}

std::string IndexString(const std::vector<int64_t>& dims, int64_t flat) {
  std::vector<int64_t> idx(dims.size());
  for (size_t d = dims.size(); d-- > 0;) {
    idx[d] = dims[d] ? flat % dims[d] : 0;
    flat = dims[d] ? flat / dims[d] : 0;
  }
  std::string s = "[";
  for (size_t d = 0; d < idx.size(); ++d) s += (d ? "," : "") + std::to_string(idx[d]);
  return s + "]";
}

bool Exact(DataType dt) { return !IsFloatingPoint(dt); }

double Rms(const Tensor& t) {
  double sum = 0;
  int64_t n = 0;
  for (int64_t i = 0; i < t.numel(); ++i) {
    double v = t.ScalarAt(i);
    if (!std::isfinite(v)) continue;
    sum += v * v;
    ++n;
  }
  return n ? std::sqrt(sum / static_cast<double>(n)) : 0.0;
}

Comparison CompareExact(const Tensor& ref, const Tensor& got) {
  Comparison c;
  for (int64_t i = 0; i < ref.numel(); ++i) {
    // Bytes, not IntAt: complex and 64-bit values compare in full.
    const size_t size = ElementSize(ref.dtype());
    bool same = ref.dtype() == DataType::kString
                    ? ref.strings()[static_cast<size_t>(i)] == got.strings()[static_cast<size_t>(i)]
                    : std::memcmp(static_cast<const char*>(ref.raw()) + static_cast<size_t>(i) * size,
                                  static_cast<const char*>(got.raw()) + static_cast<size_t>(i) * size, size) == 0;
    if (same) continue;
    if (c.bad++ == 0) {
      c.worst = i;
      c.message = "differs at " + IndexString(ref.dims(), i) +
                  (ref.dtype() == DataType::kString
                       ? ""
                       : ": expected " + std::to_string(ref.IntAt(i)) + ", got " + std::to_string(got.IntAt(i))) +
                  " (exact match required)";
    }
  }
  if (c.bad > 1) c.message += " and " + std::to_string(c.bad - 1) + " more elements";
  c.ok = c.bad == 0;
  return c;
}

// Perturbs `ref` by 5%: each element moves by 5% of max(|ref|, rms), signs alternating.
Tensor Perturbed(const Tensor& ref, double rms) {
  Tensor t(DataType::kDouble, ref.dims());
  double* p = t.mutable_data<double>();
  for (int64_t i = 0; i < ref.numel(); ++i) {
    double v = ref.ScalarAt(i);
    double step = 0.05 * std::max(std::fabs(v), rms);
    p[i] = std::isfinite(v) ? v + ((i % 2) ? -step : step) : v;
  }
  return t;
}

}  // namespace

std::string Tolerance::ToString() const {
  std::string s;
  if (elementwise) s = "rtol " + Num(rtol) + " / atol " + Num(atol) + "·rms";
  if (max_rel_l2 >= 0) s += (s.empty() ? "" : ", ") + std::string("rel L2 ") + Num(max_rel_l2);
  return s;
}

Comparison CompareTensors(const Tensor& ref, const Tensor& got, const Tolerance& tol) {
  Comparison c;
  if (got.dims() != ref.dims()) {
    c.message = "has shape " + got.shape().ToString() + ", expected " + ref.shape().ToString();
    return c;
  }
  bool got_exact = Exact(got.dtype()) || got.dtype() == DataType::kString;
  bool ref_exact = Exact(ref.dtype()) || ref.dtype() == DataType::kString;
  if (got_exact != ref_exact || (ref_exact && got.dtype() != ref.dtype())) {
    c.message = "has type " + std::string(DataTypeName(got.dtype())) + ", expected " +
                std::string(DataTypeName(ref.dtype()));
    return c;
  }
  if (ref_exact) return CompareExact(ref, got);

  c.ref_rms = Rms(ref);
  const double floor = tol.atol * c.ref_rms;
  double diff2 = 0, ref2 = 0, worst_excess = -1;
  for (int64_t i = 0; i < ref.numel(); ++i) {
    double r = ref.ScalarAt(i), g = got.ScalarAt(i);
    if (!std::isfinite(r) || !std::isfinite(g)) {
      bool same = (std::isnan(r) && std::isnan(g)) || r == g;
      if (!same && c.bad++ == 0) {
        c.worst = i;
        worst_excess = INFINITY;
      }
      continue;
    }
    double d = std::fabs(g - r);
    diff2 += d * d;
    ref2 += r * r;
    if (d > c.max_abs) c.max_abs = d;
    double excess = d - (tol.rtol * std::fabs(r) + floor);
    if (tol.elementwise && excess > 0) {
      ++c.bad;
      if (excess > worst_excess) {
        worst_excess = excess;
        c.worst = i;
      }
    }
  }
  c.rel_l2 = ref2 > 0 ? std::sqrt(diff2 / ref2) : (diff2 > 0 ? INFINITY : 0.0);
  bool l2_bad = tol.max_rel_l2 >= 0 && !(c.rel_l2 <= tol.max_rel_l2);
  c.ok = c.bad == 0 && !l2_bad;
  if (c.ok) return c;
  if (c.bad) {
    int64_t i = c.worst;
    c.message = "differs in " + std::to_string(c.bad) + " of " + std::to_string(ref.numel()) + " elements; worst at " +
                IndexString(ref.dims(), i) + ": expected " + Num(ref.ScalarAt(i)) + ", got " +
                Num(got.ScalarAt(i));
  } else {
    c.message = "differs: rel L2 " + Num(c.rel_l2) + " is over " + Num(tol.max_rel_l2);
  }
  c.message += " (tolerance " + tol.ToString() + "; max abs " + Num(c.max_abs) + ", rel L2 " + Num(c.rel_l2) +
               ", reference RMS " + Num(c.ref_rms) + ")";
  return c;
}

Status CheckCanFail(const Tensor& ref, const Tolerance& tol) {
  if (ref.dtype() == DataType::kString) {
    for (const std::string& s : ref.strings())
      if (!s.empty()) return Status::Ok();
    return InvalidArgument("the reference is all empty strings: the check cannot fail");
  }
  if (ref.numel() == 0) return Status::Ok();  // nothing to compare: shape and type are the check
  Tensor zeros(ref.dtype(), ref.dims());    // zero-initialised
  if (Exact(ref.dtype())) {
    if (CompareExact(ref, zeros).ok)
      return InvalidArgument("the reference is all zeros: an all-zeros result would pass");
    return Status::Ok();
  }
  double rms = Rms(ref);
  if (!(rms > 0)) return InvalidArgument("the reference has no finite non-zero element: the check cannot fail");
  if (CompareTensors(ref, zeros, tol).ok)
    return InvalidArgument("tolerance " + tol.ToString() + " accepts an all-zeros result (reference RMS " +
                           Num(rms) + "): the check cannot fail");
  if (CompareTensors(ref, Perturbed(ref, rms), tol).ok)
    return InvalidArgument("tolerance " + tol.ToString() +
                           " accepts the reference perturbed by 5%: the check is too loose to fail");
  return Status::Ok();
}

Status ExpectClose(const std::string& what, const Tensor& ref, const Tensor& got, const Tolerance& tol) {
  Status can_fail = CheckCanFail(ref, tol);
  if (!can_fail.ok()) return InvalidArgument(what + ": vacuous comparison: " + can_fail.message());
  Comparison c = CompareTensors(ref, got, tol);
  if (!c.ok) return InvalidArgument(what + " " + c.message);
  return Status::Ok();
}

}  // namespace kiln
