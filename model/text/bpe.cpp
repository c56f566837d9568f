// The BPE model of tokenizers (models/bpe/{model,word}.rs): a word is split into
// characters (with byte fallback or <unk> for unknown ones), then pairs are merged
// lowest rank first, leftmost on ties, with a priority queue over a linked list of
// symbols: O(n log n) per word. No dropout (inference only).
#include "model/text/tokenizer_parts.h"

#include <algorithm>
#include <queue>

#include "base/error.h"

namespace character::model::text {
namespace {

struct Symbol {
  TokenId id;
  int prev;
  int next;
  size_t len;  // bytes of the word covered; 0 once merged into its left neighbour
};

struct QueuedMerge {
  int pos;
  uint32_t rank;
  TokenId new_id;
  // std::priority_queue pops the largest: "larger" = lower rank, then lower position.
  bool operator<(const QueuedMerge& other) const {
    if (rank != other.rank) return rank > other.rank;
    return pos > other.pos;
  }
};

void add_symbol(std::vector<Symbol>& word, TokenId id, size_t byte_len) {
  const int n = static_cast<int>(word.size());
  if (n > 0) word.back().next = n;
  word.push_back(Symbol{id, n - 1, -1, byte_len});
}

}  // namespace

BpeModel::BpeModel(std::vector<std::pair<std::string, TokenId>> vocab,
                   const std::vector<std::pair<std::string, std::string>>& merges, BpeOptions options,
                   const std::string& where)
    : options_(std::move(options)) {
  vocab_.reserve(vocab.size());
  TokenId max_id = -1;
  for (auto& [token, id] : vocab) {
    if (id < 0) throw FormatError(where + ": model.vocab[\"" + token + "\"] = " + std::to_string(id) + ", expected ≥ 0");
    max_id = std::max(max_id, id);
    vocab_.emplace(std::move(token), id);
  }
  vocab_r_.assign(static_cast<size_t>(max_id + 1), nullptr);
  for (const auto& [token, id] : vocab_) vocab_r_[id] = &token;

  const size_t prefix_len = options_.continuing_subword_prefix.size();
  merges_.reserve(merges.size());
  std::string merged;
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [left, right] = merges[rank];
    const auto a = token_to_id(left);
    const auto b = token_to_id(right);
    if (!a || !b) {
      throw FormatError(where + ": model.merges[" + std::to_string(rank) + "] uses token \"" +
                        (a ? right : left) + "\", which is not in model.vocab");
    }
    merged.assign(left);
    merged.append(right, std::min(prefix_len, right.size()));
    const auto new_id = token_to_id(merged);
    if (!new_id) {
      throw FormatError(where + ": model.merges[" + std::to_string(rank) + "] produces \"" + merged +
                        "\", which is not in model.vocab");
    }
    // Later duplicates win, as when tokenizers collects the merges into a HashMap.
    merges_[pair_key(*a, *b)] = Merge{static_cast<uint32_t>(rank), *new_id};
  }
  if (options_.unk_token) {
    unk_id_ = token_to_id(*options_.unk_token);
    if (!unk_id_) {
      throw FormatError(where + ": model.unk_token \"" + *options_.unk_token + "\" is not in model.vocab");
    }
  }
  has_all_byte_ids_ = true;
  for (int byte = 0; byte < 256; ++byte) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", byte);
    const auto id = token_to_id(name);
    byte_ids_[byte] = id ? *id : -1;
    if (!id) has_all_byte_ids_ = false;
  }
}

std::optional<TokenId> BpeModel::token_to_id(std::string_view token) const {
  const auto it = vocab_.find(token);
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

const std::string* BpeModel::id_to_token(TokenId id) const {
  return id >= 0 && static_cast<size_t>(id) < vocab_r_.size() ? vocab_r_[id] : nullptr;
}

const BpeModel::Merge* BpeModel::find_merge(TokenId a, TokenId b) const {
  const auto it = merges_.find(pair_key(a, b));
  return it == merges_.end() ? nullptr : &it->second;
}

void BpeModel::tokenize(std::string_view word, std::vector<TokenId>& out) const {
  if (word.empty()) return;
  if (options_.ignore_merges) {
    if (const auto id = token_to_id(word)) {
      out.push_back(*id);
      return;
    }
  }

  // 1. Characters to symbols (BPE::merge_word).
  std::vector<Symbol> symbols;
  symbols.reserve(word.size());
  // A pending <unk> and its byte length (fuse_unk extends it).
  bool has_unk = false;
  TokenId unk_id = 0;
  size_t unk_len = 0;
  std::string piece;
  for (size_t pos = 0; pos < word.size();) {
    const size_t len = utf8_char_length(word, pos);
    const bool is_first = pos == 0;
    const bool is_last = pos + len == word.size();
    piece.assign(word.substr(pos, len));
    if (!is_first) piece.insert(0, options_.continuing_subword_prefix);
    if (is_last) piece += options_.end_of_word_suffix;
    pos += len;

    if (const auto id = token_to_id(piece)) {
      if (has_unk) {
        add_symbol(symbols, unk_id, unk_len);
        has_unk = false;
      }
      add_symbol(symbols, *id, len);
      continue;
    }
    if (options_.byte_fallback) {
      bool all = true;
      for (const char c : piece) all = all && byte_ids_[static_cast<uint8_t>(c)] >= 0;
      if (all) {
        for (const char c : piece) add_symbol(symbols, byte_ids_[static_cast<uint8_t>(c)], 1);
        continue;
      }
    }
    if (unk_id_) {
      if (has_unk && options_.fuse_unk) {
        unk_len += len;
      } else {
        if (has_unk) add_symbol(symbols, unk_id, unk_len);
        has_unk = true;
        unk_id = *unk_id_;
        unk_len = len;
      }
    }
  }
  if (has_unk) add_symbol(symbols, unk_id, unk_len);

  // 2. Merge by rank (Word::merge_all).
  std::priority_queue<QueuedMerge> queue;
  for (size_t i = 0; i + 1 < symbols.size(); ++i) {
    if (const Merge* m = find_merge(symbols[i].id, symbols[i + 1].id)) {
      queue.push(QueuedMerge{static_cast<int>(i), m->rank, m->new_id});
    }
  }
  while (!queue.empty()) {
    const QueuedMerge top = queue.top();
    queue.pop();
    Symbol& current = symbols[top.pos];
    if (current.len == 0 || current.next == -1) continue;
    const int next_pos = current.next;
    const Symbol right = symbols[next_pos];
    // Skip entries made stale by an earlier merge.
    const Merge* still = find_merge(current.id, right.id);
    if (!still || still->new_id != top.new_id) continue;

    current.id = top.new_id;
    current.len += right.len;
    current.next = right.next;
    symbols[next_pos].len = 0;
    if (right.next >= 0) symbols[right.next].prev = top.pos;

    if (current.prev >= 0) {
      if (const Merge* m = find_merge(symbols[current.prev].id, current.id)) {
        queue.push(QueuedMerge{current.prev, m->rank, m->new_id});
      }
    }
    if (current.next >= 0) {
      if (const Merge* m = find_merge(current.id, symbols[current.next].id)) {
        queue.push(QueuedMerge{top.pos, m->rank, m->new_id});
      }
    }
  }
  for (const Symbol& s : symbols) {
    if (s.len != 0) out.push_back(s.id);
  }
}

}  // namespace character::model::text
