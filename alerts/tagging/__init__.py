"""Who an advisory reaches: the places its text names, read in context, and the rule
that turns them and its declared areas into an explained :class:`AreaDecision`.

Open in order: :mod:`.mentions` (finding names), :mod:`.context` (what each mention
says, with the word lists in :mod:`.words`), :mod:`.reads` (a mention as the rule weighs
it), :mod:`.elsewhere` (another force's news), :mod:`.decide` (the rule), :mod:`.report`
(warnings for the run's report, and the decision as ``alerts advisories show`` prints it).
Reasons are data (:class:`alerts.types.Basis`, :class:`alerts.types.Why`); their words
are for display only.
"""

from alerts.tagging.decide import RULE_VERSION, AdvisoryText, Declared, decide_areas, declared_areas
from alerts.tagging.report import decision_warnings, explain

__all__ = [
    "RULE_VERSION",
    "AdvisoryText",
    "Declared",
    "decide_areas",
    "decision_warnings",
    "declared_areas",
    "explain",
]
