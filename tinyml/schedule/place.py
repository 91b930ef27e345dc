"""Arena placement: offsets for buffers with known lifetimes.

Buffers are placed one at a time, each at the lowest offset where it
overlaps (in time and memory) no buffer placed before it.  A *link*
``(out, in, dmax)`` says that buffer ``out`` may overlap buffer ``in`` (an
operator writes its output over its dying input, or a patch stage writes its
split tensor over its source) provided ``offset(out) - offset(in) <= dmax``;
when that cannot be met the link is dropped and the two are kept apart.

Several placement orders are tried (largest first as in TFLM, earliest
first, largest area first, longest-lived first; every order for a handful of
buffers) and the smallest arena wins.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

ALIGN = 16


def align(n: int, a: int = ALIGN) -> int:
    return (n + a - 1) // a * a


@dataclass(frozen=True)
class Item:
    size: int
    first: int
    last: int


@dataclass(frozen=True)
class Link:
    out: int
    inp: int
    dmax: int


def _place(items: list[Item], links: list[Link], order: list[int]) -> tuple[int, list[int], set[int]]:
    """First-fit in ``order``; returns (arena, offsets, indices of links that hold).

    For a buffer with placed link partners, three choices are compared by the
    arena they leave: honour every link (moving everything placed so far up
    when a linked output must start below offset 0), honour only some, or
    none (then the pair is kept apart); ties keep the most links.
    """
    n = len(items)
    off = [-1] * n
    partners: dict[int, list[tuple[int, int]]] = {}  # buffer -> [(link index, other buffer)]
    for li, lk in enumerate(links):
        partners.setdefault(lk.out, []).append((li, lk.inp))
        partners.setdefault(lk.inp, []).append((li, lk.out))
    broken: set[int] = set()
    placed: list[int] = []
    top = 0
    for b in order:
        it = items[b]
        if it.size == 0:
            off[b] = 0
            continue
        near = [p for p in placed if not (items[p].last < it.first or it.last < items[p].first)]
        active = [(li, o) for li, o in partners.get(b, []) if off[o] >= 0 and li not in broken]

        def attempt(use: list[tuple[int, int]]) -> tuple[int, int, int] | None:
            """(arena after, offset, shift) honouring the links in ``use``."""
            lo, hi = 0, None
            friends = {o for _, o in use}
            for li, other in use:
                lk = links[li]
                if lk.out == b:
                    bound = off[other] + lk.dmax
                    hi = bound if hi is None else min(hi, bound)
                else:
                    lo = max(lo, off[other] - lk.dmax)
            shift = align(-hi) if hi is not None and hi < 0 else 0
            lo, hi = lo + shift, (hi + shift if hi is not None else None)
            if hi is not None and hi < lo:
                return None

            def free(c: int) -> bool:
                e = c + it.size
                return all(p in friends or e <= off[p] + shift or off[p] + shift + items[p].size <= c for p in near)

            cands = {lo} | {align(off[p] + shift + items[p].size) for p in near if p not in friends}
            for c in sorted(x for x in cands if x >= lo):
                if hi is not None and c > hi:
                    # a linked output may also sit (unaligned) exactly at its bound
                    c = hi
                    if not free(c):
                        return None
                    return max(top + shift, c + it.size), c, shift
                if free(c):
                    return max(top + shift, c + it.size), c, shift
            return None

        options = [active]
        if active:
            options.append([])
            if len(active) > 1:
                options.extend([x] for x in active)
        best: tuple[tuple[int, int], list[tuple[int, int]], tuple[int, int, int]] | None = None
        for use in options:
            got = attempt(use)
            if got is not None and (best is None or (got[0], -len(use)) < best[0]):
                best = ((got[0], -len(use)), use, got)
        assert best is not None
        _, use, (_, c, shift) = best
        for li, _ in active:
            if (li, _) not in use:
                broken.add(li)
        if shift:
            for p in placed:
                off[p] += shift
            top += shift
        off[b] = c
        top = max(top, c + it.size)
        placed.append(b)
    arena = max((off[b] + items[b].size for b in range(n)), default=0)
    held = {li for li in range(len(links)) if li not in broken}
    return align(arena), off, held


def place(items: list[Item], links: list[Link]) -> tuple[int, list[int], set[int], str]:
    """Offsets for every item; returns (arena bytes, offsets, links that hold, winning heuristic)."""
    idx = list(range(len(items)))
    orders: dict[str, list[int]] = {
        "largest-first": sorted(idx, key=lambda i: (-items[i].size, items[i].first)),
        "earliest-first": sorted(idx, key=lambda i: (items[i].first, -items[i].size)),
        "largest-area-first": sorted(idx, key=lambda i: (-items[i].size * (items[i].last - items[i].first + 1),
                                                         items[i].first)),
        "latest-first": sorted(idx, key=lambda i: (-items[i].last, -items[i].size)),
        "longest-lived-first": sorted(idx, key=lambda i: (-(items[i].last - items[i].first), -items[i].size)),
    }
    best: tuple[int, int, list[int], set[int], str] | None = None
    for name, order in orders.items():
        arena, off, held = _place(items, links, order)
        key = (arena, -len(held))
        if best is None or key < (best[0], best[1]):
            best = (arena, -len(held), off, held, name)
    if len(items) <= 6:  # small graphs: every placement order
        for perm in itertools.permutations(idx):
            arena, off, held = _place(items, links, list(perm))
            assert best is not None
            if (arena, -len(held)) < (best[0], best[1]):
                best = (arena, -len(held), off, held, "exhaustive")
    assert best is not None
    return best[0], best[2], best[3], best[4]
