#include "loa/engine/studio_source.h"

#include <algorithm>
#include <stdexcept>

#include "loa/transport/rtp_packet.h"

namespace loa::engine {

namespace {
constexpr auto kRelaxed = std::memory_order_relaxed;
}  // namespace

StudioSource::StudioSource(StudioFeed& feed, const Clock& clock, std::size_t frame_samples,
                           std::unique_ptr<Source> fallback, const PlayoutConfig& playout,
                           std::int64_t silent_after_ns)
    : feed_(feed),
      clock_(clock),
      playout_(std::make_unique<Playout>(playout)),
      fallback_(std::move(fallback)),
      silent_after_ns_(silent_after_ns),
      description_("studio " + feed.match().name),
      scratch_(frame_samples),
      created_ns_(clock.now_ns()) {
    // Last, so that nothing can throw once the slot is held.
    attachment_ = feed.attach();
    if (!attachment_) {
        throw std::runtime_error("studio '" + feed.match().name + "' already feeds " +
                                 std::to_string(StudioFeed::kMaxReaders) +
                                 " programmes or alerts, the most one studio can feed at once");
    }
}

StudioSource::~StudioSource() { (void)feed_.detach(attachment_); }

void StudioSource::render_live(std::span<float> out, std::int64_t now_ns) noexcept {
    playout_->render(out, now_ns);
    counters_studio_.live_frames.fetch_add(1, kRelaxed);
}

void StudioSource::render_fallback(std::span<float> out) noexcept {
    if (fallback_) {
        (void)fallback_->render(out);  // a looped clip; silent if it cannot be read
    } else {
        std::fill(out.begin(), out.end(), 0.0f);
    }
    counters_studio_.fallback_frames.fetch_add(1, kRelaxed);
}

bool StudioSource::render(std::span<float> out) noexcept {
    const std::int64_t now = clock_.now_ns();

    // Everything the ingest thread queued for this reader since the last
    // tick (once detached, the slot may be another source's: left alone).
    bool arrived = false;
    IngestPacket* packet = nullptr;
    StudioFeed::Reader& reader = *attachment_.reader;
    while (attachment_.current() && reader.take(packet)) {
        if (packet->arrival_ns < created_ns_) {
            counters_studio_.stale.fetch_add(1, kRelaxed);
            reader.give_back(packet);
            continue;
        }
        transport::RtpView v;
        if (transport::RtpView::parse(packet->bytes(), v) == transport::Status::Ok) {
            if (playout_->push(v, packet->arrival_ns) != PlayoutPush::Malformed) {
                arrived = true;
                last_packet_ns_ = std::max(last_packet_ns_, packet->arrival_ns);
            }
        } else {
            counters_studio_.malformed.fetch_add(1, kRelaxed);
        }
        reader.give_back(packet);
    }

    const bool was_live = live_;
    if (!live_ && arrived) {
        live_ = true;
        counters_studio_.resumed.fetch_add(1, kRelaxed);
    } else if (live_ && !arrived &&
               now - last_packet_ns_ >=
                   silent_after_ns_ +
                       static_cast<std::int64_t>(playout_->stats().target_delay_ms.load(kRelaxed)) * 1'000'000) {
        // Silent, and the last packet has played out (it was due about one
        // target delay after it arrived): start afresh when the studio comes back.
        live_ = false;
        playout_->flush();
        counters_studio_.went_silent.fetch_add(1, kRelaxed);
    }
    counters_studio_.live.store(live_, kRelaxed);

    const std::size_t n = std::min(out.size(), scratch_.size());
    const std::span<float> block = out.first(n);
    std::fill(out.begin() + static_cast<std::ptrdiff_t>(n), out.end(), 0.0f);
    if (lead_in_ && !lead_in_over_) {
        if (lead_in_->render(block)) {
            // The studio runs on at the live edge, unheard.
            if (live_) playout_->render(std::span<float>(scratch_.data(), n), now);
            counters_studio_.lead_in_frames.fetch_add(1, kRelaxed);
            counters_.frames.fetch_add(1, kRelaxed);
            return true;
        }
        lead_in_over_ = true;
        counters_studio_.lead_in_done.store(true, kRelaxed);
    }
    if (live_ == was_live) {
        if (live_) {
            render_live(block, now);
        } else {
            render_fallback(block);
        }
    } else {
        // Crossfade from what played until now to what plays next.
        const std::span<float> old_side(scratch_.data(), n);
        if (was_live) {
            render_live(old_side, now);
            render_fallback(block);
        } else {
            render_fallback(old_side);
            render_live(block, now);
        }
        const float step = n > 1 ? 1.0f / static_cast<float>(n - 1) : 1.0f;
        for (std::size_t i = 0; i < n; ++i) {
            const float g = static_cast<float>(i) * step;
            block[i] = g * block[i] + (1.0f - g) * old_side[i];
        }
    }
    counters_.frames.fetch_add(1, kRelaxed);
    return true;
}

}  // namespace loa::engine
