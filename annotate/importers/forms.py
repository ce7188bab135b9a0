"""The upload form of the import page."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.core.exceptions import SuspiciousFileOperation
from django.template.defaultfilters import filesizeformat
from django.utils.text import get_valid_filename

from annotate.importers import FORMATS


class ImportUploadForm(forms.Form):
    format = forms.ChoiceField(choices=list(FORMATS.items()))
    file = forms.FileField()

    def clean_file(self):
        upload = self.cleaned_data["file"]
        limit = settings.IMPORT_MAX_UPLOAD_BYTES
        if upload.size > limit:
            raise forms.ValidationError(
                f"The file is {filesizeformat(upload.size)}; uploads may be at most "
                f"{filesizeformat(limit)}. Larger files: `manage.py import_data`."
            )
        try:
            # What storage will name the file; raised there, it would be a bare 400.
            get_valid_filename(upload.name)
        except SuspiciousFileOperation:
            raise forms.ValidationError(
                f"The file name {upload.name!r} has no letters or digits to store it under; "
                "rename the file (e.g. proofs.jsonl) and upload it again."
            ) from None
        return upload
