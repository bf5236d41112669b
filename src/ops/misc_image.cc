// ImageDecoder: decodes BMP (8/24/32-bit uncompressed), PNM (P2/P3/P5/P6),
// PNG (8-bit or lower depths, not interlaced; with a small inflate) and
// uncompressed TIFF, and baseline JPEG (misc_jpeg.cc) into [H, W, C] uint8 in
// RGB, BGR or Grayscale (Pillow's "L" weights). Progressive JPEG, JPEG 2000
// and WebP are reported as unsupported.
#include "ops/misc_image.h"

#include <cctype>
#include <cstdlib>
#include <cstring>

#include "ops/op_table.h"

namespace kiln {
namespace ops {
namespace {

using image::Image;

uint32_t Le32(const uint8_t* p) {
  return p[0] | (p[1] << 8) | (p[2] << 16) | (static_cast<uint32_t>(p[3]) << 24);
}
uint16_t Le16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
uint32_t Be32(const uint8_t* p) {
  return (static_cast<uint32_t>(p[0]) << 24) | (p[1] << 16) | (p[2] << 8) | p[3];
}

// ---------------------------------------------------------------- BMP

Expected<Image> DecodeBmp(const uint8_t* d, size_t n) {
  if (n < 54) return InvalidArgument("BMP: truncated header");
  const uint32_t offset = Le32(d + 10), dib = Le32(d + 14);
  const int32_t w = static_cast<int32_t>(Le32(d + 18)), h_raw = static_cast<int32_t>(Le32(d + 22));
  const uint16_t bpp = Le16(d + 28);
  const uint32_t compression = Le32(d + 30);
  if (w <= 0 || w > (1 << 16) || h_raw == 0 || h_raw > (1 << 16) || h_raw < -(1 << 16))
    return InvalidArgument("BMP: bad size");
  if (compression != 0 && !(compression == 3 && bpp == 32))
    return Unsupported("BMP: compressed bitmaps are not supported");
  if (bpp != 8 && bpp != 24 && bpp != 32)
    return Unsupported("BMP: " + std::to_string(bpp) + "-bit is not supported");
  const bool bottom_up = h_raw > 0;
  const int64_t h = bottom_up ? h_raw : -static_cast<int64_t>(h_raw);
  const size_t stride = ((static_cast<size_t>(bpp) * w + 31) / 32) * 4;
  if (offset > n || stride * static_cast<size_t>(h) > n - offset)
    return InvalidArgument("BMP: truncated pixel data");
  const uint32_t colors = bpp == 8 ? (Le32(d + 46) ? Le32(d + 46) : 256) : 0;
  // In 64 bits: a DIB header size near 2^32 must not wrap past the check.
  if (bpp == 8 && (14 + uint64_t{dib} + uint64_t{colors} * 4 > offset || colors > 256))
    return InvalidArgument("BMP: bad palette");
  const uint8_t* palette = bpp == 8 ? d + 14 + dib : nullptr;
  Image img{w, h, 3, std::vector<uint8_t>(static_cast<size_t>(w * h * 3))};
  for (int64_t y = 0; y < h; ++y) {
    const uint8_t* row = d + offset + stride * static_cast<size_t>(bottom_up ? h - 1 - y : y);
    for (int64_t x = 0; x < w; ++x) {
      const uint8_t* bgr = nullptr;
      if (bpp == 8) {
        if (row[x] >= colors) return InvalidArgument("BMP: palette index out of range");
        bgr = palette + row[x] * 4;
      } else {
        bgr = row + x * (bpp / 8);
      }
      uint8_t* px = &img.pixels[static_cast<size_t>((y * w + x) * 3)];
      px[0] = bgr[2];
      px[1] = bgr[1];
      px[2] = bgr[0];
    }
  }
  return img;
}

// ---------------------------------------------------------------- PNM

Expected<Image> DecodePnm(const uint8_t* d, size_t n) {
  const char kind = static_cast<char>(d[1]);
  size_t pos = 2;
  auto token = [&](int64_t* out) -> bool {
    while (pos < n) {
      if (d[pos] == '#') {
        while (pos < n && d[pos] != '\n') ++pos;
      } else if (std::isspace(d[pos])) {
        ++pos;
      } else {
        break;
      }
    }
    if (pos >= n || !std::isdigit(d[pos])) return false;
    int64_t v = 0;
    while (pos < n && std::isdigit(d[pos]) && v < (1 << 24)) v = v * 10 + (d[pos++] - '0');
    *out = v;
    return true;
  };
  int64_t w = 0, h = 0, maxval = 0;
  if (!token(&w) || !token(&h) || !token(&maxval) || w <= 0 || h <= 0 || maxval <= 0 || maxval > 255)
    return Unsupported("PNM: bad header or more than 8 bits per sample");
  const int64_t ch = (kind == '3' || kind == '6') ? 3 : 1;
  const bool binary = kind == '5' || kind == '6';
  // Every sample takes at least one byte of the file (two in text form).
  if (w * h * ch > static_cast<int64_t>(n)) return InvalidArgument("PNM: truncated pixel data");
  Image img{w, h, ch, std::vector<uint8_t>(static_cast<size_t>(w * h * ch))};
  if (binary) ++pos;  // the single whitespace after maxval
  for (size_t i = 0; i < img.pixels.size(); ++i) {
    int64_t v = 0;
    if (binary) {
      if (pos >= n) return InvalidArgument("PNM: truncated pixel data");
      v = d[pos++];
    } else if (!token(&v)) {
      return InvalidArgument("PNM: truncated pixel data");
    }
    img.pixels[i] = static_cast<uint8_t>(std::min<int64_t>(255, (v * 255 + maxval / 2) / maxval));
  }
  return img;
}

// ---------------------------------------------------------------- TIFF
// Baseline uncompressed TIFF: 8-bit gray (photometric 0/1) or RGB(A), chunky,
// in strips; either byte order.

Expected<Image> DecodeTiff(const uint8_t* d, size_t n) {
  const bool le = d[0] == 'I';
  auto u16 = [&](size_t p) -> uint32_t {
    return le ? Le16(d + p) : static_cast<uint32_t>((d[p] << 8) | d[p + 1]);
  };
  auto u32 = [&](size_t p) -> uint32_t { return le ? Le32(d + p) : Be32(d + p); };
  if (n < 8) return InvalidArgument("TIFF: truncated header");
  const size_t ifd = u32(4);
  if (ifd + 2 > n) return InvalidArgument("TIFF: bad directory offset");
  const uint32_t entries = u16(ifd);
  if (ifd + 2 + entries * 12 > n) return InvalidArgument("TIFF: truncated directory");
  uint32_t width = 0, height = 0, compression = 1, photometric = 2, samples = 1, rows_per_strip = 0,
           planar = 1;
  std::vector<uint32_t> bits, offsets, counts;
  for (uint32_t i = 0; i < entries; ++i) {
    const size_t e = ifd + 2 + i * 12;
    const uint32_t tag = u16(e), type = u16(e + 2), count = u32(e + 4);
    const size_t size = type == 3 ? 2 : type == 4 ? 4 : 1;
    size_t at = e + 8;
    if (size * count > 4) at = u32(e + 8);
    if (at + size * count > n || count > (1u << 20)) return InvalidArgument("TIFF: bad directory entry");
    std::vector<uint32_t> vals;
    for (uint32_t k = 0; k < count; ++k)
      vals.push_back(size == 2 ? u16(at + k * 2) : size == 4 ? u32(at + k * 4) : d[at + k]);
    if (vals.empty()) continue;
    switch (tag) {
      case 256:
        width = vals[0];
        break;
      case 257:
        height = vals[0];
        break;
      case 258:
        bits = vals;
        break;
      case 259:
        compression = vals[0];
        break;
      case 262:
        photometric = vals[0];
        break;
      case 273:
        offsets = vals;
        break;
      case 277:
        samples = vals[0];
        break;
      case 278:
        rows_per_strip = vals[0];
        break;
      case 279:
        counts = vals;
        break;
      case 284:
        planar = vals[0];
        break;
      default:
        break;
    }
  }
  if (compression != 1) return Unsupported("TIFF: compressed images are not supported");
  for (uint32_t b : bits)
    if (b != 8) return Unsupported("TIFF: only 8 bits per sample are supported");
  const bool gray = photometric == 0 || photometric == 1;
  if (planar != 1 || (!gray && photometric != 2) || samples < (gray ? 1u : 3u) || samples > 4)
    return Unsupported("TIFF: only chunky gray or RGB images are supported");
  if (width == 0 || height == 0 || width > (1u << 16) || height > (1u << 16) || offsets.empty())
    return InvalidArgument("TIFF: bad size or strips");
  if (rows_per_strip == 0 || rows_per_strip > height) rows_per_strip = height;
  if (static_cast<uint64_t>(width) * height * samples > n)
    return InvalidArgument("TIFF: truncated pixel data");
  Image img{width, height, gray ? 1 : 3,
            std::vector<uint8_t>(static_cast<size_t>(width) * height * (gray ? 1 : 3))};
  const size_t row_bytes = static_cast<size_t>(width) * samples;
  for (uint32_t y = 0; y < height; ++y) {
    const size_t strip = y / rows_per_strip;
    if (strip >= offsets.size()) return InvalidArgument("TIFF: missing strip");
    const size_t at = offsets[strip] + (y % rows_per_strip) * row_bytes;
    if (at + row_bytes > n) return InvalidArgument("TIFF: truncated pixel data");
    for (uint32_t x = 0; x < width; ++x) {
      const uint8_t* s = d + at + x * samples;
      uint8_t* px = &img.pixels[(static_cast<size_t>(y) * width + x) * img.channels];
      if (gray)
        px[0] = photometric == 0 ? static_cast<uint8_t>(255 - s[0]) : s[0];
      else
        std::memcpy(px, s, 3);
    }
  }
  return img;
}

// ---------------------------------------------------------------- inflate (RFC 1950/1951)

class BitReader {
 public:
  BitReader(const uint8_t* d, size_t n) : d_(d), n_(n) {}
  // Next `count` bits, LSB first; false at the end of the data.
  bool Bits(int count, uint32_t* out) {
    uint32_t v = 0;
    for (int i = 0; i < count; ++i) {
      if (pos_ >= n_) return false;
      v |= static_cast<uint32_t>((d_[pos_] >> bit_) & 1u) << i;
      if (++bit_ == 8) {
        bit_ = 0;
        ++pos_;
      }
    }
    *out = v;
    return true;
  }
  void AlignToByte() {
    if (bit_) {
      bit_ = 0;
      ++pos_;
    }
  }
  bool Byte(uint8_t* b) {
    if (pos_ >= n_) return false;
    *b = d_[pos_++];
    return true;
  }

 private:
  const uint8_t* d_;
  size_t n_;
  size_t pos_ = 0;
  int bit_ = 0;
};

struct Huffman {
  std::vector<int> count, symbol;
};

Huffman BuildHuffman(const std::vector<int>& lengths) {
  Huffman h;
  h.count.assign(16, 0);
  for (int l : lengths) h.count[static_cast<size_t>(l)]++;
  h.count[0] = 0;
  std::vector<int> offs(16, 0);
  for (size_t l = 1; l < 16; ++l) offs[l] = offs[l - 1] + h.count[l - 1];
  h.symbol.assign(lengths.size(), 0);
  for (size_t s = 0; s < lengths.size(); ++s)
    if (lengths[s])
      h.symbol[static_cast<size_t>(offs[static_cast<size_t>(lengths[s])]++)] = static_cast<int>(s);
  return h;
}

// Next symbol, or -1 on bad data.
int DecodeSymbol(BitReader& br, const Huffman& h) {
  int code = 0, first = 0, index = 0;
  for (size_t len = 1; len < 16; ++len) {
    uint32_t bit;
    if (!br.Bits(1, &bit)) return -1;
    code |= static_cast<int>(bit);
    const int count = h.count[len];
    if (code - count < first) return h.symbol[static_cast<size_t>(index + (code - first))];
    index += count;
    first = (first + count) << 1;
    code <<= 1;
  }
  return -1;
}

Status InflateBlock(BitReader& br, const Huffman& lit, const Huffman& dist, size_t max_out,
                    std::vector<uint8_t>* out) {
  static const int kLenBase[] = {3,  4,  5,  6,  7,  8,  9,  10, 11,  13,  15,  17,  19,  23, 27,
                                 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258};
  static const int kLenExtra[] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2,
                                  2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
  static const int kDistBase[] = {1,    2,    3,    4,    5,    7,    9,    13,    17,    25,
                                  33,   49,   65,   97,   129,  193,  257,  385,   513,   769,
                                  1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577};
  static const int kDistExtra[] = {0, 0, 0, 0, 1, 1, 2, 2,  3,  3,  4,  4,  5,  5,  6,
                                   6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13};
  while (true) {
    if (out->size() > max_out) return InvalidArgument("PNG: more image data than the header allows");
    int sym = DecodeSymbol(br, lit);
    if (sym < 0) return InvalidArgument("PNG: bad compressed data");
    if (sym < 256) {
      out->push_back(static_cast<uint8_t>(sym));
      continue;
    }
    if (sym == 256) return Status::Ok();
    sym -= 257;
    if (sym >= 29) return InvalidArgument("PNG: bad length code");
    uint32_t extra;
    if (!br.Bits(kLenExtra[sym], &extra)) return InvalidArgument("PNG: truncated data");
    const size_t len = static_cast<size_t>(kLenBase[sym]) + extra;
    int ds = DecodeSymbol(br, dist);
    if (ds < 0 || ds >= 30) return InvalidArgument("PNG: bad distance code");
    if (!br.Bits(kDistExtra[ds], &extra)) return InvalidArgument("PNG: truncated data");
    const size_t d = static_cast<size_t>(kDistBase[ds]) + extra;
    if (d > out->size()) return InvalidArgument("PNG: distance too far back");
    for (size_t i = 0; i < len; ++i) out->push_back((*out)[out->size() - d]);
  }
}

// Inflates a zlib stream; more than max_out bytes of output is an error.
Expected<std::vector<uint8_t>> Inflate(const uint8_t* d, size_t n, size_t max_out) {
  if (n < 2 || (d[0] & 0x0f) != 8) return InvalidArgument("PNG: not a zlib stream");
  BitReader br(d + 2, n - 2);
  std::vector<uint8_t> out;
  uint32_t last = 0;
  while (!last) {
    if (out.size() > max_out) return InvalidArgument("PNG: more image data than the header allows");
    uint32_t type;
    if (!br.Bits(1, &last) || !br.Bits(2, &type)) return InvalidArgument("PNG: truncated data");
    if (type == 0) {
      br.AlignToByte();
      uint8_t b[4];
      for (uint8_t& x : b)
        if (!br.Byte(&x)) return InvalidArgument("PNG: truncated data");
      const uint16_t len = Le16(b);
      if (static_cast<uint16_t>(~len) != Le16(b + 2)) return InvalidArgument("PNG: bad stored block");
      for (uint16_t i = 0; i < len; ++i) {
        uint8_t x;
        if (!br.Byte(&x)) return InvalidArgument("PNG: truncated data");
        out.push_back(x);
      }
    } else if (type == 1) {
      std::vector<int> l(288, 8);
      for (size_t i = 144; i < 256; ++i) l[i] = 9;
      for (size_t i = 256; i < 280; ++i) l[i] = 7;
      KILN_RETURN_IF_ERROR(
          InflateBlock(br, BuildHuffman(l), BuildHuffman(std::vector<int>(30, 5)), max_out, &out));
    } else if (type == 2) {
      uint32_t hlit, hdist, hclen;
      if (!br.Bits(5, &hlit) || !br.Bits(5, &hdist) || !br.Bits(4, &hclen))
        return InvalidArgument("PNG: truncated");
      static const size_t kOrder[19] = {16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15};
      std::vector<int> cl(19, 0);
      for (uint32_t i = 0; i < hclen + 4; ++i) {
        uint32_t v;
        if (!br.Bits(3, &v)) return InvalidArgument("PNG: truncated data");
        cl[kOrder[i]] = static_cast<int>(v);
      }
      Huffman clh = BuildHuffman(cl);
      std::vector<int> lengths;
      const size_t total = hlit + 257 + hdist + 1;
      while (lengths.size() < total) {
        int sym = DecodeSymbol(br, clh);
        if (sym < 0) return InvalidArgument("PNG: bad code lengths");
        if (sym < 16) {
          lengths.push_back(sym);
          continue;
        }
        uint32_t rep;
        int value = 0;
        if (sym == 16) {
          if (lengths.empty() || !br.Bits(2, &rep)) return InvalidArgument("PNG: bad code lengths");
          value = lengths.back();
          rep += 3;
        } else if (sym == 17) {
          if (!br.Bits(3, &rep)) return InvalidArgument("PNG: truncated data");
          rep += 3;
        } else {
          if (!br.Bits(7, &rep)) return InvalidArgument("PNG: truncated data");
          rep += 11;
        }
        if (lengths.size() + rep > total) return InvalidArgument("PNG: bad code lengths");
        lengths.insert(lengths.end(), rep, value);
      }
      std::vector<int> lit(lengths.begin(), lengths.begin() + hlit + 257);
      std::vector<int> dist(lengths.begin() + hlit + 257, lengths.end());
      KILN_RETURN_IF_ERROR(InflateBlock(br, BuildHuffman(lit), BuildHuffman(dist), max_out, &out));
    } else {
      return InvalidArgument("PNG: bad block type");
    }
  }
  return out;
}

// ---------------------------------------------------------------- PNG

Expected<Image> DecodePng(const uint8_t* d, size_t n) {
  size_t pos = 8;
  int64_t w = 0, h = 0;
  int depth = 0, color = -1, interlace = 0;
  std::vector<uint8_t> idat, palette;
  while (pos + 12 <= n) {
    const uint32_t len = Be32(d + pos);
    const std::string type(reinterpret_cast<const char*>(d + pos + 4), 4);
    if (len > n - pos - 12) return InvalidArgument("PNG: truncated chunk");
    const uint8_t* body = d + pos + 8;
    if (type == "IHDR" && len >= 13) {
      w = Be32(body);
      h = Be32(body + 4);
      depth = body[8];
      color = body[9];
      interlace = body[12];
    } else if (type == "PLTE") {
      palette.assign(body, body + len);
    } else if (type == "IDAT") {
      idat.insert(idat.end(), body, body + len);
    } else if (type == "IEND") {
      break;
    }
    pos += 12 + len;
  }
  if (w <= 0 || h <= 0 || w > (1 << 16) || h > (1 << 16)) return InvalidArgument("PNG: bad size");
  // Deflate packs ~1000:1, so a 12 MB file could otherwise ask for 12 GB of
  // pixels; the JPEG decoder has the same bound.
  if (w * h > (int64_t{1} << 26)) return Unsupported("PNG: images over 64 megapixels are not supported");
  if (interlace) return Unsupported("PNG: interlaced images are not supported");
  const int samples = color == 0 ? 1 : color == 2 ? 3 : color == 3 ? 1 : color == 4 ? 2 : color == 6 ? 4 : 0;
  const bool valid_depth = depth == 1 || depth == 2 || depth == 4 || depth == 8;  // PNG's own (16: unsupported)
  if (!samples || !valid_depth || (color != 0 && color != 3 && depth != 8))
    return Unsupported("PNG: color type " + std::to_string(color) + " with depth " + std::to_string(depth));
  const size_t row_bytes = (static_cast<size_t>(w) * samples * depth + 7) / 8;
  KILN_ASSIGN_OR_RETURN(std::vector<uint8_t> raw, Inflate(idat.data(), idat.size(), (row_bytes + 1) * h));
  const size_t bpp = std::max<size_t>(1, static_cast<size_t>(samples * depth / 8));
  if (raw.size() < (row_bytes + 1) * static_cast<size_t>(h))
    return InvalidArgument("PNG: truncated image data");
  std::vector<uint8_t> prev(row_bytes, 0), cur(row_bytes);
  const bool gray = color == 0 || color == 4;
  Image img{w, h, gray ? 1 : 3, std::vector<uint8_t>(static_cast<size_t>(w * h * (gray ? 1 : 3)))};
  for (int64_t y = 0; y < h; ++y) {
    const uint8_t* src = &raw[static_cast<size_t>(y) * (row_bytes + 1)];
    const uint8_t filter = src[0];
    for (size_t i = 0; i < row_bytes; ++i) {
      const int a = i >= bpp ? cur[i - bpp] : 0, b = prev[i], c = i >= bpp ? prev[i - bpp] : 0;
      int pred = 0;
      if (filter == 1)
        pred = a;
      else if (filter == 2)
        pred = b;
      else if (filter == 3)
        pred = (a + b) / 2;
      else if (filter == 4) {
        const int p = a + b - c, pa = std::abs(p - a), pb = std::abs(p - b), pc = std::abs(p - c);
        pred = (pa <= pb && pa <= pc) ? a : pb <= pc ? b : c;
      } else if (filter != 0) {
        return InvalidArgument("PNG: bad filter type");
      }
      cur[i] = static_cast<uint8_t>(src[1 + i] + pred);
    }
    for (int64_t x = 0; x < w; ++x) {
      uint8_t* px = &img.pixels[static_cast<size_t>((y * w + x) * img.channels)];
      if (depth < 8) {  // gray or palette index, packed MSB first
        const size_t bit = static_cast<size_t>(x) * depth;
        int v = (cur[bit / 8] >> (8 - depth - bit % 8)) & ((1 << depth) - 1);
        if (color == 0) {
          px[0] = static_cast<uint8_t>(v * 255 / ((1 << depth) - 1));
          continue;
        }
        if (static_cast<size_t>(v) * 3 + 2 >= palette.size())
          return InvalidArgument("PNG: bad palette index");
        std::memcpy(px, &palette[static_cast<size_t>(v) * 3], 3);
        continue;
      }
      const uint8_t* s = &cur[static_cast<size_t>(x) * samples];
      if (color == 3) {
        if (static_cast<size_t>(s[0]) * 3 + 2 >= palette.size())
          return InvalidArgument("PNG: bad palette index");
        std::memcpy(px, &palette[static_cast<size_t>(s[0]) * 3], 3);
      } else if (gray) {
        px[0] = s[0];
      } else {
        std::memcpy(px, s, 3);
      }
    }
    std::swap(prev, cur);
  }
  return img;
}

}  // namespace

Status InferImageDecoder(InferContext& ctx) {
  const std::string fmt = ctx.attr_string("pixel_format", "RGB");
  Dim channels = fmt == "Grayscale" ? Dim(1) : Dim(3);
  ctx.set_output(0, DataType::kUInt8, Shape({Dim::Unknown(), Dim::Unknown(), channels}));
  return Status::Ok();
}

Status RunImageDecoder(RunContext& ctx) {
  const Tensor& x = ctx.input(0);
  if (x.dtype() != DataType::kUInt8 || x.rank() != 1)
    return ctx.Error("input must be 1-D uint8 encoded bytes");
  const std::string fmt = ctx.attr_string("pixel_format", "RGB");
  if (fmt != "RGB" && fmt != "BGR" && fmt != "Grayscale")
    return ctx.Error("unknown pixel_format '" + fmt + "'");
  Expected<Image> img = image::DecodeImage(x.data<uint8_t>(), static_cast<size_t>(x.numel()));
  if (!img.ok()) {
    Status s = img.status();
    return s.code() == StatusCode::kUnsupported ? ctx.UnsupportedError(s.message()) : ctx.Error(s.message());
  }
  const int64_t out_c = fmt == "Grayscale" ? 1 : 3;
  Tensor y(DataType::kUInt8, {img->height, img->width, out_c});
  uint8_t* yd = y.mutable_data<uint8_t>();
  for (int64_t p = 0; p < img->height * img->width; ++p) {
    const uint8_t* s = &img->pixels[static_cast<size_t>(p * img->channels)];
    const uint8_t r = s[0], g = img->channels == 3 ? s[1] : s[0], b = img->channels == 3 ? s[2] : s[0];
    if (fmt == "Grayscale") {  // Pillow's ITU-R 601-2 luma, fixed point
      yd[p] =
          img->channels == 1 ? s[0] : static_cast<uint8_t>((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16);
    } else {
      yd[p * 3] = fmt == "RGB" ? r : b;
      yd[p * 3 + 1] = g;
      yd[p * 3 + 2] = fmt == "RGB" ? b : r;
    }
  }
  ctx.set_output(0, std::move(y));
  return Status::Ok();
}

}  // namespace ops

namespace image {

Expected<Image> DecodeImage(const uint8_t* d, size_t n) {
  if (n >= 2 && d[0] == 'B' && d[1] == 'M')
    return ops::DecodeBmp(d, n);
  if (n >= 3 && d[0] == 'P' && (d[1] == '2' || d[1] == '3' || d[1] == '5' || d[1] == '6'))
    return ops::DecodePnm(d, n);
  if (n >= 8 && std::memcmp(d, "\x89PNG\r\n\x1a\n", 8) == 0)
    return ops::DecodePng(d, n);
  if (n >= 4 && (std::memcmp(d, "II*\0", 4) == 0 || std::memcmp(d, "MM\0*", 4) == 0))
    return ops::DecodeTiff(d, n);
  if (n >= 2 && d[0] == 0xFF && d[1] == 0xD8)
    return DecodeJpeg(d, n);
  if (n >= 12 && std::memcmp(d, "RIFF", 4) == 0 && std::memcmp(d + 8, "WEBP", 4) == 0)
    return Unsupported("WebP decoding is not implemented");
  if (n >= 12 && (std::memcmp(d, "\0\0\0\x0cjP  ", 8) == 0 || std::memcmp(d, "\xff\x4f\xff\x51", 4) == 0))
    return Unsupported("JPEG 2000 decoding is not implemented");
  return Unsupported("unknown image format");
}

}  // namespace image
}  // namespace kiln
