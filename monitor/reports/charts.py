"""Charts as inline SVG, generated here (no JavaScript, no network): tallies and counts in, SVG markup
out. Chinese labels are SVG text with a CJK font list; every bar and cell carries its numbers in
`data-*` attributes and a <title> tooltip, so the figures can be checked and read without hovering.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from html import escape

from markupsafe import Markup

from monitor.core import wording
from monitor.core.wording import display_width
from monitor.reports.figures import Bin, Tally
from monitor.reports.trend import KEY_WORD, KEYS

FONT = (
    "'Noto Sans CJK SC','Source Han Sans SC','Microsoft YaHei','PingFang SC','WenQuanYi Zen Hei',"
    "SimHei,sans-serif"
)
BAR = {"red": "#d64545", "yellow": "#e9b318", "green": "#3c9a5f", "not_reported": "#a3a8b0"}
INK = {"red": "#ffffff", "yellow": "#3d2b00", "green": "#ffffff", "not_reported": "#ffffff"}
_SEVERITY = {"green": 0, "yellow": 1, "red": 2}


def _svg(w: float, h: float, label: str, body: list[str]) -> Markup:
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w:.0f} {h:.0f}" width="{w:.0f}" '
        f'height="{h:.0f}" role="img" aria-label="{escape(label)}" font-family="{FONT}" font-size="12">'
    )
    return Markup(head + f"<title>{escape(label)}</title>" + "".join(body) + "</svg>")


def _text(x: float, y: float, s: str, anchor: str = "start", size: int = 12, **attrs: str) -> str:
    extra = "".join(f' {k.replace("_", "-")}="{escape(v)}"' for k, v in attrs.items())
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}"{extra}>{escape(s)}</text>'
    )


def _rect(x: float, y: float, w: float, h: float, colour: str, tip: str, **data: object) -> str:
    attrs = "".join(f' data-{k.replace("_", "-")}="{escape(str(v))}"' for k, v in data.items())
    return (
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" fill="{colour}"{attrs}>'
        f"<title>{escape(tip)}</title></rect>"
    )


def _legend(x: float, y: float, keys: Sequence[str]) -> list[str]:
    out = []
    for k in keys:
        out.append(f'<rect x="{x:.1f}" y="{y - 10:.1f}" width="12" height="12" fill="{BAR[k]}"/>')
        out.append(_text(x + 16, y, KEY_WORD[k]))
        x += 16 + display_width(KEY_WORD[k]) * 6.5 + 18
    return out


def _short(name: str, limit: int = 24) -> str:
    """Cut a label to `limit` display columns (CJK = 2), marking the cut with …"""
    out, used = "", 0
    for ch in name:
        used += display_width(ch)
        if used > limit:
            return out + "…"
        out += ch
    return out


def department_bars(tallies: Sequence[Tally]) -> Markup:
    """Lights by supervising department: one horizontal bar per department, stacked red, yellow, green,
    not reported, in the order given (the ranking; figures.top_and_rest sums the tail as 其他, code "").
    Bars share one scale, the largest named department's; a longer 其他 bar is shortened to the full
    width and says so."""
    label_w = max([display_width(_short(t.name)) * 6.5 for t in tallies] + [60]) + 12
    bar_w, row_h, top = 520.0, 19, 30
    most = max([t.projects for t in tallies if t.code] + [1])
    body = _legend(label_w, 16, KEYS)
    for n, t in enumerate(tallies):
        y = top + n * row_h
        body.append(_text(label_w - 8, y + 12, _short(t.name), "end", dept=t.code))
        x = label_w
        scale = min(bar_w / most, bar_w / max(t.projects, 1))
        for k in KEYS:
            c = t.count[k]
            if not c:
                continue
            w = scale * c
            tip = f"{t.name}：{KEY_WORD[k]} {c} 个"
            body.append(_rect(x, y, w, 14, BAR[k], tip, light=k, count=c, dept=t.code))
            if w >= 8 * len(str(c)) + 4:
                body.append(_text(x + w / 2, y + 11, str(c), "middle", 10, fill=INK[k]))
            x += w
        shortened = "（条形按比例缩短）" if scale < bar_w / most else ""
        body.append(_text(x + 6, y + 12, f"{t.projects}{shortened}", fill="#555"))
    height = top + len(tallies) * row_h + 8
    room = 170 if any(t.projects > most for t in tallies) else 50
    return _svg(label_w + bar_w + room, height, "各主管部门项目灯色分布", body)


def histogram(bins: Sequence[Bin], thresholds: tuple[Decimal, Decimal] | None, step: int = 10) -> Markup:
    """Reported projects by r = execution rate ÷ their own time progress (figures.histogram: what
    decides the budget light, seasonal projects measured against their profile), stacked by budget
    light, with dashed lines at the rule's red and yellow thresholds and a solid one at 100 %."""
    x0, y0, plot_w, plot_h = 52.0, 48.0, 640.0, 180.0
    bw = plot_w / len(bins)
    most = max([sum(b.count.values()) for b in bins] + [1])
    tick = _nice_step(most)
    top = -(-most // tick) * tick
    body = _legend(x0, 18, ("red", "yellow", "green"))
    body.append(_text(x0 + 200, 18, "（按预算执行灯）", fill="#555"))
    for v in range(0, top + 1, tick):
        y = y0 + plot_h - plot_h * v / top
        body.append(f'<line x1="{x0}" x2="{x0 + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e3e6ea"/>')
        body.append(_text(x0 - 6, y + 4, str(v), "end", 11, fill="#555"))
    for i, b in enumerate(bins):
        yb = y0 + plot_h
        for k in ("red", "yellow", "green"):
            c = b.count[k]
            if c:
                h = plot_h * c / top
                yb -= h
                tip = f"执行进度 {b.label}：{KEY_WORD[k]} {c} 个"
                body.append(_rect(x0 + i * bw + 1, yb, bw - 2, h, BAR[k], tip, light=k, count=c, bin=b.label))
        label = f"≥{b.low}%" if b.high is None else f"{b.low}%"
        body.append(_text(x0 + i * bw, y0 + plot_h + 16, label, "middle", 11, fill="#555"))

    def mark(ratio: Decimal, colour: str, word: str, dash: str) -> None:
        """A vertical line at `ratio`, its word above the plot, to the right of the line."""
        px = x0 + float(ratio) * 100 / step * bw
        body.append(
            f'<line x1="{px:.1f}" x2="{px:.1f}" y1="{y0 - 18}" y2="{y0 + plot_h}" stroke="{colour}" '
            f'stroke-width="2"{dash} data-threshold="{ratio:.2f}"/>'
        )
        body.append(_text(px + 3, y0 - 8, word, size=11, fill=colour, font_weight="bold"))

    if thresholds:
        red, yellow = thresholds
        mark(red, "#b02a2a", f"低于{wording.pct_threshold(red)}红灯", ' stroke-dasharray="6 3"')
        mark(yellow, "#8a6100", f"低于{wording.pct_threshold(yellow)}黄灯", ' stroke-dasharray="6 3"')
    mark(Decimal(1), "#1a3a6b", "与序时进度持平", "")
    body.append(f'<line x1="{x0}" x2="{x0 + plot_w}" y1="{y0 + plot_h}" y2="{y0 + plot_h}" stroke="#888"/>')
    axis = "执行进度（预算执行率 ÷ 本项目序时进度，季节性项目按其执行曲线）"
    body.append(_text(x0 + plot_w / 2, y0 + plot_h + 36, axis, "middle"))
    body.append(_text(14, y0 + plot_h / 2, "项目数", "middle", transform=f"rotate(-90 14 {y0 + plot_h / 2})"))
    return _svg(x0 + plot_w + 20, y0 + plot_h + 48, "执行进度分布（决定预算执行灯）", body)


def _nice_step(most: int) -> int:
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000):
        if most / step <= 6:
            return step
    return 10_000


CELL = {
    "improved": ("#3c9a5f", "好转"),
    "worsened": ("#d64545", "恶化"),
    "persistent_red": ("#7a1010", "持续红灯"),
    "unchanged": ("#8a9099", "不变"),
    "not_reported": ("#6b7fa8", "未报送相关"),
}


def transitions(matrix: Mapping[tuple[str, str], int], before: str, after: str) -> Markup:
    """The transition matrix: rows are the earlier light, columns the later one; improved cells green,
    worsened red, persistent red (red → red) dark red, framed and never faint, other unchanged cells
    grey, with row and column totals."""
    cw, ch, x0, y0 = 92.0, 34.0, 110.0, 60.0
    most = max([*matrix.values(), 1])
    body = [_text(x0 + 2 * cw, 20, f"{after}（列）", "middle", 13, font_weight="bold")]
    body.append(_text(8, y0 - 12, f"{before}（行）", "start", 13, font_weight="bold"))
    for j, k in enumerate(KEYS):
        body.append(
            _text(x0 + j * cw + cw / 2, y0 - 12, KEY_WORD[k], "middle", fill=BAR[k], font_weight="bold")
        )
    body.append(_text(x0 + 4 * cw + cw / 2, y0 - 12, "合计", "middle", fill="#555"))
    for i, b in enumerate(KEYS):
        y = y0 + i * ch
        body.append(_text(x0 - 10, y + ch / 2 + 4, KEY_WORD[b], "end", fill=BAR[b], font_weight="bold"))
        for j, a in enumerate(KEYS):
            n = matrix.get((b, a), 0)
            kind = _cell_kind(b, a)
            colour = CELL[kind][0]
            opacity = 0.18 + 0.82 * n / most if n else 0.06
            frame = ""
            if kind == "persistent_red":
                opacity = 1.0 if n else 0.3
                frame = ' stroke="#2b0000" stroke-width="3"'
            tip = f"{before}{KEY_WORD[b]} → {after}{KEY_WORD[a]}：{n} 个（{CELL[kind][1]}）"
            body.append(
                f'<rect x="{x0 + j * cw:.1f}" y="{y:.1f}" width="{cw - 2:.1f}" height="{ch - 2:.1f}" '
                f'fill="{colour}" fill-opacity="{opacity:.2f}"{frame} '
                f'data-from="{b}" data-to="{a}" data-kind="{kind}" data-count="{n}">'
                f"<title>{escape(tip)}</title></rect>"
            )
            ink = "#ffffff" if opacity > 0.6 else "#222222"
            weight = "bold" if kind == "persistent_red" else "normal"
            cx, cy = x0 + j * cw + cw / 2 - 1, y + ch / 2 + 4
            body.append(_text(cx, cy, str(n), "middle", 13, fill=ink, font_weight=weight))
        row_total = sum(matrix.get((b, a), 0) for a in KEYS)
        body.append(_text(x0 + 4 * cw + cw / 2, y + ch / 2 + 4, str(row_total), "middle", fill="#555"))
    y = y0 + 4 * ch
    body.append(_text(x0 - 10, y + ch / 2 + 4, "合计", "end", fill="#555"))
    for j, a in enumerate(KEYS):
        col_total = sum(matrix.get((b, a), 0) for b in KEYS)
        body.append(_text(x0 + j * cw + cw / 2, y + ch / 2 + 4, str(col_total), "middle", fill="#555"))
    lx = x0 + 5 * cw + 16
    for n, (colour, word) in enumerate(CELL.values()):
        body.append(f'<rect x="{lx}" y="{y0 + n * 22}" width="12" height="12" fill="{colour}"/>')
        body.append(_text(lx + 18, y0 + n * 22 + 11, word))
    return _svg(lx + 100, y0 + 5 * ch + 8, f"{before}至{after}灯色变化", body)


def _cell_kind(before: str, after: str) -> str:
    if "not_reported" in (before, after):
        return "unchanged" if before == after else "not_reported"
    b, a = _SEVERITY[before], _SEVERITY[after]
    if a != b:
        return "improved" if a < b else "worsened"
    return "persistent_red" if after == "red" else "unchanged"
