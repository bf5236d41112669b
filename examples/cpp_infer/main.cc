// Loads a kiln plan and runs it once from pinned host buffers: async H2D →
// Enqueue → D2H on one CUDA stream. Dynamic inputs take their profile's opt
// shape; inputs are zeros. Usage: cpp_infer model.plan
#include <cuda_runtime.h>
#include <kiln/engine.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#define CHECK_CUDA(x)                                                   \
  if (cudaError_t e = (x); e != cudaSuccess) {                          \
    std::fprintf(stderr, "%s failed: %s\n", #x, cudaGetErrorString(e)); \
    return 1;                                                           \
  }
#define CHECK_KILN(x)                                   \
  if (kiln::Status s = (x); !s.ok()) {                  \
    std::fprintf(stderr, "%s\n", s.ToString().c_str()); \
    return 1;                                           \
  }

struct Buffer {
  std::string name, dtype;
  std::vector<int64_t> dims;
  size_t bytes = 0;
  void *host = nullptr, *device = nullptr;
};

size_t ElementBytes(const std::string& dtype) {
  if (dtype == "float64" || dtype == "int64" || dtype == "uint64") return 8;
  if (dtype == "float32" || dtype == "int32" || dtype == "uint32") return 4;
  if (dtype == "float16" || dtype == "bfloat16" || dtype == "int16" || dtype == "uint16") return 2;
  return 1;
}

int main(int argc, char** argv) {
  if (argc != 2) return std::fprintf(stderr, "usage: %s model.plan\n", argv[0]), 2;
  auto engine = kiln::Engine::Load(argv[1]);
  CHECK_KILN(engine.status());
  auto ctx = (*engine)->CreateContext();
  CHECK_KILN(ctx.status());
  cudaStream_t stream;
  CHECK_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));

  std::vector<Buffer> inputs, outputs;
  auto profiles = (*engine)->Profiles();
  for (const kiln::TensorInfo& t : (*engine)->Inputs()) {
    auto p = profiles.find(t.name);
    inputs.push_back({t.name, t.dtype, p != profiles.end() ? p->second.opt : t.dims});
    CHECK_KILN((*ctx)->SetInputShape(t.name, inputs.back().dims));
  }
  for (const kiln::TensorInfo& t : (*engine)->Outputs()) {
    auto dims = (*ctx)->GetOutputShape(t.name);
    CHECK_KILN(dims.status());
    outputs.push_back({t.name, t.dtype, *dims});
  }
  for (auto* list : {&inputs, &outputs})
    for (Buffer& b : *list) {  // pinned host memory: the copies are truly async
      b.bytes = ElementBytes(b.dtype);
      for (int64_t d : b.dims) b.bytes *= static_cast<size_t>(d);
      CHECK_CUDA(cudaMallocHost(&b.host, b.bytes + 1));
      CHECK_CUDA(cudaMalloc(&b.device, b.bytes + 1));
      std::memset(b.host, 0, b.bytes);
      CHECK_KILN((*ctx)->SetTensorAddress(b.name, b.device));
    }

  for (Buffer& b : inputs)
    CHECK_CUDA(cudaMemcpyAsync(b.device, b.host, b.bytes, cudaMemcpyHostToDevice, stream));
  CHECK_KILN((*ctx)->Enqueue(stream));
  for (Buffer& b : outputs)
    CHECK_CUDA(cudaMemcpyAsync(b.host, b.device, b.bytes, cudaMemcpyDeviceToHost, stream));
  CHECK_CUDA(cudaStreamSynchronize(stream));

  for (Buffer& b : outputs)
    std::printf("%s: %s, %zu bytes, first byte %d\n", b.name.c_str(), b.dtype.c_str(), b.bytes,
                b.bytes ? static_cast<unsigned char*>(b.host)[0] : 0);
  for (auto* list : {&inputs, &outputs})
    for (Buffer& b : *list) cudaFreeHost(b.host), cudaFree(b.device);
  cudaStreamDestroy(stream);
  return 0;
}
