"""The fleet report as one self-contained HTML page: inline CSS, an inline SVG chart per GPU model and mode
(every GPU's throughput, the median, the outlier cutoff, outliers in red), the findings as tables.
No script, no font, no image and no link to fetch: it opens the same offline."""

from __future__ import annotations

from html import escape

from dlverify.fleet.analyze import SECTIONS, FleetReport, Population, exit_code
from dlverify.fleet.render import summary
from dlverify.results import Status

_W, _H, _PAD_L, _PAD_R, _PAD_T, _PAD_B = 1200, 260, 70, 20, 24, 30
_CSS = """
body{font:14px/1.4 system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px;color:#222;background:#fff}
h1{font-size:20px;margin:0 0 4px} h2{font-size:16px;margin:24px 0 6px}
.ok{color:#176f2c}.bad{color:#b00020;font-weight:600}.warn{color:#8a6d00}
table{border-collapse:collapse;margin:4px 0 12px;font-size:13px}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f3f3f3} svg{background:#fafafa;border:1px solid #ddd}
.pill{display:inline-block;padding:1px 8px;border-radius:8px;margin-right:6px;background:#eee}
"""


def _chart(p: Population) -> str:
    runs = sorted(p.runs, key=lambda r: (r.host, r.gpu))
    vals = [r.img_s for r in runs]
    top, bottom = max(vals) * 1.05, min(min(vals), p.cutoff or min(vals)) * 0.95
    span = (top - bottom) or 1.0
    n = len(runs)

    def y(v: float) -> float:
        return _PAD_T + (top - v) / span * (_H - _PAD_T - _PAD_B)

    def x(i: int) -> float:
        return _PAD_L + (i + 0.5) / n * (_W - _PAD_L - _PAD_R)

    slow = {id(r) for r in p.slow}
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" '
        f'viewBox="0 0 {_W} {_H}" role="img" aria-label="{escape(p.model)} {p.mode} img/s per GPU">'
    ]
    for frac in (0.0, 0.25, 0.5, 0.75, 1.0):
        v = bottom + frac * span
        parts.append(
            f'<line x1="{_PAD_L}" x2="{_W - _PAD_R}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#e4e4e4"/>'
            f'<text x="{_PAD_L - 6}" y="{y(v) + 4:.1f}" font-size="11" text-anchor="end">{v:,.0f}</text>'
        )
    parts.append(
        f'<line x1="{_PAD_L}" x2="{_W - _PAD_R}" y1="{y(p.median):.1f}" y2="{y(p.median):.1f}" '
        f'stroke="#2a6fdb" stroke-width="1.5"/><text x="{_W - _PAD_R - 4}" y="{y(p.median) - 4:.1f}" '
        f'font-size="11" text-anchor="end" fill="#2a6fdb">median {p.median:,.0f}</text>'
    )
    if p.cutoff is not None:
        parts.append(
            f'<line x1="{_PAD_L}" x2="{_W - _PAD_R}" y1="{y(p.cutoff):.1f}" y2="{y(p.cutoff):.1f}" '
            f'stroke="#b00020" stroke-dasharray="6 4"/><text x="{_W - _PAD_R - 4}" '
            f'y="{y(p.cutoff) + 13:.1f}" font-size="11" text-anchor="end" fill="#b00020">'
            f"outlier cutoff {p.cutoff:,.0f}</text>"
        )
    radius = 3.0 if n <= 400 else 1.6
    for i, r in enumerate(runs):
        if id(r) in slow:
            continue
        parts.append(
            f'<circle cx="{x(i):.1f}" cy="{y(r.img_s):.1f}" r="{radius}" fill="#555">'
            f"<title>{escape(r.host)} {r.gpu}: {r.img_s:,.0f} img/s</title></circle>"
        )
    for i, r in enumerate(runs):  # outliers last, on top, labelled
        if id(r) not in slow:
            continue
        parts.append(
            f'<circle cx="{x(i):.1f}" cy="{y(r.img_s):.1f}" r="6" fill="#b00020" stroke="#fff">'
            f"<title>OUTLIER {escape(r.host)} {r.gpu}: {r.img_s:,.0f} img/s</title></circle>"
            f'<text x="{x(i) + 9:.1f}" y="{y(r.img_s) + 4:.1f}" font-size="12" fill="#b00020">'
            f"{escape(r.host)} {r.gpu}</text>"
        )
    parts.append(f'<text x="{_PAD_L}" y="{_H - 8}" font-size="11">{n} GPUs, ordered by host</text></svg>')
    return "".join(parts)


def _row(cells: list[str]) -> str:
    return "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


def render_html(report: FleetReport) -> str:
    s = summary(report)
    verdict = '<span class="bad">FAILED</span>' if exit_code(report) else '<span class="ok">OK</span>'
    out = [
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>",
        f"<title>dlverify fleet report {escape(report.root)}</title><style>{_CSS}</style></head><body>",
        f"<h1>dlverify fleet report: {verdict}</h1><p>{escape(report.root)}</p><p>",
        *(f'<span class="pill">{k.replace("_", " ")}: {v}</span>' for k, v in s.items()),
        "</p><h2>Groups (GPU model, spec)</h2><table><tr><th>group</th><th>hosts</th><th>ok</th></tr>",
        *(
            _row([escape(k), str(len(v)), str(sum(report.state[h] == "ok" for h in v))])
            for k, v in report.groups.items()
        ),
        "</table>",
    ]
    for p in report.populations:
        out.append(
            f"<h2>{escape(p.model)}: {p.mode} img/s per GPU ({escape(p.config[0])}, batch "
            f"{p.config[1]}, {p.config[2]} px)</h2>"
        )
        out.append(_chart(p))
    css = {Status.FAIL: "bad", Status.WARN: "warn"}
    for section, title in SECTIONS.items():
        items = [x for x in report.findings if x.section == section]
        if not items:
            continue
        out.append(
            f"<h2>{escape(title[0].upper() + title[1:])}</h2><table><tr><th>status</th><th>host</th>"
            "<th>check</th><th>observed</th><th>expected</th><th>detail</th></tr>"
        )
        for x in items:
            r = x.result
            out.append(
                _row(
                    [
                        f'<span class="{css.get(r.status, "")}">{r.status.value.upper()}</span>',
                        escape(x.host),
                        escape(r.name),
                        escape(r.observed or ""),
                        escape(r.expected or ""),
                        escape(r.detail),
                    ]
                )
            )
        out.append("</table>")
    out.append("</body></html>\n")
    return "\n".join(out)
