// Batching and collation for lora/train_data.h: length-bucketed batch orders and
// the held-out split, deterministic from a seed on any standard library, and the
// padding of rows into [B, T] input_ids / attention_mask / labels tensors.
#include "lora/train_data.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

#include "base/error.h"

namespace character::lora {
namespace {

using Ids = std::vector<int64_t>;

// ---------------------------------------------------------------- randomness

// A counter-based generator (splitmix64) and Fisher-Yates written out because
// std::shuffle and std::uniform_int_distribution differ between standard libraries,
// and a batch order must be the same after a resume on any build.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  uint64_t below(uint64_t n) {  // in [0, n), Lemire's multiply-shift (bias < n / 2^64)
    return static_cast<uint64_t>((static_cast<unsigned __int128>(next()) * n) >> 64);
  }

 private:
  uint64_t state_;
};

template <class T>
void shuffle(std::vector<T>& items, SplitMix64& rng) {
  for (std::size_t i = items.size(); i > 1; --i) std::swap(items[i - 1], items[rng.below(i)]);
}

SplitMix64 stream(uint64_t seed, uint64_t purpose, int64_t epoch) {
  SplitMix64 mix(seed ^ (purpose * 0xD1B54A32D192ED03ULL));
  return SplitMix64(mix.next() ^ SplitMix64(static_cast<uint64_t>(epoch)).next());
}

constexpr uint64_t kBatchStream = 1;
constexpr uint64_t kSplitStream = 2;
constexpr int64_t kSortWindowBatches = 50;

// ---------------------------------------------------------------- collation

TokenBatch pad_rows(const std::vector<Ids>& ids, const std::vector<Ids>& labels, int64_t pad_id) {
  const auto B = static_cast<int64_t>(ids.size());
  int64_t T = 0;
  for (const auto& row : ids) T = std::max<int64_t>(T, static_cast<int64_t>(row.size()));
  TokenBatch batch;
  batch.input_ids = torch::full({B, T}, pad_id, torch::kInt64);   // [B, T]
  batch.attention_mask = torch::zeros({B, T}, torch::kInt64);     // [B, T]
  batch.labels = torch::full({B, T}, int64_t{-100}, torch::kInt64);  // [B, T]
  auto input = batch.input_ids.accessor<int64_t, 2>();
  auto attention = batch.attention_mask.accessor<int64_t, 2>();
  auto label = batch.labels.accessor<int64_t, 2>();
  for (int64_t b = 0; b < B; ++b) {
    for (std::size_t t = 0; t < ids[b].size(); ++t) {
      input[b][t] = ids[b][t];
      attention[b][t] = 1;
      label[b][t] = labels[b][t];
    }
  }
  return batch;
}

template <class Rows>
void check_rows(const Rows& data, const std::vector<int64_t>& rows) {
  TORCH_CHECK(!rows.empty(), "collate: empty batch");
  for (const int64_t r : rows) {
    TORCH_CHECK(r >= 0 && r < static_cast<int64_t>(data.size()), "collate: row ", r, " outside [0, ", data.size(), ")");
  }
}

}  // namespace

std::vector<int64_t> sequence_lengths(const SftDataset& data) {
  std::vector<int64_t> lengths;
  for (const auto& row : data.rows) lengths.push_back(static_cast<int64_t>(row.ids.size()));
  return lengths;
}

std::vector<int64_t> sequence_lengths(const DpoDataset& data) {
  std::vector<int64_t> lengths;
  for (const auto& row : data.rows) {
    lengths.push_back(static_cast<int64_t>(row.prompt.size() + std::max(row.chosen.size(), row.rejected.size())));
  }
  return lengths;
}

std::vector<std::vector<int64_t>> length_batches(const std::vector<int64_t>& lengths, int64_t batch_size,
                                                 uint64_t seed, int64_t epoch) {
  if (batch_size < 1) throw ConfigError("batch_size=" + std::to_string(batch_size) + ", expected >= 1");
  SplitMix64 rng = stream(seed, kBatchStream, epoch);
  std::vector<int64_t> order(lengths.size());
  std::iota(order.begin(), order.end(), int64_t{0});
  shuffle(order, rng);
  // Sorting inside windows of a few dozen batches, not globally, keeps some
  // randomness in which rows meet while still padding little.
  const auto window = static_cast<std::size_t>(batch_size * kSortWindowBatches);
  for (std::size_t begin = 0; begin < order.size(); begin += window) {
    const auto end = order.begin() + static_cast<std::ptrdiff_t>(std::min(order.size(), begin + window));
    std::stable_sort(order.begin() + static_cast<std::ptrdiff_t>(begin), end,
                     [&](int64_t a, int64_t b) { return lengths[a] > lengths[b]; });
  }
  std::vector<std::vector<int64_t>> batches;
  for (std::size_t begin = 0; begin < order.size(); begin += static_cast<std::size_t>(batch_size)) {
    const std::size_t end = std::min(order.size(), begin + static_cast<std::size_t>(batch_size));
    batches.emplace_back(order.begin() + static_cast<std::ptrdiff_t>(begin),
                         order.begin() + static_cast<std::ptrdiff_t>(end));
  }
  shuffle(batches, rng);
  // The batch with the longest row goes first: an out-of-memory shows on step 1.
  auto longest = [&](const std::vector<int64_t>& batch) {
    int64_t m = 0;
    for (const int64_t i : batch) m = std::max(m, lengths[i]);
    return m;
  };
  const auto first = std::max_element(batches.begin(), batches.end(),
                                      [&](const auto& a, const auto& b) { return longest(a) < longest(b); });
  if (first != batches.end()) std::iter_swap(batches.begin(), first);
  return batches;
}

TokenBatch collate_sft(const SftDataset& data, const std::vector<int64_t>& rows, int64_t pad_id) {
  check_rows(data.rows, rows);
  std::vector<Ids> ids, labels;
  for (const int64_t r : rows) {
    const TokenizedSequence& seq = data.rows[r];
    Ids row_labels(seq.ids.size());
    for (std::size_t t = 0; t < seq.ids.size(); ++t) row_labels[t] = seq.loss_mask[t] ? seq.ids[t] : -100;
    ids.push_back(seq.ids);
    labels.push_back(std::move(row_labels));
  }
  return pad_rows(ids, labels, pad_id);
}

TokenBatch collate_dpo(const DpoDataset& data, const std::vector<int64_t>& rows, int64_t pad_id) {
  check_rows(data.rows, rows);
  std::vector<Ids> ids, labels;
  for (const bool chosen : {true, false}) {
    for (const int64_t r : rows) {
      const DpoPair& pair = data.rows[r];
      const Ids& completion = chosen ? pair.chosen : pair.rejected;
      Ids row = pair.prompt;
      row.insert(row.end(), completion.begin(), completion.end());
      Ids row_labels(pair.prompt.size(), -100);
      row_labels.insert(row_labels.end(), completion.begin(), completion.end());
      ids.push_back(std::move(row));
      labels.push_back(std::move(row_labels));
    }
  }
  return pad_rows(ids, labels, pad_id);
}

std::pair<std::vector<int64_t>, std::vector<int64_t>> held_out_split(int64_t n, double fraction, uint64_t seed) {
  if (!(fraction >= 0.0 && fraction < 1.0)) {
    throw ConfigError("held-out fraction=" + std::to_string(fraction) + ", expected in [0, 1)");
  }
  if (n < 0) throw ConfigError("held_out_split: n=" + std::to_string(n) + ", expected >= 0");
  int64_t count = static_cast<int64_t>(std::llround(static_cast<double>(n) * fraction));
  if (fraction > 0.0 && n > 1) count = std::clamp<int64_t>(count, 1, n - 1);
  if (n <= 1) count = 0;
  std::vector<int64_t> order(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), int64_t{0});
  SplitMix64 rng = stream(seed, kSplitStream, 0);
  shuffle(order, rng);
  std::vector<int64_t> held(order.begin(), order.begin() + count);
  std::vector<int64_t> train(order.begin() + count, order.end());
  std::sort(held.begin(), held.end());
  std::sort(train.begin(), train.end());
  return {std::move(train), std::move(held)};
}

}  // namespace character::lora
