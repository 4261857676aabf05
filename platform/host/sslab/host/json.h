// JSON number formatting shared by the files the host writes (eval.json,
// metrics.jsonl); the documents themselves are nlohmann::ordered_json.
#pragma once

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include <nlohmann/json.hpp>

namespace sslab {

// `v` rounded to `digits` significant digits, or null when it is not finite
// (JSON has no NaN or infinity).
inline nlohmann::ordered_json json_number(double v, int digits) {
  if (!std::isfinite(v)) return nullptr;
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%.*g", digits, v);
  return std::strtod(buf, nullptr);
}

// One line of JSON; invalid UTF-8 in a string is replaced rather than thrown on.
inline std::string json_line(const nlohmann::ordered_json& j) {
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace sslab
