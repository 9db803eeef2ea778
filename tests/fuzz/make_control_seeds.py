#!/usr/bin/env python3
"""Writes the seed corpus of the control_frame fuzz target into
tests/fuzz/corpus/control_frame/: varint-delimited loa.control.v1.Envelope
frames, encoded by hand so no generated code is needed."""
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def field_varint(num, v):
    return varint(num << 3) + varint(v)


def field_bytes(num, b):
    if isinstance(b, str):
        b = b.encode()
    return varint((num << 3) | 2) + varint(len(b)) + b


def envelope(rid, method, payload=b"", token="", deadline=0):
    body = field_varint(1, rid) + field_bytes(2, method)
    if deadline:
        body += field_varint(3, deadline)
    if token:
        body += field_bytes(4, token)
    if payload:
        body += field_bytes(5, payload)
    return varint(len(body)) + body


def write(name, data):
    d = os.path.join(HERE, "corpus", "control_frame")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


province = field_bytes(1, "hn") + field_bytes(2, "Ha Noi") + field_varint(3, 1)
district = field_bytes(1, "hn.bv") + field_bytes(2, "Ba Vi") + field_varint(3, 2) + field_bytes(4, "hn")
cluster = field_bytes(1, "c1") + field_bytes(3, "hn.bv") + field_bytes(4, "127.0.0.1:7000")
operator = field_bytes(1, "op") + field_varint(2, 2) + field_bytes(3, "hn.bv") + field_varint(4, 3)

write("status", envelope(1, "GetStatus"))
write("zones", envelope(1, "CreateZone", province) + envelope(2, "CreateZone", district) +
      envelope(3, "ListZones") + envelope(4, "RenameZone", field_bytes(1, "hn.bv") + field_bytes(2, "BV")))
write("clusters", envelope(1, "CreateZone", province) + envelope(2, "CreateZone", district) +
      envelope(3, "RegisterCluster", cluster) + envelope(4, "ListClusters", field_varint(2, 1)) +
      envelope(5, "SetClusterEnabled", field_bytes(1, "c1")) + envelope(6, "RemoveCluster", field_bytes(1, "c1")))
write("operators", envelope(1, "CreateOperator", operator) + envelope(2, "ListOperators") +
      envelope(3, "RevokeOperator", field_bytes(1, "op")))
write("token", envelope(9, "GetStatus", token="loa1_" + "0" * 64))
write("deadline", envelope(3, "GetStatus", deadline=1))
write("unknown_method", envelope(5, "Nope"))
write("garbage", b"\x04\xff\xff\xff\xff")
write("overlong_varint", b"\xff\xff\xff\xff\xff\x01")
write("oversized", b"\x80\x80\x80\x02")
write("truncated", envelope(1, "GetStatus")[:-2])
write("asrun", envelope(1, "ListAsRun") +
      envelope(2, "ListAsRun", field_varint(1, 1700000000000) + field_varint(2, 1700000600000) +
               field_bytes(3, "hn") + field_varint(4, 2) + field_bytes(5, "7")) +
      envelope(3, "ListAsRun", field_varint(1, 5) + field_varint(2, 1) + field_varint(4, 20000) +
               field_bytes(5, "x")))
