"""Free-mail and disposable e-mail domains: addresses that name no company.

The lists ship as data files in ``crm_core/data``; a deployment adds its own
with ``CRM_EXTRA_FREEMAIL_DOMAINS``.
"""

from __future__ import annotations

from collections.abc import Container, Iterable
from functools import cache
from importlib.resources import files

DATA_FILES = ("freemail_domains.txt", "disposable_domains.txt")


def read_domain_list(text: str) -> frozenset[str]:
    """The domains of a list file: one per line, ``#`` starts a comment."""
    domains = set()
    for line in text.splitlines():
        domain = line.split("#", 1)[0].strip().lower().rstrip(".")
        if domain:
            domains.add(domain)
    return frozenset(domains)


@cache
def shipped_free_domains() -> frozenset[str]:
    """The free-mail and disposable domains shipped with the package."""
    data = files("crm_core") / "data"
    found: set[str] = set()
    for name in DATA_FILES:
        found |= read_domain_list((data / name).read_text(encoding="utf-8"))
    return frozenset(found)


def free_mail_domains(extra: Iterable[str] = ()) -> frozenset[str]:
    """The shipped domains plus ``extra`` (for example from ``CRM_EXTRA_FREEMAIL_DOMAINS``)."""
    added = read_domain_list("\n".join(extra))
    return shipped_free_domains() | added if added else shipped_free_domains()


def is_free_or_disposable(domain: str, extra: Container[str] = frozenset()) -> bool:
    """Whether ``domain``, or a domain it is under, is a free-mail or disposable provider."""
    labels = domain.strip().lower().rstrip(".").split(".")
    shipped = shipped_free_domains()
    # "eu.mailinator.com" is as disposable as "mailinator.com".
    for start in range(len(labels) - 1):
        candidate = ".".join(labels[start:])
        if candidate in shipped or candidate in extra:
            return True
    return False
