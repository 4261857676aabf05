#include "sslab/host/accumulator.h"

#include <algorithm>
#include <sstream>

namespace sslab {

void Accumulator::add(const std::map<std::string, double>& metrics) {
  for (const auto& [k, v] : metrics) {
    sums_[k] += v;
    ++counts_[k];
  }
  ++count_;
}

std::map<std::string, double> Accumulator::means() const {
  std::map<std::string, double> out;
  for (const auto& [k, v] : sums_) out[k] = v / std::max<int64_t>(counts_.at(k), 1);
  return out;
}

void Accumulator::clear() {
  sums_.clear();
  counts_.clear();
  count_ = 0;
}

std::string Accumulator::serialize() const {
  std::ostringstream s;
  s.precision(17);
  s << count_ << "\n";
  for (const auto& [k, v] : sums_) s << k << "\t" << v << "\t" << counts_.at(k) << "\n";
  return s.str();
}

void Accumulator::deserialize(const std::string& text) {
  std::istringstream s(text);
  clear();
  s >> count_;
  std::string line;
  std::getline(s, line);
  while (std::getline(s, line)) {
    auto tab = line.find('\t');
    if (tab == std::string::npos) continue;
    std::string key = line.substr(0, tab);
    auto tab2 = line.find('\t', tab + 1);
    sums_[key] = std::stod(line.substr(tab + 1, tab2 == std::string::npos ? std::string::npos : tab2 - tab - 1));
    counts_[key] = tab2 == std::string::npos ? count_ : std::stoll(line.substr(tab2 + 1));
  }
}

}  // namespace sslab
