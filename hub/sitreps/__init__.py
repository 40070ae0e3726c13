"""Situation reports (初报 initial, 续报 follow-up, 终报 final) on incidents, up the hierarchy.

A person with ``sitrep:write`` creates a draft on an incident (``createSituationReport``):
the hub reads the incident, the shelters, risk flags and committed aid around it through
its federation as that person, so each owner's policy decides what the draft holds. The
person edits it (``editSituationReport``) and submits it (``submitSituationReport``): each
submission is a numbered version, audited, and sent to the hub one level up
(``LINLI_SUPERIOR_URL``), which stores and shows it with the same code
(``POST /sitreps/inbox``). A report past its deadline (``LINLI_SITREP_DEADLINES_S``, by
kind and GB/T 35561 level) and never submitted is escalated: a ``report.overdue`` event in
the hub's numbered event log and a signed webhook to the department told. ``GET
/sitreps/{id}`` is its JSON, ``GET /sitreps/{id}/document.docx`` the document to file.
See ``service`` for the rules and their codes.
"""

from hub.sitreps.component import HubSitreps, create_sitreps
from hub.sitreps.model import ReportFields, ReportKind, ReportStatus

__all__ = ["HubSitreps", "ReportFields", "ReportKind", "ReportStatus", "create_sitreps"]
