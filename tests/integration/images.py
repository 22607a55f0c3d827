"""Small, valid images made with the standard library, so the tests know
the type, size and dimensions the daemon must report."""

from __future__ import annotations

import os
import struct
import zlib


def png(width: int, height: int, salt: bytes = b"") -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data +
                struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    raw = b"".join(b"\x00" + bytes(width * 3) for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height,
                                                               8, 2, 0, 0, 0)) +
            chunk(b"tEXt", b"salt\x00" + salt) + chunk(b"IDAT", zlib.compress(raw)) +
            chunk(b"IEND", b""))


def jpeg(width: int, height: int, salt: bytes = b"", pad: int = 0) -> bytes:
    """A baseline JPEG frame header with an APP segment carrying salt/pad."""
    app = b"imgsync\x00" + salt + os.urandom(pad)
    sof = struct.pack(">BHHB", 8, height, width, 3) + b"\x01\x22\x00\x02\x11\x01\x03\x11\x01"
    return (b"\xff\xd8" + b"\xff\xe1" + struct.pack(">H", len(app) + 2) + app +
            b"\xff\xc0" + struct.pack(">H", len(sof) + 2) + sof + b"\xff\xd9")


def exif_jpeg(width: int, height: int, orientation: int, big_endian: bool = False) -> bytes:
    """A JPEG coded width x height whose EXIF (APP1) says orientation, as
    a camera held on its side writes it (6: turned 90 degrees clockwise)."""
    e = ">" if big_endian else "<"
    ifd = (struct.pack(e + "H", 1) +
           struct.pack(e + "HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack(e + "I", 0))
    tiff = (b"MM" if big_endian else b"II") + struct.pack(e + "HI", 42, 8) + ifd
    app = b"Exif\x00\x00" + tiff
    sof = struct.pack(">BHHB", 8, height, width, 3) + b"\x01\x22\x00\x02\x11\x01\x03\x11\x01"
    return (b"\xff\xd8" + b"\xff\xe1" + struct.pack(">H", len(app) + 2) + app +
            b"\xff\xc0" + struct.pack(">H", len(sof) + 2) + sof + b"\xff\xd9")


def gif(width: int, height: int, salt: bytes = b"") -> bytes:
    return (b"GIF89a" + struct.pack("<HH", width, height) + b"\x00\x00\x00" +
            b"\x21\xfe" + bytes([len(salt[:255])]) + salt[:255] + b"\x00" + b"\x3b")


KINDS = {
    ".png": ("image/png", png),
    ".jpg": ("image/jpeg", jpeg),
    ".gif": ("image/gif", gif),
}


def make(name: str, width: int, height: int, salt: bytes = b"") -> tuple[bytes, str]:
    """Bytes for an image named by its extension, and its MIME type."""
    ext = os.path.splitext(name)[1].lower()
    mime, fn = KINDS[ext]
    return fn(width, height, salt), mime
