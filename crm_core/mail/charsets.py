"""Turn the bytes and half-decoded strings of real-world mail into clean text.

Mail lies about its charset: ``unknown-8bit``, ``x-unknown``, Latin-1 labelled as
UTF-8, raw 8-bit headers. Decoding never fails here; it falls back to UTF-8 and
then to windows-1252, which maps every byte.
"""

from __future__ import annotations

import codecs
import re

# Labels mail uses that Python does not know, or whose superset decodes more real mail.
CHARSET_ALIASES = {
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "us-ascii": "utf-8",
    "ascii": "utf-8",
    "ansi_x3.4-1968": "utf-8",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "ks_c_5601-1987": "cp949",
    "euc-kr": "cp949",
    "iso-2022-jp": "iso2022_jp_ext",
    "shift_jis": "cp932",
    "sjis": "cp932",
    "windows-874": "cp874",
    "tis-620": "cp874",
}
# Code points that break storage (PostgreSQL rejects NUL) or display; tab and newlines are kept.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def known_codec(charset: str | None) -> str | None:
    """The Python codec for a charset label, or None when the label is unknown or bogus."""
    if not charset:
        return None
    label = charset.strip().strip('"').lower()
    label = CHARSET_ALIASES.get(label, label)
    try:
        info = codecs.lookup(label)
    except (LookupError, ValueError, TypeError):
        return None
    # base64, zlib, rot13… are codecs too, but not text encodings.
    return info.name if getattr(info, "_is_text_encoding", True) else None


def decode_bytes(data: bytes, charset: str | None) -> str:
    """Decode with the declared charset, else UTF-8, else windows-1252; never raises."""
    codec = known_codec(charset)
    for candidate in (codec, "utf-8"):
        if candidate is None:
            continue
        try:
            return clean_text(data.decode(candidate))
        except (UnicodeDecodeError, LookupError):
            continue
    return clean_text(data.decode("cp1252", errors="replace"))


def repair_surrogates(value: str) -> str:
    """Recover raw 8-bit bytes the parser kept as surrogate escapes (undeclared charsets)."""
    if not _SURROGATE.search(value):
        return value
    try:
        raw = value.encode("utf-8", errors="surrogateescape")
    except UnicodeEncodeError:
        # Lone surrogates that are not escaped bytes: nothing to recover, only to drop.
        return _SURROGATE.sub("\ufffd", value)
    return decode_bytes(raw, None)


def clean_text(value: str) -> str:
    """Text safe to store: no escaped bytes, no NUL or other control characters."""
    return _CONTROL.sub("", repair_surrogates(value))
