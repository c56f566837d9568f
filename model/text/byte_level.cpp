// UTF-8 helpers and GPT-2's byte-to-unicode table, used by the ByteLevel
// pre-tokenizer and decoder. Hand-written because the exact Rust semantics matter:
// ICU's converters count replacement characters differently from
// String::from_utf8_lossy, and HF's decode output must match byte for byte.
#include "model/text/tokenizer_parts.h"

#include <array>

namespace character::model::text {
namespace {

// Length of the valid UTF-8 sequence starting at `pos`, or -(bytes consumed by the
// error) when invalid: the "maximal subpart" rule that Rust's Utf8Chunks follows.
int utf8_sequence(std::string_view s, size_t pos) {
  const auto b = [&](size_t i) { return static_cast<uint8_t>(s[i]); };
  const uint8_t lead = b(pos);
  if (lead < 0x80) return 1;
  int width = 0;
  uint8_t lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (lead >= 0xC2 && lead <= 0xDF) {
    width = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    width = 3;
    if (lead == 0xE0) lo = 0xA0;
    if (lead == 0xED) hi = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    width = 4;
    if (lead == 0xF0) lo = 0x90;
    if (lead == 0xF4) hi = 0x8F;
  } else {
    return -1;
  }
  for (int k = 1; k < width; ++k) {
    if (pos + k >= s.size()) return -k;  // truncated: one error for the valid prefix
    const uint8_t c = b(pos + k);
    const bool ok = k == 1 ? (c >= lo && c <= hi) : (c >= 0x80 && c <= 0xBF);
    if (!ok) return -k;
  }
  return width;
}

struct ByteTables {
  std::array<std::string, 256> to_unicode;
  std::array<int, 512> to_byte;  // every code point of the table is < 512
  ByteTables() {
    to_byte.fill(-1);
    int extra = 0;
    for (int byte = 0; byte < 256; ++byte) {
      const bool printable = (byte >= '!' && byte <= '~') || (byte >= 0xA1 && byte <= 0xAC) ||
                             (byte >= 0xAE && byte <= 0xFF);
      const char32_t cp = printable ? static_cast<char32_t>(byte) : static_cast<char32_t>(256 + extra++);
      append_utf8(to_unicode[byte], cp);
      to_byte[cp] = byte;
    }
  }
};

const ByteTables& tables() {
  static const ByteTables t;
  return t;
}

}  // namespace

std::string utf8_lossy(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  size_t pos = 0;
  while (pos < bytes.size()) {
    const int n = utf8_sequence(bytes, pos);
    if (n > 0) {
      out.append(bytes.substr(pos, n));
      pos += n;
    } else {
      out += "\xEF\xBF\xBD";
      pos += -n;
    }
  }
  return out;
}

char32_t next_code_point(std::string_view text, size_t& pos) {
  const int n = utf8_sequence(text, pos);
  if (n <= 0) {
    pos += 1;
    return 0xFFFD;
  }
  const auto b = [&](int k) { return static_cast<char32_t>(static_cast<uint8_t>(text[pos + k])); };
  char32_t cp = 0;
  switch (n) {
    case 1: cp = b(0); break;
    case 2: cp = ((b(0) & 0x1F) << 6) | (b(1) & 0x3F); break;
    case 3: cp = ((b(0) & 0x0F) << 12) | ((b(1) & 0x3F) << 6) | (b(2) & 0x3F); break;
    default: cp = ((b(0) & 0x07) << 18) | ((b(1) & 0x3F) << 12) | ((b(2) & 0x3F) << 6) | (b(3) & 0x3F);
  }
  pos += n;
  return cp;
}

size_t utf8_char_length(std::string_view text, size_t pos) {
  const int n = utf8_sequence(text, pos);
  return n > 0 ? static_cast<size_t>(n) : 1;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

const std::string& byte_to_unicode(uint8_t byte) { return tables().to_unicode[byte]; }

int unicode_to_byte(char32_t cp) { return cp < 512 ? tables().to_byte[cp] : -1; }

}  // namespace character::model::text
