// Engine: the stats snapshot (fan-out, programmes, clusters, ingress,
// ingest, studios, process usage) and its JSON form.
#include <sys/resource.h>

#include <algorithm>

#include <google/protobuf/util/json_util.h>

#include "engine_internal.h"
#include "loa/engine/v1/stats.pb.h"

namespace loa::engine {

namespace {
std::string endpoint_text(const std::optional<udp::endpoint>& ep) {
    if (!ep) return {};
    return ep->address().to_string() + ":" + std::to_string(ep->port());
}
}  // namespace

std::string Engine::stats_json() const {
    loa::engine::v1::EngineStats s;
    stats(s);
    std::string out;
    google::protobuf::util::JsonPrintOptions opts;
    opts.preserve_proto_field_names = true;
    opts.always_print_primitive_fields = true;
    (void)google::protobuf::util::MessageToJsonString(s, &out, opts);
    return out;
}

void Engine::stats(loa::engine::v1::EngineStats& s, bool with_clusters) const {
    namespace pb = loa::engine::v1;
    s.Clear();
    s.set_uptime_ms(((running_ ? clock_.now_ns() : stopped_ns_) - started_ns_) / 1'000'000);
    const auto fs = fanout_->stats();
    auto* f = s.mutable_fanout();
    f->set_packets_submitted(fs.packets_submitted);
    f->set_datagrams_sent(fs.datagrams_sent);
    f->set_send_errors(fs.send_errors);
    f->set_frames_dropped(fs.frames_dropped);
    f->set_frames_missed(fs.frames_missed);
    f->set_sendmmsg_calls(fs.sendmmsg_calls);
    f->set_datagrams_dropped(fs.datagrams_dropped);
    f->set_threads(static_cast<std::uint32_t>(config_.engine.fanout_threads));
    const auto& spread = fanout_->spread();
    auto* sd = f->mutable_spread_us();
    sd->set_count(spread.count());
    sd->set_p50(spread.quantile(0.5));
    sd->set_p99(spread.quantile(0.99));
    sd->set_max(spread.max());

    std::vector<const Program*> all;
    for (const auto& p : programs_) all.push_back(p.get());
    for (const auto& [group, p] : runtime_) {
        if (!runtime_removed_.at(group)) all.push_back(p.get());
    }
    for (const Program* p : all) {
        auto* ps = s.add_programs();
        const auto& c = p->counters();
        ps->set_name(p->config().name);
        ps->set_ssrc(p->ssrc());
        ps->set_frames_encoded(c.frames_encoded.load());
        ps->set_encode_errors(c.encode_errors.load());
        ps->set_frames_late(c.frames_late.load());
        ps->set_frames_skipped(c.frames_skipped.load());
        ps->set_frames_dropped(c.frames_dropped.load());
        ps->set_sr_sent(c.sr_sent.load());
        std::uint64_t underruns = 0;
        for (const auto& src : p->sources()) underruns += src->counters().underruns.load();
        ps->set_source_underruns(underruns);
        ps->set_destinations(static_cast<std::uint32_t>(fanout_->destination_count(p->group())));
        auto* e = ps->mutable_encode_us();
        e->set_count(c.encode_us.count());
        e->set_p50(c.encode_us.quantile(0.5));
        e->set_p99(c.encode_us.quantile(0.99));
        e->set_max(c.encode_us.max());
    }

    s.set_clusters_known(registry_.size());
    s.set_clusters_online(registry_.online_count());
    for (const auto& c : with_clusters ? registry_.snapshot() : std::vector<ClusterSnapshot>{}) {
        auto* cs = s.add_clusters();
        cs->set_id(c.id);
        const auto& addr = c.report_address ? *c.report_address : c.configured_address;
        cs->set_address(addr.address().to_string() + ":" + std::to_string(addr.port()));
        cs->set_online(c.online);
        cs->set_last_report_unix_ms(c.last_report_unix_ns / 1'000'000);
        cs->set_reports(c.reports);
        cs->set_fraction_lost(c.fraction_lost);
        cs->set_cumulative_lost(static_cast<std::uint32_t>(std::max(0, c.cumulative_lost)));
        cs->set_jitter_ms(c.jitter_rtp / 48);
        if (c.has_status) {
            cs->set_playing_ssrc(c.status.playing_ssrc);
            cs->set_volume_pct(c.status.volume_pct);
            cs->set_amplifier_on(c.status.amplifier_on);
            cs->set_buffer_delay_ms(c.status.buffer_delay_ms);
            cs->set_packets_received(c.status.packets_received);
            cs->set_packets_late(c.status.packets_late);
            cs->set_packets_malformed(c.status.packets_malformed);
            cs->set_frames_concealed(c.status.frames_concealed);
        }
    }

    auto* in = s.mutable_ingress();
    in->set_rtcp_received(ingress_.rtcp_received.load());
    in->set_rtcp_malformed(ingress_.rtcp_malformed.load());
    in->set_rtcp_unknown_cluster(ingress_.rtcp_unknown_cluster.load());
    in->set_rtcp_no_cname(ingress_.rtcp_no_cname.load());
    in->set_rtp_unexpected(ingress_.rtp_unexpected.load());
    in->set_receive_errors(ingress_.receive_errors.load());

    auto* ig = s.mutable_ingest();
    ig->set_received(ingest_.received.load());
    ig->set_accepted(ingest_.accepted.load());
    ig->set_malformed(ingest_.malformed.load());
    ig->set_rtcp(ingest_.rtcp.load());
    ig->set_unknown_studio(ingest_.unknown_studio.load());
    ig->set_foreign_address(ingest_.foreign_address.load());
    ig->set_queue_full(ingest_.queue_full.load());
    ig->set_receive_errors(ingest_.receive_errors.load());
    ig->set_idle(ingest_.idle.load());

    for (const auto* list : {&studios_, &runtime_studios_}) {
        for (const auto& st : *list) fill_studio_stats(*st, *s.add_studios());
    }

    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    s.set_max_rss_kib(static_cast<std::uint64_t>(ru.ru_maxrss));
    s.set_cpu_user_s(static_cast<double>(ru.ru_utime.tv_sec) + static_cast<double>(ru.ru_utime.tv_usec) / 1e6);
    s.set_cpu_system_s(static_cast<double>(ru.ru_stime.tv_sec) + static_cast<double>(ru.ru_stime.tv_usec) / 1e6);
}

void Engine::fill_studio_stats(const Studio& st, loa::engine::v1::StudioStats& ss) const {
    ss.Clear();
    ss.set_name(st.config.name);
    if (!st.runtime) {
        ss.set_program(st.config.program);
    } else if (!st.feeding.empty()) {
        // The first programme that took it (its playout is the one shown).
        const auto group = st.feeding.front().group;
        if (auto it = runtime_.find(group); it != runtime_.end()) ss.set_program(it->second->config().name);
    }
    ss.set_readers(static_cast<std::uint32_t>(st.feed.readers()));
    ss.set_latched_address(endpoint_text(st.feed.latched_address()));
    const auto& fc = st.feed.counters();
    ss.set_accepted(fc.accepted.load());
    ss.set_foreign_address(fc.foreign_address.load());
    ss.set_queue_full(fc.queue_full.load());
    ss.set_relatched(fc.relatched.load());
    const StudioSource* shown = st.shown();
    if (shown == nullptr) return;
    ss.set_live(shown->live());
    const auto& ps = shown->playout_stats();
    ss.set_received(ps.received.load());
    ss.set_lost(ps.lost.load());
    ss.set_recovered_fec(ps.recovered_fec.load());
    ss.set_concealed(ps.concealed.load());
    ss.set_late(ps.late.load());
    ss.set_duplicate(ps.duplicate.load());
    ss.set_reordered(ps.reordered.load());
    ss.set_underruns(ps.underruns.load());
    ss.set_overflows(ps.overflows.load());
    ss.set_current_delay_ms(ps.current_delay_ms.load());
    ss.set_target_delay_ms(ps.target_delay_ms.load());
    ss.set_drift_ppm(ps.drift_ppm.load());
    ss.set_playing_ssrc(ps.ssrc.load());
    const auto& sc = shown->studio_counters();
    ss.set_fallback_frames(sc.fallback_frames.load());
    ss.set_went_silent(sc.went_silent.load());
}

}  // namespace loa::engine
