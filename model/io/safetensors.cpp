// One .safetensors file: mmap, header validation that matches the reference Rust
// reader (safetensors 0.8 `Metadata::validate`: tensors tile the data region from
// byte 0 with no gap, no overlap and nothing left over), and the writer that
// reproduces the reference byte layout. The model-directory set is in
// safetensors_set.cpp.
#include "model/io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

#include "base/atomic_file.h"
#include "base/error.h"
#include "base/json_read.h"

namespace character::model {

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian; views hand out raw bytes");

namespace {

using nlohmann::json;

// The reference rejects headers above this size (safetensors MAX_HEADER_SIZE).
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

struct DTypeInfo {
  DType dtype;
  std::string_view name;
  std::size_t size;
  int write_rank;  // the reference writer orders tensors by dtype, largest rank first
};

// write_rank follows the declaration order of the Rust `Dtype` enum, which the
// reference writer sorts by (descending) before the tensor name.
constexpr DTypeInfo kDTypes[] = {
    {DType::F32, "F32", 4, 5},  {DType::F16, "F16", 2, 2}, {DType::BF16, "BF16", 2, 3},
    {DType::I64, "I64", 8, 6},  {DType::I32, "I32", 4, 4}, {DType::U8, "U8", 1, 1},
    {DType::BOOL, "BOOL", 1, 0},
};

const DTypeInfo& info(DType dtype) {
  for (const auto& i : kDTypes)
    if (i.dtype == dtype) return i;
  throw std::logic_error("unknown DType enumerator");
}

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// numel × element size, or nullopt on overflow (shapes come from untrusted headers).
std::optional<uint64_t> byte_length(const std::vector<int64_t>& shape, std::size_t element_size) {
  uint64_t n = 1;
  for (int64_t d : shape)
    if (d < 0 || __builtin_mul_overflow(n, static_cast<uint64_t>(d), &n)) return std::nullopt;
  if (__builtin_mul_overflow(n, static_cast<uint64_t>(element_size), &n)) return std::nullopt;
  return n;
}

// Parses the header text; a duplicate top-level key is an error (the reference keeps
// the last one silently, which hides a broken writer).
json parse_header(std::string_view text, const std::string& where) {
  check_json(text, where + ": header");  // valid, no NUL byte, not nested too deep
  std::set<std::string> top_level_keys;
  auto on_event = [&](int depth, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::key && depth == 1 && !top_level_keys.insert(parsed.get<std::string>()).second)
      throw FormatError(where + ": header lists tensor '" + parsed.get<std::string>() + "' twice");
    return true;
  };
  try {
    return json::parse(text.begin(), text.end(), on_event);
  } catch (const json::exception& e) {
    throw FormatError(where + ": header is not valid JSON (" + e.what() + ")");
  }
}

DType parse_dtype(const json& v, const std::string& where) {
  if (v.is_string()) {
    const auto& s = v.get_ref<const std::string&>();
    for (const auto& i : kDTypes)
      if (i.name == s) return i.dtype;
  }
  throw FormatError(where + ": dtype " + describe_json(v) + " is not supported, expected one of F32, F16, BF16, I64, I32, U8, BOOL");
}

SafetensorsFile::Entry parse_entry(const json& t, const std::string& where) {
  if (!t.is_object()) throw FormatError(where + ": entry is " + describe_json(t) + ", expected an object");
  for (const char* key : {"dtype", "shape", "data_offsets"})
    if (!t.contains(key)) throw FormatError(where + ": missing field " + key);
  SafetensorsFile::Entry e;
  e.dtype = parse_dtype(t["dtype"], where);
  const json& shape = t["shape"];
  if (!shape.is_array()) throw FormatError(where + ": shape " + describe_json(shape) + ", expected a list of integers");
  for (const json& d : shape) {
    if (!d.is_number_integer() || d.get<int64_t>() < 0 || (d.is_number_unsigned() && d.get<uint64_t>() > INT64_MAX))
      throw FormatError(where + ": shape " + describe_json(shape) + " has dimension " + describe_json(d) +
                        ", expected non-negative integers");
    e.shape.push_back(d.get<int64_t>());
  }
  const json& offsets = t["data_offsets"];
  if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() || !offsets[1].is_number_unsigned())
    throw FormatError(where + ": data_offsets " + describe_json(offsets) + ", expected [begin, end] with non-negative integers");
  e.begin = offsets[0].get<uint64_t>();
  e.end = offsets[1].get<uint64_t>();
  if (e.begin > e.end)
    throw FormatError(where + ": data_offsets " + describe_json(offsets) + " begin after end, expected begin <= end");
  auto need = byte_length(e.shape, dtype_size(e.dtype));
  if (!need || *need != e.end - e.begin)
    throw FormatError(where + ": data_offsets " + describe_json(offsets) + " span " + std::to_string(e.end - e.begin) +
                      " bytes, expected " + (need ? std::to_string(*need) : std::string("an overflowing number of")) +
                      " bytes for " + std::string(dtype_name(e.dtype)) + " shape " + shape_string(e.shape));
  return e;
}

// The reference reader requires the tensors to tile the data region exactly:
// sorted by offsets, each begins where the previous ended, the last ends at the end.
void check_layout(const std::map<std::string, SafetensorsFile::Entry>& entries, uint64_t data_size,
                  const std::string& file) {
  std::vector<std::pair<const std::string*, const SafetensorsFile::Entry*>> order;
  for (const auto& [name, e] : entries) {
    if (e.end > data_size)
      throw FormatError(file + ": tensor '" + name + "': data_offsets end at byte " + std::to_string(e.end) +
                        ", beyond the data region of " + std::to_string(data_size) + " bytes");
    order.emplace_back(&name, &e);
  }
  std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
    return std::pair(a.second->begin, a.second->end) < std::pair(b.second->begin, b.second->end);
  });
  uint64_t covered = 0;
  const std::string* previous = nullptr;
  for (const auto& [name, e] : order) {
    if (e->begin < covered)
      throw FormatError(file + ": tensor '" + *name + "' (bytes " + std::to_string(e->begin) + ".." +
                        std::to_string(e->end) + ") overlaps tensor '" + *previous + "' (which ends at byte " +
                        std::to_string(covered) + "), expected non-overlapping tensors");
    if (e->begin > covered)
      throw FormatError(file + ": tensor '" + *name + "' begins at byte " + std::to_string(e->begin) +
                        " but the previous tensor ends at byte " + std::to_string(covered) +
                        ", expected no gap between tensors");
    covered = e->end;
    previous = name;
  }
  if (covered != data_size)
    throw FormatError(file + ": data region has " + std::to_string(data_size) + " bytes but the tensors cover " +
                      std::to_string(covered) + ", expected the tensors to cover it exactly");
}

}  // namespace

std::string_view dtype_name(DType dtype) { return info(dtype).name; }
std::size_t dtype_size(DType dtype) { return info(dtype).size; }

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::shared_ptr<SafetensorsFile> SafetensorsFile::open(const std::filesystem::path& path) {
  std::shared_ptr<SafetensorsFile> file(new SafetensorsFile());
  file->path_ = path;
  const std::string where = path.string();

  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw IoError(where + ": cannot open (" + std::strerror(errno) + ")");
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    throw IoError(where + ": cannot stat (" + std::strerror(err) + ")");
  }
  const auto size = static_cast<uint64_t>(st.st_size);
  if (size < 8) {
    ::close(fd);
    throw FormatError(where + ": file is " + std::to_string(size) +
                      " bytes, expected at least the 8-byte header length of a safetensors file");
  }
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  int err = errno;
  ::close(fd);  // the mapping keeps the file alive
  if (map == MAP_FAILED) throw IoError(where + ": cannot mmap (" + std::strerror(err) + ")");
  file->mapping_ = map;
  file->mapping_size_ = size;
  const auto* bytes = static_cast<const std::byte*>(map);

  uint64_t header_size = 0;
  std::memcpy(&header_size, bytes, 8);  // u64 little-endian
  if (header_size > kMaxHeaderBytes)
    throw FormatError(where + ": header length field says " + std::to_string(header_size) +
                      " bytes, expected at most " + std::to_string(kMaxHeaderBytes));
  if (header_size > size - 8)
    throw FormatError(where + ": header length field says " + std::to_string(header_size) + " bytes but only " +
                      std::to_string(size - 8) + " bytes follow it (truncated file or not a safetensors file)");

  const json header = parse_header({reinterpret_cast<const char*>(bytes + 8), header_size}, where);
  if (!header.is_object()) throw FormatError(where + ": header is a JSON " + header.type_name() + ", expected an object");
  for (const auto& [name, value] : header.items()) {
    if (name == "__metadata__") {
      if (value.is_null()) continue;
      if (!value.is_object())
        throw FormatError(where + ": __metadata__ is " + describe_json(value) + ", expected an object of strings");
      for (const auto& [k, v] : value.items()) {
        if (!v.is_string())
          throw FormatError(where + ": __metadata__ field '" + k + "' is " + describe_json(v) + ", expected a string");
        file->metadata_[k] = v.get<std::string>();
      }
      continue;
    }
    file->entries_.emplace(name, parse_entry(value, where + ": tensor '" + name + "'"));
  }
  file->data_region_ = bytes + 8 + header_size;
  check_layout(file->entries_, size - 8 - header_size, where);
  return file;
}

SafetensorsFile::~SafetensorsFile() {
  if (mapping_) ::munmap(mapping_, mapping_size_);
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  out.reserve(entries_.size());
  for (const auto& [name, e] : entries_) out.push_back(name);
  return out;
}

bool SafetensorsFile::contains(const std::string& name) const { return entries_.count(name) > 0; }

TensorView SafetensorsFile::view(const std::string& name) const {
  auto it = entries_.find(name);
  if (it == entries_.end())
    throw CheckpointError(path_.string() + ": no tensor named '" + name + "' (the file has " +
                          std::to_string(entries_.size()) + " tensors)");
  const Entry& e = it->second;
  return TensorView{name, e.dtype, e.shape, data_region_ + e.begin, e.end - e.begin};
}

void write_safetensors(const std::filesystem::path& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  const std::string where = path.string();
  std::vector<const TensorToWrite*> order;
  std::set<std::string> seen;
  for (const auto& t : tensors) {
    if (t.name.empty() || t.name == "__metadata__")
      throw ConfigError(where + ": tensor name '" + t.name + "' is reserved or empty");
    if (!seen.insert(t.name).second) throw ConfigError(where + ": tensor '" + t.name + "' given twice");
    auto need = byte_length(t.shape, dtype_size(t.dtype));
    if (!need || *need != t.nbytes)
      throw ConfigError(where + ": tensor '" + t.name + "' has " + std::to_string(t.nbytes) + " bytes, expected " +
                        (need ? std::to_string(*need) : std::string("a valid shape")) + " for " +
                        std::string(dtype_name(t.dtype)) + " shape " + shape_string(t.shape));
    order.push_back(&t);
  }
  // The reference writer's order: larger-alignment dtypes first, then by name.
  std::sort(order.begin(), order.end(), [](const TensorToWrite* a, const TensorToWrite* b) {
    int ra = info(a->dtype).write_rank, rb = info(b->dtype).write_rank;
    return ra != rb ? ra > rb : a->name < b->name;
  });

  // ordered_json keeps the reference key order: __metadata__, then tensors in data
  // order, each as {"dtype", "shape", "data_offsets"}.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const TensorToWrite* t : order) {
    nlohmann::ordered_json entry;
    entry["dtype"] = dtype_name(t->dtype);
    entry["shape"] = t->shape;
    entry["data_offsets"] = {offset, offset + t->nbytes};
    header[t->name] = std::move(entry);
    offset += t->nbytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // the data region starts 8-byte aligned
  const uint64_t header_size = text.size();

  write_file_atomic_streamed(path, [&](const ByteSink& sink) {
    sink(&header_size, 8);
    sink(text.data(), text.size());
    for (const TensorToWrite* t : order)
      if (t->nbytes) sink(t->data, t->nbytes);
  });
}

}  // namespace character::model
