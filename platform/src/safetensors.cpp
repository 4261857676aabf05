#include "sslab/host/safetensors.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <limits>
#include <set>

#include <nlohmann/json.hpp>

#include "sslab/error.h"
#include "sslab/host/run_folder.h"

namespace sslab {

namespace {

// The reference reader refuses headers above 100 MB.
constexpr uint64_t kMaxHeader = 100'000'000;

struct DtypeInfo {
  const char* name;
  torch::ScalarType type;
  int64_t size;
};

const std::vector<DtypeInfo>& dtypes() {
  static const std::vector<DtypeInfo> all = {
      {"F64", torch::kFloat64, 8}, {"F32", torch::kFloat32, 4}, {"F16", torch::kFloat16, 2},
      {"BF16", torch::kBFloat16, 2}, {"I64", torch::kInt64, 8}, {"I32", torch::kInt32, 4},
      {"I16", torch::kInt16, 2},   {"I8", torch::kInt8, 1},     {"U8", torch::kUInt8, 1},
      {"BOOL", torch::kBool, 1},
  };
  return all;
}

const DtypeInfo& dtype_of(torch::ScalarType t, const std::string& name) {
  for (const auto& d : dtypes())
    if (d.type == t) return d;
  throw UserError(sslab::str("safetensors: tensor '", name, "' has dtype ", t, ", which the format has no name for here"));
}

const DtypeInfo* dtype_named(const std::string& s) {
  for (const auto& d : dtypes())
    if (s == d.name) return &d;
  return nullptr;
}

uint64_t read_u64_le(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

}  // namespace

std::string safetensors_bytes(const NamedTensors& tensors, const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json meta = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata) meta[k] = v;
    header["__metadata__"] = meta;
  }
  std::set<std::string> names;
  std::vector<torch::Tensor> data;
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    SSLAB_CHECK(name != "__metadata__" && !name.empty(), "safetensors: a tensor cannot be named '", name, "'");
    SSLAB_CHECK(names.insert(name).second, "safetensors: two tensors are named '", name, "'");
    SSLAB_CHECK(tensor.defined(), "safetensors: tensor '", name, "' is undefined");
    const DtypeInfo& d = dtype_of(tensor.scalar_type(), name);
    torch::Tensor t = tensor.detach().to(torch::kCPU).contiguous();
    const uint64_t bytes = static_cast<uint64_t>(t.numel()) * static_cast<uint64_t>(d.size);
    nlohmann::ordered_json entry;
    entry["dtype"] = d.name;
    entry["shape"] = t.sizes().vec();
    entry["data_offsets"] = {offset, offset + bytes};
    header[name] = entry;
    offset += bytes;
    data.push_back(t);
  }
  std::string json = header.dump();
  json.append((8 - json.size() % 8) % 8, ' ');
  std::string out;
  out.reserve(8 + json.size() + offset);
  uint64_t n = json.size();
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  out += json;
  for (const auto& t : data) out.append(static_cast<const char*>(t.data_ptr()), t.nbytes());
  return out;
}

void save_safetensors(const std::string& file, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata) {
  write_file_atomic(file, safetensors_bytes(tensors, metadata));
}

SafetensorsContents parse_safetensors(const std::string& bytes, const std::string& name) {
  auto fail = [&](const std::string& why) { return DataError(name, "not a valid safetensors file: " + why); };
  if (bytes.size() < 8) throw fail(sslab::str("it has ", bytes.size(), " bytes, fewer than the 8-byte header length"));
  const uint64_t n = read_u64_le(bytes.data());
  if (n > kMaxHeader) throw fail(sslab::str("the header length ", n, " is above the format's limit of ", kMaxHeader, " bytes"));
  if (n > bytes.size() - 8)
    throw fail(sslab::str("the header length ", n, " runs past the end of the file (", bytes.size(), " bytes): cut short?"));
  const std::string text = bytes.substr(8, static_cast<size_t>(n));
  if (text.empty() || text[0] != '{') throw fail("the header does not start with '{'");
  nlohmann::json header = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded() || !header.is_object()) throw fail("the header is not a JSON object");
  const uint64_t buffer = bytes.size() - 8 - n;
  const char* base = bytes.data() + 8 + n;

  SafetensorsContents out;
  struct Entry {
    std::string name;
    const DtypeInfo* dtype;
    std::vector<int64_t> shape;
    uint64_t begin, end;
  };
  std::vector<Entry> entries;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& key = it.key();
    const nlohmann::json& v = it.value();
    if (key == "__metadata__") {
      if (!v.is_object()) throw fail("__metadata__ is not an object of strings");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string()) throw fail(sslab::str("__metadata__ value '", m.key(), "' is not a string"));
        out.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string where = "tensor '" + key + "'";
    if (!v.is_object()) throw fail(where + " is not an object");
    if (!v.contains("dtype") || !v["dtype"].is_string()) throw fail(where + " has no dtype string");
    Entry e{key, dtype_named(v["dtype"].get<std::string>()), {}, 0, 0};
    if (!e.dtype) throw fail(sslab::str(where, " has dtype '", v["dtype"].get<std::string>(), "', which sslab does not read"));
    if (!v.contains("shape") || !v["shape"].is_array()) throw fail(where + " has no shape array");
    if (v["shape"].size() > 32) throw fail(sslab::str(where, " has ", v["shape"].size(), " dimensions"));
    uint64_t elements = 1;
    bool overflow = false;
    for (const auto& d : v["shape"]) {
      if (!d.is_number_unsigned()) throw fail(where + ": shape entries must be non-negative integers");
      const uint64_t s = d.get<uint64_t>();
      if (s > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) overflow = true;
      else if (s != 0 && elements > std::numeric_limits<uint64_t>::max() / s) overflow = true;
      else elements *= s;
      e.shape.push_back(static_cast<int64_t>(std::min<uint64_t>(s, std::numeric_limits<int64_t>::max())));
    }
    if (!v.contains("data_offsets") || !v["data_offsets"].is_array() || v["data_offsets"].size() != 2 ||
        !v["data_offsets"][0].is_number_unsigned() || !v["data_offsets"][1].is_number_unsigned())
      throw fail(where + " needs data_offsets [begin, end] of non-negative integers");
    e.begin = v["data_offsets"][0].get<uint64_t>();
    e.end = v["data_offsets"][1].get<uint64_t>();
    if (e.end < e.begin) throw fail(sslab::str(where, ": data_offsets end ", e.end, " is before begin ", e.begin));
    if (e.end > buffer)
      throw fail(sslab::str(where, ": data_offsets [", e.begin, ", ", e.end, "] run past the data (", buffer,
                     " bytes after the header): cut short?"));
    const uint64_t size = static_cast<uint64_t>(e.dtype->size);
    if (overflow || (elements != 0 && elements > std::numeric_limits<uint64_t>::max() / size) ||
        elements * size != e.end - e.begin)
      throw fail(sslab::str(where, ": shape ", v["shape"].dump(), " of ", e.dtype->name, " needs ",
                     overflow ? std::string("more than 2^64") : std::to_string(elements * size), " bytes but its offsets hold ",
                     e.end - e.begin));
    entries.push_back(std::move(e));
  }
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t at = 0;
  for (const auto& e : entries) {
    if (e.begin != at)
      throw fail(sslab::str("tensor '", e.name, "' starts at byte ", e.begin, " of the data but the one before ends at ", at,
                     e.begin < at ? " (they overlap)" : " (a hole)"));
    at = e.end;
  }
  if (at != buffer)
    throw fail(sslab::str("the tensors cover ", at, " bytes of data but the file has ", buffer, " after the header"));
  for (const auto& e : entries) {
    torch::Tensor t;
    try {
      t = torch::empty(e.shape, torch::TensorOptions().dtype(e.dtype->type));
    } catch (const c10::Error&) {
      throw fail(sslab::str("tensor '", e.name, "' has a shape LibTorch cannot make"));
    }
    if (e.end > e.begin) std::memcpy(t.data_ptr(), base + e.begin, static_cast<size_t>(e.end - e.begin));
    out.tensors.emplace_back(e.name, std::move(t));
  }
  return out;
}

SafetensorsContents load_safetensors(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw DataError(file, "cannot open it for reading");
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw DataError(file, "read failed");
  return parse_safetensors(bytes, file);
}

bool looks_like_safetensors(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  char head[9];
  if (!in.read(head, 9)) return false;
  in.seekg(0, std::ios::end);
  const auto size = static_cast<uint64_t>(in.tellg());
  const uint64_t n = read_u64_le(head);
  return n <= kMaxHeader && n + 8 <= size && head[8] == '{';
}

}  // namespace sslab
