#pragma once
// TableReader: reads typed values out of one TOML table for the config
// parser (config.cpp). Private to engine/src.

#include <cstdint>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <toml++/toml.h>

#include "loa/engine/config.h"
#include "loa/transport/udp_socket.h"

namespace loa::engine::config_detail {

// Reads typed values out of one TOML table, reporting problems with the
// table's dotted path, and rejects keys it was never asked about (typos).
class TableReader {
public:
    TableReader(const toml::table& table, std::string path, const std::string& file)
        : table_(table), path_(std::move(path)), file_(file) {}

    [[noreturn]] void fail(const std::string& key, const std::string& problem) const {
        throw ConfigError(file_, qualified(key), problem);
    }

    std::string qualified(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }

    bool has(const std::string& key) {
        known_.insert(key);
        return table_.contains(key);
    }

    std::optional<std::string> string(const std::string& key) {
        if (!has(key)) return std::nullopt;
        const auto* v = table_.get(key)->as_string();
        if (v == nullptr) fail(key, "must be a string");
        return v->get();
    }

    std::string required_string(const std::string& key) {
        auto v = string(key);
        if (!v) fail(key, "is required");
        if (v->empty()) fail(key, "must not be empty");
        return *v;
    }

    std::optional<std::int64_t> integer(const std::string& key, std::int64_t lo, std::int64_t hi) {
        if (!has(key)) return std::nullopt;
        const auto* v = table_.get(key)->as_integer();
        if (v == nullptr) fail(key, "must be an integer");
        const auto x = v->get();
        if (x < lo || x > hi) {
            fail(key, "must be between " + std::to_string(lo) + " and " + std::to_string(hi) +
                          " (got " + std::to_string(x) + ")");
        }
        return x;
    }

    std::optional<double> number(const std::string& key, double lo, double hi) {
        if (!has(key)) return std::nullopt;
        const auto* node = table_.get(key);
        double x = 0;
        if (const auto* f = node->as_floating_point()) {
            x = f->get();
        } else if (const auto* i = node->as_integer()) {
            x = static_cast<double>(i->get());
        } else {
            fail(key, "must be a number");
        }
        if (!(x >= lo && x <= hi)) {
            std::ostringstream os;
            os << "must be between " << lo << " and " << hi << " (got " << x << ")";
            fail(key, os.str());
        }
        return x;
    }

    std::optional<bool> boolean(const std::string& key) {
        if (!has(key)) return std::nullopt;
        const auto* v = table_.get(key)->as_boolean();
        if (v == nullptr) fail(key, "must be true or false");
        return v->get();
    }

    std::vector<std::string> strings(const std::string& key) {
        std::vector<std::string> out;
        if (!has(key)) return out;
        const auto* arr = table_.get(key)->as_array();
        if (arr == nullptr) fail(key, "must be an array of strings");
        for (const auto& el : *arr) {
            const auto* s = el.as_string();
            if (s == nullptr) fail(key, "must be an array of strings");
            out.push_back(s->get());
        }
        return out;
    }

    const toml::array* tables(const std::string& key) {
        if (!has(key)) return nullptr;
        const auto* arr = table_.get(key)->as_array();
        if (arr == nullptr || !arr->is_array_of_tables()) {
            fail(key, "must be an array of tables ([[" + qualified(key) + "]])");
        }
        return arr;
    }

    const toml::table* table(const std::string& key) {
        if (!has(key)) return nullptr;
        const auto* t = table_.get(key)->as_table();
        if (t == nullptr) fail(key, "must be a table ([" + qualified(key) + "])");
        return t;
    }

    boost::asio::ip::udp::endpoint endpoint(const std::string& key, const std::string& text,
                                            const std::string& default_host) const {
        try {
            return transport::parse_endpoint(text, default_host);
        } catch (const std::exception& e) {
            fail(key, std::string("is not an address: ") + e.what());
        }
    }

    /// Call after reading every key: any key not asked about is an error.
    void reject_unknown() const {
        for (const auto& [k, v] : table_) {
            const std::string key(k.str());
            if (!known_.contains(key)) fail(key, "is not a known setting");
        }
    }

private:
    const toml::table& table_;
    std::string path_;
    const std::string& file_;
    std::set<std::string> known_;
};

}  // namespace loa::engine::config_detail
