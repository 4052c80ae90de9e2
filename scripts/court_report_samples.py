"""Render the five sample court reports from the test scenarios, print their readability, and make the
README picture.

    PYTHONPATH=$PWD .venv/bin/python scripts/court_report_samples.py [--out DIR] [--png docs/img/court-report.png]

Runs the real service on a throw-away SQLite database: a nurse screens each scenario, accepts every
proposed route, confirms every proposed need and finalises; the report is fetched as PDF. The picture
is the first page of the learning-disability sample, made with pdftoppm (poppler-utils).
"""

from __future__ import annotations

import argparse
import io
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from fastapi.testclient import TestClient
from pypdf import PdfReader

from screening import migrate
from screening.app import create_app
from screening.config import Settings
from screening.db import make_engine, make_session_factory
from tests.factories import headers_for, make_user
from tests.routes.readability import flesch_reading_ease
from tests.routes.scenarios import ALL, LEARNING_DISABILITY, decide_everything, finalise, open_screen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="Keep the PDFs here (default: a temporary folder).")
    parser.add_argument("--png", type=Path, default=None, help="Write the first page of the LD sample as PNG.")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="court-reports-"))
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="court-report-db-"))
    settings = Settings(environment="test", data_dir=work, database_url=f"sqlite:///{work}/samples.db",
                        secret_key="sample-" + "k" * 40, person_key="sample-" + "p" * 40)
    engine = make_engine(settings)
    migrate.upgrade(engine)
    session = make_session_factory(engine)()
    with TestClient(create_app(settings)) as client:
        headers = headers_for(client, make_user(session, full_name="Sam Okafor"))
        session.close()
        for scenario in ALL:
            screen_id = open_screen(client, headers, scenario)
            decide_everything(client, headers, screen_id)
            finalise(client, headers, screen_id)
            started = time.perf_counter()
            r = client.get(f"/api/v1/screens/{screen_id}/court-report?format=pdf", headers=headers)
            elapsed_ms = (time.perf_counter() - started) * 1000
            r.raise_for_status()
            pdf = out / (scenario.name.replace(" ", "-") + ".pdf")
            pdf.write_bytes(r.content)
            reader = PdfReader(io.BytesIO(r.content))
            text = "\n".join(p.extract_text() for p in reader.pages)
            print(f"{scenario.name}: {len(reader.pages)} page(s), Flesch reading ease "
                  f"{flesch_reading_ease(text):.0f}, served in {elapsed_ms:.0f} ms, {pdf}")
            if args.png and scenario is LEARNING_DISABILITY:
                prefix = work / "page"
                subprocess.run(["pdftoppm", "-png", "-r", "80", "-f", "1", "-l", "1", "-singlefile", str(pdf),  # noqa: S603, S607
                                str(prefix)], check=True)
                args.png.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(f"{prefix}.png", args.png)
                print(f"picture: {args.png}")
    engine.dispose()
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
