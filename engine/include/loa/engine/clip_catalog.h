#pragma once
// Clip files and clip uploads. Files are content-addressed:
// <state_dir>/clips/<sha256>.<ext>. An upload writes <dir>/.upload-<id>.tmp,
// which is fsynced, checked (size, SHA-256, decodable audio) and renamed to
// its final name, then the folder is fsynced; only after that does the caller
// commit the catalogue row (Store::insert_clip). So no partial file is ever
// visible under a final name. On start, leftover temp files (and content
// files no catalogue row names) are removed.
//
// Threads: not thread-safe; the control thread only. Blocking file I/O and
// decoding (FinishClipUpload decodes the whole clip once).

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <span>
#include <string>

#include "loa/engine/clock.h"

namespace loa::engine {

/// Incremental SHA-256 (libsodium crypto_hash_sha256).
class Sha256 {
public:
    Sha256();
    ~Sha256();
    Sha256(const Sha256&) = delete;
    Sha256& operator=(const Sha256&) = delete;
    void update(std::span<const std::uint8_t> data);
    /// Lower-case hex of the digest; call once.
    std::string hex_final();
    /// The hex SHA-256 of a whole file. Throws ControlError(UNAVAILABLE/NOT_FOUND).
    static std::string of_file(const std::filesystem::path& path);

private:
    struct State;
    std::unique_ptr<State> s_;
};

/// What decoding a clip found.
struct ClipAnalysis {
    int sample_rate = 0;  // of the file
    int channels = 0;     // of the file
    std::int64_t duration_ms = 0;
    std::string format;          // ClipReader's name ("WAV", "FLAC", ...)
    std::string ext;             // extension for the content file ("wav", "flac", "ogg", "mp3", ...)
    double loudness_lufs = -70;  // EBU R128 integrated, of the 48 kHz mono signal; -70 = silent
};

/// Decodes the whole file (codecs::ClipReader) and measures its loudness
/// (libebur128). Throws ControlError(INVALID_ARGUMENT) when it is not
/// decodable audio or holds no samples.
ClipAnalysis analyse_clip(const std::filesystem::path& path);

class ClipCatalog {
public:
    static constexpr std::size_t kMaxChunkBytes = 1u << 20;
    static constexpr std::uint64_t kMaxClipBytes = 1ull << 30;
    static constexpr std::int64_t kIdleTimeoutNs = 300'000'000'000;  // 5 min without a chunk
    static constexpr std::size_t kMaxUploads = 16;

    /// Creates `dir` when missing and removes leftover temp files.
    /// Throws ControlError(UNAVAILABLE) when the folder cannot be made.
    ClipCatalog(std::filesystem::path dir, const Clock& clock);
    ~ClipCatalog();
    ClipCatalog(const ClipCatalog&) = delete;
    ClipCatalog& operator=(const ClipCatalog&) = delete;

    const std::filesystem::path& dir() const noexcept { return dir_; }
    std::filesystem::path file_of(const std::string& sha256, const std::string& ext) const;
    /// Removes content files whose sha256 is not in `referenced`. Returns how many.
    std::size_t remove_unreferenced(const std::set<std::string>& referenced);

    struct Begin {
        std::string name;
        std::string zone_id;
        std::uint64_t total_size = 0;
        std::string sha256;  // lower-case hex
        std::string owner;   // who may continue it
    };
    /// Starts an upload; returns its id. Throws ControlError: INVALID_ARGUMENT
    /// (size 0, bad hex), RESOURCE_EXHAUSTED (too large, too many uploads),
    /// UNAVAILABLE / RESOURCE_EXHAUSTED when the temp file cannot be created.
    std::string begin(const Begin& b);
    /// Appends a chunk; returns the bytes received so far. Throws ControlError:
    /// NOT_FOUND (unknown or expired id), PERMISSION_DENIED (another caller),
    /// RESOURCE_EXHAUSTED (chunk > 1 MiB, disk full), FAILED_PRECONDITION
    /// (offset is not the bytes received so far), INVALID_ARGUMENT (empty, or
    /// past the declared size).
    std::uint64_t chunk(const std::string& id, const std::string& owner, std::uint64_t offset,
                        std::span<const std::uint8_t> data);

    /// A verified, decoded clip whose file now has its final name.
    struct Finished {
        Begin meta;
        ClipAnalysis analysis;
        std::filesystem::path file;
    };
    /// Ends an upload (whatever the outcome: the upload is gone afterwards):
    /// checks size and SHA-256, decodes, fsyncs, renames into place, fsyncs
    /// the folder. Throws ControlError: INVALID_ARGUMENT (size, SHA-256,
    /// undecodable audio; nothing is kept), NOT_FOUND, PERMISSION_DENIED,
    /// UNAVAILABLE/RESOURCE_EXHAUSTED for I/O errors.
    Finished finish(const std::string& id, const std::string& owner);

    /// Drops uploads idle for longer than kIdleTimeoutNs (temp files removed).
    void expire();
    /// Removes a content file (no catalogue row names it any more) and fsyncs the folder.
    void remove_file(const std::string& sha256, const std::string& ext);
    std::size_t upload_count() const noexcept { return uploads_.size(); }

private:
    struct Upload;
    Upload& find(const std::string& id, const std::string& owner);
    void drop(const std::string& id);

    std::filesystem::path dir_;
    const Clock& clock_;
    std::map<std::string, std::unique_ptr<Upload>> uploads_;
};

}  // namespace loa::engine
