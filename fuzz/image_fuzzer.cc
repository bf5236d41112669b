// libFuzzer target: the image decoders behind ImageDecoder (BMP, PNM, PNG,
// TIFF, JPEG; src/ops/misc_image.cc, misc_jpeg.cc). Any bytes must decode to
// pixels that fill width x height x channels, or give a Status error.
#include <cstdint>
#include <cstdlib>

#include "ops/misc_image.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  kiln::Expected<kiln::image::Image> img = kiln::image::DecodeImage(data, size);
  if (!img.ok()) return 0;
  if (img->width < 0 || img->height < 0 || (img->channels != 1 && img->channels != 3)) std::abort();
  if (img->pixels.size() != static_cast<size_t>(img->width * img->height * img->channels)) std::abort();
  return 0;
}
