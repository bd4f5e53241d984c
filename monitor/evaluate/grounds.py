"""A reason's ending: where each rule value it used was set."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from monitor.rules.load import Origin


def grounds(origins: Mapping[str, Origin], used: Sequence[str]) -> str:
    """Where each rule value in `used` was set (RuleSet fields, or "profile" for a seasonal profile an
    override chose), each source once, the lines of one file together: `（依据规则文件 local.yaml
    第3行）`, `（依据规则文件 default.yaml 第18、19行）`, `（依据覆盖规则“名称”（local.yaml 第12行））`.
    Empty when it used none (a milestone, 不可测)."""
    files: dict[str, list[int]] = {}
    named: dict[str, None] = {}
    for o in (origins[f] for f in used if f in origins):
        if o.override is None and o.file and o.line:
            lines = files.setdefault(o.file, [])
            if not lines:
                named[o.file] = None  # the file's place among the sources
            if o.line not in lines:
                lines.append(o.line)
        else:
            named[o.words] = None
    words = [
        f"规则文件 {k} 第{'、'.join(str(n) for n in sorted(files[k]))}行" if k in files else k for k in named
    ]
    return f"（依据{'、'.join(words)}）" if words else ""
