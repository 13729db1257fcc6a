"""Fakes of Mailgun's, SendGrid's and Postmark's send APIs, strict about the documented request.

Each checks a request against its provider's documented format (path, authentication,
content type, field names and required fields) and answers as the provider does: a
documented success (``tests/fixtures/mail_apis/<provider>/``, with a fresh id per
message), or the provider's own error document for a request it would refuse.
Whatever it refused is listed in ``problems``, so a test can say none was.
"""

from __future__ import annotations

import base64
import json
import secrets
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.mail_api_server import Answer, MailApi, RecordedRequest, running_mail_api

FIXTURES = Path(__file__).parent / "fixtures" / "mail_apis"
KEY = "key-3ax6xnjp29jd6fds4gc373sgvjxteol0"
DOMAIN = "mg.shop.example"


def documented(provider: str, name: str) -> Answer:
    """The documented answer ``name`` of ``provider``, from its fixture file."""
    doc = json.loads((FIXTURES / provider / f"{name}.json").read_text(encoding="utf-8"))
    raw = doc["raw"].encode() if "raw" in doc else None
    return Answer(status=doc["status"], body=doc.get("body"), headers=doc["headers"], raw=raw)


@dataclass
class ProviderApi:
    """The running fake: its server, what it refused, and the ids it gave."""

    name: str
    api: MailApi
    problems: list[str] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)

    @property
    def requests(self) -> list[RecordedRequest]:
        return self.api.requests


def _header(request: RecordedRequest, name: str) -> str:
    return next((v for k, v in request.headers.items() if k.lower() == name.lower()), "")


# Mailgun: POST /v3/<domain>/messages, multipart/form-data, Basic api:<key>.
MAILGUN_FIELDS = {"from", "to", "cc", "bcc", "subject", "text", "html", "amp-html", "template",
                  "attachment", "inline", "recipient-variables"}  # fmt: skip
MAILGUN_OPTIONS = {"o:tag", "o:dkim", "o:deliverytime", "o:testmode", "o:tracking",
                   "o:tracking-clicks", "o:tracking-opens", "o:require-tls",
                   "o:skip-verification"}  # fmt: skip


def mailgun_problems(request: RecordedRequest) -> list[str]:
    basic = base64.b64encode(f"api:{KEY}".encode()).decode()
    problems = []
    if request.path != f"/v3/{DOMAIN}/messages":
        problems.append(f"path {request.path}")
    if _header(request, "Authorization") != f"Basic {basic}":
        problems.append("not Basic api:<key>")
    if not _header(request, "Content-Type").startswith("multipart/form-data"):
        return [*problems, "not multipart/form-data"]
    fields: list[tuple[str, str]] = request.body or []
    names = [name for name, _ in fields]
    for name in names:
        known = name in MAILGUN_FIELDS or name in MAILGUN_OPTIONS or name[:2] in ("h:", "v:")
        if not known:
            problems.append(f"unknown field {name}")
    problems += [f"no {name}" for name in ("from", "to", "subject") if name not in names]
    if not {"text", "html"} & set(names):
        problems.append("neither text nor html")
    return problems


def mailgun_answer(request: RecordedRequest, problems: list[str]) -> Answer:
    if problems:
        if any("Basic" in p for p in problems):
            return documented("mailgun", "unauthorized")
        return Answer(status=400, body={"message": "; ".join(problems)})
    answer = documented("mailgun", "queued")
    # Given ``h:Message-Id``, Mailgun sends the message under it and answers it as the id.
    fields = dict(request.body)
    if "h:Message-ID" in fields:
        answer.body = {**answer.body, "id": fields["h:Message-ID"]}
    return answer


# SendGrid: POST /v3/mail/send, JSON, Authorization: Bearer <key>.
SENDGRID_KEYS = {"personalizations", "from", "reply_to", "reply_to_list", "subject", "content",
                 "attachments", "template_id", "headers", "categories", "custom_args",
                 "send_at", "batch_id", "asm", "ip_pool_name", "mail_settings",
                 "tracking_settings"}  # fmt: skip
# Headers the Mail Send API refuses to take from the request.
SENDGRID_RESERVED = {"x-sg-id", "x-sg-eid", "received", "dkim-signature", "content-type",
                     "content-transfer-encoding", "to", "from", "subject", "reply-to", "cc",
                     "bcc"}  # fmt: skip


def sendgrid_problems(request: RecordedRequest) -> list[str]:
    problems = []
    if request.path != "/v3/mail/send":
        problems.append(f"path {request.path}")
    if _header(request, "Authorization") != f"Bearer {KEY}":
        problems.append("not Bearer <key>")
    if not _header(request, "Content-Type").startswith("application/json"):
        return [*problems, "not JSON"]
    body: dict[str, Any] = request.body or {}
    problems += [f"unknown key {key}" for key in body if key not in SENDGRID_KEYS]
    people = body.get("personalizations") or [{}]
    if not all(p.get("to") and all("email" in to for to in p["to"]) for p in people):
        problems.append("a personalization without to[].email")
    if "email" not in (body.get("from") or {}):
        problems.append("no from.email")
    content = body.get("content") or []
    if not content or not all(c.get("type") and c.get("value") for c in content):
        problems.append("content needs type and a non-empty value")
    types = [c.get("type") for c in content]
    if "text/plain" in types and types[0] != "text/plain":
        problems.append("text/plain must come first")
    headers = body.get("headers") or {}
    problems += [f"reserved header {h}" for h in headers if h.lower() in SENDGRID_RESERVED]
    problems += [f"header {h} not a string" for h, v in headers.items() if not isinstance(v, str)]
    return problems


def sendgrid_answer(request: RecordedRequest, problems: list[str]) -> Answer:
    if problems:
        if any("Bearer" in p for p in problems):
            return documented("sendgrid", "unauthorized")
        errors = [{"message": p, "field": None, "help": None} for p in problems]
        return Answer(status=400, body={"errors": errors})
    answer = documented("sendgrid", "accepted")
    answer.headers = {**answer.headers, "X-Message-Id": secrets.token_urlsafe(16)[:22]}
    return answer


# Postmark: POST /email, JSON, X-Postmark-Server-Token.
POSTMARK_KEYS = {"From", "To", "Cc", "Bcc", "Subject", "Tag", "HtmlBody", "TextBody", "ReplyTo",
                 "Metadata", "Headers", "TrackOpens", "TrackLinks", "Attachments",
                 "MessageStream"}  # fmt: skip


def postmark_problems(request: RecordedRequest) -> list[str]:
    problems = []
    if request.path != "/email":
        problems.append(f"path {request.path}")
    if _header(request, "X-Postmark-Server-Token") != KEY:
        problems.append("no X-Postmark-Server-Token")
    if _header(request, "Accept") != "application/json":
        problems.append("Accept is not application/json")
    if not _header(request, "Content-Type").startswith("application/json"):
        return [*problems, "not JSON"]
    body: dict[str, Any] = request.body or {}
    problems += [f"unknown key {key}" for key in body if key not in POSTMARK_KEYS]
    problems += [f"no {key}" for key in ("From", "To") if not body.get(key)]
    if not (body.get("TextBody") or body.get("HtmlBody")):
        problems.append("neither TextBody nor HtmlBody")
    headers = body.get("Headers") or []
    if not all(set(h) == {"Name", "Value"} for h in headers):
        problems.append("Headers must be Name/Value pairs")
    return problems


def postmark_answer(request: RecordedRequest, problems: list[str]) -> Answer:
    if problems:
        if any("Token" in p for p in problems):
            return documented("postmark", "unauthorized")
        return documented("postmark", "invalid_request")
    answer = documented("postmark", "ok")
    answer.body = {**answer.body, "To": request.body["To"], "MessageID": str(uuid.uuid4())}
    return answer


Checker = Callable[[RecordedRequest], list[str]]
Responder = Callable[[RecordedRequest, list[str]], Answer]
PROVIDERS: dict[str, tuple[Checker, Responder]] = {
    "mailgun": (mailgun_problems, mailgun_answer),
    "sendgrid": (sendgrid_problems, sendgrid_answer),
    "postmark": (postmark_problems, postmark_answer),
}


def provider_id_of(provider: str, answer: Answer) -> str:
    """The id an answer gives the message, where the provider puts it."""
    if provider == "sendgrid":
        return answer.headers["X-Message-Id"]
    return str(answer.body["id" if provider == "mailgun" else "MessageID"])


@contextmanager
def running_provider_api(provider: str, **server: Any) -> Iterator[ProviderApi]:
    """``provider``'s fake on loopback (``tls=`` for HTTPS) for the block."""
    check, respond = PROVIDERS[provider]
    with running_mail_api(**server) as api:
        fake = ProviderApi(provider, api)

        def responder(request: RecordedRequest) -> Answer:
            problems = check(request)
            fake.problems.extend(problems)
            answer = respond(request, problems)
            if 200 <= answer.status < 300:
                fake.ids.append(provider_id_of(provider, answer))
            return answer

        api.responder = responder
        yield fake


def mail_url(fake: ProviderApi, cafile: Path, key: str = KEY) -> str:
    """``CRM_MAIL_URL`` for the fake, as a user writes it for the real provider."""
    origin = f"127.0.0.1:{fake.api.port}"
    return {
        "mailgun": f"mailgun+https://api:{key}@{origin}/v3/{DOMAIN}?cafile={cafile}",
        "sendgrid": f"sendgrid+https://apikey:{key}@{origin}?cafile={cafile}",
        "postmark": f"postmark+https://:{key}@{origin}?cafile={cafile}",
    }[fake.name]
