"""One libFuzzer run of one target, in a process of its own (libFuzzer exits when done).

python -m fuzz.worker TARGET [libFuzzer flags and corpus folders...]
"""

from __future__ import annotations

import sys

import atheris

#: Packages whose code is instrumented for coverage feedback.
INSTRUMENTED = ["masker", "dsp", "tokenizer", "sippy"]


def main() -> None:
    name = sys.argv[1]
    with atheris.instrument_imports(include=INSTRUMENTED):
        from fuzz.targets import TARGETS
    atheris.Setup([sys.argv[0], *sys.argv[2:]], TARGETS[name])
    atheris.Fuzz()


if __name__ == "__main__":
    main()
