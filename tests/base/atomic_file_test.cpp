#include "base/atomic_file.h"

#include <gtest/gtest.h>

#include <fstream>

#include "base/error.h"
#include "tests/test_support.h"

namespace character {
namespace {

using testing::TempDir;

TEST(AtomicFile, WritesContentAndLeavesNoTempFiles) {
  TempDir dir;
  const auto path = dir / "sub" / "out.json";
  write_file_atomic(path, "{\"a\": 1}");
  EXPECT_EQ(read_file(path), "{\"a\": 1}");
  int entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(path.parent_path())) {
    (void)e;
    ++entries;
  }
  EXPECT_EQ(entries, 1);
}

TEST(AtomicFile, FailedStreamedWriteKeepsOldContent) {
  TempDir dir;
  const auto path = dir / "out.bin";
  write_file_atomic(path, "old");
  EXPECT_THROW(write_file_atomic_streamed(path,
                                          [](const ByteSink& sink) {
                                            sink("new", 3);
                                            throw IoError("writer gave up");
                                          }),
               IoError);
  EXPECT_EQ(read_file(path), "old");
  int entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
    (void)e;
    ++entries;
  }
  EXPECT_EQ(entries, 1) << "the temp file must be removed";
}

TEST(AtomicFile, ReadMissingFileNamesIt) {
  TempDir dir;
  try {
    read_file(dir / "nope.txt");
    FAIL() << "expected IoError";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("nope.txt"), std::string::npos);
  }
}

TEST(Jsonl, TornFinalLineIsIgnored) {
  TempDir dir;
  const auto path = dir / "rows.jsonl";
  append_jsonl_line(path, R"({"i": 1})");
  append_jsonl_line(path, R"({"i": 2})");
  {
    std::ofstream out(path, std::ios::app);
    out << R"({"i": 3, "tor)";  // a writer killed mid-line
  }
  const auto lines = read_jsonl_lines(path);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[1], R"({"i": 2})");
}

TEST(Jsonl, RejectsEmbeddedNewline) {
  TempDir dir;
  EXPECT_THROW(append_jsonl_line(dir / "x.jsonl", "a\nb"), FormatError);
}

}  // namespace
}  // namespace character
