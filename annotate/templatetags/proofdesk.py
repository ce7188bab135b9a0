from __future__ import annotations

from django import template
from django.utils.safestring import SafeString

from annotate.rendering import render_inline, render_markdown

register = template.Library()


@register.filter(name="markdown")
def markdown_filter(text: str | None) -> SafeString:
    """`{{ proof.text|markdown }}`: the sanitising Markdown + math renderer."""
    return render_markdown(text)


@register.filter(name="inline_markdown")
def inline_markdown_filter(text: str | None) -> SafeString:
    """`{{ issue.quote|inline_markdown }}`: a quoted passage, rendered on one line."""
    return render_inline(text)


@register.filter(name="number")
def number_filter(value: object, places: int = 4) -> str:
    """`{{ party.score|number }}`: a score or mean as people write it, rounded to `places`
    decimals without trailing zeros (1, 0.5, 0.8125), where `floatformat` pads 0.5 to
    0.5000; anything not a number is shown as it is."""
    if isinstance(value, bool):
        return str(value)
    try:
        rounded = round(float(value), int(places))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "" if value is None else str(value)
    text = f"{rounded:.{int(places)}f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text
