// safetensors reading and writing against the reference `safetensors` package:
// files it wrote read back byte for byte, files we write are byte-identical to its
// own, and hand-made bad headers are accepted or rejected exactly as it does.
#include "model/io/safetensors.h"

#include <gtest/gtest.h>

#include <cctype>
#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>

#include "base/atomic_file.h"
#include "base/error.h"
#include "tests/test_support.h"

namespace character::model {
namespace {

using nlohmann::json;
using testing::fixture;
using testing::TempDir;

std::vector<std::byte> from_hex(const std::string& hex) {
  std::vector<std::byte> out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
    out.push_back(static_cast<std::byte>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  return out;
}

DType dtype_from_name(const std::string& name) {
  for (DType d : {DType::F32, DType::F16, DType::BF16, DType::I64, DType::I32, DType::U8, DType::BOOL})
    if (dtype_name(d) == name) return d;
  throw std::invalid_argument("unknown dtype " + name);
}

// IEEE half → double (test-side decoder; the reader itself hands out raw bytes).
double half_to_double(uint16_t h) {
  const int sign = h >> 15, exponent = (h >> 10) & 0x1f, mantissa = h & 0x3ff;
  double v = exponent == 0    ? std::ldexp(mantissa, -24)
             : exponent == 31 ? (mantissa ? NAN : INFINITY)
                              : std::ldexp(1024 + mantissa, exponent - 25);
  return sign ? -v : v;
}

double element(const TensorView& v, int64_t i) {
  const std::byte* p = v.data + i * dtype_size(v.dtype);
  auto load = [p](auto value) {
    std::memcpy(&value, p, sizeof(value));
    return value;
  };
  switch (v.dtype) {
    case DType::F32: return load(float{});
    case DType::F16: return half_to_double(load(uint16_t{}));
    case DType::BF16: {
      uint32_t bits = uint32_t{load(uint16_t{})} << 16;
      float f;
      std::memcpy(&f, &bits, 4);
      return f;
    }
    case DType::I64: return static_cast<double>(load(int64_t{}));
    case DType::I32: return load(int32_t{});
    case DType::U8: return load(uint8_t{});
    case DType::BOOL: return load(uint8_t{}) ? 1.0 : 0.0;
  }
  return NAN;
}

json read_json(const std::filesystem::path& path) { return json::parse(read_file(path)); }

// Rebuilds the tensors an oracle JSON describes, in JSON (name) order.
struct OwnedTensors {
  std::vector<std::vector<std::byte>> bytes;
  std::vector<TensorToWrite> tensors;
};
OwnedTensors tensors_from(const json& described) {
  OwnedTensors owned;
  owned.bytes.reserve(described.size());
  for (const auto& [name, t] : described.items()) {
    owned.bytes.push_back(from_hex(t["hex"]));
    owned.tensors.push_back({name, dtype_from_name(t["dtype"]), t["shape"].get<std::vector<int64_t>>(),
                             owned.bytes.back().data(), owned.bytes.back().size()});
  }
  return owned;
}

template <typename Fn>
std::string error_message(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "<no error>";
}

void write_bytes(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A file with `header` as its JSON header and `data_size` zero bytes after it.
std::string with_header(const std::string& header, std::size_t data_size) {
  uint64_t n = header.size();
  std::string out(reinterpret_cast<const char*>(&n), 8);
  return out + header + std::string(data_size, '\0');
}

TEST(Safetensors, ReadsReferenceFileExactly) {
  const json expected = read_json(fixture("safetensors/all_dtypes.json"));
  auto file = SafetensorsFile::open(fixture("safetensors/all_dtypes.safetensors"));
  EXPECT_EQ(file->metadata(), (expected["metadata"].get<std::map<std::string, std::string>>()));

  std::vector<std::string> expected_names;
  for (const auto& [name, t] : expected["tensors"].items()) expected_names.push_back(name);
  EXPECT_EQ(file->names(), expected_names);

  int checked_values = 0;
  for (const auto& [name, t] : expected["tensors"].items()) {
    SCOPED_TRACE(name);
    TensorView v = file->view(name);
    EXPECT_EQ(dtype_name(v.dtype), t["dtype"].get<std::string>());
    EXPECT_EQ(v.shape, t["shape"].get<std::vector<int64_t>>());
    const auto want = from_hex(t["hex"]);
    ASSERT_EQ(v.nbytes, want.size());
    EXPECT_TRUE(std::equal(want.begin(), want.end(), v.data));
    const auto& values = t["values"];
    ASSERT_EQ(v.numel(), static_cast<int64_t>(values.size()));
    for (int64_t i = 0; i < v.numel(); ++i, ++checked_values)
      EXPECT_EQ(element(v, i), values[i].get<double>()) << "element " << i;
  }
  EXPECT_GE(checked_values, 30);
}

TEST(Safetensors, WriterIsByteIdenticalToReferenceWriter) {
  TempDir tmp;
  for (std::string stem : {"all_dtypes", "no_metadata"}) {
    SCOPED_TRACE(stem);
    const json expected = read_json(fixture("safetensors/" + stem + ".json"));
    OwnedTensors owned = tensors_from(expected["tensors"]);
    std::reverse(owned.tensors.begin(), owned.tensors.end());  // input order must not matter
    write_safetensors(tmp / (stem + ".safetensors"), owned.tensors,
                      expected["metadata"].get<std::map<std::string, std::string>>());
    const std::string ours = read_file(tmp / (stem + ".safetensors"));
    const std::string reference = read_file(fixture("safetensors/" + stem + ".safetensors"));
    EXPECT_EQ(ours.size(), reference.size());
    EXPECT_TRUE(ours == reference) << "ours:\n" << ours.substr(0, 200) << "\nreference:\n" << reference.substr(0, 200);
  }
}

TEST(Safetensors, RoundTripsOwnFileWithMetadata) {
  TempDir tmp;
  std::vector<float> a(24);
  std::iota(a.begin(), a.end(), -3.5f);
  std::vector<int64_t> b = {1, -2, 3};
  write_safetensors(tmp / "x.safetensors",
                    {{"a", DType::F32, {2, 3, 4}, a.data(), a.size() * 4}, {"b", DType::I64, {3}, b.data(), 24}},
                    {{"format", "pt"}, {"step", "12"}});
  auto file = SafetensorsFile::open(tmp / "x.safetensors");
  EXPECT_EQ(file->metadata(), (std::map<std::string, std::string>{{"format", "pt"}, {"step", "12"}}));
  TensorView va = file->view("a");
  EXPECT_EQ(va.shape, (std::vector<int64_t>{2, 3, 4}));
  EXPECT_EQ(std::memcmp(va.data, a.data(), 96), 0);
  EXPECT_EQ(std::memcmp(file->view("b").data, b.data(), 24), 0);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(va.data) % 8, 0u);  // data region is 8-byte aligned
}

TEST(Safetensors, WriterRejectsInconsistentTensor) {
  TempDir tmp;
  float x[3] = {};
  const auto msg = error_message([&] { write_safetensors(tmp / "x.safetensors", {{"w", DType::F32, {4}, x, 12}}); });
  EXPECT_NE(msg.find("'w' has 12 bytes, expected 16"), std::string::npos) << msg;
  EXPECT_FALSE(std::filesystem::exists(tmp / "x.safetensors"));
}

TEST(Safetensors, AcceptsAndRejectsExactlyAsReferenceReader) {
  const json verdicts = read_json(fixture("safetensors/verdicts.json"));
  ASSERT_GE(verdicts.size(), 30u);
  for (const auto& [name, verdict] : verdicts.items()) {
    SCOPED_TRACE(name + ": reference says " + verdict.dump());
    const auto path = fixture("safetensors/verdicts/" + name + ".bin");
    if (verdict["accepted"].get<bool>()) {
      EXPECT_NO_THROW(SafetensorsFile::open(path));
    } else {
      try {
        SafetensorsFile::open(path);
        ADD_FAILURE() << "accepted a file the reference rejects";
      } catch (const FormatError& e) {
        EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos) << e.what();
      }
    }
  }
}

TEST(Safetensors, ErrorsNameFileTensorAndProblem) {
  TempDir tmp;
  const auto f32 = [](const std::string& shape, const std::string& offsets) {
    return R"({"dtype":"F32","shape":)" + shape + R"(,"data_offsets":)" + offsets + "}";
  };
  struct Case {
    std::string name, bytes;
    std::vector<std::string> must_mention;
  };
  const std::vector<Case> cases = {
      {"truncated", std::string("\x10\0\0", 3), {"3 bytes", "8-byte header length"}},
      {"lying_header", with_header("{}", 0).replace(0, 1, "\x40"), {"says 64 bytes", "only 2 bytes follow"}},
      {"absurd_header", std::string("\0\0\0\0\1\0\0\0", 8) + "{}", {"header length field", "at most 100000000"}},
      {"outside", with_header(R"({"w":)" + f32("[2]", "[0,8]") + "}", 4), {"'w'", "end at byte 8", "4 bytes"}},
      {"overlap",
       with_header(R"({"a":)" + f32("[2]", "[0,8]") + R"(,"b":)" + f32("[2]", "[4,12]") + "}", 12),
       {"'b'", "overlaps tensor 'a'"}},
      {"gap", with_header(R"({"a":)" + f32("[1]", "[0,4]") + R"(,"b":)" + f32("[1]", "[8,12]") + "}", 12),
       {"'b' begins at byte 8", "no gap"}},
      {"mismatch", with_header(R"({"w":)" + f32("[3]", "[0,8]") + "}", 8),
       {"'w'", "span 8 bytes", "expected 12 bytes for F32 shape [3]"}},
      {"bad_json", with_header("{\"w\": [", 0), {"not valid JSON"}},
      {"negative", with_header(R"({"w":)" + f32("[-2]", "[0,8]") + "}", 8), {"'w'", "dimension -2"}},
      {"dtype", with_header(R"({"w":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}})", 8), {"'w'", "\"F64\""}},
      {"duplicate", with_header(R"({"w":)" + f32("[1]", "[0,4]") + R"(,"w":)" + f32("[1]", "[0,4]") + "}", 4),
       {"'w' twice"}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const auto path = tmp / (c.name + ".safetensors");
    write_bytes(path, c.bytes);
    std::string msg;
    try {
      SafetensorsFile::open(path);
    } catch (const FormatError& e) {
      msg = e.what();
    }
    EXPECT_NE(msg.find(path.string()), std::string::npos) << msg;
    for (const auto& word : c.must_mention) EXPECT_NE(msg.find(word), std::string::npos) << msg;
  }
}

TEST(Safetensors, MissingTensorIsCheckpointErrorNamingFileAndTensor) {
  auto file = SafetensorsFile::open(fixture("safetensors/no_metadata.safetensors"));
  EXPECT_FALSE(file->contains("c"));
  const auto msg = error_message([&] { file->view("c"); });
  EXPECT_NE(msg.find("no_metadata.safetensors: no tensor named 'c'"), std::string::npos) << msg;
  EXPECT_THROW(file->view("c"), CheckpointError);
}

// Random corruption of a valid file must give a FormatError or a file whose views
// all lie inside it; never a crash (run under ASan to make "inside" strict).
TEST(Safetensors, CorruptedFilesNeverCrash) {
  TempDir tmp;
  std::vector<float> a(10, 1.5f);
  std::vector<int32_t> b(3, 7);
  write_safetensors(tmp / "valid.safetensors",
                    {{"alpha", DType::F32, {2, 5}, a.data(), 40}, {"beta", DType::I32, {3}, b.data(), 12}},
                    {{"format", "pt"}, {"step", "12"}});
  const std::string valid = read_file(tmp / "valid.safetensors");
  uint64_t header_size = 0;
  std::memcpy(&header_size, valid.data(), 8);
  const std::size_t header_end = 8 + header_size;
  std::mt19937 rng(1234);
  int accepted = 0, rejected = 0;
  for (int iteration = 0; iteration < 400; ++iteration) {
    std::string bytes = valid;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      switch (rng() % 4) {
        case 0: bytes[rng() % bytes.size()] = static_cast<char>(rng()); break;          // flip a byte
        case 1: bytes.resize(rng() % bytes.size()); break;                              // truncate
        case 2: bytes[rng() % std::min<std::size_t>(bytes.size(), 16)] ^= 0x7f; break;  // length field
        case 3: {  // change a digit of the header: still JSON, now lying about shapes or offsets
          std::vector<std::size_t> digits;
          for (std::size_t i = 8; i < std::min<std::size_t>(bytes.size(), header_end); ++i)
            if (std::isdigit(static_cast<unsigned char>(bytes[i]))) digits.push_back(i);
          if (!digits.empty()) bytes[digits[rng() % digits.size()]] = static_cast<char>('0' + rng() % 10);
          break;
        }
      }
      if (bytes.empty()) break;
    }
    const auto path = tmp / "corrupt.safetensors";
    write_bytes(path, bytes);
    try {
      auto file = SafetensorsFile::open(path);
      std::size_t total = 0;
      for (const auto& name : file->names()) {
        TensorView v = file->view(name);
        for (std::size_t i = 0; i < v.nbytes; ++i) total += static_cast<unsigned char>(v.data[i]);
        ASSERT_LE(v.nbytes, bytes.size());
      }
      ++accepted;
    } catch (const FormatError&) {
      ++rejected;
    }
  }
  RecordProperty("accepted", accepted);
  EXPECT_GT(rejected, 100);
  EXPECT_GT(accepted, 5);  // some edits (digit swapped for itself, a metadata digit) stay valid
  EXPECT_EQ(accepted + rejected, 400);
}

}  // namespace
}  // namespace character::model
