// Does compute-sanitizer's initcheck see the stores of cuBLASLt's Hopper
// kernels? The soak's one initcheck finding is the output of a 1x1 FP16
// convolution run as a cuBLASLt product (tests/op_cases/cuda_cases_kiln.cc,
// ChannelsLast: X [2,7,9,32], W [16,32], bias, Z through C with beta 1, ReLU).
// This probe runs that product alone with each of cuBLASLt's first
// candidates into a fresh, never-written D, checks every element against a
// host computation, and copies D back: run it under
//   compute-sanitizer --tool initcheck lt_initcheck_probe
// A kernel (ReadAll) reads D as well. If initcheck reports the copy, or the
// kernel's read, of a D whose every element is right, it did
// not see the kernel's stores (TMA stores are bulk copies initcheck does not
// track), and the finding is the tool's.
//   nvcc -O2 -arch=sm_90 tools/probes/lt_initcheck_probe.cu -lcublasLt -o lt_initcheck_probe
#include <cublasLt.h>
#include <cuda_fp16.h>

#include <cmath>
#include <cstdio>
#include <vector>

// A kernel's read of the product: initcheck reports it too when it missed the product's stores.
__global__ void ReadAll(const __half* y, int count, float* sum) {
  float s = 0.f;
  for (int i = threadIdx.x; i < count; i += blockDim.x) s += __half2float(y[i]);
  atomicAdd(sum, s);
}

#define CHECK(x)                                                              \
  do {                                                                        \
    if (!(x)) {                                                               \
      std::printf("failed: %s (line %d)\n", #x, __LINE__);                    \
      return 1;                                                               \
    }                                                                         \
  } while (0)

int main() {
  const int m = 2 * 7 * 9, k = 32, n = 16;  // rows of X (NHWC), input channels, output channels
  std::vector<__half> x(m * k), w(n * k), bias(n), z(m * n);
  std::vector<float> xf(m * k), wf(n * k), bf(n), zf(m * n);
  unsigned seed = 7;
  auto rnd = [&seed] { seed = seed * 1664525u + 1013904223u; return ((seed >> 9) & 0xffff) / 65536.f - 0.5f; };
  for (int i = 0; i < m * k; ++i) x[i] = __float2half(rnd()), xf[i] = __half2float(x[i]);
  for (int i = 0; i < n * k; ++i) w[i] = __float2half(rnd()), wf[i] = __half2float(w[i]);
  for (int i = 0; i < n; ++i) bias[i] = __float2half(rnd()), bf[i] = __half2float(bias[i]);
  for (int i = 0; i < m * n; ++i) z[i] = __float2half(rnd()), zf[i] = __half2float(z[i]);
  void *dx, *dw, *db, *dz, *ws;
  const size_t ws_bytes = 32 << 20;
  CHECK(cudaMalloc(&dx, x.size() * 2) == cudaSuccess && cudaMalloc(&dw, w.size() * 2) == cudaSuccess);
  CHECK(cudaMalloc(&db, bias.size() * 2) == cudaSuccess && cudaMalloc(&dz, z.size() * 2) == cudaSuccess);
  CHECK(cudaMalloc(&ws, ws_bytes) == cudaSuccess);
  cudaMemcpy(dx, x.data(), x.size() * 2, cudaMemcpyHostToDevice);
  cudaMemcpy(dw, w.data(), w.size() * 2, cudaMemcpyHostToDevice);
  cudaMemcpy(db, bias.data(), bias.size() * 2, cudaMemcpyHostToDevice);
  cudaMemcpy(dz, z.data(), z.size() * 2, cudaMemcpyHostToDevice);
  cudaMemset(ws, 0, ws_bytes);

  cublasLtHandle_t lt;
  CHECK(cublasLtCreate(&lt) == CUBLAS_STATUS_SUCCESS);
  // Row-major Y [m, n] = X [m, k] · Wᵀ, as column-major Yᵀ [n, m] = W [n, k]ᵀᵀ... : A = W (k x n, transposed),
  // B = X (k x m), both column-major views of the row-major buffers.
  cublasLtMatmulDesc_t op;
  CHECK(cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F) == CUBLAS_STATUS_SUCCESS);
  cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta));
  cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb));
  cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_RELU_BIAS;
  cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof(epi));
  cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &db, sizeof(db));
  cublasLtMatrixLayout_t la, lb, lc;
  cublasLtMatrixLayoutCreate(&la, CUDA_R_16F, k, n, k);
  cublasLtMatrixLayoutCreate(&lb, CUDA_R_16F, k, m, k);
  cublasLtMatrixLayoutCreate(&lc, CUDA_R_16F, n, m, n);
  cublasLtMatmulPreference_t pref;
  cublasLtMatmulPreferenceCreate(&pref);
  cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws_bytes, sizeof(ws_bytes));
  cublasLtMatmulHeuristicResult_t cand[8];
  int found = 0;
  CHECK(cublasLtMatmulAlgoGetHeuristic(lt, op, la, lb, lc, lc, pref, 8, cand, &found) == CUBLAS_STATUS_SUCCESS);
  std::printf("%d candidates for m=%d k=%d n=%d (FP16, bias + ReLU, C = Z)\n", found, m, k, n);
  const float alpha = 1.f, beta = 1.f;
  for (int a = 0; a < found; ++a) {
    void* dy = nullptr;
    CHECK(cudaMalloc(&dy, m * n * 2) == cudaSuccess);  // never written but by the product
    cublasStatus_t st = cublasLtMatmul(lt, op, &alpha, dw, la, dx, lb, &beta, dz, lc, dy, lc, &cand[a].algo, ws,
                                       ws_bytes, nullptr);
    cudaDeviceSynchronize();
    float* dsum = nullptr;
    CHECK(cudaMalloc(&dsum, sizeof(float)) == cudaSuccess &&
          cudaMemset(dsum, 0, sizeof(float)) == cudaSuccess);
    ReadAll<<<1, 256>>>(static_cast<const __half*>(dy), m * n, dsum);  // initcheck: a kernel's read of D
    cudaDeviceSynchronize();
    cudaFree(dsum);
    std::vector<__half> y(m * n);
    cudaMemcpy(y.data(), dy, y.size() * 2, cudaMemcpyDeviceToHost);  // initcheck reports here if it missed stores
    double worst = 0;
    for (int r = 0; r < m; ++r)
      for (int c = 0; c < n; ++c) {
        double acc = bf[c] + zf[r * n + c];
        for (int i = 0; i < k; ++i) acc += double(xf[r * k + i]) * wf[c * k + i];
        acc = acc > 0 ? acc : 0;
        worst = std::fmax(worst, std::fabs(acc - __half2float(y[r * n + c])));
      }
    std::printf("candidate %d: status %d, workspace %zu, max |error| %.4g over all %d elements\n", a, int(st),
                cand[a].workspaceSize, worst, m * n);
    cudaFree(dy);
  }
  return 0;
}
