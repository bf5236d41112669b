// The CUDA op harness's cases for kiln's internal ops (the fused forms the
// build passes make: FusedConv/FusedMatMul epilogues, channels-last convs,
// INT8 products, attention, generated pointwise kernels), kept apart from the
// ONNX ops' cases (cuda_cases.cc, which registers every group in order).
#pragma once

#include "op_cases/op_case.h"

namespace kiln::op_cases {

void FusedConv(const Sink& RunCase);
void FusedConvActivations(const Sink& RunCase);
void ChannelsLast(const Sink& RunCase);
void FusedMatMul(const Sink& RunCase);
void Int8Products(const Sink& RunCase);
void Fp8Products(const Sink& RunCase);
void Attention(const Sink& RunCase);
void Pointwise(const Sink& RunCase);

}  // namespace kiln::op_cases
