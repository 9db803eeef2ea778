#include "output.h"

#include <algorithm>

#include <google/protobuf/util/json_util.h>

namespace loactl {

std::string json_of(const google::protobuf::Message& m) {
    std::string out;
    google::protobuf::util::JsonPrintOptions o;
    o.preserve_proto_field_names = true;
    (void)google::protobuf::util::MessageToJsonString(m, &out, o);
    return out;
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
