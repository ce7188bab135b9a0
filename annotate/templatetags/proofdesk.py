from __future__ import annotations

from django import template
from django.utils.safestring import SafeString

from annotate.rendering import render_markdown

register = template.Library()


@register.filter(name="markdown")
def markdown_filter(text: str | None) -> SafeString:
    """`{{ proof.text|markdown }}`: the sanitising Markdown + math renderer."""
    return render_markdown(text)
