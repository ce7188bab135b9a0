"""`python manage.py build_replay_recording`: rebuild data/recordings/opc_judge.jsonl."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from workers.recordings import CORPUS, RECORDING, write_recording


class Command(BaseCommand):
    help = "Write the replay recording of the Open Proof Corpus judge's analyses."

    def add_arguments(self, parser: CommandParser) -> None:
        base = Path(settings.BASE_DIR)
        parser.add_argument("--corpus", type=Path, default=base / CORPUS)
        parser.add_argument("--output", type=Path, default=base / RECORDING)

    def handle(self, *args: Any, corpus: Path, output: Path, **options: Any) -> None:
        count = write_recording(corpus, output)
        self.stdout.write(f"{count} recorded verify samples written to {output}")
