// TensorProto ↔ Tensor for every ONNX dtype, and TypeProto ↔ TypeInfo.
#include <cstring>
#include <limits>

#include "onnx/external_data.h"
#include "onnx/proto_convert.h"

namespace kiln {
namespace onnx_internal {
namespace {

static_assert(sizeof(float) == 4 && sizeof(double) == 8, "IEEE float sizes expected");

bool IsSubByte(DataType dt) { return ElementBits(dt) < 8 && ElementBits(dt) > 0; }

std::string DimsString(const std::vector<int64_t>& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? "," : "") + std::to_string(dims[i]);
  return s + "]";
}

// One element (0..3 or 0..15) of packed sub-byte data, sign-extended where signed.
uint8_t UnpackElement(const uint8_t* packed, int64_t i, DataType dt) {
  int bits = ElementBits(dt);
  int per_byte = 8 / bits;
  uint8_t byte = packed[i / per_byte];
  int shift = static_cast<int>(i % per_byte) * bits;
  uint8_t mask = static_cast<uint8_t>((1u << bits) - 1u);
  uint8_t v = static_cast<uint8_t>((byte >> shift) & mask);
  if (dt == DataType::kInt4 || dt == DataType::kInt2) {
    int sign = 1 << (bits - 1);
    int sv = (static_cast<int>(v) ^ sign) - sign;
    return static_cast<uint8_t>(static_cast<int8_t>(sv));
  }
  return v;
}

void UnpackAll(const uint8_t* packed, int64_t n, DataType dt, uint8_t* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = UnpackElement(packed, i, dt);
}

// Which typed field an ONNX dtype uses when raw_data is absent.
enum class Field { kFloat, kInt32, kInt32Packed, kInt64, kUInt64, kDouble, kString, kNone };

Field FieldOf(DataType dt) {
  switch (dt) {
    case DataType::kFloat:
    case DataType::kComplex64: return Field::kFloat;
    case DataType::kInt32:
    case DataType::kInt16:
    case DataType::kInt8:
    case DataType::kUInt16:
    case DataType::kUInt8:
    case DataType::kBool:
    case DataType::kFloat16:
    case DataType::kBFloat16:
    case DataType::kFloat8E4M3FN:
    case DataType::kFloat8E4M3FNUZ:
    case DataType::kFloat8E5M2:
    case DataType::kFloat8E5M2FNUZ:
    case DataType::kFloat8E8M0: return Field::kInt32;
    case DataType::kUInt4:
    case DataType::kInt4:
    case DataType::kFloat4E2M1:
    case DataType::kUInt2:
    case DataType::kInt2: return Field::kInt32Packed;
    case DataType::kInt64: return Field::kInt64;
    case DataType::kUInt32:
    case DataType::kUInt64: return Field::kUInt64;
    case DataType::kDouble:
    case DataType::kComplex128: return Field::kDouble;
    case DataType::kString: return Field::kString;
    default: return Field::kNone;
  }
}

const char* FieldName(Field f) {
  switch (f) {
    case Field::kFloat: return "float_data";
    case Field::kInt32:
    case Field::kInt32Packed: return "int32_data";
    case Field::kInt64: return "int64_data";
    case Field::kUInt64: return "uint64_data";
    case Field::kDouble: return "double_data";
    case Field::kString: return "string_data";
    case Field::kNone: return "(none)";
  }
  return "?";
}

int FieldSize(const onnx::TensorProto& p, Field f) {
  switch (f) {
    case Field::kFloat: return p.float_data_size();
    case Field::kInt32:
    case Field::kInt32Packed: return p.int32_data_size();
    case Field::kInt64: return p.int64_data_size();
    case Field::kUInt64: return p.uint64_data_size();
    case Field::kDouble: return p.double_data_size();
    case Field::kString: return p.string_data_size();
    case Field::kNone: return 0;
  }
  return 0;
}

// Typed-field data of any kind other than `f` (a dtype/field mismatch).
const char* OtherFieldWithData(const onnx::TensorProto& p, Field f) {
  const Field all[] = {Field::kFloat, Field::kInt32, Field::kInt64, Field::kUInt64, Field::kDouble, Field::kString};
  for (Field o : all) {
    bool same = o == f || (o == Field::kInt32 && f == Field::kInt32Packed);
    if (!same && FieldSize(p, o) > 0) return FieldName(o);
  }
  return nullptr;
}

Tensor FromBytes(DataType dt, const std::vector<int64_t>& dims, int64_t n, const uint8_t* bytes) {
  Tensor t(dt, dims);
  if (IsSubByte(dt))
    UnpackAll(bytes, n, dt, t.mutable_data<uint8_t>());
  else if (t.nbytes())
    std::memcpy(t.mutable_raw(), bytes, t.nbytes());
  return t;
}

}  // namespace

Expected<int64_t> CheckedNumel(const std::vector<int64_t>& dims, const std::string& what) {
  int64_t n = 1;
  for (int64_t d : dims) {
    if (d < 0) return InvalidArgument(what + ": negative dimension " + std::to_string(d) + " in dims " + DimsString(dims));
    if (d != 0 && n > std::numeric_limits<int64_t>::max() / d)
      return InvalidArgument(what + ": dims " + DimsString(dims) + " overflow the element count");
    n *= d;
  }
  return n;
}

Expected<Tensor> TensorFromProto(const onnx::TensorProto& p, const ExternalDataReader* ext, const std::string& what) {
  if (p.has_segment()) return Unsupported(what + ": segmented tensors are not supported");
  int32_t raw_type = p.data_type();
  if (raw_type == 0) return InvalidArgument(what + ": data_type is UNDEFINED");
  if (!IsValidDataType(raw_type))
    return Unsupported(what + ": unsupported data_type " + std::to_string(raw_type));
  DataType dt = static_cast<DataType>(raw_type);
  std::vector<int64_t> dims(p.dims().begin(), p.dims().end());
  KILN_ASSIGN_OR_RETURN(int64_t n, CheckedNumel(dims, what));
  const std::string tdesc = std::string(DataTypeName(dt)) + DimsString(dims);
  // Keeps byte counts far from size_t overflow (2^60 elements is 1 EiB).
  if (n > (int64_t{1} << 60)) return InvalidArgument(what + ": " + tdesc + " is too large");
  Field field = FieldOf(dt);

  if (dt == DataType::kString) {
    if (UsesExternalData(p)) return InvalidArgument(what + ": string tensors cannot use external data");
    if (p.has_raw_data()) return InvalidArgument(what + ": string tensors cannot use raw_data");
    if (p.string_data_size() != n)
      return InvalidArgument(what + ": " + tdesc + " has " + std::to_string(n) + " elements but string_data holds " +
                             std::to_string(p.string_data_size()));
    Tensor t(dt, dims);
    auto& s = t.mutable_strings();
    for (int64_t i = 0; i < n; ++i) s[static_cast<size_t>(i)] = p.string_data(static_cast<int>(i));
    return t;
  }

  const uint64_t packed_bytes = (static_cast<uint64_t>(n) * static_cast<uint64_t>(ElementBits(dt)) + 7) / 8;
  const bool external = UsesExternalData(p);
  if (external || p.has_raw_data()) {
    ExternalBytes ebytes;
    const uint8_t* bytes;
    size_t size;
    if (external) {
      if (!ext) return InvalidArgument(what + ": uses external data, which is not available here");
      KILN_ASSIGN_OR_RETURN(ebytes, ext->Read(p, what));
      bytes = ebytes.data;
      size = ebytes.size;
    } else {
      bytes = reinterpret_cast<const uint8_t*>(p.raw_data().data());
      size = p.raw_data().size();
    }
    if (size != packed_bytes)
      return InvalidArgument(what + ": " + tdesc + " needs " + std::to_string(packed_bytes) + " bytes but its " +
                             (external ? "external data holds " : "raw_data holds ") + std::to_string(size));
    size_t esize = ElementSize(dt);
    if (external && !IsSubByte(dt) && n > 0 && reinterpret_cast<uintptr_t>(bytes) % esize == 0)
      return Tensor::Borrow(dt, dims, ebytes.owner, bytes);
    return FromBytes(dt, dims, n, bytes);
  }

  if (const char* other = OtherFieldWithData(p, field))
    return InvalidArgument(what + ": " + tdesc + " stores its data in " + other + ", which does not fit its type (expected " +
                           FieldName(field) + ")");
  int64_t want = n;
  if (dt == DataType::kComplex64 || dt == DataType::kComplex128) want = 2 * n;
  if (field == Field::kInt32Packed) want = static_cast<int64_t>(packed_bytes);
  int64_t have = FieldSize(p, field);
  if (have != want) {
    if (have == 0 && n > 0) return InvalidArgument(what + ": " + tdesc + " has no data");
    return InvalidArgument(what + ": " + tdesc + " needs " + std::to_string(want) + " values in " + FieldName(field) +
                           " but has " + std::to_string(have));
  }
  Tensor t(dt, dims);
  if (n == 0) return t;
  switch (field) {
    case Field::kFloat: std::memcpy(t.mutable_raw(), p.float_data().data(), static_cast<size_t>(want) * 4); break;
    case Field::kDouble: std::memcpy(t.mutable_raw(), p.double_data().data(), static_cast<size_t>(want) * 8); break;
    case Field::kInt64: std::memcpy(t.mutable_raw(), p.int64_data().data(), static_cast<size_t>(want) * 8); break;
    case Field::kUInt64:
      if (dt == DataType::kUInt64) {
        std::memcpy(t.mutable_raw(), p.uint64_data().data(), static_cast<size_t>(want) * 8);
      } else {
        uint32_t* out = t.mutable_data<uint32_t>();
        for (int64_t i = 0; i < n; ++i) out[i] = static_cast<uint32_t>(p.uint64_data(static_cast<int>(i)));
      }
      break;
    case Field::kInt32: {
      void* out = t.mutable_raw();
      for (int64_t i = 0; i < n; ++i) {
        uint32_t v = static_cast<uint32_t>(p.int32_data(static_cast<int>(i)));
        switch (ElementSize(dt)) {
          case 1: static_cast<uint8_t*>(out)[i] = static_cast<uint8_t>(dt == DataType::kBool ? (v != 0) : v); break;
          case 2: static_cast<uint16_t*>(out)[i] = static_cast<uint16_t>(v); break;
          default: static_cast<uint32_t*>(out)[i] = v; break;
        }
      }
      break;
    }
    case Field::kInt32Packed: {
      std::vector<uint8_t> packed(static_cast<size_t>(want));
      for (int64_t i = 0; i < want; ++i) packed[static_cast<size_t>(i)] = static_cast<uint8_t>(p.int32_data(static_cast<int>(i)));
      UnpackAll(packed.data(), n, dt, t.mutable_data<uint8_t>());
      break;
    }
    case Field::kString:
    case Field::kNone: return Unsupported(what + ": unsupported data_type " + std::to_string(raw_type));
  }
  return t;
}

std::string TensorRawBytes(const Tensor& t) {
  int64_t n = t.numel();
  if (IsSubByte(t.dtype())) {
    int bits = ElementBits(t.dtype());
    int per_byte = 8 / bits;
    std::string out(static_cast<size_t>((n * bits + 7) / 8), '\0');
    const uint8_t* src = t.data<uint8_t>();
    uint8_t mask = static_cast<uint8_t>((1u << bits) - 1u);
    for (int64_t i = 0; i < n; ++i) {
      int shift = static_cast<int>(i % per_byte) * bits;
      out[static_cast<size_t>(i / per_byte)] =
          static_cast<char>(static_cast<uint8_t>(out[static_cast<size_t>(i / per_byte)]) | ((src[i] & mask) << shift));
    }
    return out;
  }
  if (t.nbytes() == 0) return std::string();
  return std::string(static_cast<const char*>(t.raw()), t.nbytes());
}

Status TensorToProto(const Tensor& t, const std::string& name, onnx::TensorProto* p) {
  if (!t.defined()) return InvalidArgument("tensor '" + name + "' is undefined and cannot be saved");
  p->Clear();
  if (!name.empty()) p->set_name(name);
  for (int64_t d : t.dims()) p->add_dims(d);
  p->set_data_type(static_cast<int32_t>(t.dtype()));
  if (t.dtype() == DataType::kString) {
    for (const auto& s : t.strings()) p->add_string_data(s);
    return Status::Ok();
  }
  p->set_raw_data(TensorRawBytes(t));
  return Status::Ok();
}

TypeInfo TypeFromProto(const onnx::TypeProto& tp) {
  TypeInfo info;
  auto shape_of = [](const onnx::TensorShapeProto& sp) {
    std::vector<Dim> dims;
    for (const auto& d : sp.dim()) {
      if (d.has_dim_value() && d.dim_value() >= 0)
        dims.push_back(Dim::Known(d.dim_value()));
      else if (d.has_dim_param() && !d.dim_param().empty() && d.dim_param() != "?")
        dims.push_back(Dim::Symbol(d.dim_param()));
      else  // "?" names no symbol (Paddle writes it on every dynamic axis): each is its own unknown
        dims.push_back(Dim::Unknown());
    }
    return Shape(std::move(dims));
  };
  auto dtype_of = [](int32_t v) { return IsValidDataType(v) ? static_cast<DataType>(v) : DataType::kUndefined; };
  switch (tp.value_case()) {
    case onnx::TypeProto::kTensorType:
      info.dtype = dtype_of(tp.tensor_type().elem_type());
      if (tp.tensor_type().has_shape()) info.shape = shape_of(tp.tensor_type().shape());
      break;
    case onnx::TypeProto::kSparseTensorType:
      info.kind = ValueKind::kSparseTensor;
      info.dtype = dtype_of(tp.sparse_tensor_type().elem_type());
      if (tp.sparse_tensor_type().has_shape()) info.shape = shape_of(tp.sparse_tensor_type().shape());
      break;
    case onnx::TypeProto::kSequenceType: {
      TypeInfo elem = TypeFromProto(tp.sequence_type().elem_type());
      info = elem;
      info.kind = ValueKind::kSequence;
      info.elem_kind = elem.kind;
      break;
    }
    case onnx::TypeProto::kOptionalType: {
      TypeInfo elem = TypeFromProto(tp.optional_type().elem_type());
      info = elem;
      info.kind = ValueKind::kOptional;
      info.elem_kind = elem.kind;
      break;
    }
    case onnx::TypeProto::kMapType:
      info.kind = ValueKind::kMap;
      info.dtype = dtype_of(tp.map_type().key_type());
      break;
    default: break;
  }
  return info;
}

namespace {
void TensorTypeToProto(const TypeInfo& t, onnx::TypeProto_Tensor* tt) {
  if (t.dtype != DataType::kUndefined) tt->set_elem_type(static_cast<int32_t>(t.dtype));
  if (!t.shape.rank_known()) return;
  auto* shape = tt->mutable_shape();
  for (const Dim& d : t.shape.dims()) {
    auto* dim = shape->add_dim();
    if (d.known())
      dim->set_dim_value(d.value());
    else if (d.symbolic())
      dim->set_dim_param(d.symbol());
  }
}
}  // namespace

void TypeToProto(const TypeInfo& t, onnx::TypeProto* tp) {
  tp->Clear();
  TypeInfo elem = t;
  elem.kind = ValueKind::kTensor;
  switch (t.kind) {
    case ValueKind::kTensor: TensorTypeToProto(t, tp->mutable_tensor_type()); break;
    case ValueKind::kSparseTensor: {
      auto* st = tp->mutable_sparse_tensor_type();
      if (t.dtype != DataType::kUndefined) st->set_elem_type(static_cast<int32_t>(t.dtype));
      if (t.shape.rank_known()) {
        onnx::TypeProto_Tensor tmp;
        TensorTypeToProto(t, &tmp);
        *st->mutable_shape() = tmp.shape();
      }
      break;
    }
    case ValueKind::kSequence:
    case ValueKind::kOptional: {
      elem.kind = t.elem_kind == ValueKind::kOptional ? ValueKind::kTensor : t.elem_kind;
      elem.elem_kind = ValueKind::kTensor;
      auto* inner = t.kind == ValueKind::kSequence ? tp->mutable_sequence_type()->mutable_elem_type()
                                                   : tp->mutable_optional_type()->mutable_elem_type();
      TypeToProto(elem, inner);
      break;
    }
    case ValueKind::kMap:
      if (t.dtype != DataType::kUndefined) tp->mutable_map_type()->set_key_type(static_cast<int32_t>(t.dtype));
      break;
  }
}

}  // namespace onnx_internal
}  // namespace kiln
