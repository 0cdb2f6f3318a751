"""What a simulated annotator's minutes cost: the constants of `fewlabel bench session`.

The cost model decides the session benchmark's ranking of modes, so none of its constants is
ours to tune; each comes from a published measurement (docs/benchmarks.md cites them):

- manual marking of a text: `text_seconds` + `word_seconds` x words + `span_seconds` x spans,
  fitted (non-negative least squares, `fit_manual`) to the 18 per-user rows of Wei et al.,
  "Cost-aware active learning for named entity recognition in clinical text", JAMIA
  26(11):1314, 2019, Table 4 (`WEI_2019_TABLE4`: sentences, entities per sentence, words per
  sentence, minutes; nine users, random and active-learning sessions of 120 minutes).
- `keep_saving`: the share of a text's manual time saved when its spans come pre-filled and
  are kept: 13.85%, the lower end of the 13.85-21.5% saving per entity that dictionary
  pre-annotation gave in Lingren et al., "Evaluating the impact of pre-annotation on
  annotation speed and potential bias", JAMIA 21(3):406, 2014.
- `decision_fraction`: one binary decision on a suggestion costs this fraction of marking its
  text by hand: 0.2, from Raghavan, Madani & Jones, "InterActive Feature Selection", IJCAI
  2005 (a yes/no judgement on a feature took about 1/5 of the time of labeling a document).

A correct-mode text costs its manual time less `keep_saving` x (kept / gold spans) of it,
plus `span_seconds` for each pre-filled span removed (Lingren's figure is net of removing
wrong pre-annotations, so charging removals again is conservative); a teach-mode decision
costs `decision_fraction` x the manual time of its text.

`--costs FILE` (JSON with these five names) replaces them; `--costs-from PROJECT` fits the
manual three and `decision_fraction` to the seconds a project recorded.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import numpy as np

from core.errors import FewlabelError

# Wei et al. 2019, Table 4, one row per user and method (PL: random, AL: Cost-CAUSE):
# (sentences, entities per sentence, words per sentence, minutes), as printed.
# https://pmc.ncbi.nlm.nih.gov/articles/PMC6798575/table/ocz102-T4
WEI_2019_TABLE4: tuple[tuple[int, float, float, float], ...] = (
    (920, 1.40, 11.37, 119.97),
    (664, 2.06, 12.80, 120.22),
    (553, 1.44, 11.48, 119.41),
    (415, 2.17, 12.33, 120.64),
    (766, 1.34, 10.73, 119.88),
    (525, 1.98, 12.16, 120.19),
    (842, 1.42, 11.64, 119.56),
    (550, 2.38, 14.47, 120.44),
    (910, 1.43, 12.15, 119.85),
    (616, 2.44, 14.29, 120.44),
    (745, 1.41, 11.51, 120.01),
    (570, 2.06, 11.20, 120.22),
    (435, 1.27, 11.11, 119.46),
    (388, 1.86, 10.26, 120.56),
    (875, 1.38, 10.95, 119.95),
    (637, 2.00, 11.90, 120.10),
    (617, 1.44, 11.45, 120.23),
    (445, 2.28, 12.52, 120.04),
)
LINGREN_2014_SAVING = 0.1385  # lower end of 13.85%-21.5% time saved per entity
RAGHAVAN_2005_FRACTION = 0.2  # a feature judgement: about 1/5 of a document label's time
ASSISTED = ("keep_saving", "decision_fraction")  # the constants the sensitivity table varies


def nnls(a: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Non-negative least squares for a few columns: the best of the unconstrained fits on
    every subset of columns whose coefficients are all >= 0 (exact for a handful)."""
    best, best_err = np.zeros(a.shape[1]), float(np.sum(y**2))
    for k in range(1, a.shape[1] + 1):
        for cols in itertools.combinations(range(a.shape[1]), k):
            coef, *_ = np.linalg.lstsq(a[:, cols], y, rcond=None)
            if (coef < 0).any():
                continue
            err = float(np.sum((a[:, cols] @ coef - y) ** 2))
            if err < best_err:
                best, best_err = np.zeros(a.shape[1]), err
                best[list(cols)] = coef
    return best


def fit_manual(rows: Sequence[tuple[float, float, float, float]]) -> dict[str, float]:
    """(text, word, span) seconds from (texts, words, spans, seconds) rows, by non-negative
    least squares, with the fit's root-mean-square error in seconds per row."""
    if len(rows) < 3:
        raise FewlabelError(f"fitting three costs needs at least 3 rows, not {len(rows)}")
    arr = np.asarray(rows, dtype=np.float64)
    coef = nnls(arr[:, :3], arr[:, 3])
    rmse = float(np.sqrt(np.mean((arr[:, :3] @ coef - arr[:, 3]) ** 2)))
    names = ("text_seconds", "word_seconds", "span_seconds")
    return {**{n: round(float(c), 4) for n, c in zip(names, coef, strict=True)}, "rmse": rmse}


def wei_rows() -> list[tuple[float, float, float, float]]:
    """Table 4's rows as (sentences, words, entities, seconds) totals."""
    return [(n, n * wps, n * eps, minutes * 60) for n, eps, wps, minutes in WEI_2019_TABLE4]


@dataclass(frozen=True)
class Costs:
    """The simulated annotator's constants (seconds, or fractions where named so)."""

    text_seconds: float
    word_seconds: float
    span_seconds: float
    keep_saving: float
    decision_fraction: float
    source: str = "published"

    def manual(self, words: int, spans: int) -> float:
        """Seconds to mark a text of `words` words and `spans` spans by hand."""
        return self.text_seconds + self.word_seconds * words + self.span_seconds * spans

    def correct(self, words: int, spans: int, kept: int, removed: int) -> float:
        """Seconds for a text with pre-filled spans: `kept` of its `spans` gold spans came
        pre-filled, `removed` pre-filled spans were wrong."""
        full = self.manual(words, spans)
        saved = self.keep_saving * full * (kept / spans) if spans else 0.0
        return full - saved + self.span_seconds * removed

    def decision(self, words: int, spans: int) -> float:
        """Seconds for one accept/reject of a suggestion in a text of this size."""
        return self.decision_fraction * self.manual(words, spans)

    def scaled(self, name: str, factor: float) -> Costs:
        value = getattr(self, name) * factor
        if name == "keep_saving":
            value = min(value, 1.0)
        return replace(self, **{name: value, "source": f"{self.source}, {name} x{factor:g}"})

    def as_dict(self) -> dict:
        return asdict(self)


def published() -> Costs:
    """The constants from the cited studies (module docstring)."""
    fit = fit_manual(wei_rows())
    return Costs(
        text_seconds=fit["text_seconds"],
        word_seconds=fit["word_seconds"],
        span_seconds=fit["span_seconds"],
        keep_saving=LINGREN_2014_SAVING,
        decision_fraction=RAGHAVAN_2005_FRACTION,
        source="published: Wei 2019 T4 fit, Lingren 2014, Raghavan 2005",
    )


CONSTANTS = tuple(f.name for f in fields(Costs) if f.name != "source")


def read_costs(path: str | Path) -> Costs:
    """A JSON object of the five constants; a missing, unknown, non-numeric or negative one
    (or a keep_saving above 1) is refused with `file: reason`."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise FewlabelError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise FewlabelError(f"{path}: not a JSON object of costs ({e})") from None
    if not isinstance(data, dict):
        raise FewlabelError(f"{path}: not a JSON object of costs")
    unknown = sorted(set(data) - set(CONSTANTS) - {"source"})
    if unknown:
        raise FewlabelError(f"{path}: unknown constant {unknown[0]!r}")
    values = {}
    for name in CONSTANTS:
        if name not in data:
            raise FewlabelError(f"{path}: missing constant {name!r}")
        value = data[name]
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
            raise FewlabelError(f"{path}: {name} must be a number, not {value!r}")
        if value < 0 or math.isinf(value):
            raise FewlabelError(f"{path}: {name} must be a non-negative number, not {value}")
        values[name] = float(value)
    if values["keep_saving"] > 1:
        raise FewlabelError(
            f"{path}: keep_saving is a fraction, at most 1, not {values['keep_saving']}"
        )
    return Costs(**values, source=str(path))


def fit_project(url: str, project_name: str) -> Costs:
    """Costs fitted to what a project recorded: the manual three to its saved annotations'
    seconds (texts, words, spans), `decision_fraction` to its decisions' seconds over the
    fitted manual time of their texts; `keep_saving` stays the published one (a project does
    not record which of its saves began pre-filled)."""
    from sqlalchemy import select

    from core.labeling.projects import get_project
    from core.store.db import session_scope
    from core.store.schema import Annotation, Document
    from core.text import tokenize

    with session_scope(url) as s:
        project = get_project(s, project_name)
        rows, sizes = [], {}
        query = (
            select(Annotation, Document.text)
            .join(Document)
            .where(Document.project_id == project.id, Annotation.seconds.is_not(None))
        )
        for ann, text in s.execute(query):
            words = len(tokenize(text))
            sizes[ann.document_id] = (words, len(ann.spans or []))
            rows.append((1.0, words, len(ann.spans or []), float(ann.seconds)))
        decisions = _decision_seconds(s, project.id)
    fit = fit_manual(rows)
    base = published()
    manual = replace(base, **{k: fit[k] for k in ("text_seconds", "word_seconds", "span_seconds")})
    fraction = base.decision_fraction
    ratios = [
        sec / manual.manual(*sizes.get(doc, (words, 0)))
        for doc, words, sec in decisions
        if manual.manual(*sizes.get(doc, (words, 0))) > 0
    ]
    if ratios:
        fraction = float(np.median(ratios))
    return replace(
        manual,
        decision_fraction=round(fraction, 4),
        source=f"project {project_name}: {len(rows)} timed saves, {len(ratios)} timed decisions",
    )


def _decision_seconds(s, project_id: int) -> list[tuple[int, int, float]]:
    """(document id, words, seconds) of the project's timed decisions."""
    from sqlalchemy import select

    from core.store.schema import Decision, Document
    from core.text import tokenize

    query = select(Decision.document_id, Document.text, Decision.seconds).join(Document)
    query = query.where(Document.project_id == project_id, Decision.seconds.is_not(None))
    return [(doc, len(tokenize(text)), float(sec)) for doc, text, sec in s.execute(query)]
