"""Who an advisory reaches: the places its text names, read in context, and the rule
that turns them and its declared areas into an explained :class:`AreaDecision`.

Open in order: :mod:`.mentions` (finding names), :mod:`.context` (what each mention
says), :mod:`.decide` (the rule), :mod:`.report` (warnings for the run's report).
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
