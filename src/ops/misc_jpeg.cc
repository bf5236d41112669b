// Baseline JPEG decoding for ImageDecoder (see misc_image.h): markers,
// Huffman entropy decoding (interleaved and single-component scans, restart
// intervals), dequantization and the integer IDCT, upsampling and colour
// conversion, each step written to give the same bytes as libjpeg's defaults
// (jidctint.c, jdsample.c fancy upsampling, jdcolor.c), which Pillow uses.
#include <array>
#include <cstring>

#include "ops/misc_image.h"

namespace kiln {
namespace image {
namespace {

struct HuffTable {
  std::array<int, 17> count{};  // codes per length 1..16
  std::vector<uint8_t> symbols;
  bool defined = false;
};

struct Component {
  int id = 0, h = 1, v = 1, tq = 0;
  int td = 0, ta = 0;          // Huffman tables of the current scan
  int64_t bw = 0, bh = 0;      // blocks per row / column (padded to whole MCUs)
  std::vector<int16_t> coefs;  // bw*bh blocks of 64 (natural order)
  int pred = 0;                // DC predictor
};

// Zero bytes a scan may read past its data before it counts as truncated
// (a complete scan needs at most a few bits of padding).
constexpr size_t kMaxZerosFed = 16;

constexpr int kZigzag[64] = {0,  1,  8,  16, 9,  2,  3,  10, 17, 24, 32, 25, 18, 11, 4,  5,
                             12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6,  7,  14, 21, 28,
                             35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51,
                             58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63};

// Entropy-coded data: bits MSB first, 0xFF00 unstuffed, stops at a marker.
class BitStream {
 public:
  BitStream(const uint8_t* d, size_t n, size_t pos) : d_(d), n_(n), pos_(pos) {}
  int Bit() {
    if (cnt_ == 0) {
      uint8_t b = 0;
      if (pos_ < n_ && !(d_[pos_] == 0xFF && pos_ + 1 < n_ && d_[pos_ + 1] != 0)) {
        b = d_[pos_++];
        if (b == 0xFF) ++pos_;  // stuffed zero
      } else {                  // at a marker: feed zeros, as libjpeg does
        ++zeros_fed_;
      }
      cur_ = b;
      cnt_ = 8;
    }
    --cnt_;
    return (cur_ >> cnt_) & 1;
  }
  int Bits(int n) {
    int v = 0;
    for (int i = 0; i < n; ++i) v = (v << 1) | Bit();
    return v;
  }
  // Skips to the next RSTn marker (after a restart interval).
  bool Restart() {
    cnt_ = 0;
    zeros_fed_ = 0;
    while (pos_ + 1 < n_ && !(d_[pos_] == 0xFF && d_[pos_ + 1] >= 0xD0 && d_[pos_ + 1] <= 0xD7)) ++pos_;
    if (pos_ + 1 >= n_) return false;
    pos_ += 2;
    return true;
  }
  size_t pos() const { return pos_; }
  // Zero bytes fed past the end of the data: more than a few means the
  // entropy-coded data was cut short (a truncated file).
  size_t zeros_fed() const { return zeros_fed_; }

 private:
  const uint8_t* d_;
  size_t n_, pos_;
  int cur_ = 0, cnt_ = 0;
  size_t zeros_fed_ = 0;
};

int DecodeHuff(BitStream& bs, const HuffTable& t) {
  int code = 0, first = 0, index = 0;
  for (int len = 1; len <= 16; ++len) {
    code |= bs.Bit();
    const int count = t.count[static_cast<size_t>(len)];
    if (code - first < count) return t.symbols[static_cast<size_t>(index + code - first)];
    index += count;
    first = (first + count) << 1;
    code <<= 1;
  }
  return -1;
}

int Extend(int v, int s) { return s == 0 ? 0 : (v < (1 << (s - 1)) ? v - (1 << s) + 1 : v); }

// ---------------------------------------------------------------- IDCT (jidctint.c)

constexpr int64_t kConstBits = 13, kPass1Bits = 2;
constexpr int64_t F0298 = 2446, F0390 = 3196, F0541 = 4433, F0765 = 6270, F0899 = 7373, F1175 = 9633,
                  F1501 = 12299, F1847 = 15137, F1961 = 16069, F2053 = 16819, F2562 = 20995, F3072 = 25172;

int64_t Descale(int64_t x, int64_t n) { return (x + (int64_t{1} << (n - 1))) >> n; }

// libjpeg's post-IDCT range limit: clamp(v + 128) with its wrap-around.
uint8_t RangeLimit(int64_t v) {
  const int64_t idx = v & 1023;
  if (idx < 128) return static_cast<uint8_t>(idx + 128);
  if (idx < 512) return 255;
  if (idx < 896) return 0;
  return static_cast<uint8_t>(idx - 896);
}

// One 1-D pass of the islow IDCT over in[0], in[s], ..., in[7s].
void Idct1D(const int64_t* in, int64_t s, int64_t out[8]) {
  int64_t z2 = in[2 * s], z3 = in[6 * s];
  int64_t z1 = (z2 + z3) * F0541;
  const int64_t tmp2e = z1 + z3 * -F1847, tmp3e = z1 + z2 * F0765;
  z2 = in[0];
  z3 = in[4 * s];
  const int64_t tmp0e = (z2 + z3) * (int64_t{1} << kConstBits),
                tmp1e = (z2 - z3) * (int64_t{1} << kConstBits);
  const int64_t tmp10 = tmp0e + tmp3e, tmp13 = tmp0e - tmp3e, tmp11 = tmp1e + tmp2e, tmp12 = tmp1e - tmp2e;
  int64_t tmp0 = in[7 * s], tmp1 = in[5 * s], tmp2 = in[3 * s], tmp3 = in[1 * s];
  z1 = tmp0 + tmp3;
  z2 = tmp1 + tmp2;
  z3 = tmp0 + tmp2;
  int64_t z4 = tmp1 + tmp3;
  const int64_t z5 = (z3 + z4) * F1175;
  tmp0 *= F0298;
  tmp1 *= F2053;
  tmp2 *= F3072;
  tmp3 *= F1501;
  z1 *= -F0899;
  z2 *= -F2562;
  z3 *= -F1961;
  z4 *= -F0390;
  z3 += z5;
  z4 += z5;
  tmp0 += z1 + z3;
  tmp1 += z2 + z4;
  tmp2 += z2 + z3;
  tmp3 += z1 + z4;
  out[0] = tmp10 + tmp3;
  out[7] = tmp10 - tmp3;
  out[1] = tmp11 + tmp2;
  out[6] = tmp11 - tmp2;
  out[2] = tmp12 + tmp1;
  out[5] = tmp12 - tmp1;
  out[3] = tmp13 + tmp0;
  out[4] = tmp13 - tmp0;
}

// Dequantizes and inverse-transforms one block into out (stride `stride`).
void IdctBlock(const int16_t* coef, const uint16_t* q, uint8_t* out, int64_t stride) {
  int64_t ws[64];
  for (int c = 0; c < 8; ++c) {  // columns
    int64_t in[64];
    bool ac_zero = true;
    for (int r = 0; r < 8; ++r) {
      in[r * 8] = static_cast<int64_t>(coef[r * 8 + c]) * q[r * 8 + c];
      if (r > 0 && in[r * 8] != 0) ac_zero = false;
    }
    if (ac_zero) {
      for (int r = 0; r < 8; ++r) ws[r * 8 + c] = in[0] * (int64_t{1} << kPass1Bits);
      continue;
    }
    int64_t o[8];
    Idct1D(in, 8, o);
    for (int r = 0; r < 8; ++r) ws[r * 8 + c] = Descale(o[r], kConstBits - kPass1Bits);
  }
  for (int r = 0; r < 8; ++r) {  // rows
    const int64_t* w = &ws[r * 8];
    uint8_t* dst = out + r * stride;
    bool ac_zero = true;
    for (int c = 1; c < 8; ++c) ac_zero = ac_zero && w[c] == 0;
    if (ac_zero) {
      const uint8_t v = RangeLimit(Descale(w[0], kPass1Bits + 3));
      for (int c = 0; c < 8; ++c) dst[c] = v;
      continue;
    }
    int64_t o[8];
    Idct1D(w, 1, o);
    for (int c = 0; c < 8; ++c) dst[c] = RangeLimit(Descale(o[c], kConstBits + kPass1Bits + 3));
  }
}

// ---------------------------------------------------------------- upsampling (jdsample.c)

// A component plane of w x h samples (valid data; callers pad edges by
// replication as libjpeg's context rows do).
struct Plane {
  int64_t w = 0, h = 0;
  std::vector<uint8_t> px;
  int at(int64_t x, int64_t y) const {
    x = std::min(std::max<int64_t>(x, 0), w - 1);
    y = std::min(std::max<int64_t>(y, 0), h - 1);
    return px[static_cast<size_t>(y * w + x)];
  }
};

// Upsamples by (fh, fv) to out_w x out_h. h2v1 / h2v2 use libjpeg's "fancy"
// triangle filters when the plane is wider than 2; others replicate.
Plane Upsample(const Plane& p, int fh, int fv, int64_t out_w, int64_t out_h) {
  Plane o;
  o.w = out_w;
  o.h = out_h;
  o.px.resize(static_cast<size_t>(out_w * out_h));
  const bool fancy = p.w > 2 && fh == 2 && (fv == 1 || fv == 2);
  for (int64_t y = 0; y < out_h; ++y) {
    const int64_t iy = y / fv;
    for (int64_t x = 0; x < out_w; ++x) {
      const int64_t ix = x / fh;
      int v;
      if (!fancy) {
        v = p.at(ix, iy);
      } else if (fv == 1) {
        const bool left = (x % 2) == 0;
        if (ix == 0 && left)
          v = p.at(0, iy);
        else if (ix == p.w - 1 && !left)
          v = p.at(ix, iy);
        else
          v = left ? (p.at(ix, iy) * 3 + p.at(ix - 1, iy) + 1) >> 2
                   : (p.at(ix, iy) * 3 + p.at(ix + 1, iy) + 2) >> 2;
      } else {
        const int64_t ny = (y % 2) == 0 ? iy - 1 : iy + 1;  // next nearest row (edges replicate)
        auto colsum = [&](int64_t cx) { return p.at(cx, iy) * 3 + p.at(cx, ny); };
        const bool left = (x % 2) == 0;
        const int th = colsum(ix);
        if (ix == 0 && left)
          v = (th * 4 + 8) >> 4;
        else if (ix == p.w - 1 && !left)
          v = (th * 4 + 7) >> 4;
        else
          v = left ? (th * 3 + colsum(ix - 1) + 8) >> 4 : (th * 3 + colsum(ix + 1) + 7) >> 4;
      }
      o.px[static_cast<size_t>(y * out_w + x)] = static_cast<uint8_t>(v);
    }
  }
  return o;
}

uint8_t Clamp255(int v) { return static_cast<uint8_t>(std::min(255, std::max(0, v))); }

struct Decoder {
  Decoder(const uint8_t* data, size_t size) : d(data), n(size) {}
  const uint8_t* d;
  size_t n;
  std::array<std::array<uint16_t, 64>, 4> quant{};
  std::array<HuffTable, 4> dc, ac;
  std::vector<Component> comps;
  int64_t width = 0, height = 0, mcux = 0, mcuy = 0;
  int hmax = 1, vmax = 1;
  int restart = 0;
  bool frame = false;
  int adobe_transform = -1;  // APP14 "Adobe" colour transform flag, -1 when absent
  bool jfif = false;

  Status Fail(const std::string& m) const { return InvalidArgument("JPEG: " + m); }

  Status ReadTables(size_t p, size_t len, uint8_t marker) {
    const size_t end = p + len;
    if (marker == 0xDB) {
      while (p < end) {
        const int pq = d[p] >> 4, tq = d[p] & 15;
        ++p;
        if (tq > 3 || p + (pq ? 128u : 64u) > end) return Fail("bad quantization table");
        for (int i = 0; i < 64; ++i) {
          quant[static_cast<size_t>(tq)][static_cast<size_t>(kZigzag[i])] =
              pq ? static_cast<uint16_t>((d[p] << 8) | d[p + 1]) : d[p];
          p += pq ? 2 : 1;
        }
      }
    } else {  // DHT
      while (p < end) {
        const int tc = d[p] >> 4, th = d[p] & 15;
        if (tc > 1 || th > 3 || p + 17 > end) return Fail("bad Huffman table");
        HuffTable& t = tc ? ac[static_cast<size_t>(th)] : dc[static_cast<size_t>(th)];
        t = HuffTable();
        size_t total = 0;
        for (size_t i = 1; i <= 16; ++i) total += t.count[i] = d[p + i];
        p += 17;
        if (p + total > end) return Fail("bad Huffman table");
        t.symbols.assign(d + p, d + p + total);
        t.defined = true;
        p += total;
      }
    }
    return Status::Ok();
  }

  Status ReadFrame(size_t p, size_t len) {
    if (frame) return Fail("more than one frame");
    if (len < 6 || d[p] != 8) return Unsupported("JPEG: only 8-bit samples are supported");
    height = (d[p + 1] << 8) | d[p + 2];
    width = (d[p + 3] << 8) | d[p + 4];
    const int nc = d[p + 5];
    if (width == 0 || height == 0) return Fail("bad size");
    if (width * height > (int64_t{1} << 26))
      return Unsupported("JPEG: images over 64 megapixels are not supported");
    if ((nc != 1 && nc != 3) || len < 6 + 3u * nc)
      return Unsupported("JPEG: only 1 or 3 components are supported");
    for (int i = 0; i < nc; ++i) {
      Component c;
      c.id = d[p + 6 + i * 3];
      c.h = d[p + 7 + i * 3] >> 4;
      c.v = d[p + 7 + i * 3] & 15;
      c.tq = d[p + 8 + i * 3];
      if (c.h < 1 || c.h > 4 || c.v < 1 || c.v > 4 || c.tq > 3) return Fail("bad component");
      hmax = std::max(hmax, c.h);
      vmax = std::max(vmax, c.v);
      comps.push_back(c);
    }
    for (const Component& c : comps)
      if (hmax % c.h != 0 || vmax % c.v != 0) return Unsupported("JPEG: non-integral sampling ratios");
    mcux = (width + 8 * hmax - 1) / (8 * hmax);
    mcuy = (height + 8 * vmax - 1) / (8 * vmax);
    for (Component& c : comps) {
      c.bw = mcux * c.h;
      c.bh = mcuy * c.v;
      c.coefs.assign(static_cast<size_t>(c.bw * c.bh * 64), 0);
    }
    frame = true;
    return Status::Ok();
  }

  Status DecodeBlock(BitStream& bs, Component& c, int64_t bx, int64_t by) {
    if (bx >= c.bw || by >= c.bh) return Fail("block out of range");
    int16_t* blk = &c.coefs[static_cast<size_t>((by * c.bw + bx) * 64)];
    const HuffTable& dct = dc[static_cast<size_t>(c.td)];
    const HuffTable& act = ac[static_cast<size_t>(c.ta)];
    if (!dct.defined || !act.defined) return Fail("missing Huffman table");
    int s = DecodeHuff(bs, dct);
    if (s < 0 || s > 11) return Fail("bad DC code");
    c.pred = static_cast<int16_t>(c.pred + Extend(bs.Bits(s), s));  // wraps like a 16-bit coefficient
    blk[0] = static_cast<int16_t>(c.pred);
    for (int k = 1; k < 64;) {
      const int rs = DecodeHuff(bs, act);
      if (rs < 0) return Fail("bad AC code");
      const int r = rs >> 4, sz = rs & 15;
      if (sz == 0) {
        if (r != 15) break;  // end of block
        k += 16;
        continue;
      }
      k += r;
      if (k > 63) return Fail("bad AC run");
      blk[kZigzag[k]] = static_cast<int16_t>(Extend(bs.Bits(sz), sz));
      ++k;
    }
    return Status::Ok();
  }

  // Decodes one scan starting at `p` (the SOS segment); returns the position
  // after its entropy-coded data.
  Expected<size_t> ReadScan(size_t p, size_t len) {
    if (!frame) return Fail("scan before frame");
    const int ns = d[p];
    if (ns < 1 || ns > 4 || len < 4 + 2u * ns) return Fail("bad scan header");
    std::vector<Component*> sc;
    for (int i = 0; i < ns; ++i) {
      const int id = d[p + 1 + i * 2], tables = d[p + 2 + i * 2];
      Component* c = nullptr;
      for (Component& k : comps)
        if (k.id == id) c = &k;
      if (!c) return Fail("scan names an unknown component");
      c->td = (tables >> 4) & 3;
      c->ta = tables & 3;
      c->pred = 0;
      sc.push_back(c);
    }
    const size_t ss = p + 1 + 2 * static_cast<size_t>(ns);
    if (d[ss] != 0 || d[ss + 1] != 63 || d[ss + 2] != 0)
      return Unsupported("JPEG: progressive JPEG is not supported");
    BitStream bs(d, n, p + len);
    int64_t units_x = mcux, units_y = mcuy;
    if (ns == 1) {  // non-interleaved: one block per unit over the component's own grid
      units_x = (width * sc[0]->h / hmax + 7) / 8;
      units_y = (height * sc[0]->v / vmax + 7) / 8;
    }
    int64_t count = 0;
    for (int64_t my = 0; my < units_y; ++my)
      for (int64_t mx = 0; mx < units_x; ++mx) {
        if (restart && count > 0 && count % restart == 0) {
          if (!bs.Restart()) return Fail("missing restart marker");
          for (Component* c : sc) c->pred = 0;
        }
        ++count;
        // Like Pillow (and unlike libjpeg, which pads with zeros and warns),
        // data that ends early is an error: else a few hundred bytes could
        // ask for a 64-megapixel decode.
        if (bs.zeros_fed() > kMaxZerosFed) return Fail("image data ends early (truncated file)");
        if (ns == 1) {
          KILN_RETURN_IF_ERROR(DecodeBlock(bs, *sc[0], mx, my));
          continue;
        }
        for (Component* c : sc)
          for (int v = 0; v < c->v; ++v)
            for (int h = 0; h < c->h; ++h)
              KILN_RETURN_IF_ERROR(DecodeBlock(bs, *c, mx * c->h + h, my * c->v + v));
      }
    size_t q = bs.pos();
    while (q + 1 < n && !(d[q] == 0xFF && d[q + 1] != 0 && !(d[q + 1] >= 0xD0 && d[q + 1] <= 0xD7))) ++q;
    return q;
  }

  Expected<Image> Run() {
    size_t p = 2;
    bool scanned = false;
    while (p + 4 <= n) {
      if (d[p] != 0xFF) return Fail("expected a marker");
      const uint8_t m = d[p + 1];
      if (m == 0xFF) {
        ++p;
        continue;
      }
      if (m == 0xD9) break;  // EOI
      const size_t len = (static_cast<size_t>(d[p + 2]) << 8) | d[p + 3];
      if (len < 2 || p + 2 + len > n) return Fail("truncated segment");
      const size_t body = p + 4, blen = len - 2;
      if (m == 0xC0 || m == 0xC1) {
        KILN_RETURN_IF_ERROR(ReadFrame(body, blen));
      } else if ((m >= 0xC2 && m <= 0xCF) && m != 0xC4 && m != 0xC8 && m != 0xCC) {
        return Unsupported("JPEG: progressive, lossless and arithmetic-coded JPEG are not supported");
      } else if (m == 0xDB || m == 0xC4) {
        KILN_RETURN_IF_ERROR(ReadTables(body, blen, m));
      } else if (m == 0xE0 && blen >= 5 && std::memcmp(d + body, "JFIF", 5) == 0) {
        jfif = true;
      } else if (m == 0xEE && blen >= 12 && std::memcmp(d + body, "Adobe", 5) == 0) {
        adobe_transform = d[body + 11];
      } else if (m == 0xDD) {
        if (blen < 2) return Fail("bad restart interval");
        restart = (d[body] << 8) | d[body + 1];
      } else if (m == 0xDA) {
        KILN_ASSIGN_OR_RETURN(p, ReadScan(body, blen));
        scanned = true;
        continue;
      }
      p += 2 + len;
    }
    if (!scanned) return Fail("no image data");
    return Finish();
  }

  Image Finish() {
    std::vector<Plane> planes;
    for (const Component& c : comps) {
      Plane pl;
      const int64_t full_w = c.bw * 8, full_h = c.bh * 8;
      std::vector<uint8_t> px(static_cast<size_t>(full_w * full_h));
      for (int64_t by = 0; by < c.bh; ++by)
        for (int64_t bx = 0; bx < c.bw; ++bx)
          IdctBlock(&c.coefs[static_cast<size_t>((by * c.bw + bx) * 64)],
                    quant[static_cast<size_t>(c.tq)].data(),
                    &px[static_cast<size_t>(by * 8 * full_w + bx * 8)], full_w);
      // The component's real size (libjpeg's downsampled_width/height).
      pl.w = (width * c.h + hmax - 1) / hmax;
      pl.h = (height * c.v + vmax - 1) / vmax;
      pl.px.resize(static_cast<size_t>(pl.w * pl.h));
      for (int64_t y = 0; y < pl.h; ++y)
        std::memcpy(&pl.px[static_cast<size_t>(y * pl.w)], &px[static_cast<size_t>(y * full_w)],
                    static_cast<size_t>(pl.w));
      if (c.h != hmax || c.v != vmax) {
        const int fh = hmax / c.h, fv = vmax / c.v;
        pl = Upsample(pl, fh, fv, pl.w * fh, pl.h * fv);
      }
      planes.push_back(std::move(pl));
    }
    Image img;
    img.width = width;
    img.height = height;
    img.channels = comps.size() == 1 ? 1 : 3;
    img.pixels.resize(static_cast<size_t>(width * height * img.channels));
    // Colour space as libjpeg guesses it: JFIF or an Adobe transform flag
    // mean YCbCr, an Adobe flag of 0 or component ids 'R','G','B' mean RGB.
    bool rgb = false;
    if (comps.size() == 3 && !jfif) {
      if (adobe_transform >= 0)
        rgb = adobe_transform == 0;
      else
        rgb = comps[0].id == 'R' && comps[1].id == 'G' && comps[2].id == 'B';
    }
    // jdcolor.c fixed-point YCbCr -> RGB.
    auto fix = [](double x) { return static_cast<int64_t>(x * 65536.0 + 0.5); };
    const int64_t half = int64_t{1} << 15;
    for (int64_t y = 0; y < height; ++y)
      for (int64_t x = 0; x < width; ++x) {
        uint8_t* out = &img.pixels[static_cast<size_t>((y * width + x) * img.channels)];
        const int yy = planes[0].px[static_cast<size_t>(y * planes[0].w + x)];
        if (img.channels == 1) {
          out[0] = static_cast<uint8_t>(yy);
          continue;
        }
        if (rgb) {
          out[0] = static_cast<uint8_t>(yy);
          out[1] = planes[1].px[static_cast<size_t>(y * planes[1].w + x)];
          out[2] = planes[2].px[static_cast<size_t>(y * planes[2].w + x)];
          continue;
        }
        const int64_t cb = planes[1].px[static_cast<size_t>(y * planes[1].w + x)] - 128;
        const int64_t cr = planes[2].px[static_cast<size_t>(y * planes[2].w + x)] - 128;
        const int r = static_cast<int>((fix(1.40200) * cr + half) >> 16);
        const int b = static_cast<int>((fix(1.77200) * cb + half) >> 16);
        const int g = static_cast<int>(((-fix(0.34414)) * cb + half + (-fix(0.71414)) * cr) >> 16);
        out[0] = Clamp255(yy + r);
        out[1] = Clamp255(yy + g);
        out[2] = Clamp255(yy + b);
      }
    return img;
  }
};

}  // namespace

Expected<Image> DecodeJpeg(const uint8_t* data, size_t size) {
  if (size < 4 || data[0] != 0xFF || data[1] != 0xD8) return InvalidArgument("JPEG: missing SOI marker");
  Decoder dec(data, size);
  return dec.Run();
}

}  // namespace image
}  // namespace kiln
