"""Golden files: each format's CSV sample and the transaction Bundles it must give.

The files in ``golden/`` were reviewed when written; a change to a mapper that alters any
entry fails here until the file is rewritten (``UPDATE_GOLDEN=1 pytest
tests/mappers/test_golden.py``) and the diff reviewed like code.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from mappers.importing import build_bundles, map_file
from tests.mappers.conftest import mapper, sample

GOLDEN = Path(__file__).parent / "golden"


def test_each_sample_gives_its_golden_bundles(format_name):
    mapped = map_file(mapper(format_name), sample(format_name, "csv"))
    assert mapped.errors == []
    bundles = build_bundles(mapped, batch_size=100)
    path = GOLDEN / f"{format_name}.json"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(json.dumps(bundles, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    expected = json.loads(path.read_text(encoding="utf-8"))
    assert bundles == expected, f"{path.name} differs: rewrite it (UPDATE_GOLDEN=1) if meant"
