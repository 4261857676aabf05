// Running means of the training metrics between two metrics.jsonl lines.
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace sslab {

class Accumulator {
 public:
  // Adds one step's metrics. A metric logged only on some steps (the online
  // probe with train.probe_every > 1) is the mean over the steps that had it.
  void add(const std::map<std::string, double>& metrics);
  std::map<std::string, double> means() const;
  void clear();
  // The state a checkpoint carries: "count\n" then "key<TAB>sum<TAB>count" lines.
  std::string serialize() const;
  // Also reads the older "key<TAB>sum" lines (every key counted on every step).
  void deserialize(const std::string& text);

 private:
  std::map<std::string, double> sums_;
  std::map<std::string, int64_t> counts_;
  int64_t count_ = 0;
};

}  // namespace sslab
