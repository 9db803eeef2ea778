#!/usr/bin/env python3
"""A small client of Loa's control API (loa.control.v1) in plain Python.

It lists the clusters the caller may see, then watches events. It speaks the
engine's framing directly: every message is a protobuf message preceded by its
length as a varint (protobuf's "delimited" format). A request is an Envelope
(request_id, method, deadline, token, payload = the serialized request); the
engine answers with Response messages carrying the same request_id, a gRPC
status code and, for WatchEvents, one Response(more=true) per Event.

Needs python3-protobuf and the Python modules protoc generates from
proto/loa/control/v1/control.proto (the build puts them in
<build>/tests/python_example/pb; point --pb-dir or LOA_PB_DIR there, or
generate them yourself:
    protoc -I proto --python_out=OUT proto/loa/control/v1/control.proto proto/loa/engine/v1/stats.proto

Examples:
    loa_client.py --socket /run/loa/control.sock                      # local admin (root or the engine's user)
    loa_client.py --host 127.0.0.1:7700 --token loa1_... --max-events 10 --timeout 30

Exit status: 0 done (all events asked for, or the timeout passed); the gRPC
status code when the engine refuses a call (16 UNAUTHENTICATED, ...); 14 when
it cannot be reached; 2 bad command line.
"""

import argparse
import os
import select
import socket
import sys
import time


def load_modules(pb_dir):
    if pb_dir:
        sys.path.insert(0, pb_dir)
    try:
        from loa.control.v1 import control_pb2  # noqa: WPS433 (import after sys.path is set)
    except ImportError as e:
        sys.exit("loa_client: cannot import the generated control_pb2 module (%s); "
                 "pass --pb-dir or set LOA_PB_DIR" % e)
    return control_pb2


def encode_varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def decode_varint(buf):
    """Returns (value, length of the prefix), or None when buf holds too little."""
    value = 0
    for i, b in enumerate(buf[:10]):
        value |= (b & 0x7F) << (7 * i)
        if not b & 0x80:
            return value, i + 1
    if len(buf) >= 10:
        raise ValueError("malformed varint length prefix")
    return None


class EngineError(Exception):
    def __init__(self, code, name, message):
        super().__init__("%s: %s" % (name, message))
        self.code = code


class Connection:
    """One connection to the engine; requests may overlap, answers carry their id."""

    def __init__(self, pb, socket_path=None, host=None, token=""):
        self.pb = pb
        self.token = token
        self.next_id = 1
        self.buf = b""
        if host:
            h, _, port = host.rpartition(":")
            h = h.strip("[]")
            if not h or not port.isdigit():
                raise ValueError("--host must be HOST:PORT")
            self.sock = socket.create_connection((h, int(port)), timeout=10)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        else:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(10)
            self.sock.connect(socket_path)
        self.sock.settimeout(None)

    def send(self, method, request, deadline_s=None):
        env = self.pb.Envelope()
        env.request_id = self.next_id
        self.next_id += 1
        env.method = method
        env.token = self.token
        env.payload = request.SerializeToString()
        if deadline_s is not None:
            env.deadline_unix_ms = int((time.time() + deadline_s) * 1000)
        body = env.SerializeToString()
        self.sock.sendall(encode_varint(len(body)) + body)
        return env.request_id

    def read(self, timeout_s):
        """The next Response, or None when nothing came within timeout_s."""
        end = time.monotonic() + timeout_s
        while True:
            prefix = decode_varint(self.buf)
            if prefix is not None:
                length, hlen = prefix
                if len(self.buf) >= hlen + length:
                    r = self.pb.Response()
                    r.ParseFromString(self.buf[hlen:hlen + length])
                    self.buf = self.buf[hlen + length:]
                    return r
            left = end - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self.sock], [], [], left)
            if not ready:
                return None
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the engine closed the connection")
            self.buf += chunk

    def check(self, r):
        if r.code != self.pb.OK:
            raise EngineError(r.code, self.pb.StatusCode.Name(r.code), r.message)
        return r

    def call(self, method, request, response_type, timeout_s=30):
        rid = self.send(method, request, deadline_s=timeout_s)
        while True:
            r = self.read(timeout_s)
            if r is None:
                raise EngineError(4, "DEADLINE_EXCEEDED", "no answer to %s in %s s" % (method, timeout_s))
            if r.request_id == rid and not r.more:
                out = response_type()
                out.ParseFromString(self.check(r).payload)
                return out


def list_clusters(conn, pb):
    """Every cluster in the caller's scope, following the pages."""
    req = pb.ListClustersRequest(page_size=1000)
    clusters = []
    while True:
        page = conn.call("ListClusters", req, pb.ListClustersResponse)
        clusters.extend(page.clusters)
        if not page.next_page_token:
            return clusters
        req.page_token = page.next_page_token


def main():
    ap = argparse.ArgumentParser(description="List Loa clusters and watch engine events.")
    where = ap.add_mutually_exclusive_group()
    where.add_argument("--socket", default=os.environ.get("LOA_SOCKET", "/run/loa/control.sock"),
                       help="control socket (env LOA_SOCKET)")
    where.add_argument("--host", default=os.environ.get("LOA_HOST"),
                       help="HOST:PORT of the TCP listener (env LOA_HOST); needs a token")
    ap.add_argument("--token", default=os.environ.get("LOA_TOKEN", ""), help="operator token (env LOA_TOKEN)")
    ap.add_argument("--pb-dir", default=os.environ.get("LOA_PB_DIR"), help="folder of the generated loa/ modules")
    ap.add_argument("--after", type=int, default=0, help="watch events after this seq (default: all still kept)")
    ap.add_argument("--from-now", action="store_true", help="watch only events from now on")
    ap.add_argument("--max-events", type=int, default=0, help="stop after N events (0 = until the timeout)")
    ap.add_argument("--timeout", type=float, default=0, help="stop watching after S seconds (0 = never)")
    args = ap.parse_args()
    if any(a == "--socket" or a.startswith("--socket=") for a in sys.argv[1:]):
        args.host = None  # an explicit --socket beats LOA_HOST
    pb = load_modules(args.pb_dir)

    try:
        conn = Connection(pb, socket_path=args.socket, host=args.host, token=args.token)
    except (OSError, ValueError) as e:
        print("loa_client: cannot reach the engine: %s" % e, file=sys.stderr)
        return 14
    try:
        clusters = list_clusters(conn, pb)
        print("clusters: %d" % len(clusters))
        for c in clusters:
            state = ("online" if c.live.online else "offline") if c.HasField("live") else "unknown"
            print("cluster %s zone=%s enabled=%s state=%s name=%s"
                  % (c.id, c.zone_id, "yes" if c.enabled else "no", state, c.name))

        watch = pb.WatchEventsRequest(after_seq=args.after, from_now=args.from_now)
        rid = conn.send("WatchEvents", watch)
        print("watching events", flush=True)
        seen = 0
        end = time.monotonic() + args.timeout if args.timeout > 0 else None
        while args.max_events == 0 or seen < args.max_events:
            left = end - time.monotonic() if end is not None else 3600
            if left <= 0:
                print("timeout after %s s (%d events)" % (args.timeout, seen))
                break
            r = conn.read(left)
            if r is None or r.request_id != rid:
                continue
            conn.check(r)
            ev = pb.Event()
            ev.ParseFromString(r.payload)
            print("event %d %s %s %s" % (ev.seq, pb.EventKind.Name(ev.kind), ev.subject, ev.message), flush=True)
            seen += 1
            if not r.more:
                break
    except EngineError as e:
        print("loa_client: %s" % e, file=sys.stderr)
        return e.code
    except (OSError, ConnectionError) as e:
        print("loa_client: %s" % e, file=sys.stderr)
        return 14
    return 0


if __name__ == "__main__":
    sys.exit(main())
