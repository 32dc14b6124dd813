"""`python app.py`: the browser app on the embedded defaults (index/ and plans/ beside this file).

Same as `essa-qa serve`; ESSA_QA_HOST / ESSA_QA_PORT override where it listens.
"""

import os
import sys
from pathlib import Path

from assistant.errors import EssaError
from assistant.webapp import serve

HERE = Path(__file__).resolve().parent

if __name__ == "__main__":
    try:
        serve(HERE / "index", HERE / "plans", host=os.environ.get("ESSA_QA_HOST", "127.0.0.1"),
              port=int(os.environ.get("ESSA_QA_PORT", "7860")))
    except EssaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
