"""US states: names, postal codes, and finding the states a question names."""

from __future__ import annotations

import re

STATE_NAMES: dict[str, str] = {
    "AL": "Alabama", "AK": "Alaska", "AZ": "Arizona", "AR": "Arkansas", "CA": "California",
    "CO": "Colorado", "CT": "Connecticut", "DE": "Delaware", "DC": "District of Columbia",
    "FL": "Florida", "GA": "Georgia", "HI": "Hawaii", "ID": "Idaho", "IL": "Illinois",
    "IN": "Indiana", "IA": "Iowa", "KS": "Kansas", "KY": "Kentucky", "LA": "Louisiana",
    "ME": "Maine", "MD": "Maryland", "MA": "Massachusetts", "MI": "Michigan", "MN": "Minnesota",
    "MS": "Mississippi", "MO": "Missouri", "MT": "Montana", "NE": "Nebraska", "NV": "Nevada",
    "NH": "New Hampshire", "NJ": "New Jersey", "NM": "New Mexico", "NY": "New York",
    "NC": "North Carolina", "ND": "North Dakota", "OH": "Ohio", "OK": "Oklahoma", "OR": "Oregon",
    "PA": "Pennsylvania", "PR": "Puerto Rico", "RI": "Rhode Island", "SC": "South Carolina",
    "SD": "South Dakota", "TN": "Tennessee", "TX": "Texas", "UT": "Utah", "VT": "Vermont",
    "VA": "Virginia", "WA": "Washington", "WV": "West Virginia", "WI": "Wisconsin", "WY": "Wyoming",
    # Not a state, but it files an ESSA consolidated plan for the schools it funds.
    "BIE": "Bureau of Indian Education",
}

# Postal codes that are also common English words or abbreviations: only taken as a state when
# written next to "state" or in parentheses, never bare.
_AMBIGUOUS_CODES = {"IN", "OR", "ME", "OK", "HI", "ID", "PA", "MA", "DE", "LA", "AL", "CO", "OH", "MD"}

# Of those, the ones that are plain English words even in capitals ("IN OR OUT").
_ENGLISH_WORD_CODES = {"IN", "OR", "ME", "OK", "HI", "ID"}

# Adjectival and informal forms that journalists use.
_ALIASES = {
    "delawarean": "DE", "massachusetts's": "MA", "nevadan": "NV", "bay state": "MA",
    "first state": "DE", "silver state": "NV", "washington state": "WA", "washington, d.c.": "DC",
    "washington dc": "DC", "d.c.": "DC",
}


def state_name(code: str) -> str:
    return STATE_NAMES.get(code.upper(), code.upper())


def normalize_state(value: str) -> str | None:
    """A postal code for a code or a state name given by a user (CLI flag, filter), else None."""
    text = value.strip()
    if text.upper() in STATE_NAMES:
        return text.upper()
    lowered = text.lower()
    for code, name in STATE_NAMES.items():
        if name.lower() == lowered:
            return code
    return _ALIASES.get(lowered)


def _name_pattern() -> re.Pattern[str]:
    # Longest first, so "West Virginia" wins over "Virginia" and "New Mexico" over nothing shorter.
    names = sorted(
        [*STATE_NAMES.values(), *_ALIASES.keys()], key=len, reverse=True
    )
    alternatives = "|".join(re.escape(n) for n in names)
    return re.compile(rf"(?<![A-Za-z])({alternatives})(?![A-Za-z])", re.IGNORECASE)


_NAME_RE = _name_pattern()
_CODE_RE = re.compile(r"(?<![A-Za-z])([A-Z]{2})(?![A-Za-z])")
_CONTEXT_CODE_RE = re.compile(
    r"(?:state of|state|\()\s*([A-Z]{2})\b|\b([A-Z]{2})(?:\)|\s+(?:plan|state|'s))", re.IGNORECASE
)


_CODE_PAIR_RE = re.compile(r"\b([A-Z]{2})\s*(?:,|and|&|or|vs\.?|versus|/)\s*(?=([A-Z]{2})\b)")


def detect_states(question: str) -> list[str]:
    """Postal codes of the states a question names, in order of first mention."""
    found: list[tuple[int, str]] = []
    covered: list[tuple[int, int]] = []
    for m in _NAME_RE.finditer(question):
        key = m.group(1).lower()
        code = _ALIASES.get(key) or normalize_state(m.group(1))
        if code:
            found.append((m.start(), code))
            covered.append(m.span())
    for m in _CODE_RE.finditer(question):
        code = m.group(1)
        if code not in STATE_NAMES or any(a <= m.start() < b for a, b in covered):
            continue
        if code in _AMBIGUOUS_CODES and not _code_in_state_context(question, m.start()):
            continue
        found.append((m.start(), code))
    ordered: list[str] = []
    for _, code in sorted(found):
        if code not in ordered:
            ordered.append(code)
    return ordered


def _code_in_state_context(question: str, pos: int) -> bool:
    for m in _CONTEXT_CODE_RE.finditer(question):
        group = 1 if m.group(1) else 2
        if m.start(group) == pos:
            return True
    # Codes listed together ("NV and DE", "DE vs MA") read as states when one of them is not a word.
    for m in _CODE_PAIR_RE.finditer(question):
        pair = (m.group(1), m.group(2))
        if pos in (m.start(1), m.start(2)) and all(c in STATE_NAMES for c in pair) and \
                any(c not in _ENGLISH_WORD_CODES for c in pair):
            return True
    # A question that is all codes and names, like "DE vs MA", reads as states too.
    words = re.findall(r"[A-Za-z]+", question)
    return len(words) <= 6 and question[pos : pos + 2].isupper()


def asks_across_states(question: str) -> bool:
    """True for questions such as "Which states ..." that want an answer per state."""
    return bool(re.search(r"\b(which|what|how many)\s+states\b|\beach state\b|\bcompare\b|"
                          r"\bacross (?:the )?states\b|\ball (?:three |the )?states\b",
                          question, re.IGNORECASE))
