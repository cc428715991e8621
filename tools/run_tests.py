"""Run every notebook under nbs/ as a test, one `nbdev_test` process per notebook, then the browser check.

`nbdev_test` alone prints only `Success.` and exits 0 when it finds nothing, so this runner
lists the notebooks itself, runs each in its own process (no state shared between chapters),
and ends with the line `N passed, N failed, N skipped`. Exit status 1 if any test failed.
The browser check (`tools/browser_check.py`: the explorer in JupyterLab and headless Chromium)
runs with the notebooks when no path is given, or when its path is given; it is skipped, and
counted as skipped, where Chromium cannot be installed or started.
"""
import argparse, os, shutil, subprocess, sys, tempfile, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BROWSER_CHECK = ROOT / 'tools' / 'browser_check.py'
SKIPPED = 3  # exit status of a check that could not run here


def notebooks(nbs: Path):
    return sorted(p for p in nbs.rglob('*.ipynb')
                  if not any(part.startswith(('.', '_')) for part in p.relative_to(nbs).parts))


def nbdev_test_command():
    "The `nbdev_test` script beside this interpreter (a venv), else the one on PATH (e.g. `pip install --target DIR`: DIR/bin)."
    script = Path(sys.executable).with_name('nbdev_test')
    if script.exists(): return [str(script)]
    found = shutil.which('nbdev_test')
    if found: return [found]
    sys.exit(f'nbdev_test is neither beside {sys.executable} nor on PATH: install the dev requirements (make install)')


def run_one(nb: Path, flags: str, timeout: int):
    """Run one notebook (or the browser check): (path, 'PASS' | 'FAIL' | 'SKIP', seconds, output, skipped parts).
    A notebook reports a part it had to skip (a service it could not get) by appending one line, the reason, to the
    file named by `NSD_TEST_SKIPS`; each line counts as one skipped test."""
    skips_file = Path(tempfile.mkstemp(prefix='nsd-skips-', suffix='.txt')[1])
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get('OMP_NUM_THREADS', '1'),
               MKL_NUM_THREADS='1', PYTHONUNBUFFERED='1', MPLBACKEND='Agg', NSD_TEST_SKIPS=str(skips_file))
    browser = nb == BROWSER_CHECK
    if browser:
        env.pop('MPLBACKEND')  # the JupyterLab kernel keeps its own backend
        cmd = [sys.executable, str(BROWSER_CHECK)]
    else:
        cmd = nbdev_test_command() + ['--path', str(nb), '--do_print']
        if flags: cmd += ['--flags', flags]
    t0 = time.time()
    try:
        r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
        out = r.stdout + r.stderr
        ok = r.returncode == 0 and (browser or 'Success' in out)
        state = 'PASS' if ok else 'SKIP' if browser and r.returncode == SKIPPED else 'FAIL'
    except subprocess.TimeoutExpired as e:
        state, out = 'FAIL', f'timed out after {timeout} s\n{e.stdout or ""}{e.stderr or ""}'
    skips = [l for l in skips_file.read_text().splitlines() if l.strip()]
    skips_file.unlink(missing_ok=True)
    return nb, state, time.time() - t0, out, skips


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('--jobs', type=int, default=2, help='notebooks run at once')
    ap.add_argument('--flags', default='', help='extra tst_flags to run, e.g. "slow"')
    ap.add_argument('--timeout', type=int, default=1500, help='seconds allowed per notebook (the a2a training chapter takes 5-8 min on 2 busy cores)')
    ap.add_argument('--no-browser', action='store_true', help='leave out the browser check (tools/browser_check.py)')
    ap.add_argument('paths', nargs='*', help='notebooks to run, or tools/browser_check.py (default: all under nbs/, then the browser check)')
    a = ap.parse_args()
    nbs = [Path(p).resolve() for p in a.paths] or notebooks(ROOT / 'nbs')
    if not nbs:
        print('no notebooks found under nbs/'); print('0 passed, 1 failed, 0 skipped'); return 1
    if not a.paths and not a.no_browser: nbs.append(BROWSER_CHECK)  # last: it reuses the example batch explore.ipynb makes
    counts = {'PASS': 0, 'FAIL': 0, 'SKIP': 0}
    with ThreadPoolExecutor(a.jobs) as ex:
        for nb, state, dt, out, skips in ex.map(lambda n: run_one(n, a.flags, a.timeout), nbs):
            name = nb.relative_to(ROOT) if nb.is_relative_to(ROOT) else nb
            counts[state] += 1
            if state == 'SKIP':
                print(f'SKIP  {name}  ({dt:.0f} s): {out.strip().splitlines()[-1] if out.strip() else "no reason given"}', flush=True)
                continue
            print(f'{state}  {name}  ({dt:.0f} s)', flush=True)
            for why in skips: print(f'SKIP  {name}: {why}', flush=True)
            counts['SKIP'] += len(skips)
            if state == 'FAIL': print('\n'.join('    ' + l for l in out.strip().splitlines()[-60:]), flush=True)
    print(f"{counts['PASS']} passed, {counts['FAIL']} failed, {counts['SKIP']} skipped")
    return 1 if counts['FAIL'] else 0


if __name__ == '__main__':
    sys.exit(main())
