"""The report: the last step of note -> proof -> code -> report.

`write_reports(report, out_dir, code)` turns the verifier's report dict (the
same dict that is written as report.json) into a self-contained HTML page and a
LaTeX document, compiled to PDF when TeX is installed.
"""
