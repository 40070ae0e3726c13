"""The report as a document a department files: DOCX (python-docx), Chinese labels and text.

Word documents carry Unicode text and name fonts, they do not embed them: the text
is exact whatever the reader's fonts; the East Asian font named (宋体 SimSun, present
on Chinese Windows and Office, replaced by the reader's own CJK font elsewhere) only
sets how it looks.
"""

from __future__ import annotations

import io
from typing import Any

from docx import Document
from docx.oxml.ns import qn
from docx.shared import Pt

from hub.sitreps.model import ReportKind

__all__ = ["DOCX_MEDIA_TYPE", "EAST_ASIAN_FONT", "report_docx"]

DOCX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
EAST_ASIAN_FONT = "宋体"

_ROWS = [
    ("occurred_at", "发生时间 Time"),
    ("place", "发生地点 Place"),
    ("summary", "事件经过 What happened"),
    ("deaths", "死亡人数 Deaths"),
    ("injured", "受伤人数 Injured"),
    ("missing", "失踪人数 Missing"),
    ("affected_people", "受影响人数 People affected"),
    ("measures", "已采取措施 Measures taken"),
    ("resources_used", "投入力量和物资 Resources used"),
    ("needs", "需要支援事项 Needs"),
]


def report_docx(report: dict[str, Any]) -> bytes:
    """``report`` (``service.report_json``) as a .docx file."""
    document = Document()
    style = document.styles["Normal"]
    style.font.name = "Times New Roman"
    style.font.size = Pt(11)
    style.element.rPr.rFonts.set(qn("w:eastAsia"), EAST_ASIAN_FONT)
    kind = ReportKind(report["kind"])
    document.add_heading(f"突发事件信息{kind.name_zh} Situation report ({kind.value})", level=1)
    document.add_paragraph(
        f"事件 Incident: {report['incidentTitle'] or report['incidentId']}"
        f"（{report['incidentId']}）"
    )
    document.add_paragraph(
        f"事件级别 Level: {report['severity']}    版本 Version: v{report['version']}"
        f"    报送单位 From: {report['originDistrict']} ({report['origin']})"
    )
    table = document.add_table(rows=0, cols=2)
    table.style = "Table Grid"
    fields = report["fields"]
    for name, label in _ROWS:
        cells = table.add_row().cells
        cells[0].text = label
        value = fields.get(name)
        cells[1].text = "" if value is None else str(value)
    document.add_paragraph(f"报送时间 Submitted: {report['submittedAt'] or '未报送 not submitted'}")
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()
