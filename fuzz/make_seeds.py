#!/usr/bin/env python3
"""Writes the packet seeds for the fuzz targets: requests of every version and mode, with
extension fields, MACs and crypto-NAKs, and malformed ones near each boundary of the decoder; NTS-KE
messages and NTS requests; and backups (archives, manifests and their files) to restore."""
import gzip
import hashlib
import io
import json
import os
import struct
import tarfile

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



# Backups for backup_manifest: a manifest and its files. The first byte is the form: 0 a tar.gz as
# `backup` writes it, 1 a tar the target compresses, 2 the manifest and contents separated by NUL
# bytes (6: the target makes the sums right).

CONFIG = b"""source = []
[clock]
drift_file = "/var/lib/syhub-ntp/drift"
[auth]
keys_file = "/etc/syhub-ntp/ntp.keys"
[nts]
certificate = "/etc/letsencrypt/live/hub/fullchain.pem"
private_key = "/etc/syhub-ntp/nts-key.pem"
[mqtt]
url = "mqtt://127.0.0.1:1883"
username = "hub"
password_file = "/etc/syhub-ntp/mqtt-password"
"""
backup_files = [
    ("config.toml", "/etc/syhub-ntp/config.toml", 0o644, CONFIG),
    ("drift", "/var/lib/syhub-ntp/drift", 0o644, b"-12.345\n"),
    ("keys", "/etc/syhub-ntp/ntp.keys", 0o600, b"1 SHA1 00112233445566778899aabbccddeeff00112233\n"),
    ("nts-certificate", "/etc/letsencrypt/live/hub/fullchain.pem", 0o644,
     b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"),
    ("nts-key", "/etc/syhub-ntp/nts-key.pem", 0o600,
     b"-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n"),
    ("mqtt-password", "/etc/syhub-ntp/mqtt-password", 0o600, b"secret\n"),
]


def manifest(files):
    return json.dumps({
        "format": "syhub-ntp-backup", "version": 1, "created_unix": 1764000000,
        "syhub_ntp": "0.1.0",
        "files": [{"name": n, "path": p, "mode": m, "sha256": hashlib.sha256(d).hexdigest()}
                  for n, p, m, d in files],
    }, indent=2).encode()


def tar_of(members):
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o600
            info.mtime = 1764000000
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def members(files):
    return [("manifest.json", manifest(files))] + [(n, d) for n, _, _, d in files]


backups = {
    "archive_full": b"\x00" + gzip.compress(tar_of(members(backup_files)), mtime=0),
    "tar_config_and_drift": b"\x01" + tar_of(members(backup_files[:2])),
    "parts_full": b"\x06" + b"\x00".join([manifest(backup_files)] + [d for *_, d in backup_files]),
    "parts_wrong_sums": b"\x02" + b"\x00".join([manifest(backup_files[:2]), b"0.0\n", b"1\n"]),
    "parts_escaping": b"\x06" + b"\x00".join([
        manifest([("config.toml", "/etc/syhub-ntp/../../etc/passwd.toml", 0o4777, CONFIG)]),
        CONFIG]),
    "parts_drift_as_config": b"\x06" + b"\x00".join([
        manifest([backup_files[0], ("drift", "/etc/syhub-ntp/config.toml", 0o644, b"1\n")]),
        CONFIG, b"1\n"]),
}
os.makedirs(os.path.join(HERE, "seeds", "backup_manifest"), exist_ok=True)
for name, data in backups.items():
    with open(os.path.join(HERE, "seeds", "backup_manifest", name), "wb") as out:
        out.write(data)
