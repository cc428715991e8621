"""How well can the synthesizer itself reproduce a participant's speech? Analysis by synthesis.

No encoder: the 18 raw parameters of every frame of every evaluation window are free variables,
fitted by Adam through the synthesizer (its learned filter shapes and background gain too) to the
target ndB spectrogram with the a2a spectrogram terms (linear + mel, `nsd.losses.a2a_loss` with the
priors off) and, for the first half of the steps, Praat pitch supervision on voiced frames (so that
the harmonic comb does not settle on a wrong f0). The PCC reached is a ceiling for what any encoder
or ECoG decoder can get through this synthesizer on these windows (up to the optimiser finding the
optimum), and tells whether a shortfall is the synthesizer's or the network's.

    python benchmarks/synth_ceiling.py PARTICIPANT.h5 [...] [--steps 800] [--trials test|train]

Real-speech participant files come from `benchmarks/a2a_real_speech.py --work DIR` (DIR/real_F.h5,
DIR/real_M.h5); the shipped simulated participants work as they are (example_data/SIM01.h5).
"""
import argparse, time
from pathlib import Path

import torch

from nsd.spectral import mel_filterbank
from nsd.participant import load_participant
from nsd.windows import TrialBank
from nsd.metrics import pcc_mel, spectrogram_pcc
from nsd.synthesizer import N_LOGITS, SpeechSynthesizer, SynthConfig, init_logit_bias, speech_params_from_logits, to_ndb
from nsd.losses import A2ALoss, a2a_loss


def fit(path:Path, steps:int, trials:str, lr:float, seed:int) -> dict:
    "Fit free per-frame logits to the evaluation windows of `path`; the PCC at a few points of the fit."
    P = load_participant(path)
    bank = TrialBank(P, 'cpu', praat=True)
    idx = bank.test_trials if trials == 'test' else bank.train_trials
    b = bank.eval_windows(idx)
    spec = b['spec']
    syn = SpeechSynthesizer(SynthConfig(sex=P.meta.sex, n_bins=P.n_bins)).eval()  # eval: fixed noise realisation
    syn.set_noise_spectrum(torch.as_tensor(P['noisesample_re_alldataset'][()], dtype=torch.float32))
    z = init_logit_bias(torch.zeros(N_LOGITS)).expand(*spec.shape[:2], N_LOGITS).clone().requires_grad_()
    opt = torch.optim.Adam([z, *syn.parameters()], lr=lr)
    cfg = A2ALoss(formant_supervision=False, pitch_supervision=True, fix_pitch_unvoiced=True,
                  w_loudness=0, w_amp=0, w_exp=0, w_diff=0, w_order=0)
    mel_fb = mel_filterbank(P.n_bins, cfg.n_mels)
    curve, t0 = [], time.time()
    for i in range(steps):
        p = speech_params_from_logits(z, P.meta.sex)
        power = syn(p, generator=torch.Generator().manual_seed(seed))
        total, _ = a2a_loss(spec, power, p, b, cfg, 1.0 if i < steps // 2 else 0.0, mel_fb, None)
        opt.zero_grad(set_to_none=True); total.backward(); opt.step()
        if (i + 1) % max(1, steps // 4) == 0 or i == steps - 1:
            with torch.no_grad(): rec = to_ndb(power).clamp(max=1)  # the data's ndB scale is clipped at +1
            curve.append((i + 1, spectrogram_pcc(spec, rec), pcc_mel(spec, rec)))
    P.close()
    return {'participant': path.stem, 'sex': P.meta.sex, 'windows': len(idx), 'curve': curve, 'seconds': time.time() - t0}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('participants', nargs='+', type=Path)
    ap.add_argument('--steps', type=int, default=800)
    ap.add_argument('--trials', default='test', choices=('test', 'train'), help='which evaluation windows to fit')
    ap.add_argument('--lr', type=float, default=0.05)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--threads', type=int, default=1)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    print(f'torch {torch.__version__}, {a.threads} thread(s); {a.steps} Adam steps (lr {a.lr}), {a.trials} windows')
    print('| participant | sex | windows | steps | pcc | pcc_mel | s |')
    print('|---|---|---|---|---|---|---|')
    for path in a.participants:
        r = fit(path, a.steps, a.trials, a.lr, a.seed)
        for n, pcc, mel in r['curve']:
            print(f"| {r['participant']} | {r['sex']} | {r['windows']} | {n} | {pcc:.3f} | {mel:.3f} | {r['seconds']:.0f} |")


if __name__ == '__main__':
    main()
