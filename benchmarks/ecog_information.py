"""How much of the spectrogram does a simulated participant's ECoG carry? The linear ceiling, by ridge regression.

A simulated participant (`nsd.simulate`) makes its high gamma from 8 speech features (loudness, voicing, f0, F1, F2,
three mel bands, smoothed) through a known map (tuned electrodes, each with its own weights and a lag of 50-200 ms),
then adds pink and white noise at `snr_db` (0 dB for the shipped SIM01 and SIM02). The ground truth is stored under
`sim/`. This script fits the linear baseline (`nsd.baselines.LinearBaseline`: ridge from a context of frames to the
ndB spectrogram, penalty by cross-validation over training trials) on the training trials' evaluation windows from:

- `ECoG (stored)`: the participant's high gamma, as the decoders see it (this is `baseline_linear_pcc`);
- `noise-free response`: the same electrodes, weights and lags without noise (the tuned electrodes only);
- `ECoG at S dB`: the noise-free response plus fresh pink + white noise at S dB (drawn as `simulate_high_gamma` does;
  the per-task baseline z-scoring and the spoiled bad channels are left out: the ridge standardises its inputs);
- `true features`: the 8 features themselves, without lag or mixing;

and scores the test trials' evaluation windows (mean PCC over windows, time × frequency), next to the mean
training spectrogram (`baseline_mean_pcc`). With the same audio, electrodes and noise draw, only the SNR changes
between rows, so the table says what the noise leaves for any decoder to read, and at what SNR a simulated
participant can separate a decoder from the mean spectrogram.

    python benchmarks/ecog_information.py                                   # SIM01 and SIM02
    python benchmarks/ecog_information.py PARTICIPANT.h5 --snr-db 30 20 10 --write --label "..."
"""
import argparse, math, sys, time
from pathlib import Path

import h5py
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from a2a_speed import add_report_args, write_section  # noqa: E402

from nsd.baselines import CAUSALITY, LinearBaseline, mean_spectrogram_baseline, window_pcc
from nsd.core import FRAME_RATE
from nsd.participant import load_participant
from nsd.simulate import pink_noise, tuned_response
from nsd.windows import ECOG_LEAD_FRAMES, TrialBank, original_split

HERE = Path(__file__).resolve().parent
EXAMPLE = HERE.parent / 'example_data'
RESULTS = HERE / 'results' / 'ecog_information.md'
TITLE = ('# How much of the spectrogram the simulated ECoG carries (benchmarks/ecog_information.py)\n\n'
         'Ridge regression (the linear baseline) to the ndB spectrogram from each input, fitted on the training trials, '
         'mean PCC over the test trials\' evaluation windows (onset − 32 … onset + 96).\n')


def windows_of(X:np.ndarray, starts:np.ndarray) -> np.ndarray:
    "ECoG-like windows (batch, 144, channels) of a per-frame array: frames start − 16 … start + 127."
    return np.stack([X[s - ECOG_LEAD_FRAMES:s + 128] for s in starts]).astype(np.float32)


def ridge_pcc(X:np.ndarray, wt:dict, we:dict, causality:str) -> float:
    "Fit the linear baseline on the training windows of per-frame input X, mean test-window PCC."
    m = LinearBaseline(causality).fit(windows_of(X, wt['start']), wt['spec'], groups=wt['trial'])
    return float(np.nanmean(window_pcc(we['spec'], m.predict(windows_of(X, we['start'])))))


def participant_rows(path:Path, snrs:list, seed:int) -> list:
    "(input, causal PCC, non-causal PCC) rows for one participant, the mean spectrogram first."
    with load_participant(path) as P, h5py.File(path) as f:
        if 'sim' not in f: sys.exit(f'{path}: not a simulated participant (no sim/ group with the ground truth)')
        tr, te = original_split(P)
        bank = TrialBank(P)
        wt, we = ({k: v.numpy() for k, v in bank.eval_windows(t).items()} for t in (tr, te))
        ecog = P.frames('ecog', 0, P.n_frames)
        feats = f['sim/features'][()].astype(np.float64)
        W, lags = f['sim/weights'][()], f['sim/lags_ms'][()]
        kind = np.array([k.decode() if isinstance(k, bytes) else str(k) for k in f['sim/kind'][()]])
        stored_snr = float(f['sim/snr_db'][()])
    tuned = np.isin(kind, ('motor', 'auditory'))
    good = np.array([not k.startswith('bad') for k in kind])
    R = tuned_response(feats, W, lags)
    rng = np.random.default_rng(seed)
    N, C = R.shape
    noise = math.sqrt(0.5) * (pink_noise(N, C, FRAME_RATE, rng) + rng.standard_normal((N, C)))  # one draw for every SNR
    mean = mean_spectrogram_baseline(wt['spec'])
    rows = [('mean training spectrogram', *[float(np.nanmean(window_pcc(we['spec'], np.broadcast_to(mean, we['spec'].shape))))] * 2)]
    inputs = [(f'ECoG (stored, {stored_snr:g} dB)', ecog), ('noise-free response (tuned electrodes)', R[:, tuned])]
    for s in snrs:
        sigma = math.sqrt(R[:, tuned].var(0).mean() / 10 ** (s / 10))
        inputs.append((f'ECoG at {s:g} dB (fresh noise)', (R + sigma * noise)[:, good]))
    inputs.append(('true features (no lag, no mixing)', feats))
    for name, X in inputs:
        t0 = time.time()
        rows.append((name, *[ridge_pcc(X, wt, we, c) for c in CAUSALITY]))
        print(f'{path.name}: {name}: causal {rows[-1][1]:.3f}, non-causal {rows[-1][2]:.3f} ({time.time() - t0:.0f} s)', flush=True)
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('participants', nargs='*', default=[str(EXAMPLE / 'SIM01.h5'), str(EXAMPLE / 'SIM02.h5')],
                    help='simulated participant files (default: the shipped SIM01 and SIM02)')
    ap.add_argument('--snr-db', type=float, nargs='*', default=[20.0, 10.0, 5.0, 0.0], help='SNRs to re-noise at, dB')
    ap.add_argument('--seed', type=int, default=0, help='the fresh noise')
    add_report_args(ap, RESULTS)
    a = ap.parse_args()
    lines = ['| participant | ridge from | causal PCC | non-causal PCC |', '|---|---|---|---|']
    stems = [Path(p).stem for p in a.participants]
    for p in a.participants:
        path = Path(p)
        if not path.is_file(): sys.exit(f'participants: expected a participant .h5 file, got {p!r} (no such file)')
        name = path.stem if stems.count(path.stem) == 1 else p   # two files of one name: their paths
        lines += [f'| {name} | {n} | {c:.3f} | {nc:.3f} |' for n, c, nc in participant_rows(path, a.snr_db, a.seed)]
    text = (a.note + '\n\n' if a.note else '') + time.strftime('%Y-%m-%dT%H:%M') + '\n\n' + '\n'.join(lines)
    print(text)
    if a.write:
        if not RESULTS.exists(): RESULTS.write_text(TITLE)
        write_section(RESULTS, a.label, text)
        print(f'written to {RESULTS}')


if __name__ == '__main__':
    main()
