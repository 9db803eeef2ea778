// Clips: the catalogue table and its migration, the chunked upload
// (SHA-256, chunk limit, corrupt audio, expiry), listing by scope, deletion,
// the CLIP_ADDED event and the clip calls' authorisation matrix. Programmes
// that play catalogue clips: clips_programme_test.cpp.
#include <catch2/catch.hpp>

#include <sqlite3.h>

#include <fstream>
#include <set>

#include "clips_fixture.h"

using namespace loa::engine;
namespace pb = loa::control::v1;
using loa::test::sha_of;
using loa::test::sine_wav;

namespace {
using Fixture = loa::test::ClipsFixture;
}  // namespace

TEST_CASE("clips_table_round_trips_and_counts_references", "[store][clips]") {
    loa::test::TempDir dir("loa-clips-store");
    {
        Store s(dir / "state.db");
        REQUIRE(s.schema_version() == Store::kSchemaVersion);
        s.write([&] { s.insert_zone({"hn", "Ha Noi", ZoneKind::Province, ""}); });
        ClipRow c;
        c.name = "jingle";
        c.zone_id = "hn";
        c.sha256 = std::string(64, 'a');
        c.ext = "wav";
        c.size_bytes = 1234;
        c.duration_ms = 2500;
        c.sample_rate = 44100;
        c.channels = 2;
        c.format = "WAV";
        c.loudness_lufs = -23.456;
        c.created_unix_ms = 99;
        c.created_by = "ann";
        std::int64_t id1 = 0, id2 = 0;
        s.write([&] {
            id1 = s.insert_clip(c);
            c.zone_id.clear();  // the same file as a global clip
            id2 = s.insert_clip(c);
        });
        REQUIRE(id2 == id1 + 1);
        // The same content twice in one zone is refused by the unique index.
        REQUIRE_THROWS_AS(s.write([&] { s.insert_clip(c); }), ControlError);
        REQUIRE(s.clip_sha256_refs(c.sha256) == 2);
        s.write([&] { s.add_clip_uses(id1, 2); });
        s.write([&] { s.add_clip_uses(id1, -5); });  // never below 0
        REQUIRE(s.clip(id1)->uses == 0);
        s.write([&] { s.add_clip_uses(id1, 1); });
    }
    Store s(dir / "state.db");
    const auto c = s.clip(1);
    REQUIRE(c);
    REQUIRE(c->zone_id == "hn");
    REQUIRE(c->sample_rate == 44100);
    REQUIRE(c->channels == 2);
    REQUIRE(c->loudness_lufs == Approx(-23.456).margin(0.001));
    REQUIRE(c->uses == 1);
    REQUIRE(s.clip_by_sha256("", std::string(64, 'a'))->id == 2);
    REQUIRE_FALSE(s.clip_by_sha256("hn.x", std::string(64, 'a')));
    REQUIRE(s.clip_count_in_zone("hn") == 1);
    s.write([&] { s.delete_clip(2); });
    REQUIRE(s.clips().size() == 1);
    REQUIRE(s.clip_sha256_refs(std::string(64, 'a')) == 1);
    REQUIRE(s.integrity_check() == "ok");
}

TEST_CASE("version_3_database_gains_the_clips_table", "[store][clips]") {
    loa::test::TempDir dir("loa-clips-store");
    const auto db = dir / "state.db";
    {
        Store s(db);
        s.write([&] { s.insert_zone({"hn", "Ha Noi", ZoneKind::Province, ""}); });
    }
    {
        // Back to version 3: drop every table later versions added.
        sqlite3* h = nullptr;
        REQUIRE(sqlite3_open(db.c_str(), &h) == SQLITE_OK);
        std::vector<std::string> later;
        sqlite3_stmt* st = nullptr;
        REQUIRE(sqlite3_prepare_v2(h,
                                   "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT IN "
                                   "('schema_version', 'zones', 'clusters', 'operators', 'events', 'meta', "
                                   "'sqlite_sequence')",
                                   -1, &st, nullptr) == SQLITE_OK);
        while (sqlite3_step(st) == SQLITE_ROW) later.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)));
        sqlite3_finalize(st);
        REQUIRE(std::find(later.begin(), later.end(), "clips") != later.end());
        std::string sql = "UPDATE schema_version SET version = 3;";
        for (const auto& t : later) sql += "DROP TABLE " + t + ";";
        REQUIRE(sqlite3_exec(h, sql.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK);
        sqlite3_close(h);
    }
    Store s(db);
    REQUIRE(s.schema_version() == Store::kSchemaVersion);
    REQUIRE(s.zone("hn"));
    REQUIRE(s.clips().empty());
    ClipRow c;
    c.name = "x";
    c.sha256 = std::string(64, 'f');
    c.ext = "wav";
    c.format = "WAV";
    s.write([&] { REQUIRE(s.insert_clip(c) == 1); });
    REQUIRE(s.clip(1)->name == "x");
    REQUIRE(s.integrity_check() == "ok");
}

TEST_CASE("clip_upload_happy_path_stores_file_row_and_event", "[control][clips]") {
    Fixture f;
    const auto bytes = sine_wav(f.dir / "tone.wav", 2.0, 0.1, 44100, 2);
    const auto r = f.upload(bytes, "tone");
    INFO(r.message());
    REQUIRE(r.code() == pb::OK);
    pb::Clip c;
    REQUIRE(c.ParseFromString(r.payload()));
    REQUIRE(c.id() == 1);
    REQUIRE(c.name() == "tone");
    REQUIRE(c.zone_id().empty());  // local admin: global
    REQUIRE(c.sha256() == sha_of(bytes));
    REQUIRE(c.size_bytes() == bytes.size());
    REQUIRE(c.duration_ms() == 2000);
    REQUIRE(c.sample_rate() == 44100);
    REQUIRE(c.channels() == 2);
    REQUIRE(c.format() == "WAV");
    // A -20 dBFS 1 kHz sine measures -23 LUFS (BS.1770: 0 dBFS sine = -3.01 LUFS).
    REQUIRE(c.loudness_lufs() == Approx(-23.0).margin(0.3));
    // The content file under its final name, nothing else.
    REQUIRE(f.clip_dir() == std::vector<std::string>{c.sha256() + ".wav"});
    REQUIRE(std::filesystem::file_size(f.dir / "clips" / (c.sha256() + ".wav")) == bytes.size());
    // Listed, and announced.
    const auto l = f.ok<pb::ListClipsResponse>("ListClips", pb::ListClipsRequest());
    REQUIRE(l.clips_size() == 1);
    REQUIRE(l.clips(0).sha256() == c.sha256());
    std::uint64_t cursor = 0;
    const auto ev = f.service.events_for(Caller::local_admin(), 0, 100, cursor);
    REQUIRE(ev.size() == 1);
    REQUIRE(ev[0].kind() == pb::CLIP_ADDED);
    REQUIRE(ev[0].subject() == "clip/1");
    // The same file again in the same place: refused before any data moves.
    REQUIRE(f.upload(bytes, "again").code() == pb::ALREADY_EXISTS);
    REQUIRE(f.service.clip_catalog().upload_count() == 0);
}

TEST_CASE("clip_upload_with_wrong_sha256_is_invalid_argument_and_stores_nothing", "[control][clips]") {
    Fixture f;
    const auto bytes = sine_wav(f.dir / "tone.wav", 0.5, 0.1);
    const auto before = f.snapshot();
    const auto r = f.upload(bytes, "tone", {}, {}, std::string(64, '0'));
    REQUIRE(r.code() == pb::INVALID_ARGUMENT);
    REQUIRE(r.message().find("SHA-256") != std::string::npos);
    REQUIRE(f.snapshot() == before);
    REQUIRE(f.clip_dir().empty());
    REQUIRE(f.service.clip_catalog().upload_count() == 0);
    // Not hex at all: refused at Begin.
    REQUIRE(f.upload(bytes, "tone", {}, {}, "xyz").code() == pb::INVALID_ARGUMENT);
}

TEST_CASE("clip_chunk_over_1_mib_is_resource_exhausted", "[control][clips]") {
    Fixture f;
    const std::string big((1u << 20) + 1, 'x');
    pb::BeginClipUploadRequest b;
    b.set_name("big");
    b.set_total_size(big.size());
    b.set_sha256(sha_of(big));
    const auto began = f.ok<pb::BeginClipUploadResponse>("BeginClipUpload", b);
    REQUIRE(began.max_chunk_bytes() == 1u << 20);
    pb::UploadClipChunkRequest c;
    c.set_upload_id(began.upload_id());
    c.set_data(big);
    REQUIRE(f.call("UploadClipChunk", c).code() == pb::RESOURCE_EXHAUSTED);
    // Exactly 1 MiB is fine; a wrong offset is refused.
    c.set_data(big.substr(0, 1u << 20));
    REQUIRE(f.ok<pb::UploadClipChunkResponse>("UploadClipChunk", c).received_bytes() == 1u << 20);
    c.set_data("x");
    REQUIRE(f.call("UploadClipChunk", c).code() == pb::FAILED_PRECONDITION);
    // Too large a clip is refused at Begin.
    b.set_total_size(ClipCatalog::kMaxClipBytes + 1);
    REQUIRE(f.call("BeginClipUpload", b).code() == pb::RESOURCE_EXHAUSTED);
}

TEST_CASE("corrupt_audio_is_invalid_argument_and_stores_nothing", "[control][clips]") {
    Fixture f;
    const auto before = f.snapshot();
    std::string junk(50000, '\0');
    for (std::size_t i = 0; i < junk.size(); ++i) junk[i] = static_cast<char>((i * 7919u) & 0xFF);
    auto r = f.upload(junk, "junk");
    REQUIRE(r.code() == pb::INVALID_ARGUMENT);
    // A WAV cut in its header.
    const auto wav = sine_wav(f.dir / "tone.wav", 0.5, 0.1);
    r = f.upload(wav.substr(0, 20), "cut");
    REQUIRE(r.code() == pb::INVALID_ARGUMENT);
    REQUIRE(f.snapshot() == before);
    REQUIRE(f.clip_dir().empty());
}

TEST_CASE("idle_upload_expires_and_its_temp_file_goes", "[control][clips]") {
    Fixture f;
    const auto bytes = sine_wav(f.dir / "tone.wav", 0.5, 0.1);
    pb::BeginClipUploadRequest b;
    b.set_name("slow");
    b.set_total_size(bytes.size());
    b.set_sha256(sha_of(bytes));
    const auto began = f.ok<pb::BeginClipUploadResponse>("BeginClipUpload", b);
    REQUIRE(f.clip_dir().size() == 1);  // the temp file
    f.clock.advance(ClipCatalog::kIdleTimeoutNs + 1);
    f.ok<pb::ListClipsResponse>("ListClips", pb::ListClipsRequest());
    REQUIRE(f.clip_dir().empty());
    pb::UploadClipChunkRequest c;
    c.set_upload_id(began.upload_id());
    c.set_data(bytes);
    REQUIRE(f.call("UploadClipChunk", c).code() == pb::NOT_FOUND);
}

TEST_CASE("restart_removes_temp_and_unreferenced_files", "[control][clips]") {
    Fixture f;
    const auto bytes = sine_wav(f.dir / "tone.wav", 0.5, 0.1);
    REQUIRE(f.upload(bytes, "keep").code() == pb::OK);
    std::ofstream(f.dir / "clips" / ".upload-deadbeef.tmp") << "partial";
    std::ofstream(f.dir / "clips" / (std::string(64, 'b') + ".wav")) << "orphan";
    f.service_ptr.reset();
    f.service_ptr = std::make_unique<ControlService>(f.store, f.clock, 1000);
    REQUIRE(f.clip_dir() == std::vector<std::string>{sha_of(bytes) + ".wav"});
}

TEST_CASE("delete_clip_removes_row_and_file_unless_in_use", "[control][clips]") {
    Fixture f;
    f.zone("hn", pb::PROVINCE_ZONE, "");
    const auto bytes = sine_wav(f.dir / "tone.wav", 0.5, 0.1);
    REQUIRE(f.upload(bytes, "global").code() == pb::OK);
    REQUIRE(f.upload(bytes, "hn copy", {}, "hn").code() == pb::OK);  // same content, another owner
    REQUIRE(f.clip_dir().size() == 1);                                   // one file for both
    f.store.write([&] { f.store.add_clip_uses(1, 1); });
    pb::DeleteClipRequest d;
    d.set_id(1);
    const auto r = f.call("DeleteClip", d);
    REQUIRE(r.code() == pb::FAILED_PRECONDITION);
    REQUIRE(r.message().find("in use") != std::string::npos);
    f.store.write([&] { f.store.add_clip_uses(1, -1); });
    f.ok<pb::DeleteClipResponse>("DeleteClip", d);
    REQUIRE_FALSE(f.store.clip(1));
    REQUIRE(f.clip_dir().size() == 1);  // still used by clip 2
    d.set_id(2);
    f.ok<pb::DeleteClipResponse>("DeleteClip", d);
    REQUIRE(f.clip_dir().empty());
    REQUIRE(f.call("DeleteClip", d).code() == pb::NOT_FOUND);
}

// ---- authorisation matrix for the clip calls --------------------------------
// Same shape as control_test's: roles x {inside, outside} the caller's
// district; allowed -> OK and something changed, else PERMISSION_DENIED and
// nothing changed. Level plays no part for clips.

TEST_CASE("authorisation_matrix_clips", "[control][auth][clips]") {
    for (const auto role : {pb::VIEWER, pb::OPERATOR, pb::ADMIN}) {
        for (const bool inside : {true, false}) {
            for (const std::string method : {"UploadClip", "DeleteClip"}) {
                Fixture f;
                f.zone("hn", pb::PROVINCE_ZONE, "");
                f.zone("hn.bv", pb::DISTRICT_ZONE, "hn");
                f.zone("hn.bv.a", pb::COMMUNE_ZONE, "hn.bv");
                f.zone("hn.st", pb::DISTRICT_ZONE, "hn");
                f.zone("hn.st.a", pb::COMMUNE_ZONE, "hn.st");
                const std::string target = inside ? "hn.bv.a" : "hn.st.a";
                const auto tone = sine_wav(f.dir / "t.wav", 0.2, 0.1);
                REQUIRE(f.upload(tone, "victim", {}, target).code() == pb::OK);
                const auto tok = f.make_operator("caller", role, "hn.bv", pb::DISTRICT);
                const bool allowed = inside && role >= pb::OPERATOR;
                INFO(method << " role " << pb::Role_Name(role) << " inside " << inside);
                const auto before = f.snapshot();
                pb::Response r;
                if (method == "UploadClip") {
                    r = f.upload(sine_wav(f.dir / "u.wav", 0.3, 0.2), "new", tok, target);
                } else {
                    pb::DeleteClipRequest d;
                    d.set_id(1);
                    r = f.call("DeleteClip", d, tok);
                }
                INFO(pb::StatusCode_Name(r.code()) << ": " << r.message());
                loa::test::require_verdict(r, allowed, before, f.snapshot());
                if (!allowed) REQUIRE(f.service.clip_catalog().upload_count() == 0);
            }
        }
        // Global clips: only whole-network callers may add or delete them.
        Fixture f;
        f.zone("hn", pb::PROVINCE_ZONE, "");
        const auto tok = f.make_operator("caller", role, "hn", pb::DISTRICT);
        REQUIRE(f.upload(sine_wav(f.dir / "g.wav", 0.2, 0.1), "global").code() == pb::OK);
        pb::BeginClipUploadRequest b;
        b.set_name("x");
        b.set_total_size(10);
        b.set_sha256(std::string(64, 'c'));
        const auto r = f.call("BeginClipUpload", b, tok);  // lands in the caller's zone
        REQUIRE(r.code() == (role >= pb::OPERATOR ? pb::OK : pb::PERMISSION_DENIED));
        pb::DeleteClipRequest d;
        d.set_id(1);
        REQUIRE(f.call("DeleteClip", d, tok).code() == pb::PERMISSION_DENIED);
        // Everyone sees global clips.
        REQUIRE(f.ok<pb::ListClipsResponse>("ListClips", pb::ListClipsRequest(), tok).clips_size() == 1);
    }
}

TEST_CASE("scoped_caller_lists_its_subtree_and_global_clips", "[control][clips]") {
    Fixture f;
    f.zone("hn", pb::PROVINCE_ZONE, "");
    f.zone("hn.bv", pb::DISTRICT_ZONE, "hn");
    f.zone("hn.st", pb::DISTRICT_ZONE, "hn");
    REQUIRE(f.upload(sine_wav(f.dir / "a.wav", 0.2, 0.1), "global").code() == pb::OK);
    REQUIRE(f.upload(sine_wav(f.dir / "b.wav", 0.2, 0.2), "bv", {}, "hn.bv").code() == pb::OK);
    REQUIRE(f.upload(sine_wav(f.dir / "c.wav", 0.2, 0.3), "st", {}, "hn.st").code() == pb::OK);
    const auto tok = f.make_operator("v", pb::VIEWER, "hn.bv", pb::DISTRICT);
    const auto l = f.ok<pb::ListClipsResponse>("ListClips", pb::ListClipsRequest(), tok);
    std::set<std::string> names;
    for (const auto& c : l.clips()) names.insert(c.name());
    REQUIRE(names == std::set<std::string>{"global", "bv"});
    // The event of the other district's clip is not shown to it either.
    std::uint64_t cursor = 0;
    const auto ev = f.service.events_for(Caller{"v", Role::Viewer, "hn.bv", Priority::District}, 0, 100, cursor);
    int clip_events = 0;
    for (const auto& e : ev) clip_events += e.kind() == pb::CLIP_ADDED ? 1 : 0;
    REQUIRE(clip_events == 2);
}
