// Normalizers of tokenizer.json (tokenizers/src/normalizers): Unicode forms
// (NFC for Qwen3; NFD/NFKC/NFKD alike) through ICU, Prepend and Replace
// (Llama 2's "▁" handling) and Sequence.
#include "model/text/tokenizer_parts.h"

#include <unicode/normalizer2.h>
#include <unicode/unistr.h>

#include <nlohmann/json.hpp>

#include "base/error.h"

namespace character::model::text {
namespace {

bool is_ascii(std::string_view s) {
  for (const char c : s) {
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  }
  return true;
}

class UnicodeNormalizer : public Normalizer {
 public:
  UnicodeNormalizer(const std::string& form, const std::string& where) {
    UErrorCode status = U_ZERO_ERROR;
    if (form == "NFC") normalizer_ = icu::Normalizer2::getNFCInstance(status);
    if (form == "NFD") normalizer_ = icu::Normalizer2::getNFDInstance(status);
    if (form == "NFKC") normalizer_ = icu::Normalizer2::getNFKCInstance(status);
    if (form == "NFKD") normalizer_ = icu::Normalizer2::getNFKDInstance(status);
    if (U_FAILURE(status) || !normalizer_) {
      throw FormatError(where + ": ICU cannot provide the " + form + " normalizer: " + u_errorName(status));
    }
  }
  void normalize(std::string& text) const override {
    if (is_ascii(text)) return;  // ASCII is invariant under every normalization form
    UErrorCode status = U_ZERO_ERROR;
    const auto source = icu::UnicodeString::fromUTF8(text);
    if (normalizer_->isNormalized(source, status) && U_SUCCESS(status)) return;
    status = U_ZERO_ERROR;
    const icu::UnicodeString result = normalizer_->normalize(source, status);
    if (U_FAILURE(status)) return;  // cannot fail on valid input; keep the text as is
    text.clear();
    result.toUTF8String(text);
  }

 private:
  const icu::Normalizer2* normalizer_ = nullptr;
};

class PrependNormalizer : public Normalizer {
 public:
  explicit PrependNormalizer(std::string prepend) : prepend_(std::move(prepend)) {}
  void normalize(std::string& text) const override {
    if (!text.empty()) text.insert(0, prepend_);
  }

 private:
  std::string prepend_;
};

class ReplaceNormalizer : public Normalizer {
 public:
  ReplaceNormalizer(const nlohmann::json& j, const std::string& where)
      : pattern_(j.at("pattern"), where), content_(j.at("content").get<std::string>()) {}
  void normalize(std::string& text) const override { text = pattern_.replace_all(text, content_); }

 private:
  Pattern pattern_;
  std::string content_;
};

class SequenceNormalizer : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> parts) : parts_(std::move(parts)) {}
  void normalize(std::string& text) const override {
    for (const auto& part : parts_) part->normalize(text);
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> parts_;
};

}  // namespace

void throw_unsupported(const std::string& where, const std::string& section, const std::string& type,
                       const std::string& supported) {
  throw FormatError(where + ": " + section + " type \"" + type + "\" is not supported (supported: " + supported + ")");
}

std::unique_ptr<Normalizer> make_normalizer(const nlohmann::json& j, const std::string& where) {
  const auto type = j.at("type").get<std::string>();
  if (type == "Sequence") {
    std::vector<std::unique_ptr<Normalizer>> parts;
    for (const auto& part : j.at("normalizers")) parts.push_back(make_normalizer(part, where));
    return std::make_unique<SequenceNormalizer>(std::move(parts));
  }
  if (type == "NFC" || type == "NFD" || type == "NFKC" || type == "NFKD") {
    return std::make_unique<UnicodeNormalizer>(type, where);
  }
  if (type == "Prepend") return std::make_unique<PrependNormalizer>(j.at("prepend").get<std::string>());
  if (type == "Replace") return std::make_unique<ReplaceNormalizer>(j, where);
  throw_unsupported(where, "normalizer", type, "Sequence, NFC, NFD, NFKC, NFKD, Prepend, Replace");
}

}  // namespace character::model::text
