#pragma once
// The one SQLite adapter (private to loa_engine): RAII connection and
// statements, every SQLite error turned into a ControlError whose code says
// what the caller should do (disk full -> RESOURCE_EXHAUSTED, read-only or
// I/O error -> UNAVAILABLE, corruption -> DATA_LOSS, else INTERNAL).
//
// Threads: one connection is used by one thread at a time.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

struct sqlite3;
struct sqlite3_stmt;

namespace loa::engine::sql {

/// Throws the ControlError matching SQLite result `rc`; `what` names the action.
[[noreturn]] void throw_error(int rc, sqlite3* db, const std::string& what);

class Statement {
public:
    Statement(sqlite3* db, const std::string& sql);
    ~Statement();
    Statement(const Statement&) = delete;
    Statement& operator=(const Statement&) = delete;

    /// Parameters are 1-based, as in SQLite.
    Statement& bind(int index, std::int64_t value);
    Statement& bind(int index, const std::string& value);
    Statement& bind_null(int index);
    /// Binds NULL for an empty string.
    Statement& bind_text_or_null(int index, const std::string& value);

    /// Runs one step: true when a row is available, false when done.
    bool step();
    /// Runs to completion, ignoring rows.
    void run();
    /// Clears bindings and rewinds; called before every reuse.
    void reset();

    std::int64_t int64(int column) const;
    /// Empty string for NULL.
    std::string text(int column) const;
    /// Like text() without a copy: valid until the next step(), reset() or
    /// another read of the same column.
    std::string_view text_view(int column) const;
    bool is_null(int column) const;

private:
    sqlite3* db_;
    sqlite3_stmt* stmt_ = nullptr;
    std::string sql_;
};

class Database {
public:
    /// Opens (creating when missing) the database file. Throws ControlError.
    explicit Database(const std::filesystem::path& path);
    ~Database();
    Database(const Database&) = delete;
    Database& operator=(const Database&) = delete;

    /// Runs one or more statements without results.
    void exec(const std::string& sql);
    /// A prepared statement kept for the connection's life, reset and ready
    /// to bind. The reference stays valid until the Database is destroyed;
    /// do not hold two uses of the same SQL text at once.
    Statement& cached(const std::string& sql);
    std::int64_t changes() const;
    std::int64_t last_insert_rowid() const;
    sqlite3* handle() const noexcept { return db_; }

private:
    sqlite3* db_ = nullptr;
    std::unordered_map<std::string, std::unique_ptr<Statement>> cache_;
};

/// BEGIN IMMEDIATE on construction; commit() makes it durable (throws when
/// the commit fails); the destructor rolls back an uncommitted transaction.
class Transaction {
public:
    explicit Transaction(Database& db);
    ~Transaction();
    Transaction(const Transaction&) = delete;
    Transaction& operator=(const Transaction&) = delete;
    void commit();

private:
    Database& db_;
    bool done_ = false;
};

}  // namespace loa::engine::sql
