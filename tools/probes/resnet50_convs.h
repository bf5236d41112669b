// ResNet-50's convolution geometries at 224x224, with how often each occurs: the table the INT8 probes time.
#pragma once

#include <vector>

struct ConvGeometry {
  int c, k, hw, r, stride, count;  // input channels, output channels, input H=W, kernel R=S, stride, uses
  int Out() const { return (hw + 2 * (r / 2) - r) / stride + 1; }
};

inline std::vector<ConvGeometry> ResNet50Convs() {
  return {
      {64, 64, 56, 1, 1, 1},    {64, 64, 56, 3, 1, 3},    {64, 256, 56, 1, 1, 4},   {256, 64, 56, 1, 1, 2},
      {256, 128, 56, 1, 1, 1},  {128, 128, 56, 3, 2, 1},  {128, 512, 28, 1, 1, 4},  {256, 512, 56, 1, 2, 1},
      {512, 128, 28, 1, 1, 3},  {128, 128, 28, 3, 1, 3},  {512, 256, 28, 1, 1, 1},  {256, 256, 28, 3, 2, 1},
      {256, 1024, 14, 1, 1, 6}, {512, 1024, 28, 1, 2, 1}, {1024, 256, 14, 1, 1, 5}, {256, 256, 14, 3, 1, 5},
      {1024, 512, 14, 1, 1, 1}, {512, 512, 14, 3, 2, 1},  {512, 2048, 7, 1, 1, 3},  {1024, 2048, 14, 1, 2, 1},
      {2048, 512, 7, 1, 1, 2},  {512, 512, 7, 3, 1, 2}};
}
