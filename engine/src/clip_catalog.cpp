#include "loa/engine/clip_catalog.h"

#include <ebur128.h>
#include <fcntl.h>
#include <sodium.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <vector>

#include "loa/codecs/clip_reader.h"
#include "loa/engine/control_status.h"

namespace loa::engine {

namespace {

[[noreturn]] void fail(RpcCode code, const std::string& message) { throw ControlError(code, message); }

/// An errno from a file operation as a ControlError: a full disk is
/// RESOURCE_EXHAUSTED, anything else UNAVAILABLE.
[[noreturn]] void fail_io(int err, const std::string& what) {
    const std::string msg = "clip store: " + what + ": " + std::strerror(err);
    if (err == ENOSPC || err == EDQUOT) fail(RpcCode::ResourceExhausted, msg + " (disk full)");
    if (err == EROFS || err == EACCES || err == EPERM) fail(RpcCode::Unavailable, msg + " (clip folder not writable)");
    fail(RpcCode::Unavailable, msg);
}

bool is_hex_sha256(const std::string& s) {
    if (s.size() != 64) return false;
    for (const char c : s) {
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    }
    return true;
}

std::string random_hex(std::size_t bytes) {
    std::vector<unsigned char> b(bytes);
    randombytes_buf(b.data(), b.size());
    std::string out(bytes * 2 + 1, '\0');
    sodium_bin2hex(out.data(), out.size(), b.data(), b.size());
    out.pop_back();
    return out;
}

void fsync_dir(const std::filesystem::path& dir) {
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) fail_io(errno, "open folder " + dir.string());
    const int rc = ::fsync(fd);
    const int err = errno;
    ::close(fd);
    if (rc != 0) fail_io(err, "fsync folder " + dir.string());
}

std::string ext_for(const std::string& format) {
    if (format == "WAV") return "wav";
    if (format == "FLAC") return "flac";
    if (format == "MP3") return "mp3";
    if (format == "OGG/Opus") return "opus";
    if (format.rfind("OGG", 0) == 0) return "ogg";
    std::string out;
    for (const char c : format) {
        if (std::isalnum(static_cast<unsigned char>(c)) != 0 && out.size() < 8) {
            out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
        }
    }
    return out.empty() ? "audio" : out;
}

constexpr const char* kTempPrefix = ".upload-";
constexpr const char* kTempSuffix = ".tmp";

}  // namespace

// ---- SHA-256 ------------------------------------------------------------------

struct Sha256::State {
    crypto_hash_sha256_state st;
};

Sha256::Sha256() : s_(std::make_unique<State>()) {
    if (sodium_init() < 0) fail(RpcCode::Internal, "libsodium cannot be initialised");
    crypto_hash_sha256_init(&s_->st);
}

Sha256::~Sha256() = default;

void Sha256::update(std::span<const std::uint8_t> data) {
    crypto_hash_sha256_update(&s_->st, data.data(), data.size());
}

std::string Sha256::hex_final() {
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_final(&s_->st, h);
    char hex[crypto_hash_sha256_BYTES * 2 + 1];
    sodium_bin2hex(hex, sizeof hex, h, sizeof h);
    return hex;
}

std::string Sha256::of_file(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) fail(RpcCode::NotFound, "cannot open " + path.string());
    Sha256 h;
    std::vector<char> buf(1 << 16);
    while (in) {
        in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
        const auto n = in.gcount();
        if (n > 0) h.update({reinterpret_cast<const std::uint8_t*>(buf.data()), static_cast<std::size_t>(n)});
    }
    if (in.bad()) fail(RpcCode::Unavailable, "cannot read " + path.string());
    return h.hex_final();
}

// ---- analysis -----------------------------------------------------------------

ClipAnalysis analyse_clip(const std::filesystem::path& path) {
    ClipAnalysis a;
    std::unique_ptr<codecs::ClipReader> reader;
    try {
        reader = std::make_unique<codecs::ClipReader>(path);
    } catch (const codecs::Error& e) {
        fail(RpcCode::InvalidArgument, std::string("not a playable audio file: ") + e.what());
    }
    const auto& info = reader->info();
    a.sample_rate = info.source_rate;
    a.channels = info.source_channels;
    a.format = info.format;
    a.ext = ext_for(info.format);
    std::unique_ptr<ebur128_state, void (*)(ebur128_state*)> st(
        ebur128_init(1, 48000, EBUR128_MODE_I), [](ebur128_state* s) { ebur128_destroy(&s); });
    if (!st) fail(RpcCode::Internal, "libebur128 cannot be initialised");
    std::vector<float> buf(4800);
    std::int64_t samples = 0;
    for (;;) {
        std::size_t got = 0;
        const auto s = reader->read(buf, got);
        if (got > 0) {
            samples += static_cast<std::int64_t>(got);
            if (ebur128_add_frames_float(st.get(), buf.data(), got) != EBUR128_SUCCESS) {
                fail(RpcCode::Internal, "libebur128 failed");
            }
        }
        if (s == codecs::Status::EndOfStream) break;
        if (s != codecs::Status::Ok) {
            fail(RpcCode::InvalidArgument,
                 std::string("audio file is corrupt (decoding stopped: ") + codecs::to_string(s) + ")");
        }
    }
    if (samples == 0) fail(RpcCode::InvalidArgument, "audio file holds no samples");
    a.duration_ms = samples / 48;
    double lufs = -HUGE_VAL;
    if (ebur128_loudness_global(st.get(), &lufs) != EBUR128_SUCCESS) fail(RpcCode::Internal, "libebur128 failed");
    a.loudness_lufs = std::isfinite(lufs) ? std::max(lufs, -70.0) : -70.0;
    return a;
}

// ---- catalogue ---------------------------------------------------------------

struct ClipCatalog::Upload {
    Begin meta;
    std::filesystem::path temp;
    int fd = -1;
    std::uint64_t received = 0;
    Sha256 hash;
    std::int64_t last_ns = 0;
    ~Upload() {
        if (fd >= 0) ::close(fd);
    }
};

ClipCatalog::ClipCatalog(std::filesystem::path dir, const Clock& clock) : dir_(std::move(dir)), clock_(clock) {
    std::error_code ec;
    std::filesystem::create_directories(dir_, ec);
    if (ec) fail(RpcCode::Unavailable, "cannot create clip folder " + dir_.string() + ": " + ec.message());
    // Uploads do not survive a restart: their temp files are garbage.
    for (const auto& e : std::filesystem::directory_iterator(dir_, ec)) {
        const auto name = e.path().filename().string();
        if (name.rfind(kTempPrefix, 0) == 0) std::filesystem::remove(e.path(), ec);
    }
}

ClipCatalog::~ClipCatalog() {
    std::error_code ec;
    for (const auto& [id, u] : uploads_) {
        if (u->fd >= 0) ::close(u->fd);
        u->fd = -1;
        std::filesystem::remove(u->temp, ec);
    }
}

std::filesystem::path ClipCatalog::file_of(const std::string& sha256, const std::string& ext) const {
    return dir_ / (sha256 + "." + ext);
}

std::size_t ClipCatalog::remove_unreferenced(const std::set<std::string>& referenced) {
    std::size_t n = 0;
    std::error_code ec;
    std::vector<std::filesystem::path> doomed;
    for (const auto& e : std::filesystem::directory_iterator(dir_, ec)) {
        const auto name = e.path().filename().string();
        const auto dot = name.find('.');
        if (dot != 64 || !is_hex_sha256(name.substr(0, 64))) continue;
        if (referenced.count(name.substr(0, 64)) == 0) doomed.push_back(e.path());
    }
    for (const auto& p : doomed) {
        if (std::filesystem::remove(p, ec)) ++n;
    }
    return n;
}

void ClipCatalog::drop(const std::string& id) {
    const auto it = uploads_.find(id);
    if (it == uploads_.end()) return;
    std::error_code ec;
    std::filesystem::remove(it->second->temp, ec);
    uploads_.erase(it);
}

void ClipCatalog::expire() {
    const auto now = clock_.now_ns();
    std::vector<std::string> old;
    for (const auto& [id, u] : uploads_) {
        if (now - u->last_ns > kIdleTimeoutNs) old.push_back(id);
    }
    for (const auto& id : old) drop(id);
}

std::string ClipCatalog::begin(const Begin& b) {
    expire();
    if (b.total_size == 0) fail(RpcCode::InvalidArgument, "total_size must be > 0");
    if (b.total_size > kMaxClipBytes) {
        fail(RpcCode::ResourceExhausted,
             "a clip is at most " + std::to_string(kMaxClipBytes >> 20) + " MiB (" + std::to_string(b.total_size) +
                 " bytes declared)");
    }
    if (!is_hex_sha256(b.sha256)) fail(RpcCode::InvalidArgument, "sha256 must be 64 lower-case hex digits");
    if (uploads_.size() >= kMaxUploads) {
        fail(RpcCode::ResourceExhausted, "too many uploads in progress (" + std::to_string(kMaxUploads) + ")");
    }
    auto u = std::make_unique<Upload>();
    const auto id = random_hex(16);
    u->meta = b;
    u->temp = dir_ / (kTempPrefix + id + kTempSuffix);
    u->fd = ::open(u->temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (u->fd < 0) fail_io(errno, "create " + u->temp.string());
    u->last_ns = clock_.now_ns();
    uploads_.emplace(id, std::move(u));
    return id;
}

ClipCatalog::Upload& ClipCatalog::find(const std::string& id, const std::string& owner) {
    expire();
    const auto it = uploads_.find(id);
    if (it == uploads_.end()) fail(RpcCode::NotFound, "no upload '" + id + "' (unknown, finished or expired)");
    if (it->second->meta.owner != owner) fail(RpcCode::PermissionDenied, "upload '" + id + "' belongs to another caller");
    return *it->second;
}

std::uint64_t ClipCatalog::chunk(const std::string& id, const std::string& owner, std::uint64_t offset,
                                 std::span<const std::uint8_t> data) {
    if (data.size() > kMaxChunkBytes) {
        fail(RpcCode::ResourceExhausted,
             "a chunk is at most 1 MiB (" + std::to_string(data.size()) + " bytes sent)");
    }
    auto& u = find(id, owner);
    if (data.empty()) fail(RpcCode::InvalidArgument, "empty chunk");
    if (offset != u.received) {
        fail(RpcCode::FailedPrecondition,
             "chunk offset " + std::to_string(offset) + " but " + std::to_string(u.received) + " bytes received so far");
    }
    if (u.received + data.size() > u.meta.total_size) {
        fail(RpcCode::InvalidArgument, "chunk goes past the declared size of " + std::to_string(u.meta.total_size) +
                                           " bytes");
    }
    std::size_t done = 0;
    while (done < data.size()) {
        const auto n = ::pwrite(u.fd, data.data() + done, data.size() - done,
                                static_cast<off_t>(u.received + done));
        if (n < 0) {
            if (errno == EINTR) continue;
            const int err = errno;
            drop(id);  // the upload cannot go on; the client starts over
            fail_io(err, "write upload");
        }
        done += static_cast<std::size_t>(n);
    }
    u.hash.update(data);
    u.received += data.size();
    u.last_ns = clock_.now_ns();
    return u.received;
}

ClipCatalog::Finished ClipCatalog::finish(const std::string& id, const std::string& owner) {
    auto& u = find(id, owner);
    // Whatever happens below, the upload is over.
    struct Dropper {
        ClipCatalog& c;
        std::string id;
        ~Dropper() { c.drop(id); }
    } dropper{*this, id};
    if (u.received != u.meta.total_size) {
        fail(RpcCode::InvalidArgument, "upload incomplete: " + std::to_string(u.received) + " of " +
                                           std::to_string(u.meta.total_size) + " bytes received");
    }
    const auto got = u.hash.hex_final();
    if (got != u.meta.sha256) {
        fail(RpcCode::InvalidArgument, "SHA-256 mismatch: declared " + u.meta.sha256 + ", received data hashes to " + got);
    }
    if (::fsync(u.fd) != 0) fail_io(errno, "fsync upload");
    ::close(u.fd);
    u.fd = -1;
    Finished f;
    f.meta = u.meta;
    try {
        f.analysis = analyse_clip(u.temp);
    } catch (const ControlError& e) {
        // Name the upload, not its temp file.
        std::string msg = e.what();
        const auto at = msg.find(u.temp.string());
        if (at != std::string::npos) msg.replace(at, u.temp.string().size(), u.meta.name);
        throw ControlError(e.code(), msg);
    }
    f.file = file_of(u.meta.sha256, f.analysis.ext);
    std::error_code ec;
    if (std::filesystem::exists(f.file, ec)) {
        // Same content already stored (by another zone's clip): identical bytes by hash.
        std::filesystem::remove(u.temp, ec);
    } else if (::rename(u.temp.c_str(), f.file.c_str()) != 0) {
        fail_io(errno, "rename upload to " + f.file.string());
    }
    fsync_dir(dir_);
    return f;
}

void ClipCatalog::remove_file(const std::string& sha256, const std::string& ext) {
    std::error_code ec;
    if (std::filesystem::remove(file_of(sha256, ext), ec)) fsync_dir(dir_);
}

}  // namespace loa::engine
