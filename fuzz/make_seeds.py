#!/usr/bin/env python3
"""Writes the packet seeds for the fuzz targets: requests of every version and mode, with
extension fields, MACs and crypto-NAKs, and malformed ones near each boundary of the decoder."""
import hashlib
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def header(version, mode, leap=0, stratum=0, poll=6, transmit=0x0123456789ABCDEF):
    first = (leap << 6) | (version << 3) | mode
    return struct.pack(">BBbb", first, stratum, poll, -20) + bytes(32) + struct.pack(">Q", transmit)


def field(kind, value_len):
    return struct.pack(">HH", kind, value_len + 4) + bytes(i % 256 for i in range(value_len))


packets = {}
for version in range(0, 8):
    for mode in range(0, 8):
        packets[f"v{version}_mode{mode}"] = header(version, mode)
packets["v4_client_mac20"] = header(4, 3) + struct.pack(">I", 1) + bytes(16)
packets["v4_client_mac24"] = header(4, 3) + struct.pack(">I", 1) + bytes(20)
packets["v4_client_crypto_nak"] = header(4, 3) + bytes(4)
packets["v3_client_mac20"] = header(3, 3) + struct.pack(">I", 7) + bytes(16)
packets["v4_client_ext16"] = header(4, 3) + field(0x0104, 12) + struct.pack(">I", 1) + bytes(16)
packets["v4_client_ext28"] = header(4, 3) + field(0x0104, 24)
packets["v4_client_nts_like"] = (
    header(4, 3) + field(0x0104, 32) + field(0x0204, 100) + field(0x0404, 40)
)
packets["v4_client_ext_bad_len"] = header(4, 3) + struct.pack(">HH", 0x0104, 13) + bytes(28)
packets["v4_client_ext_too_long"] = header(4, 3) + struct.pack(">HH", 0x0104, 400) + bytes(28)
packets["v4_client_trailer_5"] = header(4, 3) + bytes(5)
packets["truncated_47"] = header(4, 3)[:47]
packets["empty"] = b""
packets["oversized_1200"] = header(4, 3) + field(0x0104, 1148)
packets["v1_mode0_leap3"] = header(1, 0, leap=3)
packets["v4_client_zero_transmit"] = header(4, 3, transmit=0)
packets["v4_symmetric_active_poll17"] = header(4, 1, poll=17)


def signed(packet, key_id, digest):
    return packet + struct.pack(">I", key_id) + digest(packet)


SHA1_KEY = bytes.fromhex("00112233445566778899aabbccddeeff00112233")
packets["v4_client_signed_sha1"] = signed(
    header(4, 3), 1, lambda p: hashlib.sha1(SHA1_KEY + p).digest()
)
packets["v4_client_signed_md5"] = signed(
    header(4, 3), 3, lambda p: hashlib.md5(b"fuzzing-key" + p).digest()
)
packets["v4_client_signed_md5_lan_only"] = signed(
    header(4, 3), 4, lambda p: hashlib.md5(b"lan-only" + p).digest()
)
packets["v3_client_signed_sha1"] = signed(
    header(3, 3), 1, lambda p: hashlib.sha1(SHA1_KEY + p).digest()
)

# The request_answer target reads the server's state from 26 bytes before the request: leap,
# stratum, precision, reference id, root delay, reference time, receive time, root dispersion and
# its ceiling.
def state(leap, stratum, precision, refid, delay, reference, received, dispersion, ceiling):
    return struct.pack(">BBb4sBQQBB", leap, stratum, precision, refid, delay, reference, received,
                       dispersion, ceiling)


states = {
    "synced": state(0, 2, -20, b"\xc0\x00\x02\x01", 3, 0xEA00000000000000, 0xEA00000100000000, 1, 16),
    "unsynced": state(3, 16, -18, b"INIT", 0, 0, 0xEA00000100000000, 0, 16),
    "clock_stepped_back": state(0, 10, -20, b"LOCL", 0, 0xFFFFFFFF00000000, 1, 255, 255),
}

for name, packet in packets.items():
    with open(os.path.join(HERE, "seeds", "packet_decode", name), "wb") as out:
        out.write(packet)
for state_name, prefix in states.items():
    assert len(prefix) == 26, state_name
    for name, packet in packets.items():
        if state_name != "synced" and not name.startswith("v4_client"):
            continue
        with open(os.path.join(HERE, "seeds", "request_answer", f"{state_name}_{name}"), "wb") as out:
            out.write(prefix + packet)


# NTS-KE messages: the client's request, a server's answer, an error, a truncated one.
def record(kind, body, critical=True):
    return struct.pack(">HH", kind | (0x8000 if critical else 0), len(body)) + body


ke = {
    "client_request": record(1, b"\x00\x00") + record(4, b"\x00\x0f") + record(0, b""),
    "server_answer": record(1, b"\x00\x00") + record(4, b"\x00\x0f")
    + b"".join(record(5, bytes([i]) * 104, False) for i in range(8))
    + record(6, b"hub.lan") + record(7, b"\x00\x7b") + record(0, b""),
    "error": record(2, b"\x00\x01") + record(0, b""),
    "unknown_critical": record(1, b"\x00\x00") + record(99, b"") + record(0, b""),
    "truncated": (record(1, b"\x00\x00") + record(0, b""))[:-2],
}
os.makedirs(os.path.join(HERE, "seeds", "nts_ke"), exist_ok=True)
for name, message in ke.items():
    with open(os.path.join(HERE, "seeds", "nts_ke", name), "wb") as out:
        out.write(message)


# NTS requests: structure right, cryptography not (the target builds real ones from a 0 byte).
def field(kind, body):
    return struct.pack(">HH", kind, 4 + len(body)) + body


nts = {
    "request": header(4, 3) + field(0x0104, bytes(32)) + field(0x0204, bytes(104))
    + field(0x0304, bytes(104)) + field(0x0404, struct.pack(">HH", 16, 16) + bytes(32)),
    "no_authenticator": header(4, 3) + field(0x0104, bytes(32)) + field(0x0204, bytes(104)),
    "built_ok": b"\x00" + bytes([3]) + bytes(range(32)) + bytes([0, 0, 0, 0]) + bytes(20),
    "built_damaged": b"\x00" + bytes([1]) + bytes(range(32)) + bytes([12, 3, 1, 0x40]) + bytes(20),
}
os.makedirs(os.path.join(HERE, "seeds", "nts_fields"), exist_ok=True)
for name, packet in nts.items():
    with open(os.path.join(HERE, "seeds", "nts_fields", name), "wb") as out:
        out.write(packet)

