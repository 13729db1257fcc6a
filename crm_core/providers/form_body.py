"""An HTML form's body, as a browser sends it, read into its fields.

Browsers post a form as ``application/x-www-form-urlencoded`` (the default) or
``multipart/form-data`` (``enctype="multipart/form-data"``). Both are read
with the standard library: ``urllib.parse`` for the first, the ``email``
package's MIME parser for the second. Files are not fields: a part with a
file name is skipped. Text must be UTF-8, which is what a page served as UTF-8
sends. A field named twice keeps its last value, which is how a hidden
``consent=no`` before a ``consent=yes`` checkbox says "unchecked".
"""

from __future__ import annotations

import email.policy
from email.message import EmailMessage
from email.parser import BytesParser
from urllib.parse import parse_qsl

from crm_core.errors import FieldError
from crm_core.payloads.json_body import media_type

URLENCODED = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"
FORM_TYPES = (URLENCODED, MULTIPART)
MAX_FIELDS = 100
MAX_NAME = 255


def read_form(body: bytes, content_type: str) -> dict[str, str] | FieldError:
    """The fields of a form body, the last value of each; or what prevents reading it."""
    kind = media_type(content_type)
    try:
        if kind == URLENCODED:
            pairs = _urlencoded(body)
        elif kind == MULTIPART:
            pairs = _multipart(body, content_type)
        else:
            return FieldError(("content_type",), f"a form is sent as {' or '.join(FORM_TYPES)}")
    except UnicodeDecodeError:
        return FieldError(("body",), "the form must be sent as UTF-8", "unicode_invalid")
    except ValueError as exc:
        return FieldError(("body",), str(exc)[:300], "form_invalid")
    fields: dict[str, str] = {}
    for name, value in pairs:
        if not name or len(name) > MAX_NAME or not name.isprintable():
            continue
        fields[name] = value
    return fields


def _urlencoded(body: bytes) -> list[tuple[str, str]]:
    text = body.decode("utf-8")
    # Raises ValueError past MAX_FIELDS: a body of a thousand fields is not a person's form.
    return parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FIELDS)


def _multipart(body: bytes, content_type: str) -> list[tuple[str, str]]:
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
    message = BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    if not isinstance(message, EmailMessage) or not message.is_multipart():
        raise ValueError("the multipart body has no parts (is the boundary right?)")
    pairs: list[tuple[str, str]] = []
    for part in message.iter_parts():
        if not isinstance(part, EmailMessage):
            continue
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str) or part.get_filename() is not None:
            continue
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        pairs.append((name, data.decode("utf-8")))
        if len(pairs) > MAX_FIELDS:
            raise ValueError(f"a form has at most {MAX_FIELDS} fields")
    if not pairs and message.defects:
        raise ValueError("the multipart body is malformed")
    return pairs
