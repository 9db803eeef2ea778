#!/usr/bin/env python3
"""Writes the seed corpora of the rtp, rtcp and cluster_status fuzz targets
into tests/fuzz/corpus/<name>/. Run once from anywhere; rewrites the seeds."""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(bytes(data))


def rtp(pt=111, marker=0, seq=1000, ts=48000, ssrc=0x11223344, csrcs=(), ext=None, payload=b"",
        pad=0, version=2, cc=None):
    cc = len(csrcs) if cc is None else cc
    b0 = (version << 6) | (0x20 if pad else 0) | (0x10 if ext is not None else 0) | cc
    out = struct.pack("!BBHII", b0, (marker << 7) | pt, seq, ts, ssrc)
    for c in csrcs:
        out += struct.pack("!I", c)
    if ext is not None:
        profile, block = ext
        block += b"\0" * (-len(block) % 4)
        out += struct.pack("!HH", profile, len(block) // 4) + block
    out += payload
    if pad:
        out += b"\0" * (pad - 1) + bytes([pad])
    return out


def rtcp_hdr(count, ptype, body, padding=False, version=2):
    return struct.pack("!BBH", (version << 6) | (0x20 if padding else 0) | count, ptype,
                       (len(body) + 4) // 4 - 1) + body


def block(ssrc):
    return struct.pack("!IB3sIIII", ssrc, 12, (-5 & 0xFFFFFF).to_bytes(3, "big"), 70000, 30, 0xABCD1234, 655)


def sdes_chunk(ssrc, items):
    c = struct.pack("!I", ssrc)
    for t, v in items:
        c += bytes([t, len(v)]) + v
    c += b"\0"
    return c + b"\0" * (-len(c) % 4)


def status_v1(version=1):
    return struct.pack("!BBBBHHIIIIIIII", version, 1, 80, 0, 120, 0, 0xCAFEBABE, 1000, 5, 2, 0, 7, 1, 3600)


def main():
    opus = bytes(range(0x78, 0x78 + 40))
    # RTP: valid shapes
    write("rtp", "plain", rtp(payload=opus))
    write("rtp", "marker_csrcs", rtp(marker=1, csrcs=(1, 2, 3), payload=opus))
    write("rtp", "one_byte_ext", rtp(ext=(0xBEDE, b"\x10\x03\x00\x00\x22\xaa\xbb\xcc\xf0"), payload=opus))
    write("rtp", "two_byte_ext", rtp(ext=(0x1000, b"\x01\x01\x03\x00\xc8\x00\x0f\x02\xaa\xbb"), payload=opus))
    write("rtp", "opaque_ext", rtp(ext=(0x1234, b"\x01\x02\x03\x04"), payload=opus))
    write("rtp", "padded", rtp(payload=opus, pad=4))
    write("rtp", "header_only", rtp())
    # RTP: malformed shapes
    write("rtp", "bad_version", rtp(version=1, payload=opus))
    write("rtp", "truncated", rtp(payload=opus)[:7])
    write("rtp", "csrc_past_end", rtp(cc=5, payload=b"\0" * 8))
    write("rtp", "ext_past_end", rtp(payload=opus, ext=(0xBEDE, b"\x10\x01"))[:18])
    write("rtp", "pad_zero", bytes([0xA0]) + rtp(payload=opus + b"\0")[1:])
    write("rtp", "pad_too_big", bytes([0xA0]) + rtp(payload=b"\x01\x02\xff")[1:])
    write("rtp", "rtcp_sr", rtcp_hdr(0, 200, struct.pack("!IQIII", 1, 0, 0, 0, 0)))

    # RTCP: valid compounds
    sr = rtcp_hdr(1, 200, struct.pack("!IQIII", 0xAABBCCDD, 0xE93C7F0080000000, 48000, 50, 6000) + block(7))
    rr = rtcp_hdr(2, 201, struct.pack("!I", 0x01020304) + block(1) + block(2))
    sdes = rtcp_hdr(2, 202, sdes_chunk(0x01020304, [(2, b"name"), (1, b"cluster-7"), (6, b"loa")]) +
                    sdes_chunk(0x99, [(1, b"x")]))
    app = rtcp_hdr(1, 204, struct.pack("!I", 0x01020304) + b"LOAS" + status_v1())
    bye = rtcp_hdr(1, 203, struct.pack("!I", 0x01020304) + b"\x03bye")
    nack = rtcp_hdr(1, 205, struct.pack("!IIHH", 1, 2, 100, 0))
    write("rtcp", "sr_sdes_app", sr + sdes + app)
    write("rtcp", "rr_sdes_app_status", rr + sdes + app)
    write("rtcp", "rr_bye", rr + bye)
    write("rtcp", "rr_unknown_205", rr + nack + bye)
    write("rtcp", "rr_padded_last", rr + rtcp_hdr(1, 203, struct.pack("!I", 5) + b"\0\0\0\x04", padding=True))
    # RTCP: malformed
    write("rtcp", "truncated_header", rr + b"\x81\xcb")
    write("rtcp", "length_past_end", rr[:-4])
    write("rtcp", "bad_version_second", rr + bytes([0x41]) + bye[1:])
    write("rtcp", "first_not_report", bye + rr)
    write("rtcp", "sdes_item_past_chunk", rr + rtcp_hdr(1, 202, struct.pack("!I", 1) + b"\x01\x09ab"))
    write("rtcp", "padding_not_last", rtcp_hdr(0, 201, struct.pack("!I", 1) + b"\0\0\0\x04", padding=True) + bye)

    # Cluster status
    write("cluster_status", "v1", status_v1())
    write("cluster_status", "v2_longer", status_v1(2) + b"\x01\x02\x03\x04")
    write("cluster_status", "truncated", status_v1()[:20])
    write("cluster_status", "version0", status_v1(0))
    write("cluster_status", "empty", b"")


if __name__ == "__main__":
    main()
