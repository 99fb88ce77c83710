"""WinZip AES encryption of ZIP members (AE-1 / AE-2, compression method 99).

From WinZip's published "AES Encryption Information: Encryption Specification AE-1 and AE-2"
and PKWARE APPNOTE 6.3 (extra field 0x9901):

* extra field 0x9901: vendor version (1 = AE-1, 2 = AE-2), vendor id "AE", key strength
  (1, 2, 3 = AES-128, -192, -256) and the real compression method;
* member data: salt (8, 12 or 16 bytes), a 2-byte password verifier, the encrypted data,
  then a 10-byte authentication code (HMAC-SHA1, truncated) over the encrypted data;
* keys: PBKDF2-HMAC-SHA1(password, salt, 1000 iterations) gives the AES key, the HMAC key
  and the verifier, in that order;
* AES in counter mode whose 16-byte counter block is a little-endian integer starting at 1
  (not the big-endian increment of NIST CTR, hence the explicit keystream below).
"""

from __future__ import annotations

import hashlib
import hmac
import struct
import zipfile
from dataclasses import dataclass

from scanner.errors import MalformedInput

EXTRA_ID = 0x9901
_STRENGTH_BITS = {1: 128, 2: 192, 3: 256}
_ITERATIONS = 1000
_MAC_LENGTH = 10
_LOCAL_HEADER = struct.Struct("<4s5H3I2H")


@dataclass(frozen=True)
class AesMember:
    version: int
    key_bits: int
    method: int


def aes_parameters(info: zipfile.ZipInfo) -> AesMember | None:
    """The 0x9901 extra field of a member, or None when there is none."""
    extra = info.extra
    pos = 0
    while pos + 4 <= len(extra):
        header_id, size = struct.unpack_from("<HH", extra, pos)
        body = extra[pos + 4 : pos + 4 + size]
        if header_id == EXTRA_ID and len(body) >= 7 and body[2:4] == b"AE":
            version, strength, method = body[0] | body[1] << 8, body[4], body[5] | body[6] << 8
            bits = _STRENGTH_BITS.get(strength)
            if bits is None:
                raise MalformedInput(f"WinZip AES extra field names key strength {strength}")
            return AesMember(version, bits, method)
        pos += 4 + size
    return None


def raw_member_data(archive_bytes: bytes, info: zipfile.ZipInfo) -> bytes:
    """The stored bytes of a member, located through its local file header (APPNOTE 4.3.7)."""
    offset = info.header_offset
    if offset < 0 or offset + _LOCAL_HEADER.size > len(archive_bytes):
        raise MalformedInput("local file header lies outside the archive")
    fields = _LOCAL_HEADER.unpack_from(archive_bytes, offset)
    if fields[0] != b"PK\x03\x04":
        raise MalformedInput("member has no local file header signature")
    start = offset + _LOCAL_HEADER.size + fields[9] + fields[10]
    end = start + info.compress_size
    if end > len(archive_bytes):
        raise MalformedInput("member data runs past the end of the archive")
    return archive_bytes[start:end]


def _keystream_xor(key: bytes, data: bytes) -> bytes:
    # Imported here: the cryptography backend takes milliseconds to load, and only an
    # AES-encrypted ZIP member needs it.
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    out = bytearray(len(data))
    block_count = (len(data) + 15) // 16
    step = 4096
    for first in range(0, block_count, step):
        last = min(first + step, block_count)
        counters = b"".join(n.to_bytes(16, "little") for n in range(first + 1, last + 1))
        stream = encryptor.update(counters)
        start = first * 16
        chunk = data[start : last * 16]
        mixed = int.from_bytes(chunk, "little") ^ int.from_bytes(stream[: len(chunk)], "little")
        out[start : start + len(chunk)] = mixed.to_bytes(len(chunk), "little")
    return bytes(out)


def decrypt(raw: bytes, parameters: AesMember, password: bytes) -> bytes | None:
    """The still-compressed member data, or None when the password does not fit."""
    key_length = parameters.key_bits // 8
    salt_length = key_length // 2
    if len(raw) < salt_length + 2 + _MAC_LENGTH:
        raise MalformedInput("AES member is shorter than its salt, verifier and MAC")
    salt = raw[:salt_length]
    verifier = raw[salt_length : salt_length + 2]
    body = raw[salt_length + 2 : -_MAC_LENGTH]
    mac = raw[-_MAC_LENGTH:]
    derived = hashlib.pbkdf2_hmac("sha1", password, salt, _ITERATIONS, 2 * key_length + 2)
    if derived[-2:] != verifier:
        return None
    expected = hmac.new(derived[key_length : 2 * key_length], body, hashlib.sha1).digest()
    if not hmac.compare_digest(expected[:_MAC_LENGTH], mac):
        # One wrong password in 65,536 passes the verifier; the MAC settles it.
        return None
    return _keystream_xor(derived[:key_length], body)
