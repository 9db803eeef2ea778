// Fuzz target for RtpView::parse. On Ok, checks every span lies inside the
// input, then rebuilds the packet with write_rtp from the parsed fields and
// RFC 8285 elements and checks the re-parse agrees. Aborts on any mismatch.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <vector>

#include "loa/transport/rtp_packet.h"

using namespace loa::transport;

#define FUZZ_CHECK(cond)                                                        \
    do {                                                                        \
        if (!(cond)) {                                                          \
            std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            std::abort();                                                       \
        }                                                                       \
    } while (0)

namespace {

bool inside(std::span<const std::uint8_t> inner, const std::uint8_t* data, std::size_t size) {
    if (inner.empty()) return true;
    return inner.data() >= data && inner.data() + inner.size() <= data + size;
}

bool same(std::span<const std::uint8_t> a, std::span<const std::uint8_t> b) {
    return std::equal(a.begin(), a.end(), b.begin(), b.end());
}

constexpr std::size_t kMaxElements = 512;

/// Collects the RFC 8285 elements of `v`; false if there are more than fit.
bool collect(const RtpView& v, std::array<RtpExtensionElement, kMaxElements>& out, std::size_t& n) {
    n = 0;
    RtpExtensionReader r = v.extensions();
    RtpExtensionElement e;
    while (r.next(e)) {
        if (n == out.size()) return false;
        out[n++] = e;
    }
    FUZZ_CHECK(!r.malformed());  // parse() already rejected malformed blocks
    return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::span<const std::uint8_t> in(data, size);
    RtpView v;
    if (RtpView::parse(in, v) != Status::Ok) return 0;

    FUZZ_CHECK(size >= kRtpHeaderSize);
    FUZZ_CHECK(v.bytes().data() == data && v.bytes().size() == size);
    FUZZ_CHECK(inside(v.payload(), data, size));
    FUZZ_CHECK(inside(v.extension_data(), data, size));
    FUZZ_CHECK(v.csrc_count() <= 15);
    FUZZ_CHECK(kRtpHeaderSize + v.csrc_count() * 4 + v.payload().size() <= size);
    FUZZ_CHECK(!looks_like_rtcp(in));

    static std::array<RtpExtensionElement, kMaxElements> elements;
    std::size_t n = 0;
    if (!collect(v, elements, n)) return 0;
    for (std::size_t i = 0; i < n; ++i) {
        FUZZ_CHECK(elements[i].id != 0);
        FUZZ_CHECK(inside(elements[i].data, data, size));
        const auto found = v.find_extension(elements[i].id);
        FUZZ_CHECK(found.has_value());
        // find_extension returns the first element with that id.
        std::size_t first = 0;
        while (elements[first].id != elements[i].id) ++first;
        FUZZ_CHECK(found->data() == elements[first].data.data());
    }

    std::array<std::uint32_t, 15> csrcs{};
    for (std::size_t i = 0; i < v.csrc_count(); ++i) csrcs[i] = v.csrc(i);
    RtpHeaderFields h;
    h.marker = v.marker();
    h.payload_type = v.payload_type();
    h.sequence = v.sequence();
    h.timestamp = v.timestamp();
    h.ssrc = v.ssrc();
    h.csrcs = std::span(csrcs).first(v.csrc_count());

    // The rebuilt packet is never larger than the input: padding is dropped and
    // the extension block only shrinks (padding bytes gone, one-byte form kept).
    std::vector<std::uint8_t> out(size);
    std::size_t written = 0;
    const auto ext = std::span<const RtpExtensionElement>(elements).first(n);
    const Status ws = write_rtp(out, h, ext, v.payload(), written);
    FUZZ_CHECK(ws == Status::Ok);
    FUZZ_CHECK(written <= size);

    RtpView w;
    FUZZ_CHECK(RtpView::parse(std::span(out).first(written), w) == Status::Ok);
    FUZZ_CHECK(w.marker() == v.marker());
    FUZZ_CHECK(w.payload_type() == v.payload_type());
    FUZZ_CHECK(w.sequence() == v.sequence());
    FUZZ_CHECK(w.timestamp() == v.timestamp());
    FUZZ_CHECK(w.ssrc() == v.ssrc());
    FUZZ_CHECK(w.csrc_count() == v.csrc_count());
    for (std::size_t i = 0; i < v.csrc_count(); ++i) FUZZ_CHECK(w.csrc(i) == v.csrc(i));
    FUZZ_CHECK(!w.has_padding());
    FUZZ_CHECK(same(w.payload(), v.payload()));
    FUZZ_CHECK(w.has_extension() == (n > 0));

    static std::array<RtpExtensionElement, kMaxElements> again;
    std::size_t m = 0;
    FUZZ_CHECK(collect(w, again, m));
    FUZZ_CHECK(m == n);
    for (std::size_t i = 0; i < n; ++i) {
        FUZZ_CHECK(again[i].id == elements[i].id);
        FUZZ_CHECK(same(again[i].data, elements[i].data));
    }
    return 0;
}
