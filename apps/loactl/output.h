#pragma once
// What every loactl command shares: one unary call with its error printed,
// protobuf's JSON printer, an aligned text table, and the words of levels,
// lists and --level options.

#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include <google/protobuf/message.h>
#include <google/protobuf/repeated_ptr_field.h>

#include "loa/control/v1/control.pb.h"
#include "loa/engine/control_client.h"
#include "loa/engine/control_status.h"

namespace loactl {

/// The message as JSON with the .proto field names.
std::string json_of(const google::protobuf::Message& m);

/// One unary call. On an error status prints "loactl: METHOD: CODE: message"
/// to stderr and returns the code; otherwise fills `out` and returns 0.
/// Throws ControlError when the response payload does not parse.
template <class Resp>
int call(loa::engine::ControlClient& c, const std::string& method, const google::protobuf::Message& req, Resp& out,
         int timeout_ms) {
    const auto r = c.call(method, req, timeout_ms);
    if (r.code() != loa::control::v1::OK) {
        std::cerr << "loactl: " << method << ": " << loa::control::v1::StatusCode_Name(r.code()) << ": "
                  << r.message() << "\n";
        return r.code();
    }
    if (!out.ParseFromString(r.payload())) {
        throw loa::engine::ControlError(loa::engine::RpcCode::Internal, "unreadable response from the engine");
    }
    return 0;
}

/// `s` with ASCII letters in lower case.
std::string lower(std::string s);

/// A level as loactl prints it: its proto name in lower case ("commune").
std::string level_text(loa::control::v1::Level level);

/// The items joined with `sep`; "" when there are none.
std::string joined(const google::protobuf::RepeatedPtrField<std::string>& items, const char* sep);

/// The protocol level a --level option names (see loa::engine::parse_priority);
/// nullopt, after "loactl: unknown level 'TEXT'" on stderr, when it names none.
std::optional<loa::control::v1::Level> parse_level(const std::string& text);

/// Rows of text printed with each column padded to its widest cell.
class Table {
public:
    explicit Table(std::vector<std::string> header) { rows_.push_back(std::move(header)); }
    void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
    void print(std::ostream& out = std::cout) const;

private:
    std::vector<std::vector<std::string>> rows_;
};

}  // namespace loactl
