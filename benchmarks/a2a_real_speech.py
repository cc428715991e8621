"""Train the a2a stage (speech encoder + synthesizer auto-encoder) on real speech and score held-out trials.

Reads real recordings from the shared data folder beside the repository (never copied into it):
`nsd_demo_pairs/{HB,LD,LEFT,RIGHT}_gt.wav` (7 trials of 16384 samples each, the last one 7 samples short),
`nsd_demo_pairs/example_audio.wav` (8 words) and `librivox/*.wav` (5 read sentences, cut into chunks of at
most 0.77 s at energy minima). From them it writes participant files in nsd's layout (`write_participant`,
checked by `validate_participant`) into a work folder, trains `nsd.training.train_a2a` on the training
trials, and scores the reconstruction of the held-out trials (the last trials of each file, as
`nsd.windows.original_split`): spectrogram PCC, mel PCC, the data README's 64-band mel-dB PCC (on Griffin-Lim
audio and on the spectrograms), STOI and STOI+. Results go to benchmarks/results/a2a_real_speech.md.

    .venv/bin/python benchmarks/a2a_real_speech.py                     # default CPU run (~20 min on 2 cores)
    .venv/bin/python benchmarks/a2a_real_speech.py --device cuda --steps 6000 --threads 8
    .venv/bin/python benchmarks/a2a_real_speech.py --voices HB LD --grouping voice --steps 300

How a participant file is made from the recordings (one file per sex with `--grouping sex`, the default,
or one per voice with `--grouping voice`):
- trials are laid end to end with 96-frame (0.768 s) gaps between them, so that no training window
  (which reaches at most 64 frames past its word) sees a held-out trial's speech and each evaluation
  window (onset - 32 .. onset + 96) holds one trial only; the gaps hold Gaussian noise shaped to the
  voice's own background spectrum, so that the silence between trials looks like the recording's
  silence instead of digital zeros; that spectrum is the 10th percentile of each bin's power over all
  the voice's frames divided by -ln(0.9) = 0.105 (the 10th percentile of the exponentially distributed
  power of Gaussian noise, relative to its mean): a low-percentile estimate, because the read sentences
  have almost no pauses to measure the noise in;
- speech onset and offset of each trial come from an energy threshold on the nsd STFT power summed over
  bins (dB, smoothed over 3 frames): threshold = p10 + max(6 dB, 25 % of (peak - p10)), p10 = the trial's
  10th-percentile frame; the word is the run of frames above it that holds the loudest frame, quieter
  stretches of up to 12 frames (96 ms, stop closures) bridged, so that the tail of a neighbouring word
  cut into the trial stays outside; for librivox chunks (continuous speech) all frames above it count;
- the stimulus onset of each trial is its first frame in the timeline, so that
  `nsd.spectral.background_noise_spectrum` reads its pre-stimulus frames from the noise-filled gap;
- Praat labels from `nsd.features.praat_labels` on the whole timeline; the ECoG array is zeros (64
  channels), which a2a never reads (the sidecar's description says so);
- with `--grouping sex` each voice is first scaled so that its loudest spectrogram bin is at the same
  level (metrics undo the gain), and `audio_scale_for` of the whole timeline sets `audio_scale`.
"""
import argparse, dataclasses, datetime, json, logging, math, os, platform, resource, sys, tempfile, time, warnings
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / 'shared' / 'data'
RESULTS = ROOT / 'benchmarks' / 'results' / 'a2a_real_speech.md'

import nsd
from nsd.core import AUDIO_SR, HOP, N_BINS
from nsd.spectral import audio_scale_for, background_noise_spectrum, bin_freqs_hz, ndb_to_power, spectrogram, stft_power
from nsd.participant import ParticipantMeta, load_participant, validate_participant, write_participant
from nsd.windows import TrialBank
from nsd.features import praat_labels
from nsd.spectral import mel_filterbank
from nsd.metrics import (REF_FLOOR_POWER, griffin_lim, pcc_mel, pcc_mel64_db, read_wav,
                         spectrogram_pcc, stoi, stoi_plus)
from nsd.losses import A2ALoss
from nsd.training import A2AConfig, A2AStage, TrainConfig, load_checkpoint, read_log, train_a2a, trained_weights

TRIAL = 16384            # samples per demo trial (128 frames)
GAP_FRAMES = 96          # noise-filled frames between trials (and before the first / after the last)
CHUNK_MAX_FRAMES = 96    # longest librivox chunk, frames (the evaluation window holds onset - 32 .. onset + 96)
CHUNK_MIN_FRAMES = 40    # shortest librivox chunk before the end of a sentence, frames
FADE_SAMPLES = 80        # 5 ms raised-cosine fades at the edges of librivox chunks
BRIDGE_FRAMES = 12      # quieter stretches up to 96 ms inside a word (stop closures) do not end it
NOISE_PERCENTILE = 10   # background power per bin: this percentile over the voice's frames, / -ln(0.9) (exponential power of noise)
SIMULATED = {'F': 'SIM01', 'M': 'SIM02'}  # shipped simulated participants (example_data/) used by --pretrain-sim
MALE_BELOW_HZ = 165.0    # a voice with median Praat f0 below this is taken as male
DEMO_VOICES = ('HB', 'LD', 'LEFT', 'RIGHT')
ALL_VOICES = DEMO_VOICES + ('example', 'librivox')
SOURCES = {'HB': 'nsd_demo_pairs/HB_gt.wav', 'LD': 'nsd_demo_pairs/LD_gt.wav', 'LEFT': 'nsd_demo_pairs/LEFT_gt.wav',
           'RIGHT': 'nsd_demo_pairs/RIGHT_gt.wav', 'example': 'nsd_demo_pairs/example_audio.wav', 'librivox': 'librivox/*.wav'}

log = logging.getLogger('a2a_real_speech')


# ---------------------------------------------------------------- voices and trials

@dataclasses.dataclass
class Voice:
    name: str
    trials: list            # 1-D float64 waves, in [-1, 1)
    labels: list            # one label per trial
    n_test: int             # the last n_test trials are held out
    source: str             # where the audio came from (relative to the data folder)
    median_f0_hz: float = math.nan
    sex: str = ''
    gain: float = 1.0       # factor applied before writing (sex grouping); metrics divide it out
    pred_trials: list = None  # demo voices: the published ECoG decoder's output for the same trials (`*_pred.wav`)


def frame_energy_db(wave:np.ndarray, n_bins:int) -> np.ndarray:
    "Total STFT power per frame (nsd STFT, hop 128), dB, smoothed over 3 frames."
    p = stft_power(torch.as_tensor(wave, dtype=torch.float32), n_bins).sum(-1).double().numpy()
    p = np.convolve(np.pad(p, 1, mode='edge'), np.ones(3) / 3, mode='valid')
    return 10 * np.log10(p + 1e-12)


def speech_bounds(e_db:np.ndarray, floor_db:float, whole:bool=False) -> tuple:
    "Speech onset and offset (exclusive), frames: the run of loud frames around the peak, or all of them (`whole`)."
    thr = floor_db + max(6.0, 0.25 * (e_db.max() - floor_db))
    loud = np.flatnonzero(e_db > thr)
    if not loud.size: return 0, len(e_db)
    if whole: return int(loud[0]), int(loud[-1]) + 1
    runs = np.split(loud, np.flatnonzero(np.diff(loud) > BRIDGE_FRAMES) + 1)   # pauses up to BRIDGE_FRAMES belong to the word
    peak = int(np.argmax(e_db))
    run = min(runs, key=lambda r: 0 if r[0] <= peak <= r[-1] else min(abs(r[0] - peak), abs(r[-1] - peak)))
    return int(run[0]), int(run[-1]) + 1


def split_chunks(wave:np.ndarray, n_bins:int) -> list:
    "Cut a sentence into chunks of at most CHUNK_MAX_FRAMES frames at minima of the frame energy."
    e = frame_energy_db(wave, n_bins)[:len(wave) // HOP]
    cuts, a = [0], 0
    while len(e) - a > CHUNK_MAX_FRAMES:
        lo, hi = a + CHUNK_MIN_FRAMES, a + CHUNK_MAX_FRAMES
        a = lo + int(np.argmin(e[lo:hi + 1]))
        cuts.append(a)
    cuts.append(len(wave) // HOP)
    fade = 0.5 - 0.5 * np.cos(np.pi * np.arange(FADE_SAMPLES) / FADE_SAMPLES)
    out = []
    for a, b in zip(cuts[:-1], cuts[1:]):
        x = wave[a * HOP:b * HOP].copy()
        x[:FADE_SAMPLES] *= fade; x[-FADE_SAMPLES:] *= fade[::-1]
        out.append(x)
    return out


def load_voices(data:Path, names, n_test:int) -> list:
    "Read the recordings into voices: trials, labels, held-out count, median f0."
    import parselmouth
    voices = []
    for name in names:
        if name == 'librivox':
            files = sorted((data / 'librivox').glob('*.wav'))
            if not files: raise FileNotFoundError(f'no librivox/*.wav in {data}')
            trials, labels, per_file = [], [], []
            for f in files:
                x, sr = read_wav(f, 'librivox sentence')
                if sr != AUDIO_SR: raise ValueError(f'{f}: sample rate {sr} Hz, expected {AUDIO_SR}')
                chunks = split_chunks(x, N_BINS['M'])
                trials += chunks; per_file.append(len(chunks))
                labels += [f'librivox-{f.stem.rsplit("-", 1)[-1]}-c{i}' for i in range(len(chunks))]
            v = Voice(name, trials, labels, per_file[-1], 'librivox/*.wav (last sentence held out)')
        else:
            f = data / SOURCES[name]
            x, sr = read_wav(f, name)
            if sr != AUDIO_SR: raise ValueError(f'{f}: sample rate {sr} Hz, expected {AUDIO_SR}')
            k = -(-len(x) // TRIAL) if name in DEMO_VOICES else len(x) // TRIAL   # demo: pad the short last trial
            x = np.pad(x, (0, max(0, k * TRIAL - len(x))))[:k * TRIAL]
            v = Voice(name, list(x.reshape(k, TRIAL)), [f'{name}-t{i}' for i in range(k)], n_test, SOURCES[name])
            if name in DEMO_VOICES:
                y, _ = read_wav(f.with_name(f'{name}_pred.wav'), f'{name} decoded')
                v.pred_trials = list(np.pad(y, (0, max(0, k * TRIAL - len(y))))[:k * TRIAL].reshape(k, TRIAL))
        whole = np.concatenate(v.trials)
        f0 = parselmouth.Sound(whole, AUDIO_SR).to_pitch(pitch_floor=60, pitch_ceiling=500).selected_array['frequency']
        v.median_f0_hz = float(np.median(f0[f0 > 0]))
        v.sex = 'M' if v.median_f0_hz < MALE_BELOW_HZ else 'F'
        voices.append(v)
    return voices


def shaped_noise(power_per_bin:np.ndarray, n_bins:int, n_samples:int, rng:np.random.Generator) -> np.ndarray:
    "Gaussian noise whose nsd STFT power per bin is about `power_per_bin` (unscaled units)."
    w = rng.standard_normal(n_samples + 4096)
    f = np.fft.rfftfreq(len(w), 1 / AUDIO_SR)
    amp = np.sqrt(np.interp(f, bin_freqs_hz(n_bins).numpy(), power_per_bin))
    x = np.fft.irfft(np.fft.rfft(w) * amp, len(w))
    got = stft_power(torch.as_tensor(x), n_bins).mean(0).numpy()
    x *= math.sqrt(power_per_bin.sum() / max(got.sum(), 1e-30))
    return x[2048:2048 + n_samples]


# ---------------------------------------------------------------- participant files

def build_participant(path:Path, voices:list, sex:str, seed:int) -> dict:
    "Lay the voices' trials on one timeline (training trials first) and write a participant file."
    n_bins = N_BINS[sex]
    rng = np.random.default_rng(seed)
    # per voice: gain, per-trial speech bounds (trial-local frames), background spectrum from non-speech frames
    entries = []   # (voice, trial index, wave, onset, offset, is_test)
    noise_of = {}
    peak_ref = None
    for v in voices:
        if len(voices) > 1:   # equalise the voices' loudest bins before pooling them
            peak = float(stft_power(torch.as_tensor(np.concatenate(v.trials), dtype=torch.float32), n_bins).max())
            peak_ref = peak_ref or peak
            v.gain = math.sqrt(peak_ref / peak)
        e = [frame_energy_db(t * v.gain, n_bins)[:math.ceil(len(t) / HOP)] for t in v.trials]
        bounds = [speech_bounds(ei, np.percentile(ei, 10), whole=v.name == 'librivox') for ei in e]
        P = np.concatenate([stft_power(torch.as_tensor(t * v.gain), n_bins)[:len(ei)].numpy() for t, ei in zip(v.trials, e)])
        noise_of[v.name] = np.percentile(P, NOISE_PERCENTILE, axis=0) / -math.log(1 - NOISE_PERCENTILE / 100)
        K = len(v.trials)
        for i, (t, (a, b)) in enumerate(zip(v.trials, bounds)):
            entries.append((v, i, t * v.gain, a, b, i >= K - v.n_test))
    order = [x for x in entries if not x[5]] + [x for x in entries if x[5]]
    # the timeline: gap, trial, gap, trial, ..., gap; gaps hold the following trial's voice noise
    pieces, onsets, offsets, stims, labels, cursor = [], [], [], [], [], 0
    for j, (v, i, t, a, b, _) in enumerate(order):
        n_t = math.ceil(len(t) / HOP) * HOP
        pieces.append(shaped_noise(noise_of[v.name], n_bins, GAP_FRAMES * HOP, rng))
        cursor += GAP_FRAMES
        pieces.append(np.pad(t, (0, n_t - len(t))))
        stims.append(cursor); onsets.append(cursor + a); offsets.append(cursor + min(b, n_t // HOP))
        labels.append(v.labels[i])
        cursor += n_t // HOP
    pieces.append(shaped_noise(noise_of[order[-1][0].name], n_bins, 2 * GAP_FRAMES * HOP, rng))
    wave = np.concatenate(pieces).astype(np.float32)
    N = len(wave) // HOP
    scale = audio_scale_for(torch.as_tensor(wave), n_bins)
    spec = spectrogram(torch.as_tensor(wave), n_bins, scale)[:N]
    noise = background_noise_spectrum(spec, np.array(stims))
    lab = praat_labels(wave, sex=sex)
    n_test = sum(v.n_test for v in voices)
    arrays = {'ecog_alldataset': np.zeros((N, 64), np.float32), 'wave_re_alldataset': wave,
              'wave_re_spec_alldataset': spec.numpy(), 'noisesample_re_alldataset': noise.numpy(),
              'start_ind_re_valid_alldataset': np.array(onsets), 'end_ind_re_valid_alldataset': np.array(offsets),
              'label_alldataset': labels, 'stim_ind_re_valid_alldataset': np.array(stims),
              'formant_re_alldataset': lab['formants_hz'][:N], 'pitch_re_alldataset': lab['f0_hz'][:N],
              'intensity_re_alldataset': lab['intensity_db'][:N]}
    meta = ParticipantMeta(path.stem, sex=sex, density='LD', tasks=['all'], test_trials=[n_test], simulated=False,
                           audio_scale=scale,
                           description=('a2a benchmark file built by benchmarks/a2a_real_speech.py from real speech '
                                        f"({', '.join(v.source for v in voices)}); ecog_alldataset is ZEROS (a2a never "
                                        'reads it); gaps between trials hold noise shaped to each voice\'s background'))
    write_participant(path, arrays, meta)
    summary = validate_participant(path)
    return {'path': path, 'summary': summary, 'audio_scale': scale, 'voices': [v.name for v in voices],
            'n_frames': N, 'n_train': len(order) - n_test, 'n_test': n_test,
            'gains': {v.name: v.gain for v in voices}}


# ---------------------------------------------------------------- metrics

def mel64_db_spec(ndb:torch.Tensor, n_bins:int, to_unscaled:float) -> torch.Tensor:
    "The README definition applied to an nsd spectrogram: power (floor -> 0) / scale^2, 64 HTK mel bands, dB + 1e-5."
    P = ndb_to_power(ndb.double(), trim_noise=True) * to_unscaled ** 2
    return 10 * torch.log10(P @ mel_filterbank(n_bins, 64, dtype=P.dtype) + REF_FLOOR_POWER)


def score(spec, rec, wave, n_bins, audio_scale, gain, gl_iters, seed) -> dict:
    "Metrics of reconstructions `rec` against targets `spec` (ndB) and audio `wave` (stored units), per trial."
    to_unscaled = 1.0 / (audio_scale * gain)
    x = torch.as_tensor(wave, dtype=torch.float64) / gain                        # original audio, [-1, 1)
    gen = torch.Generator().manual_seed(seed)
    y = griffin_lim(ndb_to_power(rec.double()), gl_iters, generator=gen) * to_unscaled
    y_or = griffin_lim(ndb_to_power(spec.double()), gl_iters, generator=gen) * to_unscaled   # GL of the target
    n = min(x.shape[-1], y.shape[-1]); x, y, y_or = x[:, :n], y[:, :n], y_or[:, :n]
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', RuntimeWarning)
        r = {'pcc': spectrogram_pcc(spec, rec, reduce='none'), 'pcc_mel': pcc_mel(spec, rec, reduce='none'),
             'mel64_db_wave': pcc_mel64_db(x, y, reduce='none'),
             'mel64_db_spec': spectrogram_pcc(mel64_db_spec(spec, n_bins, to_unscaled), mel64_db_spec(rec, n_bins, to_unscaled), reduce='none'),
             'oracle_mel64_db_wave': pcc_mel64_db(x, y_or, reduce='none')}
        r = {k: v.numpy() for k, v in r.items()}
        r['stoi'] = np.array([stoi(a.numpy(), b.numpy()) for a, b in zip(x, y)])
        r['stoi_plus'] = np.array([stoi_plus(a.numpy(), b.numpy()) for a, b in zip(x, y)])
        r['oracle_stoi'] = np.array([stoi(a.numpy(), b.numpy()) for a, b in zip(x, y_or)])
        r['stoi_concat'] = stoi(x.reshape(-1).numpy(), y.reshape(-1).numpy())
    return r


def evaluate_run(built:dict, run_dir:Path, cfg:A2AConfig, voices:list, gl_iters:int, seed:int) -> dict:
    "Score the held-out trials (from the run's test_outputs.npz) and the training trials, per voice."
    out = np.load(run_dir / 'test_outputs.npz')
    P = load_participant(built['path'])
    bank = TrialBank(P, wave=True)
    b_test = bank.eval_windows()
    if not np.array_equal(out['trial'], b_test['trial'].numpy()) or not np.allclose(out['spec'], b_test['spec'].numpy()):
        raise RuntimeError(f'{run_dir}: test_outputs.npz does not match the participant\'s evaluation windows')
    stage = A2AStage(built['path'], cfg)             # the trained model, for the training trials
    stage.module.load_state_dict(trained_weights(load_checkpoint(run_dir / 'checkpoint_last.pt'))); stage.module.eval()  # EMA if kept
    b_train = bank.eval_windows(bank.train_trials)
    r = stage.reconstruct(b_train['spec'])
    rec_train = r['rec'] if isinstance(r, dict) else r[1]   # (params, rec, rec_denoise) in older nsd
    mean_spec = b_train['spec'].mean(0)
    labels = np.array(P.labels)
    res = {}
    for v in voices:
        mine = lambda b: np.flatnonzero([labels[t].startswith(v.name + '-') for t in b['trial'].numpy()])
        it, ir = mine(b_test), mine(b_train)
        spec_t = b_test['spec'][it]
        r = score(spec_t, torch.as_tensor(out['rec'][it]), b_test['wave'][it], P.n_bins, P.meta.audio_scale, v.gain, gl_iters, seed)
        r['baseline_mean_spec'] = spectrogram_pcc(spec_t, mean_spec.expand_as(spec_t), reduce='none').numpy()
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', RuntimeWarning)
            r['train_pcc'] = spectrogram_pcc(b_train['spec'][ir], rec_train[ir], reduce='none').numpy()
            r['train_mel64_db_spec'] = spectrogram_pcc(mel64_db_spec(b_train['spec'][ir], P.n_bins, 1 / (P.meta.audio_scale * v.gain)),
                                                       mel64_db_spec(rec_train[ir], P.n_bins, 1 / (P.meta.audio_scale * v.gain)), reduce='none').numpy()
        r['test_labels'] = [labels[t] for t in b_test['trial'].numpy()[it]]
        if v.pred_trials is not None:   # the original 1.024 s trial windows: a2a vs the published ECoG decoder
            r.update(trial_window_comparison(P, stage, v, b_test['trial'].numpy()[it], gl_iters, seed))
        r['n_train'] = len(ir)
        res[v.name] = r
    stage.participant.close()
    P.close()
    return res


def trial_window_comparison(P, stage, v:Voice, trials, gl_iters:int, seed:int) -> dict:
    "On the demo pairs' own 1.024 s trial windows: a2a reconstruction and the published decoder vs the original audio."
    starts = P.stim_onsets[trials]                     # each trial's first frame in the timeline
    spec = torch.stack([torch.as_tensor(P.frames('spec', int(a), int(a) + 128)) for a in starts])
    r = stage.reconstruct(spec)
    rec = r['rec'] if isinstance(r, dict) else r[1]
    k = [int(P.labels[t].rsplit('-t', 1)[1]) for t in trials]
    x = torch.as_tensor(np.stack([v.trials[i] for i in k]))                  # original audio of the trials
    dec = torch.as_tensor(np.stack([v.pred_trials[i] for i in k]))           # the published decoder's audio
    gen = torch.Generator().manual_seed(seed)
    y = griffin_lim(ndb_to_power(rec.double()), gl_iters, generator=gen) / (P.meta.audio_scale * v.gain)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', RuntimeWarning)
        return {'tw_a2a_mel64_db': pcc_mel64_db(x, y, reduce='none').numpy(),
                'tw_decoder_mel64_db': pcc_mel64_db(x, dec, reduce='none').numpy(),
                'tw_a2a_stoi': np.array([stoi(a.numpy(), b.numpy()) for a, b in zip(x, y)]),
                'tw_decoder_stoi': np.array([stoi(a.numpy(), b.numpy()) for a, b in zip(x, dec)])}


# ---------------------------------------------------------------- report

def machine() -> str:
    cpu = platform.processor() or 'unknown CPU'
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('model name'): cpu = line.split(':', 1)[1].strip(); break
    except OSError: pass
    return (f'{platform.system()} {platform.release()} {platform.machine()}, {cpu}, {os.cpu_count()} logical CPUs; '
            f'Python {platform.python_version()}, torch {torch.__version__}, numpy {np.__version__}, nsd {nsd.__version__}')


def cpu_seconds() -> float:
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


def nanmean(x) -> float:
    x = np.asarray(x, dtype=np.float64)
    return float(np.nanmean(x)) if np.isfinite(x).any() else math.nan


def write_report(path:Path, args, runs:list, results:dict, voices:list, wall_s:float, loads:list, device:str) -> None:
    target = 0.90
    L = ['# a2a on real speech: reconstruction of held-out trials', '',
         f'Date: {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}. Machine: {machine()}.',
         f'Device: {device}; torch threads: {torch.get_num_threads()}. Load average (1 min) at start / after each '
         f'run: {", ".join(f"{l:.1f}" for l in loads)} (other jobs share this machine).',
         f'Made by `benchmarks/a2a_real_speech.py {" ".join(sys.argv[1:])}`'.rstrip() + f'; total wall time {wall_s / 60:.1f} min.',
         '', 'Audio: `../shared/data/` (real recordings by other people, not part of nsd; see its README). '
         'No held-out trial is seen in training (96-frame gaps between trials; training windows reach at most 64 frames past their word).',
         '', '## Configuration', '']
    r0 = runs[0]['cfg']
    L += [f'- grouping: `{args.grouping}` (one participant file and one a2a model per '
          f'{"sex: voices of that sex pooled" if args.grouping == "sex" else "voice"})',
          f'- training: {r0.train.epochs} epochs x {runs[0]["steps_per_epoch"]} steps = {runs[0]["steps"]} steps per model, batch {r0.train.batch_size}, '
          f'lr {r0.train.lr} ({r0.train.lr_schedule}), Adam beta1 {r0.train.beta1} / beta2 {r0.train.beta2}, equalised lr {r0.train.equalized_lr}, seed {r0.train.seed}, '
          f'weights evaluated: {f"EMA, half-life {r0.train.ema_halflife:g} windows" if r0.train.ema_halflife > 0 else "last iterate (no EMA)"}',
          f'- initialisation: ' + (f'from an a2a run on the shipped simulated participant of the same sex (SIM01 for F, SIM02 for M; `A2AConfig.init_from`), '
                                    f'{runs[0]["pretrain_steps"]} steps with the same training and loss settings' if runs[0].get('pretrain_steps') else 'random (seeded)'),
          f'- loss: reference a2a weights (`A2ALoss()` defaults), Praat formant supervision {r0.loss.formant_supervision} '
          f'(faded out over the middle third of the epochs), Praat pitch supervision {r0.loss.pitch_supervision} (voiced frames only: {r0.loss.fix_pitch_unvoiced})',
          f'- synthesizer: `SynthConfig` defaults (learned filters, background-noise branch on); Griffin-Lim {args.gl_iters} iterations (fast GL, momentum 0.99)',
          '']
    L += ['| model | sex | F | voices | trials train / test | frames | audio_scale | steps | wall (min) | s / step | CPU s / wall s | final train loss |',
          '|---|---|---|---|---|---|---|---|---|---|---|---|']
    for r in runs:
        b = r['built']
        L.append(f'| {b["path"].stem} | {r["sex"]} | {N_BINS[r["sex"]]} | {", ".join(b["voices"])} | {b["n_train"]} / {b["n_test"]} | '
                 f'{b["n_frames"]} | {b["audio_scale"]:.4g} | {r["steps"]} | {r["wall_s"] / 60:.1f} | {r["wall_s"] / r["steps"]:.2f} | {r["cpu_s"] / r["wall_s"]:.2f} | {r["final_loss"]:.4g} |')
    L += ['', '## Held-out trials, per voice', '',
          '| voice | sex (median f0) | test trials | pcc | pcc_mel | **mel-dB PCC, README def. (GL audio)** | mel-dB PCC on spectrograms | '
          'oracle mel-dB (GL of target) | STOI | STOI (concat.) | STOI+ | oracle STOI | mean-spectrogram baseline pcc | train-trial pcc | train-trial mel-dB (spec) |',
          '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|']
    allr = {}
    for v in voices:
        r = results[v.name]
        for k in ('mel64_db_wave', 'mel64_db_spec', 'pcc', 'stoi'): allr.setdefault(k, []).extend(list(r[k]))
        L.append(f'| {v.name} | {v.sex} ({v.median_f0_hz:.0f} Hz) | {len(r["pcc"])} | {nanmean(r["pcc"]):.3f} | {nanmean(r["pcc_mel"]):.3f} | '
                 f'**{nanmean(r["mel64_db_wave"]):.3f}** | {nanmean(r["mel64_db_spec"]):.3f} | {nanmean(r["oracle_mel64_db_wave"]):.3f} | '
                 f'{nanmean(r["stoi"]):.3f} | {r["stoi_concat"]:.3f} | {nanmean(r["stoi_plus"]):.3f} | {nanmean(r["oracle_stoi"]):.3f} | '
                 f'{nanmean(r["baseline_mean_spec"]):.3f} | {nanmean(r["train_pcc"]):.3f} | {nanmean(r["train_mel64_db_spec"]):.3f} |')
    L.append(f'| **all** | | {len(allr["pcc"])} | {nanmean(allr["pcc"]):.3f} | | **{nanmean(allr["mel64_db_wave"]):.3f}** | '
             f'{nanmean(allr["mel64_db_spec"]):.3f} | | {nanmean(allr["stoi"]):.3f} | | | | | | |')
    met = [v.name for v in voices if nanmean(results[v.name]['mel64_db_wave']) >= target]
    m_all = nanmean(allr['mel64_db_wave'])
    L += ['', f'**Target mel-dB PCC >= {target:.2f} (README definition on Griffin-Lim audio): '
          f'{"met" if m_all >= target else "not met"} on average ({m_all:.3f}, {m_all - target:+.3f}); met by '
          f'{", ".join(met) if met else "no voice"} ({len(met)} of {len(voices)} voices).**', '',
          'Per-trial values (held-out trials):', '']
    for v in voices:
        r = results[v.name]
        L.append(f'- {v.name}: ' + '; '.join(f'{lab}: mel-dB {m:.3f}, pcc {p:.3f}, STOI {s:.3f}'
                                             for lab, m, p, s in zip(r['test_labels'], r['mel64_db_wave'], r['pcc'], r['stoi'])))
    demo = [v for v in voices if v.pred_trials is not None]
    if demo:
        L += ['', '## Against the published ECoG decoder, same held-out trials', '',
              'The demo pairs\' own 1.024 s trial windows (the `*_gt.wav` trials, not the evaluation windows above): the a2a '
              'reconstruction (Griffin-Lim) and the published decoder\'s audio (`*_pred.wav`, decoded from ECoG) against '
              'the original audio. An auto-encoder sees the speech it reconstructs, so it should beat a decoder from ECoG.', '',
              '| voice | trials | a2a mel-dB PCC | decoder mel-dB PCC | a2a STOI | decoder STOI |', '|---|---|---|---|---|---|']
        for v in demo:
            r = results[v.name]
            L.append(f'| {v.name} | {", ".join(r["test_labels"])} | {nanmean(r["tw_a2a_mel64_db"]):.3f} | {nanmean(r["tw_decoder_mel64_db"]):.3f} | '
                     f'{nanmean(r["tw_a2a_stoi"]):.3f} | {nanmean(r["tw_decoder_stoi"]):.3f} |')
    L += ['', '## Definitions', '',
          '- Held-out trials: the last trials of each voice (2 of the 7 demo trials, 2 of the 8 example words, the '
          'chunks of the last librivox sentence), stored last in the participant file (`original_split`). Each is '
          'scored on its evaluation window (128 frames from speech onset - 32, `TrialBank.eval_windows`), the same '
          'window `train_a2a` reconstructs into `test_outputs.npz`.',
          '- `pcc`: `nsd.metrics.spectrogram_pcc` of reconstruction (`rec`, with the background branch, eval mode) vs '
          'target ndB spectrogram, Pearson r per trial over time x F bins, mean over trials.',
          '- `pcc_mel`: `nsd.metrics.pcc_mel` (80 HTK mel bands of the ndB->power spectrogram, re-mapped to ndB).',
          '- mel-dB PCC, README def. (GL audio): `nsd.metrics.pcc_mel64_db` (512-point Hann STFT, hop 128, 64 HTK '
          'mel bands 0-8 kHz, 10 log10(P + 1e-5), r per trial over mel x time) of the original audio of the window '
          'vs audio made by Griffin-Lim (`nsd.metrics.griffin_lim`) from `ndb_to_power(rec)`, divided by '
          'audio_scale (and the voice gain) so both are on the recording\'s own scale. This is the definition of the '
          'data README figures for the published ECoG decoder (HB 0.889, LD 0.912, LEFT 0.900, RIGHT 0.854).',
          '- mel-dB PCC on spectrograms: the same mel-dB map computed from the nsd spectrograms themselves (no '
          'Griffin-Lim): ndB -> power (floor -> 0) / audio_scale^2 -> 64 HTK mel triangles on the F bin '
          'frequencies -> 10 log10(P + 1e-5); r per trial. (The nsd STFT window is 2F-1 samples, not 512.)',
          '- oracle: the same metric for Griffin-Lim audio of the TARGET ndB spectrogram: the ceiling set by the ndB '
          'clipping (-50 dB floor after audio_scale) and Griffin-Lim phase, whatever the model does.',
          '- STOI: `nsd.metrics.stoi` (pystoi) of original vs Griffin-Lim audio per 1.024 s window, mean over '
          'trials; "concat." over the voice\'s windows laid end to end; STOI+: `nsd.metrics.stoi_plus`.',
          '- mean-spectrogram baseline: pcc of the mean training window against each held-out window (a model '
          'that ignores its input).',
          '- train-trial columns: the trained model on the training trials\' evaluation windows (how much of the '
          'held-out gap is over-fitting).',
          '- Speech onset/offset: energy threshold per trial; gaps between trials: noise shaped to the voice\'s '
          'background (see the script\'s docstring); sex: median Praat f0 '
          f'< {MALE_BELOW_HZ:.0f} Hz -> male (F = 512 bins), else female (F = 256).', '']
    if args.notes: L += ['## Notes', ''] + [args.notes, '']
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('\n'.join(L))


# ---------------------------------------------------------------- main

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--data', type=Path, default=DEFAULT_DATA, help='the shared data folder (default: ../shared/data beside the repository)')
    ap.add_argument('--work', type=Path, default=None, help='folder for participant files and runs (default: a temporary folder, removed at the end)')
    ap.add_argument('--results', type=Path, default=RESULTS, help='markdown results file')
    ap.add_argument('--voices', nargs='+', default=list(ALL_VOICES), choices=ALL_VOICES)
    ap.add_argument('--grouping', default='sex', choices=('sex', 'voice'), help='one model per sex (voices pooled) or per voice')
    ap.add_argument('--sex', nargs='*', default=[], metavar='VOICE=F|M', help='override the sex chosen from the median f0')
    ap.add_argument('--n-test', type=int, default=2, help='held-out trials per demo voice and of example_audio')
    ap.add_argument('--steps', type=int, default=1200, help='training steps per model (rounded up to whole epochs)')
    ap.add_argument('--epochs', type=int, default=12, help='epochs the steps are spread over (sets the supervision fade)')
    ap.add_argument('--lr', type=float, default=0.01)
    ap.add_argument('--beta1', type=float, default=0.0, help='Adam beta1 (0 in the reference)')
    ap.add_argument('--lr-schedule', default='constant', choices=('constant', 'cosine'), help='TrainConfig.lr_schedule')
    ap.add_argument('--ema-halflife', type=float, default=0.0, help='windows; > 0 evaluates an EMA of the weights (TrainConfig.ema_halflife)')
    ap.add_argument('--pretrain-sim', action='store_true',
                    help='first train a2a on the shipped simulated participant of the same sex (SIM01 / SIM02), then start from it (A2AConfig.init_from)')
    ap.add_argument('--pretrain-steps', type=int, default=1200, help='steps of that pretraining (spread over min(--epochs, steps) epochs)')
    ap.add_argument('--batch', type=int, default=16)
    ap.add_argument('--device', default='cpu', help="'cpu', 'cuda', 'auto'")
    ap.add_argument('--threads', type=int, default=2, help='torch CPU threads')
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--no-formant-supervision', action='store_true')
    ap.add_argument('--no-pitch-supervision', action='store_true',
                    help='leave Praat pitch supervision off, as the reference a2a command does (on by default here: '
                         'a run of ~1000 steps cannot fit f0 from the spectrogram alone, see nbs/04_training)')
    ap.add_argument('--gl-iters', type=int, default=64, help='Griffin-Lim iterations')
    ap.add_argument('--progress', action='store_true', help='tqdm bars per epoch')
    ap.add_argument('--notes', default='', help='free text added to the results file')
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(message)s', datefmt='%H:%M:%S')

    if not args.data.is_dir() or not (args.data / 'nsd_demo_pairs').is_dir():
        print(f'a2a_real_speech: the shared data folder {args.data} (with nsd_demo_pairs/ and librivox/) is absent. '
              'The recordings are not part of nsd; put them beside the repository or pass --data DIR.', file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    t_all = time.time()
    loads = [os.getloadavg()[0]]
    voices = load_voices(args.data, args.voices, args.n_test)
    for o in args.sex:
        name, _, s = o.partition('=')
        hit = [v for v in voices if v.name == name]
        if not hit or s not in N_BINS: ap.error(f'--sex wants VOICE=F or VOICE=M with VOICE among {", ".join(args.voices)}, got {o!r}')
        hit[0].sex = s
    for v in voices:
        log.info('%s: %d trials (%d held out), median f0 %.0f Hz -> sex %s', v.name, len(v.trials), v.n_test, v.median_f0_hz, v.sex)
    groups = ([[v for v in voices if v.sex == s] for s in ('F', 'M')] if args.grouping == 'sex' else [[v] for v in voices])
    groups = [g for g in groups if g]

    tmp = None
    if args.work is None: tmp = tempfile.TemporaryDirectory(prefix='a2a_real_speech_'); work = Path(tmp.name)
    else: work = args.work; work.mkdir(parents=True, exist_ok=True)
    runs, results = [], {}
    try:
        for g in groups:
            sex = g[0].sex
            name = f'real_{sex}' if args.grouping == 'sex' else f'real_{g[0].name}'
            built = build_participant(work / f'{name}.h5', g, sex, args.seed)
            log.info('%s: %s', name, ' '.join(f'{k}={built[k]}' for k in ('n_frames', 'n_train', 'n_test', 'audio_scale')))
            spe = max(1, math.ceil(args.steps / args.epochs))
            cfg = A2AConfig(train=TrainConfig(epochs=args.epochs, batch_size=args.batch, windows_per_epoch=spe * args.batch,
                                              lr=args.lr, lr_schedule=args.lr_schedule, beta1=args.beta1, ema_halflife=args.ema_halflife, device=args.device, seed=args.seed, eval_every=max(1, args.epochs // 4),
                                              progress=args.progress),
                            loss=A2ALoss(formant_supervision=not args.no_formant_supervision,
                                         pitch_supervision=not args.no_pitch_supervision,
                                         fix_pitch_unvoiced=not args.no_pitch_supervision))
            run_dir = work / f'run_{name}'
            if args.pretrain_sim:
                sim = SIMULATED[sex]
                pre_epochs = min(args.epochs, args.pretrain_steps)
                pre_spe = max(1, math.ceil(args.pretrain_steps / pre_epochs))
                pre_cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, epochs=pre_epochs, windows_per_epoch=pre_spe * args.batch,
                                                                             eval_every=pre_epochs))
                t0 = time.time()
                m = train_a2a(ROOT / 'example_data' / f'{sim}.h5', work / f'pretrain_{sim}', config=pre_cfg, resume=False)
                log.info('%s: pretrained on %s, %d steps in %.1f min; its test pcc %.3f', name, sim, pre_spe * pre_epochs,
                         (time.time() - t0) / 60, m.get('pcc', float('nan')))
                cfg = dataclasses.replace(cfg, init_from=str(work / f'pretrain_{sim}'))
            t0, c0 = time.time(), cpu_seconds()   # the wall column: this run's own training, without the pretraining
            train_a2a(built['path'], run_dir, config=cfg, resume=False)
            wall, cpu = time.time() - t0, cpu_seconds() - c0
            rows = read_log(run_dir)
            log.info('%s: trained %d steps in %.1f min; test pcc by epoch: %s', name, spe * args.epochs, wall / 60,
                     ', '.join(f'{r["epoch"]}:{r["test_pcc"]:.3f}' for r in rows if 'test_pcc' in r))
            runs.append({'built': built, 'cfg': cfg, 'sex': sex, 'steps': spe * args.epochs, 'steps_per_epoch': spe,
                         'pretrain_steps': pre_spe * pre_epochs if args.pretrain_sim else 0,
                         'wall_s': wall, 'cpu_s': cpu, 'final_loss': rows[-1]['train_loss'], 'log': rows})
            results.update(evaluate_run(built, run_dir, cfg, g, args.gl_iters, args.seed))
            loads.append(os.getloadavg()[0])
            for v in g:
                r = results[v.name]
                log.info('%s: held-out mel-dB (GL) %.3f, mel-dB (spec) %.3f, pcc %.3f, pcc_mel %.3f, STOI %.3f; train pcc %.3f',
                         v.name, nanmean(r['mel64_db_wave']), nanmean(r['mel64_db_spec']), nanmean(r['pcc']),
                         nanmean(r['pcc_mel']), nanmean(r['stoi']), nanmean(r['train_pcc']))
        device = str(next(iter([torch.device('cuda')])) if args.device.startswith('cuda') or (args.device == 'auto' and torch.cuda.is_available()) else 'cpu')
        if device != 'cpu' and torch.cuda.is_available(): device = torch.cuda.get_device_name()
        write_report(args.results, args, runs, results, voices, time.time() - t_all, loads, device)
        log.info('wrote %s (%.1f min in all)', args.results, (time.time() - t_all) / 60)
    finally:
        if tmp is not None: tmp.cleanup()
    return 0


if __name__ == '__main__':
    sys.exit(main())
