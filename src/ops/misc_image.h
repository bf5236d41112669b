// Image decoding for ImageDecoder (misc_image.cc): the decoded-pixels type,
// the format dispatch and the JPEG decoder (misc_jpeg.cc).
#pragma once

#include <cstdint>
#include <vector>

#include "kiln/status.h"

namespace kiln {
namespace image {

// Decoded pixels: `height` rows of `width` pixels of `channels` bytes (1 gray,
// 3 RGB).
struct Image {
  int64_t width = 0, height = 0, channels = 0;
  std::vector<uint8_t> pixels;
};

// Any format ImageDecoder reads (BMP, PNM, PNG, TIFF, baseline JPEG), told
// apart by its magic bytes; WebP, JPEG 2000 and unknown formats are
// kUnsupported errors.
Expected<Image> DecodeImage(const uint8_t* data, size_t size);

// Baseline (sequential, Huffman) 8-bit JPEG with 1 or 3 components, decoded
// bit-exactly as libjpeg(-turbo) does by default: integer "islow" IDCT,
// fancy upsampling, its fixed-point YCbCr -> RGB.
Expected<Image> DecodeJpeg(const uint8_t* data, size_t size);

}  // namespace image
}  // namespace kiln
