"""Write deterministic synthetic DICOM studies: one from options, or the demo set."""

from __future__ import annotations

import re
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from studies.dicom.synthetic import StudySpec, demo_studies, simple_spec, study_uid, write_study


class Command(BaseCommand):
    help = (
        "Write a synthetic CT or MR study as Part 10 files under --out "
        "(<series>/<instance>.dcm), or every demo study in its own subfolder with --demo. "
        "The same options always give byte-identical files."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--out", required=True, type=Path, help="output directory")
        parser.add_argument("--modality", choices=["CT", "MR"], default="CT", type=str.upper)
        parser.add_argument("--slices", type=int, default=60, help="images per series")
        parser.add_argument("--rows", type=int, help="default 512 for CT, 256 for MR")
        parser.add_argument("--columns", type=int, help="default: same as --rows")
        parser.add_argument("--seed", type=int, default=1, help="derives every UID and the noise")
        parser.add_argument("--series", type=int, default=1, help="number of series")
        parser.add_argument("--patient-id", default="SYN-0001")
        parser.add_argument(
            "--body-part",
            help="HEAD or BRAIN give the head phantom, anything else the chest (default: CHEST for CT, HEAD for MR)",
        )
        parser.add_argument("--demo", action="store_true", help="write the demo set instead")

    def handle(self, *args, **options) -> None:
        out: Path = options["out"]
        if options["demo"]:
            for n, spec in enumerate(demo_studies(), 1):
                self._write(spec, out / f"{n:02d}-{_slug(spec)}")
            return
        for name in ("slices", "series", "rows", "columns"):
            if options[name] is not None and options[name] < 1:
                raise CommandError(f"--{name} must be at least 1")
        rows = (
            options["rows"] or options["columns"] or (256 if options["modality"] == "MR" else 512)
        )
        spec = simple_spec(
            seed=options["seed"],
            modality=options["modality"],
            slices=options["slices"],
            rows=rows,
            columns=options["columns"] or rows,
            series_count=options["series"],
            patient_id=options["patient_id"],
            body_part=options["body_part"],
        )
        self._write(spec, out)

    def _write(self, spec: StudySpec, out: Path) -> None:
        started = time.perf_counter()
        paths = write_study(spec, out)
        size = sum(path.stat().st_size for path in paths) / 1e6
        self.stdout.write(
            f"{len(paths)} files ({size:.1f} MB, {time.perf_counter() - started:.1f} s) "
            f"StudyInstanceUID={study_uid(spec)} -> {out}"
        )


def _slug(spec: StudySpec) -> str:
    name = f"{spec.patient.patient_name}-{spec.modality}-{spec.body_part}-{spec.study_date}"
    return re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower()
