"""Wall time of the contamination analysis (nsd.contamination) on one CPU thread.

Default case: 64 channels, 20 minutes, ECoG at 512 Hz, on a SIMULATED recording from
nsd.simulate.simulate_raw_recording with the audio leaked into 3 channels. BLAS and OpenMP are
pinned to one thread by environment variables set before numpy is imported, and the process is
pinned to one CPU core (os.sched_setaffinity) where the OS allows it.

Two inputs are timed, each best of --repeats:
  * audio at 16 kHz (the stage `resample` then brings it to 512 Hz);
  * audio already at 512 Hz (the toolbox's own input format), so `resample` is a no-op.
Per-stage wall and CPU times come from `ContaminationResult.timings_s` and `.cpu_s`; `total` is
their sum, `whole call` the wall time of the call. On a shared machine the CPU time is the better
estimate of what one free core needs. A separate run under tracemalloc gives the analysis's peak memory. --figures also times
the six PNG figures.

Usage:
    .venv/bin/python benchmarks/contamination_speed.py [--channels 64] [--minutes 20] [--repeats 3] [--figures]
Prints a markdown report; copy it into benchmarks/results/contamination.md.
"""
import os

for _k in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS', 'NUMEXPR_NUM_THREADS', 'VECLIB_MAXIMUM_THREADS'):
    os.environ[_k] = '1'

import argparse, platform, tempfile, time, tracemalloc
from pathlib import Path

import numpy as np
import scipy

from nsd.contamination import common_rate, contamination_analysis, save_contamination_figures
from nsd.participant import RawRecording
from nsd.simulate import simulate_raw_recording

STAGES = ('resample', 'transpose', 'artifacts', 'audio_spectrogram', 'ecog_spectrograms', 'correlations', 'p_values',
          'criterion', 'cross_correlations', 'total')


def machine() -> str:
    cpu = platform.processor() or ''
    try:
        cpu = next(l.split(':', 1)[1].strip() for l in Path('/proc/cpuinfo').read_text().splitlines() if l.startswith('model name'))
    except (OSError, StopIteration):
        pass
    return (f'{cpu}, {os.cpu_count()} logical CPUs visible; Python {platform.python_version()}, numpy {np.__version__}, '
            f'scipy {scipy.__version__}; {platform.system()} {platform.release()}')


def pin_one_core() -> str:
    try:
        core = sorted(os.sched_getaffinity(0))[0]
        os.sched_setaffinity(0, {core})
        return f'process pinned to CPU {core}'
    except (AttributeError, OSError):
        return 'process not pinned (sched_setaffinity unavailable)'


def best_of(rec, repeats, **kw):
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        res = contamination_analysis(rec, **kw)
        runs.append((time.perf_counter() - t0, res))
    wall, res = min(runs, key=lambda r: r[0])
    return wall, res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--channels', type=int, default=64)
    ap.add_argument('--minutes', type=float, default=20.0)
    ap.add_argument('--repeats', type=int, default=3)
    ap.add_argument('--n-permutations', type=int, default=10_000)
    ap.add_argument('--figures', action='store_true', help='also time the six PNG figures')
    a = ap.parse_args()
    pinned = pin_one_core()

    t0 = time.perf_counter()
    rec16k = simulate_raw_recording(duration_s=a.minutes * 60, n_channels=a.channels, contaminate=[5, 17, 40][:a.channels], seed=0)
    t_sim = time.perf_counter() - t0
    _, audio512, fs = common_rate(rec16k)
    rec512 = RawRecording(rec16k.ecog, fs, audio512.astype(np.float32), fs, rec16k.channel_names, simulated=True)

    rows = {}
    for name, rec in (('audio 16 kHz', rec16k), ('audio 512 Hz', rec512)):
        rows[name] = best_of(rec, a.repeats, n_permutations=a.n_permutations)

    tracemalloc.start()
    contamination_analysis(rec512, n_permutations=a.n_permutations)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    res = rows['audio 512 Hz'][1]
    print(f'# Contamination analysis: speed\n')
    print(f'Machine: {machine()}. One thread (BLAS/OpenMP env vars = 1), {pinned}.\n')
    print(f'Input: SIMULATED recording, {a.channels} channels x {a.minutes:g} min, ECoG at {rec16k.ecog_fs:g} Hz '
          f'({rec16k.ecog.shape[0]} samples, float32), audio leaked into channels 5, 17, 40 '
          f'(simulation took {t_sim:.1f} s, not counted). Defaults of the toolbox: 30 s excluded, window '
          f'{res.win_len} samples, hop {res.hop}, {len(res.freqs_hz)} bins, {res.n_frames_kept} of {len(res.kept)} frames kept, '
          f'{a.n_permutations} surrogates. Best of {a.repeats} runs.\n')
    print('| stage | ' + ' | '.join(f'{n}: wall (s) | {n}: CPU (s)' for n in rows) + ' |')
    print('|---|' + '---:|' * (2 * len(rows)))
    for st in STAGES:
        print(f'| {st} | ' + ' | '.join(f'{r.timings_s.get(st, 0.0):.2f} | {r.cpu_s.get(st, 0.0):.2f}' for _, r in rows.values()) + ' |')
    print('| whole call | ' + ' | '.join(f'{w:.2f} | ' for w, _ in rows.values()) + ' |')
    print(f'\nPeak memory allocated by the analysis (tracemalloc, audio at 512 Hz): {peak / 2**20:.0f} MiB '
          f'(the recording itself: {(rec512.ecog.nbytes + rec512.audio.nbytes) / 2**20:.0f} MiB).')
    print(f'\nResult: P = {res.criterion_p:g}, top channels {[res.channel_names[i] for i in res.ranking[:3]]}.')
    if a.figures:
        with tempfile.TemporaryDirectory() as d:
            t0 = time.perf_counter()
            save_contamination_figures(res, d)
            print(f'\nSix PNG figures (save_contamination_figures): {time.perf_counter() - t0:.2f} s.')


if __name__ == '__main__':
    main()
