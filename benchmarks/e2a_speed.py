"""Speed of stage-2 (e2a) training and evaluation: whole steps through the real `E2AStage`, for every decoder.

One training step is what `nsd.training.fit` does per iteration: `TrialBank.sample_train` → the decoder
(`nsd.decoders`) → the frozen a2a synthesizer (and the frozen encoder for the reference parameters) → `e2a_loss`
→ backward → Adam step on the stage's parameter groups (equalised rates for the convolutions, as `fit`), plus the
detached loss sums `fit` keeps. Warm-up steps are left out; the figure is the median of the timed steps.
Evaluation is timed apart: `E2AStage.predict_windows` in eval mode on the participant's test windows (one per test
trial, in batches of `train.eval_batch_size`), median of `--repeats` passes after one warm-up pass.

Cases: decoder (`resnet`, `lstm`, `swin`) × participant (the shipped SIM01: LD 8×8, female; SIM02: HB 15×15, male)
× causality (`causal`, `noncausal`) × batch, all at the original's sizes. The a2a run the stage decodes into is made
once per participant by a 1-epoch `train_a2a` of a few windows into `--cache` (its weights do not change the speed).
CPU runs use `--threads` torch threads (2 by default) and, as `fit`, a tuned glibc malloc (`tune_cpu_allocator`;
`NSD_TUNE_MALLOC=0` for the untuned figures). On CUDA each case also runs with bf16 autocast and peak memory is
reported. The load average (`os.getloadavg`) is recorded with every row: on a shared 2-core machine a load above 2
slows the figures a lot; compare before/after at `--threads 1` then. `windows / CPU-s` divides by the process's CPU
time (`time.process_time`, all threads) instead of the wall clock: at 1 thread it is what the step gets from a core when
it runs, and moves much less with the load than the wall-clock figure.
`--paired FILE` times, case by case, another decoders module (a copy of `nsd/decoders.py`, e.g. the code before a
change) against the current one, with the same weights, in turns: one step of each, so that both see the same load;
the second table gives current ÷ paired, which is what a before/after comparison on a shared machine can trust.
`× original` divides the training windows/s by the original code's e2a ResNet step (batch 16) on the same kind of
machine (`/work/shared/design/baselines.md`): 16.5 (LD) and 5.1 (HB) windows/s on the 2-core CPU, 144 and 126 on an H100.

    python benchmarks/e2a_speed.py                                   # all cases, B = 16, 64, CPU (+ CUDA)
    python benchmarks/e2a_speed.py --decoders resnet --grids LD --causality causal --batch 16 --threads 1
    python benchmarks/e2a_speed.py --device cuda --batch 16 64 256
    python benchmarks/e2a_speed.py --label after --threads 1 --write   # add a section to the results file
    git show HEAD:nsd/decoders.py > /tmp/decoders_before.py
    python benchmarks/e2a_speed.py --threads 1 --paired /tmp/decoders_before.py  # before/after in turns
"""
import argparse, importlib.util, sys, time
from pathlib import Path

import torch

import nsd
from nsd.e2a import DecoderConfig, E2AConfig, E2AStage
from nsd.participant import load_participant
from nsd.training import A2AConfig, TrainConfig, make_optimizer, train_a2a

sys.path.insert(0, str(Path(__file__).resolve().parent))
from a2a_speed import add_report_args, header, load, start, train_step, write_section  # noqa: E402  (the shared helpers of the stage-1 benchmark)

HERE = Path(__file__).resolve().parent
EXAMPLE = HERE.parent / 'example_data'
RESULTS = HERE / 'results' / 'e2a_speed.md'
TITLE = ('# e2a training speed (benchmarks/e2a_speed.py)\n\n'
         'One e2a training step through the real `E2AStage` (sample → decoder → frozen synthesizer and encoder → loss '
         '→ backward → Adam), median after warm-up; and evaluation (eval-mode `predict_windows` on the test windows). '
         'Load = 1-minute load average before → after the row; windows / CPU-s = windows per second of process CPU time. × original = training windows/s ÷ the original e2a '
         "ResNet step on the same kind of machine (batch 16; LD 16.5, HB 5.1 windows/s on the 2-core CPU; "
         '`/work/shared/design/baselines.md`).\n')
ORIGINAL = {'cpu': {'LD': 16.5, 'HB': 5.1}, 'H100': {'LD': 144.0, 'HB': 126.0}}  # windows/s, baselines.md
DECODERS = ('resnet', 'lstm', 'swin')


def a2a_run(participant:Path, cache:Path) -> Path:
    "A 1-epoch a2a run of `participant` in `cache` (made once, then reused): what an e2a stage needs to start."
    run = cache / f'a2a_{participant.stem}'
    if not (run / 'checkpoint_last.pt').is_file():
        print(f'(making the a2a run {run} for the benchmark)', flush=True)
        cfg = A2AConfig(train=TrainConfig(epochs=1, batch_size=4, windows_per_epoch=8, device='cpu', progress=False))
        train_a2a(participant, run, cfg, resume=False)
    return run


def make_stage(participant:Path, run:Path, kind:str, causality:str, device:str, batch:int, bf16:bool):
    "An `E2AStage` with the decoder at the original's size, and the optimiser `fit` would build for it."
    cfg = E2AConfig(a2a=str(run), decoder=DecoderConfig(kind=kind, causality=causality), contributions=False, audio=False,
                    train=TrainConfig(batch_size=batch, device=device, bf16=bf16, progress=False))
    stage = E2AStage(participant, cfg)
    opt = make_optimizer(stage.param_groups(), cfg.train)
    stage.train_mode()
    return stage, opt


def load_decoders_module(path):
    "A decoders module read from a file (the code of `nsd.decoders` at another version), importable beside nsd's own."
    spec = importlib.util.spec_from_file_location('nsd._decoders_paired', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def paired_decoder(module, stage):
    "The decoder of `stage` built by another decoders module, with the same weights (its state dict must load as it is)."
    d = stage.cfg.decoder
    other = module.make_decoder(d.kind, d.n_electrodes, d.grid, d.causality, sex=stage.cfg.synth.sex, width=d.width,
                                rotation=d.grid_rotation)
    other.load_state_dict(stage.decoder.state_dict())
    return other.to(stage.device)


def original_speed(device:str, grid:str) -> float:
    "The original code's e2a ResNet windows/s on this kind of device (nan where it was not measured)."
    if device == 'cpu': return ORIGINAL['cpu'][grid]
    if device.startswith('cuda') and 'H100' in torch.cuda.get_device_name(): return ORIGINAL['H100'][grid]
    return float('nan')


def median(v): return sorted(v)[len(v) // 2]


def time_train(stage, variants:list, batch:int, bf16:bool, repeats:int, warmup:int) -> list:
    """Per variant `(decoder, optimiser)`: median seconds of one e2a training step, windows/s, peak GPU memory, load
    before/after. Several variants run in turns (one step each, the order alternating) on the stage's data."""
    dev = stage.device
    sums = [{} for _ in variants]
    def step(i):
        stage.module['decoder'] = variants[i][0]
        train_step(stage, variants[i][1], batch, dev, bf16, sums[i])
    stage.train_mode()
    for _ in range(warmup):
        for i in range(len(variants)): step(i)
    if dev.type == 'cuda': torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
    load0, times, cpu = load(), [[] for _ in variants], [[] for _ in variants]
    for r in range(repeats):
        for i in (range(len(variants)) if r % 2 == 0 else reversed(range(len(variants)))):
            t0, c0 = time.perf_counter(), time.process_time()
            step(i)
            if dev.type == 'cuda': torch.cuda.synchronize()
            times[i].append(time.perf_counter() - t0); cpu[i].append(time.process_time() - c0)
    stage.module['decoder'] = variants[-1][0]
    if not all(torch.isfinite(v) for s in sums for v in s.values()): raise RuntimeError('non-finite loss in the benchmark')
    mem = torch.cuda.max_memory_allocated() / 2**30 if dev.type == 'cuda' else float('nan')
    load1 = load()
    return [dict(ms=median(t) * 1000, wps=batch / median(t), cpu_wps=batch / median(c), mem=mem, load=(load0, load1))
            for t, c in zip(times, cpu)]


def time_eval(stage, decoders:list, bf16:bool, repeats:int) -> list:
    """Per decoder: median seconds of one eval-mode pass over the test windows (`predict_windows`), windows/s, load
    before/after; several decoders in turns, after one warm-up pass each."""
    dev = stage.device
    w = stage.bank.eval_windows(stage.test_trials)
    n = len(w['spec'])
    def run(i):
        stage.module['decoder'] = decoders[i]
        stage.module.eval()
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16): stage.predict_windows(w)
        if dev.type == 'cuda': torch.cuda.synchronize()
    for i in range(len(decoders)): run(i)
    if dev.type == 'cuda': torch.cuda.reset_peak_memory_stats()
    load0, times, cpu = load(), [[] for _ in decoders], [[] for _ in decoders]
    for r in range(repeats):
        for i in (range(len(decoders)) if r % 2 == 0 else reversed(range(len(decoders)))):
            t0, c0 = time.perf_counter(), time.process_time()
            run(i)
            times[i].append(time.perf_counter() - t0); cpu[i].append(time.process_time() - c0)
    stage.module['decoder'] = decoders[-1]
    stage.train_mode()
    mem = torch.cuda.max_memory_allocated() / 2**30 if dev.type == 'cuda' else float('nan')
    load1 = load()
    return [dict(ms=median(t) * 1000, wps=n / median(t), cpu_wps=n / median(c), mem=mem, load=(load0, load1), n=n)
            for t, c in zip(times, cpu)]


def fmt_row(what, kind, grid, causality, device, bf16, batch, r, original=float('nan')):
    mem = '' if r['mem'] != r['mem'] else f"{r['mem']:.2f}"
    ratio = '' if original != original else f"{r['wps'] / original:.2f}"
    return (f"| {what} | {kind} | {grid} | {causality} | {device} | {'bf16' if bf16 else 'fp32'} | {batch} | {r['ms']:.1f} "
            f"| {r['wps']:.1f} | {ratio} | {r['cpu_wps']:.1f} | {mem} | {r['load'][0]:.2f} → {r['load'][1]:.2f} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--participants', nargs='+', default=[str(EXAMPLE / 'SIM01.h5'), str(EXAMPLE / 'SIM02.h5')])
    ap.add_argument('--grids', nargs='+', default=['LD', 'HB'], choices=['LD', 'HB'], help="keep the participants of these densities")
    ap.add_argument('--decoders', nargs='+', default=list(DECODERS), choices=DECODERS)
    ap.add_argument('--causality', nargs='+', default=['causal', 'noncausal'], choices=['causal', 'noncausal', 'anticausal', 'legacy'])
    ap.add_argument('--batch', type=int, nargs='+', default=None, help='training batch sizes (default 16 64; 16 64 256 on CUDA)')
    ap.add_argument('--threads', type=int, default=2, help='torch CPU threads')
    ap.add_argument('--device', nargs='+', default=None, help="'cpu', 'cuda' (default: cpu, and cuda if available)")
    ap.add_argument('--repeats', type=int, default=5, help='timed training steps (and evaluation passes)')
    ap.add_argument('--warmup', type=int, default=2, help='untimed training steps first')
    ap.add_argument('--no-bf16', action='store_true', help='skip the bf16 autocast rows on CUDA')
    ap.add_argument('--no-eval', action='store_true', help='skip the evaluation rows')
    ap.add_argument('--paired', default=None, help='a decoders module file (e.g. the code before a change) to time in turns with the current one')
    ap.add_argument('--cache', default=str(HERE / '.cache'), help='folder of the a2a runs the benchmark makes')
    add_report_args(ap, RESULTS)
    a = ap.parse_args()
    devices, tuned = start(a)
    lines = [header(a.threads, tuned) + f'; nsd from {Path(nsd.__file__).parent}', '',
             f'training: median of {a.repeats} steps after {a.warmup} warm-up; evaluation: median of {a.repeats} passes over '
             'the test windows after 1 warm-up (B = eval batch size)', '',
             '| what | decoder | grid | causality | device | precision | B | ms / step (eval: / pass) | windows / s | × original '
             '| windows / CPU-s | peak GPU GiB | load |',
             '|---|---|---|---|---|---|---|---|---|---|---|---|---|']
    print('\n'.join(lines), flush=True)
    paired = load_decoders_module(a.paired) if a.paired else None
    pairs = ['', f'current ÷ paired ({a.paired}), in turns, same weights:', '',
             '| what | decoder | grid | causality | device | precision | B | paired windows / s | current windows / s | × (wall) '
             '| × (CPU time) | load |', '|---|---|---|---|---|---|---|---|---|---|---|---|']
    def report(case:tuple, names:list, results:list, batch:int, original:float=float('nan')):
        "Table rows of one case (`names` and `results` per variant, the current code last), and its current ÷ paired row."
        for name, r in zip(names, results):
            lines.append(fmt_row(name, *case, batch, r, original)); print(lines[-1], flush=True)
        if len(results) == 2:
            (q, r), (kind, grid, causality, device, bf16) = results, case
            pairs.append(f"| {names[1]} | {kind} | {grid} | {causality} | {device} | {'bf16' if bf16 else 'fp32'} | {batch} "
                         f"| {q['wps']:.1f} | {r['wps']:.1f} | {r['wps'] / q['wps']:.2f} | {r['cpu_wps'] / q['cpu_wps']:.2f} "
                         f"| {r['load'][0]:.2f} → {r['load'][1]:.2f} |")
    participants = []
    for p in map(Path, a.participants):
        P = load_participant(p)
        grid = P.meta.density
        P.close()
        if grid in a.grids: participants.append((p, grid, a2a_run(p, Path(a.cache))))
    for device in devices:
        batches = a.batch or ([16, 64, 256] if device.startswith('cuda') else [16, 64])
        for kind in a.decoders:
            for p, grid, run in participants:
                for causality in a.causality:
                    for bf16 in ([False, True] if device.startswith('cuda') and not a.no_bf16 else [False]):
                        case = (kind, grid, causality, device, bf16)
                        stage, opt = make_stage(p, run, kind, causality, device, batches[0], bf16)
                        variants, names = [(stage.decoder, opt)], ['train step']
                        if paired is not None:  # the paired decoder and its own optimiser, first of each turn
                            other = paired_decoder(paired, stage)
                            stage.module['decoder'] = other
                            variants.insert(0, (other, make_optimizer(stage.param_groups(), stage.cfg.train)))
                            names.insert(0, 'train step (paired)')
                        for batch in batches:
                            report(case, names, time_train(stage, variants, batch, bf16, a.repeats, a.warmup), batch,
                                   original_speed(device, grid))
                        if not a.no_eval:
                            res = time_eval(stage, [v[0] for v in variants], bf16, a.repeats)
                            report(case, [n.replace('train step', f"eval ({res[0]['n']} windows)") for n in names], res,
                                   stage.cfg.train.eval_batch_size)
                        stage.participant.close()
                        del stage, opt, variants
    if paired is not None: lines += pairs; print('\n'.join(pairs), flush=True)
    if a.write:
        if not RESULTS.exists(): RESULTS.parent.mkdir(parents=True, exist_ok=True); RESULTS.write_text(TITLE)
        write_section(RESULTS, a.label, (a.note + '\n\n' if a.note else '') + '\n'.join(lines))
        print(f'\nwritten to {RESULTS}')


if __name__ == '__main__':
    main()
