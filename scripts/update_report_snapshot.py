"""Regenerate tests/snapshots/report_structure.txt from the sample report.

Run after an intended change to the HTML template, then review the diff:
    python scripts/update_report_snapshot.py && git diff tests/snapshots/
"""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # conftest_report lives beside the tests that use it

from conftest_report import SAMPLE_CODE, html_structure, sample_report

from reports.render import render_html

SNAPSHOT = ROOT / "tests" / "snapshots" / "report_structure.txt"

if __name__ == "__main__":
    SNAPSHOT.parent.mkdir(parents=True, exist_ok=True)
    SNAPSHOT.write_text(html_structure(render_html(sample_report(), SAMPLE_CODE)))
    print(f"wrote {SNAPSHOT.relative_to(ROOT)}")
