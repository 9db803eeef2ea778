#include "report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace loa::bench {

std::optional<double> percentile(std::vector<double> values, double p) {
  if (values.empty()) {
    return std::nullopt;
  }
  std::sort(values.begin(), values.end());
  const double rank = std::ceil(p / 100.0 * static_cast<double>(values.size()));
  const auto idx = static_cast<std::size_t>(std::clamp(rank, 1.0, static_cast<double>(values.size()))) - 1;
  return values[idx];
}

std::optional<double> median(const std::vector<std::optional<double>>& values) {
  std::vector<double> present;
  for (const auto& v : values) {
    if (v) {
      present.push_back(*v);
    }
  }
  if (present.empty()) {
    return std::nullopt;
  }
  std::sort(present.begin(), present.end());
  const std::size_t n = present.size();
  return n % 2 == 1 ? present[n / 2] : (present[n / 2 - 1] + present[n / 2]) / 2.0;
}

std::string json_quote(const std::string& s) {
  std::string out = "\"";
  for (const char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

std::string json_number(double v, int precision) {
  if (!std::isfinite(v)) {
    return "null";
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*g", precision, v);
  return buf;
}

JsonObject& JsonObject::add(const std::string& key, std::optional<double> value) {
  fields_.emplace_back(key, value ? json_number(*value) : "null");
  return *this;
}

JsonObject& JsonObject::add_int(const std::string& key, std::optional<double> value) {
  fields_.emplace_back(key, value && std::isfinite(*value) ? json_number(std::round(*value), 15) : "null");
  return *this;
}

JsonObject& JsonObject::add(const std::string& key, const std::string& value) {
  fields_.emplace_back(key, json_quote(value));
  return *this;
}

JsonObject& JsonObject::add(const std::string& key, bool value) {
  fields_.emplace_back(key, value ? "true" : "false");
  return *this;
}

JsonObject& JsonObject::add_null(const std::string& key) {
  fields_.emplace_back(key, "null");
  return *this;
}

JsonObject& JsonObject::add_raw(const std::string& key, const std::string& json) {
  fields_.emplace_back(key, json);
  return *this;
}

std::string JsonObject::str() const {
  std::string out = "{";
  bool first = true;
  for (const auto& [k, v] : fields_) {
    if (!first) {
      out += ",";
    }
    first = false;
    out += json_quote(k) + ":" + v;
  }
  return out + "}";
}

}  // namespace loa::bench
