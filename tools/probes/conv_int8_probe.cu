// Can cuDNN's graph API run issue #14's INT8 convolution with the whole
// requantizing epilogue in one kernel on this GPU, and how fast is it against
// the FP16 convolution kiln runs today (conv_graph.cc)?
//
//   FP16: y = relu(conv(x, w) + b)                                    half NHWC in/out
//   INT8: y = sat_int8(relu(conv(x, w) · s[k] + b[k] [+ z · zs]))    int8 NHWC in/out,
//         int32 accumulation, per-output-channel float scale s (x_scale · w_scale[k] / y_scale),
//         float bias b (already at y's scale), optional int8 residual z at scale zs
//
// For each of ResNet-50's convolution geometries at batch N (default 32, 224x224)
// it times the first few engines the heuristics offer for both graphs and
// prints the best of each, and the network total weighted by how often the
// geometry occurs. One small geometry is checked element by element against a
// host computation (round half to even, saturate), so a fast engine that
// computes something else shows.
//
// The 1x1 stride-1 geometries are plain products, Y[P, K] = X[P, C] · Wᵀ, so
// the same epilogue is also tried on cuBLASLt: int8 A/B/C/D, int32 compute,
// per-row alpha vector (CUBLASLT_POINTER_MODE_ALPHA_DEVICE_VECTOR_BETA_HOST),
// bias and ReLU epilogue, beta·C as the int8 residual.
//
//   nvcc -O2 -std=c++17 -gencode arch=compute_90,code=sm_90 -I.venv/lib/python3.11/site-packages/include \
//     -DCUDNN_FRONTEND_SKIP_JSON_LIB=1 tools/probes/conv_int8_probe.cu -lcudnn -lnvrtc -lcublasLt -o
//     conv_int8_probe
//   ./conv_int8_probe [N] [no-eng4]
// clang-format off
#include <cstring>  // first: cudnn_frontend.h uses std::strlen without including it
// clang-format on

#include <cublasLt.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <cudnn.h>
#include <cudnn_frontend.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "cuda_ok.h"
#include "resnet50_convs.h"

namespace fe = cudnn_frontend;

namespace {

enum Uid : int64_t { kX = 1, kW, kScale, kBias, kZ, kZScale, kY };

using Geometry = ConvGeometry;

std::vector<int64_t> Nhwc(int64_t n, int64_t c, int64_t h, int64_t w) { return {c * h * w, 1, c * w, c}; }

struct Built {
  std::shared_ptr<fe::graph::Graph> graph;
  std::string error;
};

// no_eng4: kiln deselects cuDNN's eng4 (wrong results under concurrent contexts in FP16, conv_graph.cc);
// with `no-eng4` the INT8 graphs here do too, to time what is left.
Built Build(cudnnHandle_t handle, bool int8, bool residual, int64_t n, const Geometry& g, bool no_eng4 = false) {
  const int64_t pad = g.r / 2, out = (g.hw + 2 * pad - g.r) / g.stride + 1;
  auto graph = std::make_shared<fe::graph::Graph>();
  if (int8)
    graph->set_io_data_type(fe::DataType_t::INT8)
        .set_intermediate_data_type(fe::DataType_t::FLOAT)
        .set_compute_data_type(fe::DataType_t::FLOAT);
  else
    graph->set_io_data_type(fe::DataType_t::HALF)
        .set_intermediate_data_type(fe::DataType_t::FLOAT)
        .set_compute_data_type(fe::DataType_t::FLOAT);
  auto tensor = [&](const char* name, int64_t uid, std::vector<int64_t> dims, std::vector<int64_t> strides) {
    return graph->tensor(
        fe::graph::Tensor_attributes().set_name(name).set_uid(uid).set_dim(dims).set_stride(strides));
  };
  auto x = tensor("X", kX, {n, g.c, g.hw, g.hw}, Nhwc(n, g.c, g.hw, g.hw));
  auto w = tensor("W", kW, {g.k, g.c, g.r, g.r}, Nhwc(g.k, g.c, g.r, g.r));
  auto conv_attr = fe::graph::Conv_fprop_attributes()
                       .set_name("conv")
                       .set_padding({pad, pad})
                       .set_stride({g.stride, g.stride})
                       .set_dilation({1, 1});
  if (int8) conv_attr.set_compute_data_type(fe::DataType_t::INT32);
  auto y = graph->conv_fprop(x, w, conv_attr);
  if (int8) y->set_data_type(fe::DataType_t::INT32);
  auto pw = [&](const char* name, fe::PointwiseMode_t mode) {
    return fe::graph::Pointwise_attributes().set_name(name).set_mode(mode).set_compute_data_type(
        fe::DataType_t::FLOAT);
  };
  if (int8) {
    auto scale = tensor("S", kScale, {1, g.k, 1, 1}, {g.k, 1, g.k, g.k});
    scale->set_data_type(fe::DataType_t::FLOAT);
    y = graph->pointwise(y, scale, pw("scale", fe::PointwiseMode_t::MUL));
    y->set_data_type(fe::DataType_t::FLOAT);
  }
  auto b = tensor("B", kBias, {1, g.k, 1, 1}, {g.k, 1, g.k, g.k});
  if (int8) b->set_data_type(fe::DataType_t::FLOAT);
  y = graph->pointwise(y, b, pw("bias", fe::PointwiseMode_t::ADD));
  y->set_data_type(fe::DataType_t::FLOAT);
  if (residual) {
    auto z = tensor("Z", kZ, {n, g.k, out, out}, Nhwc(n, g.k, out, out));
    if (int8) {
      auto zs = tensor("ZS", kZScale, {1, 1, 1, 1}, {1, 1, 1, 1});
      zs->set_data_type(fe::DataType_t::FLOAT);
      auto zf = graph->pointwise(z, zs, pw("zscale", fe::PointwiseMode_t::MUL));
      zf->set_data_type(fe::DataType_t::FLOAT);
      y = graph->pointwise(y, zf, pw("residual", fe::PointwiseMode_t::ADD));
    } else {
      y = graph->pointwise(y, z, pw("residual", fe::PointwiseMode_t::ADD));
    }
    y->set_data_type(fe::DataType_t::FLOAT);
  }
  y = graph->pointwise(y, pw("relu", fe::PointwiseMode_t::RELU_FWD));
  y->set_output(true)
      .set_uid(kY)
      .set_dim({n, g.k, out, out})
      .set_stride(Nhwc(n, g.k, out, out))
      .set_data_type(int8 ? fe::DataType_t::INT8 : fe::DataType_t::HALF);
  Built built;
  auto step = [&](fe::error_t e, const char* what) {
    if (e.is_good()) return true;
    built.error = std::string(what) + ": " + e.get_message();
    return false;
  };
  if (!step(graph->validate(), "validate") ||
      !step(graph->build_operation_graph(handle), "operation graph") ||
      !step(graph->create_execution_plans({fe::HeurMode_t::A, fe::HeurMode_t::FALLBACK}), "heuristics"))
    return built;
  graph->deselect_numeric_notes({fe::NumericalNote_t::NONDETERMINISTIC});
  if (int8 && no_eng4) graph->deselect_engines({"eng4_"});
  if (!step(graph->check_support(), "support")) return built;
  built.graph = graph;
  return built;
}

struct Buffers {
  void* p[8] = {};
  void* ws = nullptr;
  size_t ws_bytes = 0;
  std::unordered_map<int64_t, void*> Pack(bool residual) const {
    std::unordered_map<int64_t, void*> m = {
        {kX, p[kX]}, {kW, p[kW]}, {kScale, p[kScale]}, {kBias, p[kBias]}, {kY, p[kY]}};
    if (residual) {
      m[kZ] = p[kZ];
      m[kZScale] = p[kZScale];
    }
    return m;
  }
};

// The best time (ms) of the first `tries` engines that build, and that engine's name; < 0 when none ran.
float TimeBest(cudnnHandle_t handle, fe::graph::Graph& graph, Buffers& buf, bool residual, bool int8,
               std::string* name, int tries = 6) {
  cudaEvent_t a, b;
  CUDA_OK(cudaEventCreate(&a));
  CUDA_OK(cudaEventCreate(&b));
  float best = -1.f;
  auto pack = buf.Pack(residual);
  if (!int8) pack.erase(kScale);
  for (int64_t i = 0, timed = 0; i < graph.get_execution_plan_count() && timed < tries; ++i) {
    int64_t ws = 0;
    if (graph.build_plan_at_index(i).is_bad() || graph.get_workspace_size_plan_at_index(i, ws).is_bad())
      continue;
    if (static_cast<size_t>(ws) > buf.ws_bytes) {
      if (buf.ws) cudaFree(buf.ws);
      CUDA_OK(cudaMalloc(&buf.ws, ws));
      buf.ws_bytes = ws;
    }
    ++timed;
    if (graph.execute_plan_at_index(handle, pack, buf.ws, i).is_bad()) continue;
    cudaDeviceSynchronize();
    if (cudaGetLastError() != cudaSuccess) continue;
    const int reps = 20;
    cudaEventRecord(a);
    for (int r = 0; r < reps; ++r) (void)graph.execute_plan_at_index(handle, pack, buf.ws, i);
    cudaEventRecord(b);
    cudaEventSynchronize(b);
    float ms = 0.f;
    cudaEventElapsedTime(&ms, a, b);
    ms /= reps;
    if (best < 0 || ms < best) {
      best = ms;
      if (graph.get_plan_name_at_index(i, *name).is_bad()) name->clear();
    }
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  return best;
}

#define LT_OK(x)                                                                \
  do {                                                                          \
    cublasStatus_t s_ = (x);                                                    \
    if (s_ != CUBLAS_STATUS_SUCCESS) {                                          \
      *error = std::string(#x) + " -> " + std::to_string(static_cast<int>(s_)); \
      return false;                                                             \
    }                                                                           \
  } while (0)

// D[K, P] (column-major; NHWC Y) = relu(alpha[k] · (Wᵀ · X)[k, p] + beta · Z[k, p] + bias[k]), int8 out.
struct LtInt8 {
  cublasLtHandle_t lt = nullptr;
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  std::vector<cublasLtMatmulHeuristicResult_t> algos;
  ~LtInt8() {
    if (desc) cublasLtMatmulDescDestroy(desc);
    for (auto l : {a, b, c})
      if (l) cublasLtMatrixLayoutDestroy(l);
  }
  bool Prepare(cublasLtHandle_t h, int64_t k_out, int64_t p, int64_t c_in, const float* bias,
               std::string* error) {
    lt = h;
    LT_OK(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32I, CUDA_R_32F));
    cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    LT_OK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)));
    LT_OK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)));
    cublasLtPointerMode_t pm = CUBLASLT_POINTER_MODE_ALPHA_DEVICE_VECTOR_BETA_HOST;
    LT_OK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_POINTER_MODE, &pm, sizeof(pm)));
    cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_RELU_BIAS;
    LT_OK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof(epi)));
    cudaDataType_t bias_type = CUDA_R_32F;
    LT_OK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bias_type,
                                         sizeof(bias_type)));
    LT_OK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)));
    LT_OK(
        cublasLtMatrixLayoutCreate(&a, CUDA_R_8I, c_in, k_out, c_in));  // W [K, C] row-major = C×K col-major
    LT_OK(cublasLtMatrixLayoutCreate(&b, CUDA_R_8I, c_in, p, c_in));    // X [P, C] row-major = C×P
    LT_OK(cublasLtMatrixLayoutCreate(&c, CUDA_R_8I, k_out, p, k_out));  // Y/Z [P, K] row-major = K×P
    cublasLtMatmulPreference_t pref;
    LT_OK(cublasLtMatmulPreferenceCreate(&pref));
    size_t ws = 32u << 20;
    LT_OK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws,
                                               sizeof(ws)));
    algos.resize(8);
    int found = 0;
    cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(lt, desc, a, b, c, c, pref, 8, algos.data(), &found);
    cublasLtMatmulPreferenceDestroy(pref);
    if (st != CUBLAS_STATUS_SUCCESS || found == 0) {
      *error = "no algorithm (status " + std::to_string(static_cast<int>(st)) + ")";
      return false;
    }
    algos.resize(found);
    return true;
  }
  cublasStatus_t Run(int i, const float* alpha, float beta, const void* w, const void* x, const void* z,
                     void* y, void* ws) const {
    return cublasLtMatmul(lt, desc, alpha, w, a, x, b, &beta, z, c, y, c, &algos[i].algo, ws, 32u << 20, 0);
  }
};

int8_t SatRound(float v) {
  float r = std::nearbyint(v);  // round half to even (default rounding mode)
  return static_cast<int8_t>(std::fmin(127.f, std::fmax(-128.f, r)));
}

// Runs the INT8 graph (with residual) on a small geometry and compares every element with the host.
void CheckInt8(cudnnHandle_t handle) {
  const int64_t n = 2;
  const Geometry g{64, 32, 14, 3, 1, 1};
  const int64_t out = 14;
  Built built = Build(handle, true, true, n, g);
  if (!built.graph) {
    std::printf("check: INT8 graph not supported: %s\n", built.error.c_str());
    return;
  }
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> q(-128, 127);
  std::uniform_real_distribution<float> u(0.f, 1.f);
  std::vector<int8_t> x(n * g.c * g.hw * g.hw), w(g.k * g.c * 9), z(n * g.k * out * out);
  for (auto& v : x) v = static_cast<int8_t>(q(rng));
  for (auto& v : w) v = static_cast<int8_t>(q(rng));
  for (auto& v : z) v = static_cast<int8_t>(q(rng));
  std::vector<float> s(g.k), b(g.k);
  for (int64_t k = 0; k < g.k; ++k) {
    s[k] = 1e-4f + 4e-4f * u(rng);  // acc up to ~6e5: |acc·s| spans int8's range and beyond (saturation)
    b[k] = 40.f * (u(rng) - 0.5f);
  }
  const float zs = 0.37f;
  Buffers buf;
  auto up = [&](int64_t uid, const void* host, size_t bytes) {
    CUDA_OK(cudaMalloc(&buf.p[uid], bytes));
    CUDA_OK(cudaMemcpy(buf.p[uid], host, bytes, cudaMemcpyHostToDevice));
  };
  up(kX, x.data(), x.size());
  up(kW, w.data(), w.size());
  up(kZ, z.data(), z.size());
  up(kScale, s.data(), s.size() * 4);
  up(kBias, b.data(), b.size() * 4);
  up(kZScale, &zs, 4);
  CUDA_OK(cudaMalloc(&buf.p[kY], z.size()));
  auto pack = buf.Pack(true);
  for (int64_t i = 0; i < built.graph->get_execution_plan_count(); ++i) {
    int64_t ws = 0;
    std::string name;
    if (built.graph->build_plan_at_index(i).is_bad() ||
        built.graph->get_workspace_size_plan_at_index(i, ws).is_bad())
      continue;
    if (built.graph->get_plan_name_at_index(i, name).is_bad()) name = "?";
    void* wsp = nullptr;
    if (ws) CUDA_OK(cudaMalloc(&wsp, ws));
    CUDA_OK(cudaMemset(buf.p[kY], 0x5a, z.size()));
    auto e = built.graph->execute_plan_at_index(handle, pack, wsp, i);
    CUDA_OK(cudaDeviceSynchronize());
    if (wsp) cudaFree(wsp);
    if (e.is_bad()) {
      std::printf("check: engine %s failed: %s\n", name.c_str(), e.get_message().c_str());
      continue;
    }
    std::vector<int8_t> y(z.size());
    CUDA_OK(cudaMemcpy(y.data(), buf.p[kY], y.size(), cudaMemcpyDeviceToHost));
    int64_t off1 = 0, off_more = 0, sat = 0;
    for (int64_t ni = 0; ni < n; ++ni)
      for (int64_t oh = 0; oh < out; ++oh)
        for (int64_t ow = 0; ow < out; ++ow)
          for (int64_t k = 0; k < g.k; ++k) {
            int32_t acc = 0;
            for (int64_t r = 0; r < 3; ++r)
              for (int64_t t = 0; t < 3; ++t) {
                const int64_t ih = oh + r - 1, iw = ow + t - 1;
                if (ih < 0 || iw < 0 || ih >= g.hw || iw >= g.hw) continue;
                for (int64_t c = 0; c < g.c; ++c)
                  acc += int32_t(x[((ni * g.hw + ih) * g.hw + iw) * g.c + c]) *
                         int32_t(w[((k * 3 + r) * 3 + t) * g.c + c]);
              }
            const int64_t yi = ((ni * out + oh) * out + ow) * g.k + k;
            const float v = std::fmax(0.f, float(acc) * s[k] + b[k] + float(z[yi]) * zs);
            const int8_t want = SatRound(v);
            sat += want == 127;
            const int d = std::abs(int(y[yi]) - int(want));
            off1 += d == 1;
            off_more += d > 1;
          }
    std::printf("check: engine %-40s %zu values: %lld off by 1 LSB, %lld by more (%lld saturated)\n",
                name.c_str(), y.size(), (long long)off1, (long long)off_more, (long long)sat);
  }
}

// The cuBLASLt form on a 1x1 geometry, element by element against the host.
void CheckLt(cublasLtHandle_t lt) {
  const int64_t p = 2 * 14 * 14, c_in = 64, k_out = 32;
  std::mt19937 rng(11);
  std::uniform_int_distribution<int> q(-128, 127);
  std::uniform_real_distribution<float> u(0.f, 1.f);
  std::vector<int8_t> x(p * c_in), w(k_out * c_in), z(p * k_out);
  for (auto& v : x) v = static_cast<int8_t>(q(rng));
  for (auto& v : w) v = static_cast<int8_t>(q(rng));
  for (auto& v : z) v = static_cast<int8_t>(q(rng));
  std::vector<float> s(k_out), b(k_out);
  for (int64_t k = 0; k < k_out; ++k) {
    s[k] = 1e-3f + 4e-3f * u(rng);
    b[k] = 40.f * (u(rng) - 0.5f);
  }
  const float beta = 0.37f;
  void *dx, *dw, *dz, *dy, *ds, *db, *ws;
  CUDA_OK(cudaMalloc(&dx, x.size()));
  CUDA_OK(cudaMalloc(&dw, w.size()));
  CUDA_OK(cudaMalloc(&dz, z.size()));
  CUDA_OK(cudaMalloc(&dy, z.size()));
  CUDA_OK(cudaMalloc(&ds, k_out * 4));
  CUDA_OK(cudaMalloc(&db, k_out * 4));
  CUDA_OK(cudaMalloc(&ws, 32u << 20));
  CUDA_OK(cudaMemcpy(dx, x.data(), x.size(), cudaMemcpyHostToDevice));
  CUDA_OK(cudaMemcpy(dw, w.data(), w.size(), cudaMemcpyHostToDevice));
  CUDA_OK(cudaMemcpy(dz, z.data(), z.size(), cudaMemcpyHostToDevice));
  CUDA_OK(cudaMemcpy(ds, s.data(), k_out * 4, cudaMemcpyHostToDevice));
  CUDA_OK(cudaMemcpy(db, b.data(), k_out * 4, cudaMemcpyHostToDevice));
  LtInt8 g;
  std::string error;
  if (!g.Prepare(lt, k_out, p, c_in, static_cast<const float*>(db), &error)) {
    std::printf("check lt: not supported: %s\n", error.c_str());
    return;
  }
  for (size_t i = 0; i < g.algos.size(); ++i) {
    CUDA_OK(cudaMemset(dy, 0x5a, z.size()));
    cublasStatus_t st = g.Run(int(i), static_cast<const float*>(ds), beta, dw, dx, dz, dy, ws);
    CUDA_OK(cudaDeviceSynchronize());
    if (st != CUBLAS_STATUS_SUCCESS) {
      std::printf("check lt: algo %zu failed: %d\n", i, int(st));
      continue;
    }
    std::vector<int8_t> y(z.size());
    CUDA_OK(cudaMemcpy(y.data(), dy, y.size(), cudaMemcpyDeviceToHost));
    int64_t off1 = 0, off_more = 0;
    for (int64_t pi = 0; pi < p; ++pi)
      for (int64_t k = 0; k < k_out; ++k) {
        int32_t acc = 0;
        for (int64_t c = 0; c < c_in; ++c) acc += int32_t(x[pi * c_in + c]) * int32_t(w[k * c_in + c]);
        const int8_t want =
            SatRound(std::fmax(0.f, float(acc) * s[k] + beta * float(z[pi * k_out + k]) + b[k]));
        const int d = std::abs(int(y[pi * k_out + k]) - int(want));
        off1 += d == 1;
        off_more += d > 1;
      }
    std::printf("check lt: algo %zu: %zu values, %lld off by 1 LSB, %lld by more\n", i, y.size(),
                (long long)off1, (long long)off_more);
  }
  for (void* v : {dx, dw, dz, dy, ds, db, ws}) cudaFree(v);
}

// The best time (ms) of cuBLASLt's candidates for a 1x1 geometry; < 0 when none.
float TimeLt(cublasLtHandle_t lt, int64_t k_out, int64_t p, int64_t c_in, std::string* error) {
  void *dx, *dw, *dz, *dy, *ds, *db, *ws;
  CUDA_OK(cudaMalloc(&dx, p * c_in));
  CUDA_OK(cudaMalloc(&dw, k_out * c_in));
  CUDA_OK(cudaMalloc(&dz, p * k_out));
  CUDA_OK(cudaMalloc(&dy, p * k_out));
  CUDA_OK(cudaMalloc(&ds, k_out * 4));
  CUDA_OK(cudaMalloc(&db, k_out * 4));
  CUDA_OK(cudaMalloc(&ws, 32u << 20));
  CUDA_OK(cudaMemset(ds, 0, k_out * 4));
  CUDA_OK(cudaMemset(db, 0, k_out * 4));
  float best = -1.f;
  LtInt8 g;
  if (g.Prepare(lt, k_out, p, c_in, static_cast<const float*>(db), error)) {
    cudaEvent_t a, b;
    cudaEventCreate(&a);
    cudaEventCreate(&b);
    for (size_t i = 0; i < g.algos.size() && i < 6; ++i) {
      if (g.Run(int(i), static_cast<const float*>(ds), 1.f, dw, dx, dz, dy, ws) != CUBLAS_STATUS_SUCCESS)
        continue;
      cudaDeviceSynchronize();
      cudaEventRecord(a);
      for (int r = 0; r < 20; ++r) g.Run(int(i), static_cast<const float*>(ds), 1.f, dw, dx, dz, dy, ws);
      cudaEventRecord(b);
      cudaEventSynchronize(b);
      float ms = 0;
      cudaEventElapsedTime(&ms, a, b);
      ms /= 20;
      if (best < 0 || ms < best) best = ms;
    }
    cudaEventDestroy(a);
    cudaEventDestroy(b);
  }
  for (void* v : {dx, dw, dz, dy, ds, db, ws}) cudaFree(v);
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  const int64_t n = argc > 1 ? std::atoll(argv[1]) : 32;
  const bool no_eng4 = argc > 2 && std::string(argv[2]) == "no-eng4";
  cudaDeviceProp prop{};
  CUDA_OK(cudaGetDeviceProperties(&prop, 0));
  std::printf("device: %s, cuDNN %zu, batch %lld\n", prop.name, cudnnGetVersion(), (long long)n);
  cudnnHandle_t handle;
  if (cudnnCreate(&handle) != CUDNN_STATUS_SUCCESS) return 1;
  CheckInt8(handle);
  cublasLtHandle_t lt;
  if (cublasLtCreate(&lt) != CUBLAS_STATUS_SUCCESS) return 1;
  CheckLt(lt);
  const std::vector<Geometry> net = ResNet50Convs();
  double total16 = 0, total8 = 0, total8r = 0, total_lt = 0;
  bool all8 = true;
  for (const Geometry& g : net) {
    Buffers buf;
    const int64_t pad = g.r / 2, out = (g.hw + 2 * pad - g.r) / g.stride + 1;
    const size_t xs = n * g.c * g.hw * g.hw, wsz = g.k * g.c * g.r * g.r, ys = n * g.k * out * out;
    const size_t sizes[8] = {0, xs * 2, wsz * 2, size_t(g.k) * 4, size_t(g.k) * 4, ys * 2, 4, ys * 2};
    for (int i = 1; i < 8; ++i) {
      CUDA_OK(cudaMalloc(&buf.p[i], sizes[i]));
      CUDA_OK(cudaMemset(buf.p[i], 0, sizes[i]));
    }
    std::string n16, n8, n8r;
    Built f16 = Build(handle, false, false, n, g), i8 = Build(handle, true, false, n, g, no_eng4),
          i8r = Build(handle, true, true, n, g, no_eng4);
    const float t16 = f16.graph ? TimeBest(handle, *f16.graph, buf, false, false, &n16) : -1.f;
    const float t8 = i8.graph ? TimeBest(handle, *i8.graph, buf, false, true, &n8) : -1.f;
    const float t8r = i8r.graph ? TimeBest(handle, *i8r.graph, buf, true, true, &n8r) : -1.f;
    std::printf(
        "C%4lld K%4lld %3lldx%-3lld r%lld s%lld x%lld: fp16 %.4f ms (%s) | int8 %.4f ms (%s)%s | int8+z %.4f "
        "ms (%s)%s\n",
        (long long)g.c, (long long)g.k, (long long)g.hw, (long long)g.hw, (long long)g.r, (long long)g.stride,
        (long long)g.count, t16, n16.c_str(), t8, n8.c_str(), i8.graph ? "" : (" [" + i8.error + "]").c_str(),
        t8r, n8r.c_str(), i8r.graph ? "" : (" [" + i8r.error + "]").c_str());
    if (g.r == 1 && g.stride == 1) {
      std::string lt_error;
      const float tl = TimeLt(lt, g.k, n * g.hw * g.hw, g.c, &lt_error);
      std::printf("    cuBLASLt int8+z fused: %.4f ms%s\n", tl,
                  lt_error.empty() ? "" : (" [" + lt_error + "]").c_str());
      if (tl > 0) total_lt += std::min(tl, t8r > 0 ? t8r : tl) * g.count;
    } else if (t8r > 0) {
      total_lt += t8r * g.count;
    }
    if (t16 > 0) total16 += t16 * g.count;
    if (t8 > 0)
      total8 += t8 * g.count;
    else
      all8 = false;
    if (t8r > 0) total8r += t8r * g.count;
    for (int i = 1; i < 8; ++i) cudaFree(buf.p[i]);
    if (buf.ws) cudaFree(buf.ws);
  }
  std::printf("total (weighted by uses): fp16 %.4f ms, int8 %.4f ms (ratio %.3f)%s, int8+z %.4f ms\n",
              total16, total8, total16 > 0 ? total8 / total16 : 0.0,
              all8 ? "" : " [some geometries had no INT8 engine]", total8r);
  std::printf("total int8+z, 1x1 on the faster of cuBLASLt and cuDNN: %.4f ms (ratio to fp16 %.3f)\n",
              total_lt, total16 > 0 ? total_lt / total16 : 0.0);
  cublasLtDestroy(lt);
  cudnnDestroy(handle);
  return 0;
}
