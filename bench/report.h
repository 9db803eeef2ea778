// Small helpers for the bench's results: percentiles, medians and a JSON
// object writer that knows `null`.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace loa::bench {

// Nearest-rank percentile (p in [0, 100]) of unsorted values; nullopt if empty.
[[nodiscard]] std::optional<double> percentile(std::vector<double> values, double p);

// Median of the values present; nullopt if none.
[[nodiscard]] std::optional<double> median(const std::vector<std::optional<double>>& values);

// Builds one JSON object in insertion order.
class JsonObject {
 public:
  JsonObject& add(const std::string& key, std::optional<double> value);
  JsonObject& add_int(const std::string& key, std::optional<double> value);  // rounded, or null
  JsonObject& add(const std::string& key, const std::string& value);
  JsonObject& add(const std::string& key, const char* value) { return add(key, std::string(value)); }
  JsonObject& add(const std::string& key, bool value);
  JsonObject& add_null(const std::string& key);
  JsonObject& add_raw(const std::string& key, const std::string& json);
  JsonObject& add(const std::string& key, const JsonObject& object) { return add_raw(key, object.str()); }
  [[nodiscard]] std::string str() const;
  [[nodiscard]] bool empty() const { return fields_.empty(); }

 private:
  std::vector<std::pair<std::string, std::string>> fields_;
};

[[nodiscard]] std::string json_quote(const std::string& s);
[[nodiscard]] std::string json_number(double v, int precision = 6);

}  // namespace loa::bench
