"""Sizes of the exported notebook cells, the measure CONVENTIONS.md compares with fastcore (about 7 lines) and nbdev (11).

A cell's size is its number of lines without the `#| export` directive; exported cells are those starting with
`#| export` or `#| exports`.  Prints one row per notebook and the overall median, share over 20 lines and the largest cells.

    python bench/cell_sizes.py [--top 10]
"""
import argparse, json, statistics
from pathlib import Path

def exported_cells(nb:Path):
    for c in json.loads(nb.read_text())['cells']:
        src = ''.join(c['source']).splitlines()
        if c['cell_type'] == 'code' and src and src[0].replace(' ', '') in ('#|export', '#|exports'):
            yield c.get('id'), len(src) - 1, next((l for l in src[1:] if l.strip() and not l.startswith(('#', '@', 'from ', 'import '))), '')

def main():
    ap = argparse.ArgumentParser(); ap.add_argument('--top', type=int, default=10); ap.add_argument('--nbs', default='nbs')
    a = ap.parse_args()
    rows, allc = [], []
    for nb in sorted(Path(a.nbs).glob('*.ipynb')):
        cells = list(exported_cells(nb))
        if not cells: continue
        n = [c[1] for c in cells]; allc += [(nb.name, *c) for c in cells]
        rows.append((nb.name, len(n), statistics.median(n), max(n), sum(x > 20 for x in n)))
    print(f"{'notebook':<28}{'cells':>6}{'median':>8}{'max':>6}{'>20':>5}")
    for r in rows: print(f"{r[0]:<28}{r[1]:>6}{r[2]:>8}{r[3]:>6}{r[4]:>5}")
    sizes = [c[2] for c in allc]
    print(f"\nall: {len(sizes)} exported cells, median {statistics.median(sizes)} lines, "
          f"{sum(s > 20 for s in sizes)/len(sizes):.0%} over 20 lines, max {max(sizes)}")
    print('\nlargest:')
    for nb, cid, n, first in sorted(allc, key=lambda c: -c[2])[:a.top]: print(f"  {n:>4}  {nb} #{cid}  {first.strip()[:70]}")

if __name__ == '__main__': main()
