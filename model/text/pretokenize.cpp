// Pre-tokenizers of tokenizer.json (tokenizers/src/pre_tokenizers): Split with a
// regex (the Qwen/Llama 3 word regexes), ByteLevel, Metaspace and Sequence; and the
// Pattern type shared with the Replace normalizer/decoder, on PCRE2.
#include "model/text/tokenizer_parts.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/json_read.h"

namespace character::model::text {

// ---- Pattern ---------------------------------------------------------------------

namespace {

// Oniguruma's \s is the Unicode White_Space property; PCRE2's UCP \s also takes
// U+180E (white space before Unicode 6.3), which splits Qwen/Llama 3 text
// differently. So \s and \S are spelled out as the property, in or out of classes.
std::string onig_to_pcre2(const std::string& source) {
  std::string out;
  out.reserve(source.size() + 32);
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] != '\\' || i + 1 == source.size()) {
      out += source[i];
      continue;
    }
    const char next = source[++i];
    if (next == 's') {
      out += "\\p{White_Space}";
    } else if (next == 'S') {
      out += "\\P{White_Space}";
    } else {
      out += '\\';
      out += next;
    }
  }
  return out;
}

}  // namespace

Pattern::Pattern(const nlohmann::json& j, const std::string& where) {
  if (j.contains("String")) {
    literal_ = j.at("String").get<std::string>();
    if (literal_.empty()) throw FormatError(where + ": empty \"String\" pattern");
    return;
  }
  if (!j.contains("Regex")) {
    throw FormatError(where + ": pattern " + describe_json(j) + " has neither \"String\" nor \"Regex\"");
  }
  const auto source = j.at("Regex").get<std::string>();
  const std::string translated = onig_to_pcre2(source);
  int error = 0;
  PCRE2_SIZE offset = 0;
  // MATCH_INVALID_UTF: invalid UTF-8 in the input simply never matches instead of
  // failing the whole match (Rust strings cannot hold it, our std::string can).
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(),
                                   PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &error, &offset, nullptr);
  if (!code) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error, message, sizeof(message));
    throw FormatError(where + ": regex \"" + source + "\" does not compile at offset " +
                      std::to_string(offset) + ": " + reinterpret_cast<const char*>(message));
  }
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // falls back to the interpreter on failure
  regex_ = code;
}

Pattern::~Pattern() {
  if (regex_) pcre2_code_free(static_cast<pcre2_code*>(regex_));
}

std::vector<std::pair<size_t, size_t>> Pattern::find_all(std::string_view text) const {
  std::vector<std::pair<size_t, size_t>> matches;
  if (!regex_) {
    for (size_t pos = text.find(literal_); pos != std::string_view::npos;
         pos = text.find(literal_, pos + literal_.size())) {
      matches.emplace_back(pos, pos + literal_.size());
    }
    return matches;
  }
  auto* code = static_cast<pcre2_code*>(regex_);
  // Match data is per call: a Pattern is shared by the threads of encode_batch.
  pcre2_match_data* data = pcre2_match_data_create_from_pattern(code, nullptr);
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t start = 0;
  while (start <= text.size()) {
    const int rc = pcre2_match(code, subject, text.size(), start, 0, data, nullptr);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      // A resource limit (never reached in tests with 1 MB inputs); silently
      // splitting less would give wrong ids, so fail loudly.
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(rc, message, sizeof(message));
      pcre2_match_data_free(data);
      throw FormatError("tokenizer regex failed on a " + std::to_string(text.size()) +
                        "-byte text: " + reinterpret_cast<const char*>(message));
    }
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(data);
    const size_t begin = ovector[0], end = ovector[1];
    if (end == begin) {
      // An empty match splits nothing; step over one character, as Oniguruma's iterator does.
      if (begin >= text.size()) break;
      start = begin + utf8_char_length(text, begin);
      continue;
    }
    matches.emplace_back(begin, end);
    start = end;
  }
  pcre2_match_data_free(data);
  return matches;
}

std::string Pattern::replace_all(std::string_view text, std::string_view content) const {
  std::string out;
  size_t prev = 0;
  for (const auto& [begin, end] : find_all(text)) {
    out.append(text.substr(prev, begin - prev));
    out.append(content);
    prev = end;
  }
  out.append(text.substr(prev));
  return out;
}

namespace {

// ---- Split (NormalizedString::split with a SplitDelimiterBehavior) ------------------

enum class Behavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

Behavior parse_behavior(const std::string& name, const std::string& where) {
  if (name == "Removed") return Behavior::kRemoved;
  if (name == "Isolated") return Behavior::kIsolated;
  if (name == "MergedWithPrevious") return Behavior::kMergedWithPrevious;
  if (name == "MergedWithNext") return Behavior::kMergedWithNext;
  if (name == "Contiguous") return Behavior::kContiguous;
  throw FormatError(where + ": Split behavior \"" + name +
                    "\" is unknown (expected Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous)");
}

struct Span {
  size_t begin, end;
  bool is_match;
};

// Spans covering all of `text`, then combined by `behavior` as tokenizers does.
std::vector<Span> split_spans(std::string_view text, const Pattern& pattern, Behavior behavior, bool invert) {
  std::vector<Span> spans;
  size_t prev = 0;
  for (const auto& [begin, end] : pattern.find_all(text)) {
    if (prev != begin) spans.push_back({prev, begin, invert});
    spans.push_back({begin, end, !invert});
    prev = end;
  }
  if (prev != text.size()) spans.push_back({prev, text.size(), invert});

  std::vector<Span> out;
  bool previous_match = false;
  switch (behavior) {
    case Behavior::kIsolated:
      return spans;
    case Behavior::kRemoved:
      for (const Span& s : spans) {
        if (!s.is_match) out.push_back(s);
      }
      return out;
    case Behavior::kMergedWithPrevious:
      for (const Span& s : spans) {
        if (s.is_match && !previous_match && !out.empty()) {
          out.back().end = s.end;
        } else {
          out.push_back({s.begin, s.end, false});
        }
        previous_match = s.is_match;
      }
      return out;
    case Behavior::kMergedWithNext:
      for (auto it = spans.rbegin(); it != spans.rend(); ++it) {
        if (it->is_match && !previous_match && !out.empty()) {
          out.back().begin = it->begin;
        } else {
          out.push_back({it->begin, it->end, false});
        }
        previous_match = it->is_match;
      }
      return {out.rbegin(), out.rend()};
    case Behavior::kContiguous:
      for (const Span& s : spans) {
        if (s.is_match == previous_match && !out.empty()) {
          out.back().end = s.end;
        } else {
          out.push_back(s);
        }
        previous_match = s.is_match;
      }
      return out;
  }
  return spans;
}

void split_pieces(std::vector<Piece>& pieces, const Pattern& pattern, Behavior behavior, bool invert) {
  std::vector<Piece> out;
  out.reserve(pieces.size() * 4);
  for (Piece& piece : pieces) {
    for (const Span& s : split_spans(piece.text, pattern, behavior, invert)) {
      if (s.end > s.begin) out.push_back({piece.text.substr(s.begin, s.end - s.begin), piece.at_start && s.begin == 0});
    }
  }
  pieces = std::move(out);
}

class SplitPreTokenizer : public PreTokenizer {
 public:
  SplitPreTokenizer(const nlohmann::json& j, const std::string& where)
      : pattern_(j.at("pattern"), where),
        behavior_(parse_behavior(j.at("behavior").get<std::string>(), where)),
        invert_(j.value("invert", false)) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override { split_pieces(pieces, pattern_, behavior_, invert_); }

 private:
  Pattern pattern_;
  Behavior behavior_;
  bool invert_;
};

// GPT-2's word regex, used by ByteLevel when use_regex is true (pre_tokenizers/byte_level.rs).
const char* kGpt2Regex = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

class ByteLevelPreTokenizer : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(const nlohmann::json& j, const std::string& where)
      : add_prefix_space_(j.value("add_prefix_space", true)), use_regex_(j.value("use_regex", true)) {
    if (use_regex_) regex_ = std::make_unique<Pattern>(nlohmann::json{{"Regex", kGpt2Regex}}, where);
  }
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    if (add_prefix_space_) {
      for (Piece& p : pieces) {
        if (p.text.empty() || p.text[0] != ' ') p.text.insert(p.text.begin(), ' ');
      }
    }
    if (use_regex_) split_pieces(pieces, *regex_, Behavior::kIsolated, /*invert=*/false);
    for (Piece& p : pieces) {
      std::string mapped;
      mapped.reserve(p.text.size() * 2);
      for (const char c : p.text) mapped += byte_to_unicode(static_cast<uint8_t>(c));
      p.text = std::move(mapped);
    }
  }

 private:
  bool add_prefix_space_;
  bool use_regex_;
  std::unique_ptr<Pattern> regex_;
};

class MetaspacePreTokenizer : public PreTokenizer {
 public:
  MetaspacePreTokenizer(const nlohmann::json& j, const std::string& where)
      : replacement_(j.value("replacement", std::string("\xE2\x96\x81"))),
        prepend_scheme_(j.value("prepend_scheme", std::string("always"))),
        split_(j.value("split", true)),
        splitter_(nlohmann::json{{"String", replacement_}}, where) {
    if (prepend_scheme_ != "always" && prepend_scheme_ != "first" && prepend_scheme_ != "never") {
      throw FormatError(where + ": Metaspace prepend_scheme \"" + prepend_scheme_ +
                        "\" is unknown (expected always, first, never)");
    }
  }
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    static const Pattern space(nlohmann::json{{"String", " "}}, "Metaspace");
    for (Piece& p : pieces) {
      p.text = space.replace_all(p.text, replacement_);
      const bool starts = p.text.compare(0, replacement_.size(), replacement_) == 0;
      if (!starts && (prepend_scheme_ == "always" || (prepend_scheme_ == "first" && p.at_start))) {
        p.text.insert(0, replacement_);
      }
    }
    if (split_) split_pieces(pieces, splitter_, Behavior::kMergedWithNext, /*invert=*/false);
  }

 private:
  std::string replacement_;
  std::string prepend_scheme_;
  bool split_;
  Pattern splitter_;
};

class SequencePreTokenizer : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> parts) : parts_(std::move(parts)) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    for (const auto& part : parts_) part->pre_tokenize(pieces);
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> parts_;
};

}  // namespace

std::unique_ptr<PreTokenizer> make_pre_tokenizer(const nlohmann::json& j, const std::string& where) {
  const auto type = j.at("type").get<std::string>();
  if (type == "Sequence") {
    std::vector<std::unique_ptr<PreTokenizer>> parts;
    for (const auto& part : j.at("pretokenizers")) parts.push_back(make_pre_tokenizer(part, where));
    return std::make_unique<SequencePreTokenizer>(std::move(parts));
  }
  if (type == "Split") return std::make_unique<SplitPreTokenizer>(j, where);
  if (type == "ByteLevel") return std::make_unique<ByteLevelPreTokenizer>(j, where);
  if (type == "Metaspace") return std::make_unique<MetaspacePreTokenizer>(j, where);
  throw_unsupported(where, "pre_tokenizer", type, "Sequence, Split, ByteLevel, Metaspace");
}

}  // namespace character::model::text
