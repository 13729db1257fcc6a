"""Country names and codes as people type them, to ISO 3166-1 alpha-2."""

from __future__ import annotations

import re
import unicodedata

import pycountry

# Names people write that ISO's English names, codes and common names do not cover:
# native names, short forms and former names. Keys are folded by ``_fold``.
ALIASES = {
    "uk": "GB",
    "great britain": "GB",
    "britain": "GB",
    "england": "GB",
    "scotland": "GB",
    "wales": "GB",
    "northern ireland": "GB",
    "usa": "US",
    "us": "US",
    "united states of america": "US",
    "america": "US",
    "deutschland": "DE",
    "osterreich": "AT",
    "schweiz": "CH",
    "suisse": "CH",
    "svizzera": "CH",
    "espana": "ES",
    "italia": "IT",
    "nederland": "NL",
    "holland": "NL",
    "the netherlands": "NL",
    "belgie": "BE",
    "belgique": "BE",
    "brasil": "BR",
    "mexico": "MX",
    "polska": "PL",
    "sverige": "SE",
    "norge": "NO",
    "danmark": "DK",
    "suomi": "FI",
    "eire": "IE",
    "hellas": "GR",
    "ellada": "GR",
    "turkey": "TR",
    "turkiye": "TR",
    "russia": "RU",
    "rossiya": "RU",
    "korea": "KR",
    "republic of korea": "KR",
    "nippon": "JP",
    "nihon": "JP",
    "zhongguo": "CN",
    "prc": "CN",
    "uae": "AE",
    "emirates": "AE",
    "ivory coast": "CI",
    "cote d'ivoire": "CI",
    "cote divoire": "CI",
    "vatican": "VA",
    "vatican city": "VA",
    "palestine": "PS",
    "macedonia": "MK",
    "burma": "MM",
    "cape verde": "CV",
    "swaziland": "SZ",
    "brunei": "BN",
    "micronesia": "FM",
    "czech": "CZ",
    "ceska republika": "CZ",
    "magyarorszag": "HU",
    "romania": "RO",
    "hrvatska": "HR",
    "slovensko": "SK",
    "slovenija": "SI",
    "srbija": "RS",
    "ukraina": "UA",
    "portugal": "PT",
    "south africa": "ZA",
}

_SPACES = re.compile(r"\s+")


def _fold(raw: str) -> str:
    # "Österreich" and "Osterreich", "España" and "Espana" are the same name to us.
    decomposed = unicodedata.normalize("NFKD", raw.replace(".", ""))
    plain = "".join(char for char in decomposed if not unicodedata.combining(char))
    return _SPACES.sub(" ", plain).strip().casefold()


def normalize_country(raw: str | None) -> str | None:
    """ISO 3166-1 alpha-2 code for a code ("de", "DEU") or a name ("Germany",
    "Deutschland"); ``None`` when empty or unrecognised."""
    if raw is None or not raw.strip():
        return None
    folded = _fold(raw)
    if folded in ALIASES:
        return ALIASES[folded]
    try:
        country = pycountry.countries.lookup(raw.strip())
    except LookupError:
        return None
    return str(country.alpha_2)
