"""Throughput of `nsd.windows.TrialBank.sample_train`: windows per second for an HB02-shaped bank.

A synthetic participant shaped like HB02 (F = 256, C = 128 channels, 0.5 s words) is written to a
temporary folder; batches of windows are gathered on the CPU and, if CUDA is available, on the GPU.

    python benchmarks/trialbank_speed.py [--batch 256] [--repeats 20]
"""
import argparse, platform, tempfile, time
from pathlib import Path

import numpy as np
import torch

from nsd.participant import ParticipantMeta, load_participant, write_participant
from nsd.windows import TrialBank


def hb_like(path, N=30000, K=372, seed=0):
    rng = np.random.default_rng(seed)
    on = 60 + (N - 300) * np.arange(K) // K
    arrays = {'ecog_alldataset': rng.standard_normal((N, 128)).astype(np.float32),
              'wave_re_alldataset': (0.01 * rng.standard_normal(128 * N)).astype(np.float32),
              'wave_re_spec_alldataset': rng.uniform(-1, 1, (N, 256)).astype(np.float32),
              'noisesample_re_alldataset': np.full(256, 1e-4, np.float32),
              'start_ind_re_valid_alldataset': on, 'end_ind_re_valid_alldataset': on + 62,
              'label_alldataset': [f'w{k % 50}' for k in range(K)]}
    return write_participant(path, arrays, ParticipantMeta('HBLIKE', density='HB', tasks=['all'], test_trials=[50], simulated=True))


def rate(bank, batch, repeats, device):
    g = torch.Generator(device=device).manual_seed(0)
    bank.sample_train(batch, g)
    if device == 'cuda': torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(repeats): bank.sample_train(batch, g)
    if device == 'cuda': torch.cuda.synchronize()
    return repeats * batch / (time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--batch', type=int, default=256)
    ap.add_argument('--repeats', type=int, default=20)
    a = ap.parse_args()
    print(f'machine: {platform.machine()} {platform.processor() or ""}, torch {torch.__version__}, threads {torch.get_num_threads()}')
    with tempfile.TemporaryDirectory() as d:
        path = hb_like(Path(d) / 'HBLIKE.h5')
        with load_participant(path) as P:
            for dev in ['cpu'] + (['cuda'] if torch.cuda.is_available() else []):
                t0 = time.perf_counter(); bank = TrialBank(P, device=dev); t_load = time.perf_counter() - t0
                print(f'{dev}: bank built in {t_load:.2f} s; {rate(bank, a.batch, a.repeats, dev):,.0f} windows/s (batch {a.batch}, F 256, C 128)')


if __name__ == '__main__':
    main()
