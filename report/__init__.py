"""The client's reports: `plan --html` and `report --html`, each one self-contained HTML page.

`page` renders (Jinja2 with autoescape, translations compiled from the committed .po at load
time, a Content-Security-Policy that forbids every outside resource); `charts` draws inline SVG
with pygal; `plan_digest` and `run_digest` gather what a page shows in bounded memory; `waves`
packs owners into waves that fit a window.
"""
