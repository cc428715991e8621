"""Run every notebook under nbs/ as a test, one `nbdev_test` process per notebook.

`nbdev_test` alone prints only `Success.` and exits 0 when it finds nothing, so this runner
lists the notebooks itself, runs each in its own process (no state shared between chapters),
and ends with the line `N passed, N failed`. Exit status 1 if any notebook failed.
"""
import argparse, os, shutil, subprocess, sys, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


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
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get('OMP_NUM_THREADS', '1'),
               MKL_NUM_THREADS='1', PYTHONUNBUFFERED='1', MPLBACKEND='Agg')
    cmd = nbdev_test_command() + ['--path', str(nb), '--do_print']
    if flags: cmd += ['--flags', flags]
    t0 = time.time()
    try:
        r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
        ok, out = r.returncode == 0 and 'Success' in r.stdout + r.stderr, r.stdout + r.stderr
    except subprocess.TimeoutExpired as e:
        ok, out = False, f'timed out after {timeout} s\n{e.stdout or ""}{e.stderr or ""}'
    return nb, ok, time.time() - t0, out


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('--jobs', type=int, default=2, help='notebooks run at once')
    ap.add_argument('--flags', default='', help='extra tst_flags to run, e.g. "slow"')
    ap.add_argument('--timeout', type=int, default=1500, help='seconds allowed per notebook (the a2a training chapter takes 5-8 min on 2 busy cores)')
    ap.add_argument('paths', nargs='*', help='notebooks to run (default: all under nbs/)')
    a = ap.parse_args()
    nbs = [Path(p).resolve() for p in a.paths] or notebooks(ROOT / 'nbs')
    if not nbs:
        print('no notebooks found under nbs/'); print('0 passed, 1 failed'); return 1
    passed = failed = 0
    with ThreadPoolExecutor(a.jobs) as ex:
        for nb, ok, dt, out in ex.map(lambda n: run_one(n, a.flags, a.timeout), nbs):
            name = nb.relative_to(ROOT)
            print(f'{"PASS" if ok else "FAIL"}  {name}  ({dt:.0f} s)', flush=True)
            if ok: passed += 1
            else:
                failed += 1
                print('\n'.join('    ' + l for l in out.strip().splitlines()[-60:]), flush=True)
    print(f'{passed} passed, {failed} failed')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
