"""Property-based fuzzing of the FHIR API (hypothesis); bench/fuzz.py runs it longer.

Hypothesis keeps caches (and would keep its example database, which the settings turn off)
under ``.hypothesis`` in the working directory: they go to the temporary directory instead.
"""

import tempfile
from pathlib import Path

from hypothesis.configuration import set_hypothesis_home_dir

set_hypothesis_home_dir(str(Path(tempfile.gettempdir()) / "ilp-hypothesis"))
