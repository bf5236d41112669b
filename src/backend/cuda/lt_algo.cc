// The algorithm of a cuBLASLt product (see lt_gemm.h LtChooseAlgo): the
// heuristic's candidates timed on scratch operands, the fastest kept in the
// engine's tactic cache (the plan carries it; a load reuses it untimed).
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <string>

#include "backend/cuda/lt_gemm.h"
#include "backend/cuda/timing.h"

namespace kiln::cuda {
namespace {

constexpr int kCandidates = 8;  // the heuristic's first few: the fastest is nearly always among them
constexpr int kTimedRuns = 5;

struct LayoutInfo {
  uint32_t type = 0;
  uint64_t rows = 0, cols = 0;
  int64_t ld = 0, stride = 0;
  int32_t batch = 1;
};

// An attribute of a layout or descriptor through its getter (cublasLtMatrixLayoutGetAttribute,
// cublasLtMatmulDescGetAttribute), or `def` when the getter fails.
template <class T, class Getter, class Handle, class Attr>
T GetAttr(Getter get, Handle h, Attr attr, T def) {
  T v = def;
  size_t written = 0;
  return get(h, attr, &v, sizeof(v), &written) == CUBLAS_STATUS_SUCCESS ? v : def;
}
template <class T>
T LayoutAttr(cublasLtMatrixLayout_t l, cublasLtMatrixLayoutAttribute_t attr, T def) {
  return GetAttr(cublasLtMatrixLayoutGetAttribute, l, attr, def);
}
template <class T>
T DescAttr(cublasLtMatmulDesc_t d, cublasLtMatmulDescAttributes_t attr, T def) {
  return GetAttr(cublasLtMatmulDescGetAttribute, d, attr, def);
}

LayoutInfo Describe(cublasLtMatrixLayout_t l) {
  LayoutInfo i;
  i.type = LayoutAttr<uint32_t>(l, CUBLASLT_MATRIX_LAYOUT_TYPE, 0);
  i.rows = LayoutAttr<uint64_t>(l, CUBLASLT_MATRIX_LAYOUT_ROWS, 0);
  i.cols = LayoutAttr<uint64_t>(l, CUBLASLT_MATRIX_LAYOUT_COLS, 0);
  i.ld = LayoutAttr<int64_t>(l, CUBLASLT_MATRIX_LAYOUT_LD, 0);
  i.batch = LayoutAttr<int32_t>(l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, 1);
  i.stride = LayoutAttr<int64_t>(l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, 0);
  return i;
}

size_t TypeBytes(uint32_t t) {
  switch (static_cast<cudaDataType_t>(t)) {
    case CUDA_R_8I:
    case CUDA_R_8U:
    case CUDA_R_8F_E4M3:
    case CUDA_R_8F_E5M2:
      return 1;
    case CUDA_R_16F:
    case CUDA_R_16BF:
      return 2;
    case CUDA_R_64F:
      return 8;
    default:
      return 4;
  }
}

size_t Bytes(const LayoutInfo& l) {
  const uint64_t one = static_cast<uint64_t>(l.ld) * l.cols;
  const uint64_t all =
      l.batch > 1 ? one + static_cast<uint64_t>(l.batch - 1) * static_cast<uint64_t>(l.stride) : one;
  return static_cast<size_t>(all) * TypeBytes(l.type);
}

std::string LayoutKey(const LayoutInfo& l) {
  return std::to_string(l.type) + ":" + std::to_string(l.rows) + "x" + std::to_string(l.cols) + ":" +
         std::to_string(l.ld) + ":" + std::to_string(l.batch) + ":" + std::to_string(l.stride);
}

// Everything the choice depends on: the operands' layouts and the descriptor's math.
std::string Key(cublasLtMatmulDesc_t desc, const LayoutInfo (&l)[4]) {
  std::string key = "lt:" + std::to_string(DescAttr<int32_t>(desc, CUBLASLT_MATMUL_DESC_COMPUTE_TYPE, 0)) +
                    ":" + std::to_string(DescAttr<int32_t>(desc, CUBLASLT_MATMUL_DESC_SCALE_TYPE, 0)) + ":t" +
                    std::to_string(DescAttr<int32_t>(desc, CUBLASLT_MATMUL_DESC_TRANSA, 0)) +
                    std::to_string(DescAttr<int32_t>(desc, CUBLASLT_MATMUL_DESC_TRANSB, 0)) + ":e" +
                    std::to_string(DescAttr<uint32_t>(desc, CUBLASLT_MATMUL_DESC_EPILOGUE, 0)) + ":b" +
                    std::to_string(DescAttr<int32_t>(desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, -1)) + ":f" +
                    std::to_string(DescAttr<int8_t>(desc, CUBLASLT_MATMUL_DESC_FAST_ACCUM, 0));
  for (const LayoutInfo& i : l) key += "|" + LayoutKey(i);
  return key;
}

std::string Hex(const cublasLtMatmulAlgo_t& a) {
  std::string s;
  char word[17];
  for (uint64_t v : a.data) {
    std::snprintf(word, sizeof word, "%016" PRIx64, v);
    s += word;
  }
  return s;
}

bool FromHex(const std::string& s, cublasLtMatmulAlgo_t* a) {
  if (s.size() < 16 * 8) return false;
  for (int i = 0; i < 8; ++i)
    if (std::sscanf(s.c_str() + 16 * i, "%16" SCNx64, &a->data[i]) != 1) return false;
  return true;
}

// alpha 1, beta 0 in the descriptor's scale type.
struct Scales {
  int32_t i[2] = {1, 0};
  float f[2] = {1.f, 0.f};
  double d[2] = {1.0, 0.0};
  const void* alpha(int32_t type) const {
    return type == CUDA_R_32I ? (const void*)&i[0] : type == CUDA_R_64F ? (const void*)&d[0] : &f[0];
  }
  const void* beta(int32_t type) const {
    return type == CUDA_R_32I ? (const void*)&i[1] : type == CUDA_R_64F ? (const void*)&d[1] : &f[1];
  }
};

bool UsesBias(cublasLtEpilogue_t e) {
  return e == CUBLASLT_EPILOGUE_BIAS || e == CUBLASLT_EPILOGUE_RELU_BIAS ||
         e == CUBLASLT_EPILOGUE_GELU_BIAS || e == CUBLASLT_EPILOGUE_GELU_AUX_BIAS ||
         e == CUBLASLT_EPILOGUE_RELU_AUX_BIAS;
}

}  // namespace

Status LtChooseAlgo(GpuResources& res, cublasLtMatmulDesc_t desc, cublasLtMatrixLayout_t a,
                    cublasLtMatrixLayout_t b, cublasLtMatrixLayout_t c, cublasLtMatrixLayout_t d,
                    const char* what, cublasLtMatmulAlgo_t* algo, const std::string& node) {
  auto lt = static_cast<cublasLtHandle_t>(res.cublaslt);
  const LayoutInfo info[4] = {Describe(a), Describe(b), Describe(c), Describe(d)};
  const std::string key = Key(desc, info);
  bool stale = false;  // an entry cuBLASLt no longer takes (another cuBLAS): timed again and replaced
  if (res.tactics)
    if (std::optional<std::string> hit = res.tactics->Find(key)) {
      stale = true;
      cublasLtMatmulHeuristicResult_t check{};
      if (FromHex(*hit, algo) &&
          cublasLtMatmulAlgoCheck(lt, desc, a, b, c, d, algo, &check) == CUBLAS_STATUS_SUCCESS &&
          check.workspaceSize <= kLtWorkspace) {
        res.tactics->Use(node, key);
        return Status::Ok();
      }
    }
  cublasLtMatmulPreference_t pref = nullptr;
  KILN_LT_RETURN_IF_ERROR(cublasLtMatmulPreferenceCreate(&pref));
  size_t ws = kLtWorkspace;
  cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws));
  cublasLtMatmulHeuristicResult_t heur[kCandidates] = {};
  int found = 0;
  cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(lt, desc, a, b, c, d, pref, kCandidates, heur, &found);
  cublasLtMatmulPreferenceDestroy(pref);
  KILN_LT_RETURN_IF_ERROR(st);
  if (found == 0)
    return Unsupported(std::string("cuBLASLt has no ") + what + " algorithm for this matrix product");
  *algo = heur[0].algo;
  if (found == 1 || !res.tactics) return Status::Ok();  // nothing to choose, or nowhere to keep the choice

  // Scratch operands (C shares D's buffer when their layouts agree, as the ops run them); a bias when the
  // epilogue reads one (the descriptor's pointer is restored after).
  DeviceBuffer ba, bb, bc, bd, bias, bws;
  KILN_RETURN_IF_ERROR(ba.Reserve(Bytes(info[0])));
  KILN_RETURN_IF_ERROR(bb.Reserve(Bytes(info[1])));
  KILN_RETURN_IF_ERROR(bd.Reserve(Bytes(info[3])));
  const bool own_c = LayoutKey(info[2]) != LayoutKey(info[3]);
  if (own_c) KILN_RETURN_IF_ERROR(bc.Reserve(Bytes(info[2])));
  KILN_RETURN_IF_ERROR(bws.Reserve(kLtWorkspace));
  const auto epilogue =
      DescAttr<cublasLtEpilogue_t>(desc, CUBLASLT_MATMUL_DESC_EPILOGUE, CUBLASLT_EPILOGUE_DEFAULT);
  const void* prior_bias = DescAttr<const void*>(desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, nullptr);
  if (UsesBias(epilogue)) {
    KILN_RETURN_IF_ERROR(bias.Reserve(static_cast<size_t>(info[3].rows) * 8));
    const void* p = bias.get();
    KILN_LT_RETURN_IF_ERROR(
        cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &p, sizeof(p)));
  }
  // A per-row alpha (INT8 products' per-channel scales) is a device vector of D's rows.
  const auto pointer_mode =
      DescAttr<cublasLtPointerMode_t>(desc, CUBLASLT_MATMUL_DESC_POINTER_MODE, CUBLASLT_POINTER_MODE_HOST);
  const bool alpha_vector = pointer_mode == CUBLASLT_POINTER_MODE_ALPHA_DEVICE_VECTOR_BETA_ZERO ||
                            pointer_mode == CUBLASLT_POINTER_MODE_ALPHA_DEVICE_VECTOR_BETA_HOST;
  DeviceBuffer alphas;
  if (alpha_vector) KILN_RETURN_IF_ERROR(alphas.Reserve(static_cast<size_t>(info[3].rows) * 8));
  KILN_RETURN_IF_ERROR(FillForTiming({&ba, &bb, &bc, &bias, &alphas}));
  const int32_t scale_type = DescAttr<int32_t>(desc, CUBLASLT_MATMUL_DESC_SCALE_TYPE, CUDA_R_32F);
  const Scales scales;
  int best = -1;
  float best_ms = INFINITY;
  for (int i = 0; i < found; ++i) {
    if (heur[i].state != CUBLAS_STATUS_SUCCESS || heur[i].workspaceSize > kLtWorkspace) continue;
    Expected<float> ms = TimeOnPrivateStream(
        [&](cudaStream_t stream) {
          return LtStatus(
              cublasLtMatmul(lt, desc, alpha_vector ? alphas.get() : scales.alpha(scale_type), ba.get(), a,
                             bb.get(), b, scales.beta(scale_type), own_c ? bc.get() : bd.get(), c, bd.get(),
                             d, &heur[i].algo, bws.get(), kLtWorkspace, stream),
              "cublasLtMatmul (timing)");
        },
        kTimedRuns);
    if (ms.ok() && *ms < best_ms) {
      best = i;
      best_ms = *ms;
    }
  }
  cudaGetLastError();  // a candidate that failed to launch must not fail the next kernel's check
  if (UsesBias(epilogue))
    KILN_LT_RETURN_IF_ERROR(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER,
                                                           &prior_bias, sizeof(prior_bias)));
  if (best < 0) return Status::Ok();  // none timed: the heuristic's first
  *algo = heur[best].algo;
  const std::string choice = Hex(*algo) + " " + std::to_string(best_ms);
  // Another context may have timed the same product meanwhile: the first choice stands for all.
  cublasLtMatmulAlgo_t first{};
  if (FromHex(res.tactics->Keep(key, choice, stale), &first)) *algo = first;
  res.tactics->Use(node, key);
  return Status::Ok();
}

}  // namespace kiln::cuda
