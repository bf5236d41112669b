// KILN_HOST_DEVICE marks the functions shared by the CPU reference and the
// CUDA kernels (compiled by nvcc for both sides, by the host compiler for the host).
#pragma once

#if defined(__CUDACC__)
#define KILN_HOST_DEVICE __host__ __device__
#else
#define KILN_HOST_DEVICE
#endif
