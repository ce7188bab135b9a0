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
