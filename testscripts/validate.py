# The seed's `validate`: smoke, then the composed matrix, in one run.
from pathlib import Path

here = Path(__file__).parent
for name in ("smoke.py", "matrix.py"):
    exec(compile((here / name).read_text(), str(here / name), "exec"), globals())
