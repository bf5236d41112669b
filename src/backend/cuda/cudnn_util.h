// cuDNN helpers shared by the conv and pooling ops: error mapping, descriptors,
// ONNX pad/attr resolution, timed algorithm choice.
#pragma once

#include <cudnn.h>

#include <string>
#include <vector>

#include "backend/cuda/gpu_op.h"

namespace kiln::cuda {

inline Status CudnnStatus(cudnnStatus_t s, const char* what) {
  if (s == CUDNN_STATUS_SUCCESS) return Status::Ok();
  return Internal(std::string(what) + ": " + cudnnGetErrorString(s));
}
#define KILN_CUDNN_RETURN_IF_ERROR(call) KILN_RETURN_IF_ERROR(::kiln::cuda::CudnnStatus((call), #call))

Expected<cudnnDataType_t> CudnnType(DataType dt, const Node& n);
Status SetTensor(cudnnTensorDescriptor_t* d, cudnnDataType_t dt, const std::vector<int64_t>& dims);
Status SetFilter(cudnnFilterDescriptor_t* d, cudnnDataType_t dt, const std::vector<int64_t>& dims,
                 cudnnTensorFormat_t format = CUDNN_TENSOR_NCHW);
// 4-D tensor stored channels-last: `dims` in cuDNN's logical N,C,H,W order.
Status SetTensorNhwc(cudnnTensorDescriptor_t* d, cudnnDataType_t dt, const std::vector<int64_t>& dims);
// [N,H,W,C] → [N,C,H,W] (the logical order cuDNN's descriptors take).
std::vector<int64_t> NchwDims(const std::vector<int64_t>& nhwc);
// INTS attribute of `count` entries, `def` when absent.
std::vector<int64_t> IntsAttr(const Node& n, const char* name, int count, int64_t def);
// Per-spatial-dim pads before and after, auto_pad resolved from the concrete shapes (x, kernel_dims, y: N, C
// first).
void ResolvePads(const Node& n, const std::vector<int64_t>& x, const std::vector<int64_t>& kernel_dims,
                 const std::vector<int64_t>& y, const std::vector<int64_t>& strides,
                 const std::vector<int64_t>& dil, int spatial, std::vector<int64_t>* begin,
                 std::vector<int64_t>* end);
// Per-spatial-dim pads (begin == end required by cuDNN), resolving auto_pad
// from the concrete shapes. Unsupported error for asymmetric padding.
Expected<std::vector<int64_t>> SymmetricPads(const Node& n, const std::vector<int64_t>& x,
                                             const std::vector<int64_t>& kernel_dims, const std::vector<int64_t>& y,
                                             const std::vector<int64_t>& strides, const std::vector<int64_t>& dil,
                                             int spatial);
// One timed forward algorithm. An algorithm runs only with the math type it
// was found with (set it on the convolution descriptor).
struct ConvAlgoChoice {
  cudnnConvolutionFwdAlgo_t algo = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
  float time_ms = 0.f;
  size_t workspace = 0;
  cudnnMathType_t math = CUDNN_DEFAULT_MATH;
};
// Times cuDNN's forward algorithms on scratch buffers: the ones that ran and
// fit `limit` bytes of workspace (at most 256 MiB), fastest first. Unsupported
// error when there is none. With a cache, a geometry timed before (same
// descriptors, math type and limit) is answered from it; `node` (its name)
// is recorded as using the entry (TacticCache::Use).
Expected<std::vector<ConvAlgoChoice>> FindConvAlgos(
    cudnnHandle_t h, cudnnTensorDescriptor_t x, cudnnFilterDescriptor_t w, cudnnConvolutionDescriptor_t conv,
    cudnnTensorDescriptor_t y, size_t limit, TacticCache* cache = nullptr, const std::string& node = "");
// The fastest of FindConvAlgos.
Expected<cudnnConvolutionFwdAlgo_t> FindConvAlgo(cudnnHandle_t h, cudnnTensorDescriptor_t x, cudnnFilterDescriptor_t w,
                                                 cudnnConvolutionDescriptor_t conv, cudnnTensorDescriptor_t y,
                                                 size_t limit, size_t* workspace, cudnnMathType_t* math);

}  // namespace kiln::cuda
