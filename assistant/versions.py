"""Plan versions: a state may have several plans in the index (the 2017 original, a 2019
amendment, ...). Each plan file is one version; answers read the newest unless asked otherwise.

Where a version comes from, first found wins:
  1. the plans manifest: `version = "2019 amended"` (else its `year`),
  2. the file name: "DE-2019-amended.pdf" -> version "2019 amended", year "2019",
  3. nothing: version "" (undated). An undated plan counts as older than any dated one of its
     state, and the index says so in a warning when that decides which one answers.

The index manifest records each plan's version and year (`plans[<file>]["version"|"year"]`);
every chunk carries them too, so a citation names the version it quotes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from .records import PlanInfo

ALL = "all"  # the version filter that searches every version
NEWEST = ""  # the default: each state's newest version
_YEAR = re.compile(r"(?<!\d)(20[0-4]\d|199\d)(?!\d)")
# Words a file name uses for what kind of version it is ("amended", "revised", ...).
_QUALIFIERS = ("original", "initial", "submitted", "approved", "revised", "amended", "amendment",
               "updated", "final", "draft", "addendum")


@dataclass(frozen=True, order=True)
class PlanVersion:
    """One indexed plan of a state. Ordered oldest first: by year, then label, then file name."""

    year: str
    version: str
    source: str
    state: str = ""

    @property
    def label(self) -> str:
        """What people call it: "2019 amended", "2017"; "undated" when nothing says."""
        return self.version or self.year or "undated"

    def matches(self, wanted: str) -> bool:
        """`wanted` names this version: its label, its year, or its file name (any case)."""
        names = {self.label, self.year, self.source, Path(self.source).stem}
        return _plain(wanted) in {_plain(n) for n in names} - {""}


def _plain(name: str) -> str:
    """"2019-Amended" and "2019 amended" name one version."""
    return " ".join(name.lower().replace("-", " ").replace("_", " ").split())


def version_of(info: PlanInfo | None, filename: str) -> tuple[str, str]:
    """(version, year) of a plan file, from the manifest entry or else the file name."""
    if info is not None and (info.version or info.year):
        year = info.year or _year_in(info.version)
        return (info.version or info.year), year
    stem = Path(filename).stem.lower()
    year = _year_in(stem)
    words = re.split(r"[-_.\s]+", stem)
    qualifiers = [w for w in words if w in _QUALIFIERS]
    version = " ".join([year] + qualifiers).strip() if year else " ".join(qualifiers)
    return version, year


def _year_in(text: str) -> str:
    found = _YEAR.findall(text or "")
    return found[-1] if found else ""


def plan_versions(plans: Mapping[str, Mapping]) -> dict[str, list[PlanVersion]]:
    """Each state's indexed versions, oldest first, from the index manifest's "plans"."""
    out: dict[str, list[PlanVersion]] = {}
    for source, meta in plans.items():
        state = str(meta.get("state", ""))
        out.setdefault(state, []).append(PlanVersion(year=str(meta.get("year", "") or ""),
                                                     version=str(meta.get("version", "") or ""),
                                                     source=source, state=state))
    return {state: sorted(found) for state, found in sorted(out.items())}


def newest_sources(plans: Mapping[str, Mapping]) -> set[str]:
    """The file of each state's newest version (both, where two share the newest label)."""
    chosen: set[str] = set()
    for found in plan_versions(plans).values():
        newest = found[-1]
        chosen.update(v.source for v in found if (v.year, v.version) == (newest.year, newest.version))
    return chosen


def sources_for(plans: Mapping[str, Mapping], wanted: str | None) -> set[str] | None:
    """The files a version filter keeps: None for every file ("all"), the newest per state for
    none given, else those of the version named (an empty set where no state has it)."""
    if wanted is None or wanted.strip() == NEWEST:
        return newest_sources(plans)
    if wanted.strip().lower() == ALL:
        return None
    return {v.source for found in plan_versions(plans).values() for v in found if v.matches(wanted)}


def version_warnings(plans: Mapping[str, Mapping]) -> list[str]:
    """What an index build says about versions: two files of one state with the same version, or
    an undated plan beside others (answers would read the newest-looking one, so say which)."""
    warnings = []
    for state, found in plan_versions(plans).items():
        if len(found) < 2:
            continue
        newest = found[-1]
        labels = [v.label for v in found]
        duplicated = sorted({label for label in labels if labels.count(label) > 1})
        for label in duplicated:
            files = ", ".join(v.source for v in found if v.label == label)
            warnings.append(f"{files}: all are {state}'s {label} plan; answers search each of them. "
                            "Give each file its own version in plans/manifest.toml or its name (DE-2019-amended.pdf)")
        undated = [v.source for v in found if not v.year]
        if undated and newest.year:
            warnings.append(f"{', '.join(undated)}: no year known for this {state} plan, so it counts as "
                            f"older than {newest.source} ({newest.label}), which answers; put the year "
                            "in plans/manifest.toml or the file name")
    return warnings


def describe(found: Iterable[PlanVersion]) -> str:
    """ "2017 (DE.pdf), 2019 amended (DE-2019-amended.pdf)" """
    return ", ".join(f"{v.label} ({v.source})" for v in found)
