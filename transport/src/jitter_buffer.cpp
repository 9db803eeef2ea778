#include "loa/transport/jitter_buffer.h"

#include <algorithm>
#include <array>
#include <cstring>

namespace loa::transport {

struct JitterBuffer::Slot {
    enum class Use : std::uint8_t { Free, Held, Played };

    std::array<std::uint8_t, kMaxRtpPacket> data{};
    std::size_t size = 0;
    std::int64_t ext = 0;
    std::uint32_t timestamp = 0;
    std::uint32_t ssrc = 0;
    std::uint16_t sequence = 0;
    bool marker = false;
    Use use = Use::Free;

    JitterPacket view() const noexcept {
        JitterPacket p;
        p.payload = std::span<const std::uint8_t>(data.data(), size);
        p.ext_seq = ext;
        p.timestamp = timestamp;
        p.ssrc = ssrc;
        p.sequence = sequence;
        p.marker = marker;
        return p;
    }
};

JitterBuffer::JitterBuffer(const JitterBufferConfig& config)
    : config_(config),
      capacity_(std::max<std::size_t>(config.capacity, 2)),
      slots_(std::make_unique<Slot[]>(capacity_)),
      packet_samples_(config.default_packet_samples > 0 ? config.default_packet_samples : 960) {
    update_target();
}

JitterBuffer::~JitterBuffer() = default;

JitterBuffer::Slot& JitterBuffer::slot_of(std::int64_t ext) noexcept {
    const auto cap = static_cast<std::int64_t>(capacity_);
    return slots_[static_cast<std::size_t>(((ext % cap) + cap) % cap)];
}

const JitterBuffer::Slot& JitterBuffer::slot_of(std::int64_t ext) const noexcept {
    const auto cap = static_cast<std::int64_t>(capacity_);
    return slots_[static_cast<std::size_t>(((ext % cap) + cap) % cap)];
}

bool JitterBuffer::holds(std::int64_t ext) const noexcept {
    const Slot& s = slot_of(ext);
    return s.use == Slot::Use::Held && s.ext == ext;
}

void JitterBuffer::clear_slots() noexcept {
    for (std::size_t i = 0; i < capacity_; ++i) {
        slots_[i].use = Slot::Use::Free;
        slots_[i].size = 0;
    }
}

void JitterBuffer::flush() noexcept {
    clear_slots();
    unwrapper_.reset();
    state_ = State::Idle;
    has_stream_ = false;
    played_any_ = false;
    any_stored_ = false;
    fill_started_ = false;
    has_last_ = false;
    ssrc_ = 0;
    has_prev_ssrc_ = false;
}

void JitterBuffer::start_stream(std::uint32_t ssrc, std::int64_t now_ns) noexcept {
    if (has_stream_) {
        prev_ssrc_ = ssrc_;
        has_prev_ssrc_ = true;
    }
    clear_slots();
    unwrapper_.reset();
    has_stream_ = true;
    ssrc_ = ssrc;
    switch_ns_ = now_ns;
    state_ = State::Buffering;
    played_any_ = false;
    any_stored_ = false;
    fill_started_ = false;
    has_last_ = false;
    ++stats_.ssrc_changes;
}

void JitterBuffer::update_target() noexcept {
    const std::int64_t delay_samples =
        static_cast<std::int64_t>(std::max(config_.target_delay_ms, 0)) * config_.clock_rate / 1000;
    const auto per = static_cast<std::int64_t>(packet_samples_);
    std::int64_t packets = (delay_samples + per - 1) / per;
    packets = std::clamp<std::int64_t>(packets, 1, static_cast<std::int64_t>(capacity_) - 1);
    target_packets_ = static_cast<std::size_t>(packets);
}

void JitterBuffer::learn_packet_time(std::int64_t ext, std::uint32_t timestamp) noexcept {
    if (has_last_ && ext > last_ext_ && ext - last_ext_ <= 4) {
        const auto d = static_cast<std::uint32_t>(ext - last_ext_);
        const std::uint32_t diff = timestamp - last_ts_;  // modulo 2^32
        if (diff % d == 0) {
            const std::uint32_t per = diff / d;
            const auto min_per = static_cast<std::uint32_t>(config_.clock_rate / 400);        // 2.5 ms
            const auto max_per = static_cast<std::uint32_t>(config_.clock_rate * 120 / 1000);  // 120 ms
            if (per >= min_per && per <= max_per && per != packet_samples_) {
                packet_samples_ = per;
                update_target();
            }
        }
    }
    if (!has_last_ || ext > last_ext_) {
        last_ext_ = ext;
        last_ts_ = timestamp;
        has_last_ = true;
    }
}

void JitterBuffer::store(const RtpView& packet, std::int64_t ext) noexcept {
    Slot& s = slot_of(ext);
    const auto payload = packet.payload();
    const std::size_t n = std::min(payload.size(), s.data.size());
    if (n > 0) std::memcpy(s.data.data(), payload.data(), n);
    s.size = n;
    s.ext = ext;
    s.timestamp = packet.timestamp();
    s.ssrc = packet.ssrc();
    s.sequence = packet.sequence();
    s.marker = packet.marker();
    s.use = Slot::Use::Held;
    if (!any_stored_ || ext > highest_) highest_ = ext;
    any_stored_ = true;
    ++stats_.accepted;
}

JitterPush JitterBuffer::push(const RtpView& packet, std::int64_t now_ns) noexcept {
    const std::uint32_t ssrc = packet.ssrc();
    if (!has_stream_ || ssrc != ssrc_) {
        if (has_stream_ && has_prev_ssrc_ && ssrc == prev_ssrc_ && !packet.marker() &&
            now_ns - switch_ns_ < config_.stale_ssrc_guard_ns) {
            ++stats_.late;
            return JitterPush::Late;
        }
        start_stream(ssrc, now_ns);
        const std::int64_t ext = unwrapper_.unwrap(packet.sequence());
        play_pos_ = ext;
        store(packet, ext);
        fill_start_ns_ = now_ns;
        fill_started_ = true;
        learn_packet_time(ext, packet.timestamp());
        return JitterPush::NewStream;
    }

    const std::int64_t ext = unwrapper_.unwrap(packet.sequence());
    const auto cap = static_cast<std::int64_t>(capacity_);

    if (ext < play_pos_) {
        if (state_ == State::Buffering && !played_any_ && any_stored_ && ext > highest_ - cap) {
            // Reordered ahead of the stream's first packet, before playout began.
            play_pos_ = ext;
        } else {
            const Slot& s = slot_of(ext);
            if (s.use != Slot::Use::Free && s.ext == ext) {
                ++stats_.duplicate;
                return JitterPush::Duplicate;
            }
            ++stats_.late;
            return JitterPush::Late;
        }
    } else if (holds(ext)) {
        ++stats_.duplicate;
        return JitterPush::Duplicate;
    }
    const bool reordered = any_stored_ && ext < highest_;

    if (any_stored_ && ext > highest_ + cap) {
        // Sequence jump beyond the whole window: resynchronise on this packet.
        for (std::size_t i = 0; i < capacity_; ++i) {
            if (slots_[i].use == Slot::Use::Held) ++stats_.overflow;
        }
        clear_slots();
        play_pos_ = ext;
        any_stored_ = false;
        played_any_ = false;
        state_ = State::Buffering;
        fill_started_ = false;
    } else if (ext >= play_pos_ + cap) {
        // Too far ahead of the play position: push the oldest out.
        const std::int64_t new_pos = ext - cap + 1;
        for (std::int64_t p = play_pos_; p < new_pos; ++p) {
            Slot& s = slot_of(p);
            if (s.use == Slot::Use::Held && s.ext == p) {
                ++stats_.overflow;
                s.use = Slot::Use::Free;
            }
        }
        play_pos_ = new_pos;
        played_any_ = true;
    }

    store(packet, ext);
    if (reordered) ++stats_.reordered;
    if (state_ == State::Buffering && !fill_started_) {
        fill_start_ns_ = now_ns;
        fill_started_ = true;
    }
    learn_packet_time(ext, packet.timestamp());
    return JitterPush::Accepted;
}

bool JitterBuffer::ready_to_play(std::int64_t now_ns) const noexcept {
    if (!fill_started_ || !any_stored_ || highest_ < play_pos_) return false;
    const auto span = static_cast<std::size_t>(highest_ - play_pos_ + 1);
    if (span >= target_packets_) return true;
    const std::int64_t delay_ns = static_cast<std::int64_t>(config_.target_delay_ms) * 1'000'000;
    return now_ns - fill_start_ns_ >= delay_ns;
}

JitterPop JitterBuffer::pop(std::int64_t now_ns, JitterPacket& out) noexcept {
    if (state_ == State::Idle) return JitterPop::Buffering;
    if (state_ == State::Buffering) {
        if (!config_.owner_paced && !ready_to_play(now_ns)) return JitterPop::Buffering;
        std::int64_t p = play_pos_;
        while (p <= highest_ && !holds(p)) ++p;
        if (p > highest_) return JitterPop::Buffering;
        if (played_any_) stats_.lost += static_cast<std::uint64_t>(p - play_pos_);
        play_pos_ = p;
        state_ = State::Playing;
        played_any_ = true;
    }

    if (holds(play_pos_)) {
        Slot& s = slot_of(play_pos_);
        out = s.view();
        s.use = Slot::Use::Played;
        ++play_pos_;
        ++stats_.played;
        return JitterPop::Packet;
    }
    if (any_stored_ && highest_ > play_pos_) {
        ++play_pos_;
        ++stats_.lost;
        return JitterPop::Missing;
    }
    if (config_.owner_paced) return JitterPop::Empty;  // the owner decides what a dry buffer means
    ++stats_.underruns;
    state_ = State::Buffering;
    fill_started_ = false;
    return JitterPop::Empty;
}

std::optional<JitterPacket> JitterBuffer::peek_next() const noexcept {
    if (!has_stream_ || !holds(play_pos_)) return std::nullopt;
    return slot_of(play_pos_).view();
}

std::size_t JitterBuffer::buffered_packets() const noexcept {
    if (!has_stream_ || !any_stored_ || highest_ < play_pos_) return 0;
    return static_cast<std::size_t>(highest_ - play_pos_ + 1);
}

std::optional<JitterPacket> JitterBuffer::newest() const noexcept {
    if (!has_stream_ || !any_stored_ || !holds(highest_)) return std::nullopt;
    return slot_of(highest_).view();
}

int JitterBuffer::buffered_ms() const noexcept {
    const auto samples = static_cast<std::int64_t>(buffered_packets()) * packet_samples_;
    return static_cast<int>(samples * 1000 / config_.clock_rate);
}

}  // namespace loa::transport
