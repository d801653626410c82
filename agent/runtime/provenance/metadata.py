"""IPTC `DigitalSourceType` in XMP, written into PNG and JPEG containers without touching the pixels.

The XMP packet goes into a PNG `iTXt` chunk keyed `XML:com.adobe.xmp` (placed right after IHDR) or a JPEG
APP1 segment that starts with `http://ns.adobe.com/xap/1.0/` (placed after the leading APP0/APP1 run). An
existing packet is kept: its DigitalSourceType is replaced, or a second `rdf:Description` is added to it.
Only the container is edited (chunks and segments), never the compressed image data.

A file that carries a C2PA manifest is never modified: the manifest's hash covers these bytes, so adding
metadata would make the credentials read as tampered. `with_source_type` returns such a file unchanged and
`metadata_refusal` says why; write the metadata first, then sign.
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Iterator
from xml.sax.saxutils import escape

IPTC_DIGITAL_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/"
"""The IPTC NewsCodes vocabulary every digital source type URI starts with."""

DIGITAL_SOURCE_TYPES = (
    "trainedAlgorithmicMedia", "compositeWithTrainedAlgorithmicMedia", "algorithmicallyEnhanced",
    "algorithmicMedia", "compositeSynthetic", "composite", "digitalCapture", "computationalCapture",
    "digitalCreation", "dataDrivenMedia", "humanEdits", "screenCapture", "virtualRecording",
    "compositeCapture", "negativeFilm", "positiveFilm", "print",
)
"""The IPTC digital source type codes (short names); `source_type_uri` makes the full URI."""

_XMP_KEYWORD = b"XML:com.adobe.xmp"
_JPEG_XMP_ID = b"http://ns.adobe.com/xap/1.0/\x00"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_NS = "http://iptc.org/std/Iptc4xmpExt/2008-02-29/"
_READ = re.compile(r"Iptc4xmpExt:DigitalSourceType\s*=\s*[\"']([^\"']*)[\"']|"
                   r"<Iptc4xmpExt:DigitalSourceType(?:\s+[^>]*)?>\s*([^<\s][^<]*?)\s*</Iptc4xmpExt:DigitalSourceType>")
_ELEMENT = re.compile(r"(<Iptc4xmpExt:DigitalSourceType(?:\s+[^>]*)?>)[^<]*(</Iptc4xmpExt:DigitalSourceType>)")
_ATTRIBUTE = re.compile(r"(Iptc4xmpExt:DigitalSourceType\s*=\s*)([\"'])[^\"']*\2")


def source_type_uri(source_type: str) -> str:
    """The full IPTC NewsCodes URI of a short code ("trainedAlgorithmicMedia"); a full URI is returned as is."""
    if source_type.startswith(("http://", "https://")):
        return source_type
    if source_type not in DIGITAL_SOURCE_TYPES:
        raise ValueError(f"unknown digital source type {source_type!r}; known: {', '.join(DIGITAL_SOURCE_TYPES)}")
    return IPTC_DIGITAL_SOURCE_TYPE + source_type


def xmp_packet(source_type: str) -> str:
    """A minimal XMP packet stating the digital source type."""
    return ('<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
            '<x:xmpmeta xmlns:x="adobe:ns:meta/">\n'
            '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
            f'{_description(source_type_uri(source_type))}\n'
            '</rdf:RDF>\n</x:xmpmeta>\n<?xpacket end="w"?>')


def _description(uri: str) -> str:
    return (f'<rdf:Description rdf:about="" xmlns:Iptc4xmpExt="{_NS}">'
            f'<Iptc4xmpExt:DigitalSourceType>{escape(uri)}</Iptc4xmpExt:DigitalSourceType></rdf:Description>')


def _merged(existing: str | None, uri: str) -> str:
    """An XMP packet with the source type set: the existing packet edited when there is one."""
    if not existing:
        return xmp_packet(uri)
    if _ELEMENT.search(existing):
        return _ELEMENT.sub(lambda m: m.group(1) + escape(uri) + m.group(2), existing, count=1)
    if _ATTRIBUTE.search(existing):
        return _ATTRIBUTE.sub(lambda m: f"{m.group(1)}{m.group(2)}{escape(uri)}{m.group(2)}", existing, count=1)
    if "</rdf:RDF>" in existing:
        return existing.replace("</rdf:RDF>", _description(uri) + "\n</rdf:RDF>", 1)
    return xmp_packet(uri)  # not an XMP packet we can edit: replace it


def _kind(data: bytes, mime: str | None) -> str | None:
    if data.startswith(_PNG_SIGNATURE):
        return "png"
    if data.startswith(b"\xff\xd8"):
        return "jpeg"
    if mime in ("image/png",):
        return "png"
    if mime in ("image/jpeg", "image/jpg"):
        return "jpeg"
    return None


# --- PNG ------------------------------------------------------------------------------------------------------


def png_chunks(data: bytes) -> Iterator[tuple[int, bytes, bytes]]:
    """(offset, type, body) of every chunk of a PNG file; raises ValueError on a truncated one."""
    if not data.startswith(_PNG_SIGNATURE):
        raise ValueError("not a PNG file")
    i = len(_PNG_SIGNATURE)
    while i < len(data):
        if i + 8 > len(data):
            raise ValueError("truncated PNG chunk header")
        (length,) = struct.unpack(">I", data[i:i + 4])
        kind = data[i + 4:i + 8]
        end = i + 12 + length
        if end > len(data):
            raise ValueError(f"truncated PNG chunk {kind!r}")
        yield i, kind, data[i + 8:i + 8 + length]
        i = end
        if kind == b"IEND":
            return


def png_chunk(kind: bytes, body: bytes) -> bytes:
    """One PNG chunk with its length and CRC."""
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def _png_xmp(body: bytes) -> str | None:
    """The XMP text of an iTXt chunk body, or None when it is another iTXt."""
    keyword, sep, rest = body.partition(b"\x00")
    if keyword != _XMP_KEYWORD or not sep or len(rest) < 2:
        return None
    compressed, text = rest[0], rest[2:]
    _, _, text = text.partition(b"\x00")  # language tag
    _, _, text = text.partition(b"\x00")  # translated keyword
    if compressed:
        text = zlib.decompress(text)
    return text.decode("utf-8", "replace")


def _png_with_xmp(data: bytes, uri: str) -> bytes:
    chunks = list(png_chunks(data))
    existing = next((x for _, kind, body in chunks if kind == b"iTXt" and (x := _png_xmp(body)) is not None), None)
    packet = _merged(existing, uri).encode("utf-8")
    new = png_chunk(b"iTXt", _XMP_KEYWORD + b"\x00\x00\x00\x00\x00" + packet)
    out = [_PNG_SIGNATURE]
    for offset, kind, body in chunks:
        if kind == b"iTXt" and _png_xmp(body) is not None:
            continue  # replaced by `new`
        out.append(data[offset:offset + 12 + len(body)])
        if kind == b"IHDR":
            out.append(new)
    return b"".join(out)


# --- JPEG -----------------------------------------------------------------------------------------------------


def jpeg_segments(data: bytes) -> Iterator[tuple[int, int, bytes]]:
    """(offset, marker, payload) of each marker segment before the image data (SOS ends the walk)."""
    if not data.startswith(b"\xff\xd8"):
        raise ValueError("not a JPEG file")
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            raise ValueError(f"bad JPEG marker at byte {i}")
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2:i + 4])
        if length < 2 or i + 2 + length > len(data):
            raise ValueError(f"truncated JPEG segment 0x{marker:02X}")
        yield i, marker, data[i + 4:i + 2 + length]
        if marker == 0xDA:
            return
        i += 2 + length


def _jpeg_with_xmp(data: bytes, uri: str) -> bytes:
    segments = list(jpeg_segments(data))
    existing = next((p[len(_JPEG_XMP_ID):].decode("utf-8", "replace") for _, m, p in segments
                     if m == 0xE1 and p.startswith(_JPEG_XMP_ID)), None)
    payload = _JPEG_XMP_ID + _merged(existing, uri).encode("utf-8")
    if len(payload) + 2 > 0xFFFF:
        raise ValueError("the XMP packet does not fit one JPEG APP1 segment (extended XMP is not supported)")
    new = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    out, pos, placed = [data[:2]], 2, False
    for offset, marker, p in segments:
        if marker == 0xDA:
            break
        seg = data[offset:offset + 4 + len(p)]
        pos = offset + 4 + len(p)
        if marker == 0xE1 and p.startswith(_JPEG_XMP_ID):
            continue  # replaced by `new`
        if not placed and marker not in (0xE0, 0xE1):
            out.append(new)
            placed = True
        out.append(seg)
    if not placed:
        out.append(new)
    out.append(data[pos:])
    return b"".join(out)


# --- public ---------------------------------------------------------------------------------------------------


def metadata_refusal(data: bytes, mime: str | None = None) -> str | None:
    """Why `with_source_type` would return these bytes unchanged, or None when it writes the metadata."""
    from agent.runtime.provenance.credentials import has_manifest

    kind = _kind(data, mime)
    if kind is None:
        return f"XMP is written into PNG and JPEG only, not {mime or 'this format'}"
    if has_manifest(data, mime):
        return "the file carries a C2PA manifest: editing it would make it read as tampered (write XMP before signing)"
    return None


def with_source_type(data: bytes, mime: str | None = None, source_type: str = "trainedAlgorithmicMedia") -> bytes:
    """A copy of a PNG or JPEG with XMP `Iptc4xmpExt:DigitalSourceType` set to the IPTC URI of `source_type`
    (a short code from DIGITAL_SOURCE_TYPES or a full URI); the pixel data stays byte-for-byte the same.

    Returned unchanged (the same bytes object) when `metadata_refusal` gives a reason: a C2PA-signed file or
    a format other than PNG/JPEG. Raises ValueError for an unknown source type or a malformed container."""
    uri = source_type_uri(source_type)
    if metadata_refusal(data, mime) is not None:
        return data
    return _png_with_xmp(data, uri) if _kind(data, mime) == "png" else _jpeg_with_xmp(data, uri)


def read_xmp(data: bytes, mime: str | None = None) -> str | None:
    """The XMP packet of a PNG or JPEG, or None."""
    kind = _kind(data, mime)
    try:
        if kind == "png":
            return next((x for _, k, body in png_chunks(data) if k == b"iTXt" and (x := _png_xmp(body)) is not None),
                        None)
        if kind == "jpeg":
            return next((p[len(_JPEG_XMP_ID):].decode("utf-8", "replace") for _, m, p in jpeg_segments(data)
                         if m == 0xE1 and p.startswith(_JPEG_XMP_ID)), None)
    except (ValueError, zlib.error):
        return None
    return None


def read_source_type(data: bytes, mime: str | None = None) -> str | None:
    """The XMP DigitalSourceType URI of a PNG or JPEG, or None when it has none."""
    xmp = read_xmp(data, mime)
    if not xmp:
        return None
    m = _READ.search(xmp)
    if not m:
        return None
    from xml.sax.saxutils import unescape

    return unescape(m.group(1) or m.group(2))
