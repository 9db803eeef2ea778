#include "output.h"

#include <algorithm>
#include <cctype>

#include <google/protobuf/util/json_util.h>

#include "loa/engine/priority.h"

namespace loactl {

std::string json_of(const google::protobuf::Message& m) {
    std::string out;
    google::protobuf::util::JsonPrintOptions o;
    o.preserve_proto_field_names = true;
    (void)google::protobuf::util::MessageToJsonString(m, &out, o);
    return out;
}

std::string lower(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

std::string level_text(loa::control::v1::Level level) { return lower(loa::control::v1::Level_Name(level)); }

std::string joined(const google::protobuf::RepeatedPtrField<std::string>& items, const char* sep) {
    std::string out;
    for (const auto& item : items) out += (out.empty() ? "" : sep) + item;
    return out;
}

std::optional<loa::control::v1::Level> parse_level(const std::string& text) {
    const auto level = loa::engine::parse_priority(text);
    if (!level) {
        std::cerr << "loactl: unknown level '" << text << "'\n";
        return std::nullopt;
    }
    return static_cast<loa::control::v1::Level>(static_cast<int>(*level) + 1);
}

namespace {
// Columns a UTF-8 cell takes: its code points (continuation bytes do not count).
// Vietnamese names are mostly precomposed, one column per code point.
std::size_t columns(const std::string& s) {
    return static_cast<std::size_t>(
        std::count_if(s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}
}  // namespace

void Table::print(std::ostream& out) const {
    std::vector<std::size_t> w(rows_[0].size(), 0);
    for (const auto& r : rows_) {
        for (std::size_t i = 0; i < r.size() && i < w.size(); ++i) w[i] = std::max(w[i], columns(r[i]));
    }
    for (const auto& r : rows_) {
        std::string line;
        for (std::size_t i = 0; i < r.size(); ++i) {
            line += r[i];
            if (i + 1 < r.size() && i < w.size()) line += std::string(w[i] - columns(r[i]) + 2, ' ');
        }
        while (!line.empty() && line.back() == ' ') line.pop_back();
        out << line << "\n";
    }
}

}  // namespace loactl
