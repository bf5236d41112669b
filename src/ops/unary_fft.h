// A float32 mixed-radix complex FFT that evaluates in the same order as
// numpy's pocketfft (factors of 4 first, a factor 2 moved to the front, then
// odd factors; the radix-2/3/4/5 butterflies; scaling applied last). numpy
// computes complex64 transforms in float32, so the ONNX reference's DFT
// results carry float32 rounding noise (e.g. 1.9e-7 where the exact value is
// 0); this reproduces it. Lengths with other prime factors return false and
// the caller falls back to a double-precision DFT.
#pragma once

#include <cmath>
#include <complex>
#include <utility>
#include <vector>

namespace kiln {
namespace fft_detail {

struct Cpx {
  float r = 0, i = 0;
};
inline Cpx Add(Cpx a, Cpx b) { return {a.r + b.r, a.i + b.i}; }
inline Cpx Sub(Cpx a, Cpx b) { return {a.r - b.r, a.i - b.i}; }
inline Cpx Scale(Cpx a, float s) { return {a.r * s, a.i * s}; }
// a * w (backward) or a * conj(w) (forward).
inline Cpx TwMul(Cpx a, Cpx w, bool bwd) {
  return bwd ? Cpx{a.r * w.r - a.i * w.i, a.r * w.i + a.i * w.r}
             : Cpx{a.r * w.r + a.i * w.i, a.i * w.r - a.r * w.i};
}
inline Cpx Rot90(Cpx a) { return {-a.i, a.r}; }
inline Cpx RotM90(Cpx a) { return {a.i, -a.r}; }

// e^(2 pi i k / n) rounded to float, exact on the axes.
inline Cpx Root(size_t k, size_t n) {
  k %= n;
  if ((4 * k) % n == 0) {
    switch ((4 * k) / n) {
      case 0:
        return {1, 0};
      case 1:
        return {0, 1};
      case 2:
        return {-1, 0};
      default:
        return {0, -1};
    }
  }
  const double a = 2.0 * 3.14159265358979323846 * static_cast<double>(k) / static_cast<double>(n);
  return {static_cast<float>(std::cos(a)), static_cast<float>(std::sin(a))};
}

class Plan {
 public:
  explicit Plan(size_t n) : n_(n) {
    size_t len = n;
    while ((len & 3) == 0) {
      fact_.push_back(4);
      len >>= 2;
    }
    if ((len & 1) == 0) {
      len >>= 1;
      fact_.push_back(2);
      std::swap(fact_.front(), fact_.back());
    }
    for (size_t d = 3; d * d <= len; d += 2)
      while (len % d == 0) {
        fact_.push_back(d);
        len /= d;
      }
    if (len > 1) fact_.push_back(len);
    for (size_t f : fact_) ok_ = ok_ && f <= 5;
  }
  bool ok() const { return ok_; }

  // In-place transform of n points, then multiplied by fct (when != 1).
  void Run(std::vector<Cpx>& c, bool bwd, float fct) const {
    if (n_ == 1) {
      if (fct != 1.0f) c[0] = Scale(c[0], fct);
      return;
    }
    std::vector<Cpx> ch(n_);
    std::vector<Cpx>* p1 = &c;
    std::vector<Cpx>* p2 = &ch;
    size_t l1 = 1;
    for (size_t ip : fact_) {
      const size_t ido = n_ / (l1 * ip);
      std::vector<Cpx> wa((ip - 1) * (ido > 0 ? ido - 1 : 0));
      for (size_t j = 1; j < ip; ++j)
        for (size_t i = 1; i < ido; ++i) wa[(j - 1) * (ido - 1) + i - 1] = Root(j * l1 * i, n_);
      Pass(ip, ido, l1, p1->data(), p2->data(), wa, bwd);
      std::swap(p1, p2);
      l1 *= ip;
    }
    if (p1 != &c) {
      for (size_t i = 0; i < n_; ++i) c[i] = fct != 1.0f ? Scale(ch[i], fct) : ch[i];
    } else if (fct != 1.0f) {
      for (size_t i = 0; i < n_; ++i) c[i] = Scale(c[i], fct);
    }
  }

 private:
  static void Pass(size_t ip, size_t ido, size_t l1, const Cpx* cc, Cpx* ch, const std::vector<Cpx>& wa,
                   bool bwd) {
    auto CC = [&](size_t a, size_t b, size_t c) -> const Cpx& { return cc[a + ido * (b + ip * c)]; };
    auto CH = [&](size_t a, size_t b, size_t c) -> Cpx& { return ch[a + ido * (b + l1 * c)]; };
    auto WA = [&](size_t x, size_t i) { return wa[i - 1 + x * (ido - 1)]; };
    // Output u of point i: twiddled unless i == 0.
    auto put = [&](size_t i, size_t k, size_t u, Cpx v) {
      CH(i, k, u) = i == 0 ? v : TwMul(v, WA(u - 1, i), bwd);
    };
    const float sgn = bwd ? 1.0f : -1.0f;
    for (size_t k = 0; k < l1; ++k)
      for (size_t i = 0; i < ido; ++i) {
        if (ip == 2) {
          CH(i, k, 0) = Add(CC(i, 0, k), CC(i, 1, k));
          put(i, k, 1, Sub(CC(i, 0, k), CC(i, 1, k)));
        } else if (ip == 3) {
          const float twr = -0.5f, twi = sgn * 0.866025403784438646763723170752936f;
          Cpx t0 = CC(i, 0, k), t1 = Add(CC(i, 1, k), CC(i, 2, k)), t2 = Sub(CC(i, 1, k), CC(i, 2, k));
          CH(i, k, 0) = Add(t0, t1);
          Cpx ca = Add(t0, Scale(t1, twr));
          Cpx cb = Rot90(Scale(t2, twi));
          put(i, k, 1, Add(ca, cb));
          put(i, k, 2, Sub(ca, cb));
        } else if (ip == 4) {
          Cpx t2 = Add(CC(i, 0, k), CC(i, 2, k)), t1 = Sub(CC(i, 0, k), CC(i, 2, k));
          Cpx t3 = Add(CC(i, 1, k), CC(i, 3, k)), t4 = Sub(CC(i, 1, k), CC(i, 3, k));
          t4 = bwd ? Rot90(t4) : RotM90(t4);
          CH(i, k, 0) = Add(t2, t3);
          put(i, k, 2, Sub(t2, t3));
          put(i, k, 1, Add(t1, t4));
          put(i, k, 3, Sub(t1, t4));
        } else {  // 5
          const float tw1r = 0.3090169943749474241022934171828191f,
                      tw1i = sgn * 0.9510565162951535721164393333793821f,
                      tw2r = -0.8090169943749474241022934171828191f,
                      tw2i = sgn * 0.5877852522924731291687059546390728f;
          Cpx t0 = CC(i, 0, k);
          Cpx t1 = Add(CC(i, 1, k), CC(i, 4, k)), t4 = Sub(CC(i, 1, k), CC(i, 4, k));
          Cpx t2 = Add(CC(i, 2, k), CC(i, 3, k)), t3 = Sub(CC(i, 2, k), CC(i, 3, k));
          CH(i, k, 0) = {t0.r + t1.r + t2.r, t0.i + t1.i + t2.i};
          auto step = [&](size_t u1, size_t u2, float twar, float twbr, float twai, float twbi) {
            Cpx ca{t0.r + twar * t1.r + twbr * t2.r, t0.i + twar * t1.i + twbr * t2.i};
            Cpx cb;
            cb.i = twai * t4.r + twbi * t3.r;
            cb.r = -(twai * t4.i + twbi * t3.i);
            put(i, k, u1, Add(ca, cb));
            put(i, k, u2, Sub(ca, cb));
          };
          step(1, 4, tw1r, tw2r, tw1i, tw2i);
          step(2, 3, tw2r, tw1r, tw2i, -tw1i);
        }
      }
  }

  size_t n_;
  std::vector<size_t> fact_;
  bool ok_ = true;
};

}  // namespace fft_detail
}  // namespace kiln
