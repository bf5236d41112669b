#include "backend/cuda/cudnn_util.h"

#include <cstdio>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/timing.h"

namespace kiln::cuda {

Expected<cudnnDataType_t> CudnnType(DataType dt, const Node& n) {
  switch (dt) {
    case DataType::kFloat: return CUDNN_DATA_FLOAT;
    case DataType::kFloat16: return CUDNN_DATA_HALF;
    case DataType::kBFloat16: return CUDNN_DATA_BFLOAT16;
    case DataType::kDouble: return CUDNN_DATA_DOUBLE;
    default: return Unsupported(n.Label() + ": " + std::string(DataTypeName(dt)) + " is not supported by cuDNN here");
  }
}

Status SetTensor(cudnnTensorDescriptor_t* d, cudnnDataType_t dt, const std::vector<int64_t>& dims) {
  if (!*d) KILN_CUDNN_RETURN_IF_ERROR(cudnnCreateTensorDescriptor(d));
  std::vector<int> dd(dims.begin(), dims.end()), st(dims.size(), 1);
  for (int i = static_cast<int>(dims.size()) - 2; i >= 0; --i) st[i] = st[i + 1] * dd[i + 1];
  return CudnnStatus(cudnnSetTensorNdDescriptor(*d, dt, static_cast<int>(dd.size()), dd.data(), st.data()),
                     "cudnnSetTensorNdDescriptor");
}

Status SetFilter(cudnnFilterDescriptor_t* d, cudnnDataType_t dt, const std::vector<int64_t>& dims,
                 cudnnTensorFormat_t format) {
  if (!*d) KILN_CUDNN_RETURN_IF_ERROR(cudnnCreateFilterDescriptor(d));
  std::vector<int> dd(dims.begin(), dims.end());
  return CudnnStatus(cudnnSetFilterNdDescriptor(*d, dt, format, static_cast<int>(dd.size()), dd.data()),
                     "cudnnSetFilterNdDescriptor");
}

Status SetTensorNhwc(cudnnTensorDescriptor_t* d, cudnnDataType_t dt, const std::vector<int64_t>& dims) {
  if (dims.size() != 4) return Unsupported("channels-last tensors must be 4-D, got " + DimsToString(dims));
  if (!*d) KILN_CUDNN_RETURN_IF_ERROR(cudnnCreateTensorDescriptor(d));
  const int n = static_cast<int>(dims[0]), c = static_cast<int>(dims[1]), h = static_cast<int>(dims[2]),
            w = static_cast<int>(dims[3]);
  return CudnnStatus(cudnnSetTensor4dDescriptor(*d, CUDNN_TENSOR_NHWC, dt, n, c, h, w), "cudnnSetTensor4dDescriptor");
}

std::vector<int64_t> NchwDims(const std::vector<int64_t>& nhwc) {
  if (nhwc.size() != 4) return nhwc;
  return {nhwc[0], nhwc[3], nhwc[1], nhwc[2]};
}

std::vector<int64_t> IntsAttr(const Node& n, const char* name, int count, int64_t def) {
  const Attribute* a = n.attr(name);
  if (a && static_cast<int>(a->ints.size()) == count) return a->ints;
  return std::vector<int64_t>(static_cast<size_t>(count), def);
}

void ResolvePads(const Node& n, const std::vector<int64_t>& x, const std::vector<int64_t>& kernel_dims,
                 const std::vector<int64_t>& y, const std::vector<int64_t>& strides,
                 const std::vector<int64_t>& dil, int spatial, std::vector<int64_t>* begin_out,
                 std::vector<int64_t>* end_out) {
  const Attribute* ap = n.attr("auto_pad");
  std::string mode = ap ? ap->s : "NOTSET";
  std::vector<int64_t> begin(spatial, 0), end(spatial, 0);
  if (mode == "NOTSET") {
    std::vector<int64_t> p = IntsAttr(n, "pads", 2 * spatial, 0);
    for (int i = 0; i < spatial; ++i) {
      begin[i] = p[i];
      end[i] = p[i + spatial];
    }
  } else if (mode == "SAME_UPPER" || mode == "SAME_LOWER") {
    for (int i = 0; i < spatial; ++i) {
      int64_t k = (kernel_dims[i + 2] - 1) * dil[i] + 1;
      int64_t total = std::max<int64_t>(0, (y[i + 2] - 1) * strides[i] + k - x[i + 2]);
      begin[i] = mode == "SAME_UPPER" ? total / 2 : total - total / 2;
      end[i] = total - begin[i];
    }
  }
  *begin_out = std::move(begin);
  *end_out = std::move(end);
}

Expected<std::vector<int64_t>> SymmetricPads(const Node& n, const std::vector<int64_t>& x,
                                             const std::vector<int64_t>& kernel_dims,
                                             const std::vector<int64_t>& y,
                                             const std::vector<int64_t>& strides,
                                             const std::vector<int64_t>& dil, int spatial) {
  std::vector<int64_t> begin, end;
  ResolvePads(n, x, kernel_dims, y, strides, dil, spatial, &begin, &end);
  for (int i = 0; i < spatial; ++i) {
    if (begin[i] == end[i]) continue;
    // Extra padding at the end that no output window reaches is harmless.
    int64_t k = (kernel_dims[i + 2] - 1) * dil[i] + 1;
    int64_t needed_end = (y[i + 2] - 1) * strides[i] + k - x[i + 2] - begin[i];
    if (needed_end <= begin[i] && begin[i] <= end[i]) continue;
    return Unsupported(n.Label() + ": asymmetric padding (" + std::to_string(begin[i]) + " before, " +
                       std::to_string(end[i]) + " after) is not supported on the GPU yet");
  }
  return begin;
}

namespace {

// "algo:time_ms:workspace:math;..." (the tactic cache's text form).
std::string FormatConvChoices(const std::vector<ConvAlgoChoice>& choices) {
  std::string s;
  for (const ConvAlgoChoice& c : choices)
    s += std::to_string(static_cast<int>(c.algo)) + ":" + std::to_string(c.time_ms) + ":" + std::to_string(c.workspace) +
         ":" + std::to_string(static_cast<int>(c.math)) + ";";
  return s;
}

std::vector<ConvAlgoChoice> ParseConvChoices(const std::string& text) {
  std::vector<ConvAlgoChoice> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find(';', pos);
    if (end == std::string::npos) break;
    int algo = 0, math = 0;
    float time = 0;
    unsigned long long ws = 0;
    if (std::sscanf(text.substr(pos, end - pos).c_str(), "%d:%f:%llu:%d", &algo, &time, &ws, &math) == 4 &&
        algo >= 0 && algo < CUDNN_CONVOLUTION_FWD_ALGO_COUNT)
      out.push_back({static_cast<cudnnConvolutionFwdAlgo_t>(algo), time, static_cast<size_t>(ws),
                     static_cast<cudnnMathType_t>(math)});
    pos = end + 1;
  }
  return out;
}

// What a timing depends on, read back from the descriptors.
Expected<std::string> ConvTacticKey(cudnnTensorDescriptor_t x, cudnnFilterDescriptor_t w,
                                    cudnnConvolutionDescriptor_t conv, cudnnTensorDescriptor_t y, size_t limit) {
  std::string key = "conv";
  auto ints = [&](const char* tag, const int* v, int n) {
    key += std::string(" ") + tag;
    for (int i = 0; i < n; ++i) key += ":" + std::to_string(v[i]);
  };
  for (cudnnTensorDescriptor_t t : {x, y}) {
    cudnnDataType_t dt;
    int nd = 0, dims[8], strides[8];
    KILN_CUDNN_RETURN_IF_ERROR(cudnnGetTensorNdDescriptor(t, 8, &dt, &nd, dims, strides));
    key += " t" + std::to_string(static_cast<int>(dt));
    ints("d", dims, nd);
    ints("s", strides, nd);
  }
  cudnnDataType_t wdt;
  cudnnTensorFormat_t fmt;
  int wnd = 0, wdims[8];
  KILN_CUDNN_RETURN_IF_ERROR(cudnnGetFilterNdDescriptor(w, 8, &wdt, &fmt, &wnd, wdims));
  key += " w" + std::to_string(static_cast<int>(wdt)) + "f" + std::to_string(static_cast<int>(fmt));
  ints("d", wdims, wnd);
  int cnd = 0, pads[8], strides[8], dil[8], groups = 1;  // cuDNN answers at most CUDNN_DIM_MAX - 2 = 6 dims
  cudnnConvolutionMode_t mode;
  cudnnDataType_t cdt;
  cudnnMathType_t math;
  KILN_CUDNN_RETURN_IF_ERROR(cudnnGetConvolutionNdDescriptor(conv, 6, &cnd, pads, strides, dil, &mode, &cdt));
  KILN_CUDNN_RETURN_IF_ERROR(cudnnGetConvolutionGroupCount(conv, &groups));
  KILN_CUDNN_RETURN_IF_ERROR(cudnnGetConvolutionMathType(conv, &math));
  ints("p", pads, cnd);
  ints("u", strides, cnd);
  ints("l", dil, cnd);
  key += " g" + std::to_string(groups) + " c" + std::to_string(static_cast<int>(cdt)) + " m" +
         std::to_string(static_cast<int>(math)) + " ws" + std::to_string(limit);
  return key;
}

}  // namespace

Expected<std::vector<ConvAlgoChoice>> FindConvAlgos(cudnnHandle_t h, cudnnTensorDescriptor_t x,
                                                    cudnnFilterDescriptor_t w,
                                                    cudnnConvolutionDescriptor_t conv,
                                                    cudnnTensorDescriptor_t y, size_t limit,
                                                    TacticCache* cache, const std::string& node) {
  // The recorded algorithms this cuDNN can still run within the limit. The workspace each needs is asked
  // again: this cuDNN may differ from the one that timed it.
  auto usable_of = [&](const std::string& recorded) -> Expected<std::vector<ConvAlgoChoice>> {
    std::vector<ConvAlgoChoice> usable;
    cudnnMathType_t asked;
    KILN_CUDNN_RETURN_IF_ERROR(cudnnGetConvolutionMathType(conv, &asked));
    for (ConvAlgoChoice c : ParseConvChoices(recorded)) {
      size_t bytes = 0;
      if (cudnnSetConvolutionMathType(conv, c.math) != CUDNN_STATUS_SUCCESS ||
          cudnnGetConvolutionForwardWorkspaceSize(h, x, w, conv, y, c.algo, &bytes) != CUDNN_STATUS_SUCCESS ||
          bytes > limit)
        continue;
      c.workspace = bytes;
      usable.push_back(c);
    }
    KILN_CUDNN_RETURN_IF_ERROR(cudnnSetConvolutionMathType(conv, asked));
    return usable;
  };
  std::string key;
  bool stale = false;  // recorded, but nothing recorded runs here: timed again and replaced
  if (cache) {
    KILN_ASSIGN_OR_RETURN(key, ConvTacticKey(x, w, conv, y, limit));
    cache->Use(node, key);
    if (std::optional<std::string> hit = cache->Find(key)) {
      KILN_ASSIGN_OR_RETURN(std::vector<ConvAlgoChoice> usable, usable_of(*hit));
      if (!usable.empty()) return usable;
      stale = true;
    }
  }
  auto bytes_of = [](cudnnTensorDescriptor_t t) {
    size_t b = 0;
    cudnnGetTensorSizeInBytes(t, &b);
    return b;
  };
  size_t wbytes = 0;
  {
    cudnnDataType_t dt;
    cudnnTensorFormat_t fmt;
    int nd = 0;
    int dims[8];
    KILN_CUDNN_RETURN_IF_ERROR(cudnnGetFilterNdDescriptor(w, 8, &dt, &fmt, &nd, dims));
    wbytes = dt == CUDNN_DATA_FLOAT ? 4 : (dt == CUDNN_DATA_DOUBLE ? 8 : 2);
    for (int i = 0; i < nd; ++i) wbytes *= static_cast<size_t>(dims[i]);
  }
  size_t ws_limit = std::min<size_t>(limit, size_t{256} << 20);
  DeviceBuffer bx, bw, by, bws;
  KILN_RETURN_IF_ERROR(bx.Reserve(bytes_of(x)));
  KILN_RETURN_IF_ERROR(bw.Reserve(wbytes));
  KILN_RETURN_IF_ERROR(by.Reserve(bytes_of(y)));
  KILN_RETURN_IF_ERROR(bws.Reserve(ws_limit));
  KILN_RETURN_IF_ERROR(FillForTiming({&bx, &bw}));
  constexpr int kMax = 16;
  cudnnConvolutionFwdAlgoPerf_t perf[kMax];
  int found = 0;
  KILN_CUDNN_RETURN_IF_ERROR(cudnnFindConvolutionForwardAlgorithmEx(h, x, bx.get(), w, bw.get(), conv, y, by.get(),
                                                                     kMax, &found, perf, bws.get(), ws_limit));
  std::vector<ConvAlgoChoice> out;
  // cuDNN sorts by time. Deterministic algorithms only: bits that do not depend on what shares the GPU.
  for (int i = 0; i < found; ++i)
    if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].memory <= ws_limit &&
        perf[i].determinism == CUDNN_DETERMINISTIC)
      out.push_back({perf[i].algo, perf[i].time, perf[i].memory, perf[i].mathType});
  if (out.empty()) return Unsupported("cuDNN found no convolution algorithm for this shape within the workspace limit");
  if (!cache) return out;
  // Another context may have timed the same geometry meanwhile: the first list stands for all, so every
  // context runs the same algorithm (bit-identical outputs across contexts).
  const std::string mine = FormatConvChoices(out);
  const std::string kept = cache->Keep(key, mine, stale);
  if (kept == mine) return out;
  KILN_ASSIGN_OR_RETURN(std::vector<ConvAlgoChoice> first, usable_of(kept));
  return first.empty() ? out : first;
}

Expected<cudnnConvolutionFwdAlgo_t> FindConvAlgo(cudnnHandle_t h, cudnnTensorDescriptor_t x, cudnnFilterDescriptor_t w,
                                                 cudnnConvolutionDescriptor_t conv, cudnnTensorDescriptor_t y,
                                                 size_t limit, size_t* workspace, cudnnMathType_t* math) {
  KILN_ASSIGN_OR_RETURN(std::vector<ConvAlgoChoice> all, FindConvAlgos(h, x, w, conv, y, limit));
  *workspace = all[0].workspace;
  *math = all[0].math;
  return all[0].algo;
}

}  // namespace kiln::cuda
