"""Summarise a py-spy raw (collapsed stacks) profile: the functions that take the most time.

usage: python bench/top_functions.py profile.txt [N] [WITHIN]

With WITHIN (a function name, e.g. ``ASGIRouter.__call__``), only samples with that function on
the stack count, and shares are of those: the cost of serving requests, imports and idle left out.

Inclusive = share of samples with the function anywhere on the stack (counted once per sample);
exclusive = share of samples where it is the innermost frame. Frames are "function (file:line)"
without the line, so a function's lines add up. Idle samples (the event loop waiting) count in
the total, so the shares say where the worker's time went, busy or not.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

_LINE = re.compile(r":\d+\)$")


def frame_name(frame: str) -> str:
    """``handle (litestar/routes/http.py:123)`` → ``handle (litestar/routes/http.py)``; paths shortened."""
    frame = _LINE.sub(")", frame.strip())
    return re.sub(r"\(.*?/(site-packages|lib/python3\.\d+)/", "(", frame)


def main() -> None:
    """Print the top functions of the profile given on the command line."""
    path, top = Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 40
    within = sys.argv[3] if len(sys.argv) > 3 else None
    inclusive: Counter[str] = Counter()
    exclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = [frame_name(f) for f in stack.split(";")[1:]]  # the first is the thread
        if within is not None:
            starts = [i for i, name in enumerate(frames) if name.startswith(within + " ")]
            if not starts:
                continue
            frames = frames[starts[0] :]
        total += count
        if frames:
            exclusive[frames[-1]] += count
        for name in set(frames):
            inclusive[name] += count
    print(f"{total} samples")
    for title, counter in (("inclusive", inclusive), ("exclusive", exclusive)):
        print(f"\n--- {title} ---")
        for name, count in counter.most_common(top):
            print(f"{100 * count / total:6.1f}%  {name}")


if __name__ == "__main__":
    main()
