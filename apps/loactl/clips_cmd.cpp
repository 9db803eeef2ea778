#include "clips_cmd.h"

#include "output.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <vector>

#include <google/protobuf/util/json_util.h>

#include "loa/engine/clip_catalog.h"
#include "loa/engine/control_status.h"

namespace pb = loa::control::v1;
using loa::engine::ControlError;
using loa::engine::RpcCode;

namespace loactl {

namespace {

std::string duration(std::int64_t ms) {
    char b[32];
    const auto s = ms / 1000;
    if (s >= 3600) {
        std::snprintf(b, sizeof b, "%lld:%02lld:%02lld", static_cast<long long>(s / 3600),
                      static_cast<long long>(s / 60 % 60), static_cast<long long>(s % 60));
    } else {
        std::snprintf(b, sizeof b, "%lld:%02lld.%01lld", static_cast<long long>(s / 60), static_cast<long long>(s % 60),
                      static_cast<long long>(ms % 1000 / 100));
    }
    return b;
}

std::string lufs(double l) {
    char b[32];
    std::snprintf(b, sizeof b, "%.1f", l);
    return b;
}

std::string mib(std::uint64_t bytes) {
    char b[32];
    std::snprintf(b, sizeof b, "%.1f MiB", static_cast<double>(bytes) / 1048576.0);
    return b;
}

void progress_bar(std::uint64_t done, std::uint64_t total) {
    const double f = total > 0 ? static_cast<double>(done) / static_cast<double>(total) : 1.0;
    const int width = 30;
    const int fill = static_cast<int>(f * width);
    std::string bar(static_cast<std::size_t>(fill), '#');
    bar.resize(width, ' ');
    std::fprintf(stderr, "\r[%s] %3d%%  %s / %s", bar.c_str(), static_cast<int>(f * 100.0), mib(done).c_str(),
                 mib(total).c_str());
    std::fflush(stderr);
}

void print_table(const std::vector<pb::Clip>& clips) {
    Table t({"ID", "NAME", "ZONE", "DURATION", "FORMAT", "LUFS", "SIZE", "USES"});
    for (const auto& c : clips) {
        t.add({std::to_string(c.id()), c.name(), c.zone_id().empty() ? "*" : c.zone_id(),
                        duration(c.duration_ms()),
                        c.format() + " " + std::to_string(c.sample_rate()) + " Hz " + std::to_string(c.channels()) + " ch",
                        lufs(c.loudness_lufs()), mib(c.size_bytes()), std::to_string(c.uses())});
    }
    t.print();
}

int upload(const ClipsCommands& cmds, loa::engine::ControlClient& c, bool json, int timeout_ms) {
    std::ifstream in(cmds.file, std::ios::binary);
    if (!in) {
        std::cerr << "loactl: cannot open " << cmds.file << "\n";
        return static_cast<int>(RpcCode::NotFound);
    }
    std::error_code ec;
    const auto total = std::filesystem::file_size(cmds.file, ec);
    if (ec) {
        std::cerr << "loactl: cannot read " << cmds.file << ": " << ec.message() << "\n";
        return static_cast<int>(RpcCode::NotFound);
    }
    pb::BeginClipUploadRequest begin;
    begin.set_name(cmds.name.empty() ? std::filesystem::path(cmds.file).filename().string() : cmds.name);
    begin.set_total_size(total);
    begin.set_sha256(loa::engine::Sha256::of_file(cmds.file));
    begin.set_zone_id(cmds.zone);
    pb::BeginClipUploadResponse b;
    if (const int rc = call(c, "BeginClipUpload", begin, b, timeout_ms); rc != 0) return rc;
    const bool bar = ::isatty(STDERR_FILENO) != 0;
    const std::size_t chunk = b.max_chunk_bytes() > 0 ? b.max_chunk_bytes() : loa::engine::ClipCatalog::kMaxChunkBytes;
    std::vector<char> buf(chunk);
    std::uint64_t sent = 0;
    if (bar) progress_bar(0, total);
    while (sent < total) {
        in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
        const auto n = static_cast<std::size_t>(in.gcount());
        if (n == 0) {
            std::cerr << (bar ? "\n" : "") << "loactl: " << cmds.file << " shrank while uploading\n";
            return static_cast<int>(RpcCode::Aborted);
        }
        pb::UploadClipChunkRequest req;
        req.set_upload_id(b.upload_id());
        req.set_offset(sent);
        req.set_data(buf.data(), n);
        pb::UploadClipChunkResponse r;
        if (const int rc = call(c, "UploadClipChunk", req, r, timeout_ms); rc != 0) {
            if (bar) std::cerr << "\n";
            return rc;
        }
        sent = r.received_bytes();
        if (bar) progress_bar(sent, total);
    }
    if (bar) std::cerr << "\n";
    pb::FinishClipUploadRequest fin;
    fin.set_upload_id(b.upload_id());
    pb::Clip clip;
    if (const int rc = call(c, "FinishClipUpload", fin, clip, timeout_ms); rc != 0) return rc;
    if (json) {
        std::cout << json_of(clip) << "\n";
    } else {
        std::cout << "clip " << clip.id() << " '" << clip.name() << "' uploaded: " << duration(clip.duration_ms()) << ", "
                  << clip.format() << " " << clip.sample_rate() << " Hz " << clip.channels() << " ch, "
                  << lufs(clip.loudness_lufs()) << " LUFS\n";
    }
    return 0;
}

}  // namespace

void add_clips_commands(CLI::App& app, ClipsCommands& cmds) {
    auto* clips = app.add_subcommand("clips", "audio clips (content-addressed, with duration and loudness)");
    clips->require_subcommand(1);
    cmds.upload = clips->add_subcommand("upload", "upload an audio file (progress bar on a terminal)");
    cmds.upload->add_option("file", cmds.file, "WAV, FLAC, Ogg Vorbis/Opus or MP3 file")->required();
    cmds.upload->add_option("--name", cmds.name, "display name (default: the file name)");
    cmds.upload->add_option("--zone", cmds.zone, "owning zone (default: your own; none = global for whole-network callers)");
    cmds.list = clips->add_subcommand("list", "clips in your scope plus global ones");
    cmds.remove = clips->add_subcommand("delete", "delete a clip no programme uses");
    cmds.remove->add_option("id", cmds.id, "clip id")->required();
}

int run_clips_command(const ClipsCommands& cmds, loa::engine::ControlClient& client, const std::string& token,
                      bool json, int timeout_ms) {
    client.set_token(token);
    if (cmds.upload->parsed()) return upload(cmds, client, json, timeout_ms);
    if (cmds.list->parsed()) {
        pb::ListClipsResponse r;
        if (const int rc = call(client, "ListClips", pb::ListClipsRequest(), r, timeout_ms); rc != 0) return rc;
        if (json) {
            std::cout << json_of(r) << "\n";
        } else {
            print_table({r.clips().begin(), r.clips().end()});
        }
        return 0;
    }
    pb::DeleteClipRequest req;
    req.set_id(cmds.id);
    pb::DeleteClipResponse r;
    if (const int rc = call(client, "DeleteClip", req, r, timeout_ms); rc != 0) return rc;
    if (json) {
        std::cout << json_of(r) << "\n";
    } else {
        std::cout << "clip " << cmds.id << " deleted\n";
    }
    return 0;
}

}  // namespace loactl
