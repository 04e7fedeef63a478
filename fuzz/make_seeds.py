#!/usr/bin/env python3
"""Writes small, valid (or nearly valid) seed inputs for every fuzz target into fuzz/seeds/<target>/.

The seeds are built here from docs/repository-format.md, independently of the Rust encoders, so that the
fuzzer starts from inputs that pass the magic and length checks and explores the code behind them. Run
from anywhere: `python3 fuzz/make_seeds.py`. Needs only the standard library and, for the compressed-blob
seeds, the `zstd` command (skipped if missing).
"""

import base64
import hashlib
import hmac
import json
import os
import shutil
import struct
import subprocess
import tempfile

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seeds")


def put(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def u32(n):
    return struct.pack("<I", n)


def u64(n):
    return struct.pack("<Q", n)


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def zigzag(n):
    return ((n << 1) ^ (n >> 63)) & (2**64 - 1)


def pbytes(b):
    return varint(len(b)) + b


# ---- packs ----------------------------------------------------------------------------------------

def trailer(keys, entries):
    t = b"\x01" + bytes([len(keys)]) + b"".join(keys) + u32(len(entries))
    for typ, kidx, length, bid in entries:
        t += bytes([typ, kidx]) + u32(length) + bid
    return t


def pack(keys, entries):
    data = b"".join(bytes([i]) * e[2] for i, e in enumerate(entries))
    t = trailer(keys, entries)
    return data + t + u32(len(t)) + b"BRRPACK1", t, len(data)


K1, K2 = bytes([0x11] * 16), bytes([0x22] * 16)
B1, B2, B3 = bytes([0xA1] * 32), bytes([0xB2] * 32), bytes([0xC3] * 32)
one, t_one, d_one = pack([K1], [(0, 0, 41, B1)])
three, t_three, d_three = pack([K1, K2], [(0, 0, 41, B1), (1, 1, 100, B2), (0, 1, 60, B3)])
empty, t_empty, d_empty = pack([], [])

for name, (p, t, d) in {"one": (one, t_one, d_one), "three": (three, t_three, d_three),
                        "empty": (empty, t_empty, d_empty)}.items():
    put("pack_tail", name, u32(0) + p)
    put("pack_tail", name + "-tail", u32(d) + p[d:])
    put("pack_trailer", name, u32(d) + t)
    put("pack_footer", name, u64(len(p)) + p[-12:])

# ---- index files ----------------------------------------------------------------------------------

def index(supersedes, packs):
    out = b"BRRINDX1" + u32(len(supersedes)) + b"".join(supersedes) + u32(len(packs))
    for pid, plen, t in packs:
        out += pid + u64(plen) + u32(len(t)) + t
    return out


put("index_file", "two-packs", index([bytes([0x55] * 32)],
                                     [(bytes([0x01] * 32), len(one), t_one),
                                      (bytes([0x02] * 32), len(three), t_three)]))
put("index_file", "empty", index([], []))

# ---- trees ----------------------------------------------------------------------------------------

def ts(secs, nanos):
    return varint(zigzag(secs)) + varint(nanos)


def node(name, kind, mode=0o644, user=b"u", group=None, xattrs=()):
    n = pbytes(name) + kind + varint(mode) + varint(1000) + varint(1000)
    n += (b"\x01" + pbytes(user)) if user is not None else b"\x00"
    n += (b"\x01" + pbytes(group)) if group is not None else b"\x00"
    n += ts(1700000000, 5) + ts(0, 0) + ts(-5, 999999999)
    n += varint(1) + varint(2) + varint(1)
    n += varint(len(xattrs)) + b"".join(pbytes(k) + pbytes(v) for k, v in xattrs)
    return n


def tree(nodes):
    return varint(1) + varint(len(nodes)) + b"".join(nodes)


file_a = varint(0) + varint(5) + varint(1) + pbytes(B1) + varint(5) + b"\x00"
put("tree", "one-file", tree([node(b"a", file_a, xattrs=[(b"user.a", b"\x00\xff")])]))
put("tree", "every-kind", tree([
    node(b"blk", varint(6) + varint(0x0801)),
    node(b"chr", varint(5) + varint(0x0103)),
    node(b"dir", varint(1) + pbytes(B2), mode=0o755),
    node(b"empty", varint(0) + varint(0) + varint(0) + b"\x01", group=b"g"),
    node(b"fifo", varint(3)),
    node(b"link", varint(2) + pbytes(b"../target")),
    node(b"sock", varint(4)),
    node(bytes([0xFF, 0xFE]), varint(0) + varint(3) + varint(2) + pbytes(B1) + varint(1) + pbytes(B3) + varint(2) + b"\x00", user=None),
]))
put("tree", "empty", tree([]))

# ---- snapshots ------------------------------------------------------------------------------------

header = json.dumps({"version": 1, "time": "2026-11-23T10:00:00+01:00", "source": "11" * 16,
                     "key_id": "@KEY@"}, separators=(",", ":")).encode()
meta = json.dumps({"time": "2026-11-23T10:00:00+01:00", "hostname": "host", "username": "me",
                   "paths": ["/home/me"], "tags": ["daily"], "tree": "ab" * 32, "parent": None,
                   "excludes": ["*.tmp"], "program_version": "0.1.0",
                   "summary": {"files_new": 1, "errors": ["x: denied"], "duration_secs": 1.5}},
                  separators=(",", ":")).encode()
# Mode 1 (odd): header length, header, metadata; the target puts its fixed key's ID in place of @KEY@,
# seals and MACs it.
put("snapshot", "sealed-by-target", b"\x01" + struct.pack("<H", len(header)) + header + meta)
# Mode 0 (even): a whole file; the sealed part is junk, so only the public parse succeeds.
sealed = bytes(40 + 5)
refs = [B1, B2, B3]
pub_header = header.replace(b"@KEY@", b"00" * 16)
body = b"BRRSNAP1" + u32(len(pub_header)) + pub_header + u32(len(sealed)) + sealed + u32(len(refs)) + b"".join(refs)
put("snapshot", "public", b"\x00" + body + bytes(32))

# ---- key slots ------------------------------------------------------------------------------------

def slot(kind, **extra):
    s = {"version": 1, "kind": kind, "label": "laptop", "created": "2026-11-23T10:00:00+01:00",
         "hostname": "host", "username": "me", "repository": "00112233445566778899aabbccddeeff"}
    s.update(extra)
    s["wrapped_master_key"] = base64.b64encode(bytes(range(169))).decode()
    return json.dumps(s, indent=2)


salt = base64.b64encode(bytes(range(16))).decode()
put("key_slot", "password-cheapest", slot("password", salt=salt,
                                          kdf={"memory_kib": 19456, "iterations": 2, "parallelism": 1}))
put("key_slot", "password-default", slot("password", salt=salt,
                                         kdf={"memory_kib": 65536, "iterations": 3, "parallelism": 4}))
put("key_slot", "recovery", slot("recovery", salt=salt))
put("key_slot", "rsa", slot("rsa", rsa={"public_key_sha256": "cd" * 32, "bits": 2048,
                                         "wrapped_kek": base64.b64encode(bytes(256)).decode()}))

mk = b"\x01" + bytes([0x11] * 32) + bytes([0x22] * 32) + bytes([0x33] * 32) + bytes([0x44] * 32)
put("master_key", "fixed", mk)

# ---- config, GC records, locks --------------------------------------------------------------------

put("config", "default", json.dumps({"body": {
    "version": 1, "id": "00112233445566778899aabbccddeeff", "created": "2026-11-23T10:00:00Z",
    "chunker": {"min_size": 524288, "avg_size": 1048576, "max_size": 8388608, "normalization": 1},
    "pack_size": 33554432, "compression": "zstd:3"}, "mac": "00" * 32}, indent=2))
# A config MACed with the fuzz targets' fixed key (mac_key = 32 × 0x44), computed from the spec:
# HMAC-SHA-256(mac_key, u64 LE(len(context)) ‖ context ‖ compact body JSON).
body = {"version": 1, "id": "00112233445566778899aabbccddeeff", "created": "2026-11-23T10:00:00.5+01:00",
        "chunker": {"min_size": 524288, "avg_size": 1048576, "max_size": 8388608, "normalization": 1},
        "pack_size": 33554432, "compression": "zstd:3"}
canonical = dict(body, created="2026-11-23T10:00:00.500+01:00")  # chrono writes 3, 6 or 9 digits
ctx = b"brr config mac v1"
mac = hmac.new(bytes([0x44] * 32), u64(len(ctx)) + ctx + json.dumps(canonical, separators=(",", ":")).encode(),
               hashlib.sha256).hexdigest()
put("config", "fixed-key-mac", json.dumps({"body": body, "mac": mac}, indent=2))
put("config", "small-chunks", json.dumps({"body": {
    "version": 1, "id": "ff" * 16, "created": "2026-11-23T10:00:00.123456789-05:30",
    "chunker": {"min_size": 64, "avg_size": 256, "max_size": 1024, "normalization": 3},
    "pack_size": 1048576, "compression": "max"}, "mac": "AB" * 32}))

put("gc_record", "sealed", json.dumps({"version": 1, "created": "2026-11-23T10:00:00Z", "sealed": True,
                                       "sessions": ["00" * 16],
                                       "packs": [{"id": "01" * 32, "size": 113, "blobs": ["a1" * 32]}]},
                                      separators=(",", ":")))
put("gc_record", "unsealed", json.dumps({"version": 1, "created": "2026-11-23T10:00:00+02:00",
                                         "sealed": False, "sessions": [], "packs": []}))

put("lock_file", "shared", json.dumps({"kind": "shared", "purpose": "backup", "hostname": "host",
                                       "pid": 4242, "username": "me",
                                       "created": "2026-11-23T10:00:00+01:00"}, separators=(",", ":")))
put("lock_file", "exclusive", json.dumps({"kind": "exclusive", "purpose": "prune", "hostname": "h",
                                          "pid": 1, "username": "root", "created": "2026-11-23T10:00:00Z"}))

# ---- blobs ----------------------------------------------------------------------------------------

content = b"backup restore replica " * 20
put("blob", "raw-data", b"\x01\x00" + b"\x00" + content)          # mode 1, data, flag 0
put("blob", "raw-tree", b"\x01\x01" + b"\x00" + content)          # mode 1, tree, flag 0
put("blob", "recompress", b"\x02\x00" + b"\x07\x00\x00" + content)  # mode 2, intact frame
put("blob", "recompress-flip", b"\x02\x00" + b"\x05\x00\x40" + content)
put("blob", "stored", b"\x00\x00" + B1 + bytes(60))               # mode 0, junk ciphertext
if shutil.which("zstd"):
    # From a file, the zstd command records the content size in the frame header, as brr requires.
    with tempfile.NamedTemporaryFile() as f:
        f.write(content)
        f.flush()
        frame = subprocess.run(["zstd", "-q", "-c", "-3", f.name], capture_output=True, check=True).stdout
    put("blob", "zstd-frame", b"\x01\x00" + b"\x01" + frame)      # mode 1, flag 1
    # From a pipe it cannot, and such a frame must be refused.
    frame = subprocess.run(["zstd", "-q", "-c", "-3"], input=content, capture_output=True, check=True).stdout
    put("blob", "zstd-frame-no-size", b"\x01\x00" + b"\x01" + frame)

# ---- recovery keys, storage names -----------------------------------------------------------------

hexkey = bytes(range(32)).hex()
put("recovery_key", "printed", "-".join(hexkey[i:i + 8] for i in range(0, 64, 8)))
put("recovery_key", "spaced", " ".join(hexkey[i:i + 4].upper() for i in range(0, 64, 4)) + "\n")

for n, name in enumerate(["config", "ab" * 32, "a", "locks-1", "..", "a/b", ".tmp", "A" * 10, "x" * 129]):
    put("storage_name", f"name{n}", name)

print("seeds written to", ROOT)
