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
`× original` divides the training windows/s by the original code's e2a ResNet step (batch 16) on the same kind of
machine (`/work/shared/design/baselines.md`): 16.5 (LD) and 5.1 (HB) windows/s on the 2-core CPU, 144 and 126 on an H100.

    python benchmarks/e2a_speed.py                                   # all cases, B = 16, 64, CPU (+ CUDA)
    python benchmarks/e2a_speed.py --decoders resnet --grids LD --causality causal --batch 16 --threads 1
    python benchmarks/e2a_speed.py --device cuda --batch 16 64 256
    python benchmarks/e2a_speed.py --label after --threads 1 --write   # add a section to the results file
"""
import argparse, sys, time
from pathlib import Path

import torch

import nsd
from nsd.e2a import DecoderConfig, E2AConfig, E2AStage
from nsd.participant import load_participant
from nsd.training import A2AConfig, TrainConfig, make_optimizer, train_a2a, tune_cpu_allocator

sys.path.insert(0, str(Path(__file__).resolve().parent))
from a2a_speed import header, load, train_step, write_section  # noqa: E402  (the shared helpers of the stage-1 benchmark)

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


def original_speed(device:str, grid:str) -> float:
    "The original code's e2a ResNet windows/s on this kind of device (nan where it was not measured)."
    if device == 'cpu': return ORIGINAL['cpu'][grid]
    if device.startswith('cuda') and 'H100' in torch.cuda.get_device_name(): return ORIGINAL['H100'][grid]
    return float('nan')


def time_train(stage, opt, batch:int, bf16:bool, repeats:int, warmup:int) -> dict:
    "Median seconds of one e2a training step, windows/s, peak GPU memory, load before/after."
    dev, sums = stage.device, {}
    stage.train_mode()
    for _ in range(warmup): train_step(stage, opt, batch, dev, bf16, sums)
    if dev.type == 'cuda': torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
    load0, times, cpu = load(), [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        train_step(stage, opt, batch, dev, bf16, sums)
        if dev.type == 'cuda': torch.cuda.synchronize()
        times.append(time.perf_counter() - t0); cpu.append(time.process_time() - c0)
    if not all(torch.isfinite(v) for v in sums.values()): raise RuntimeError('non-finite loss in the benchmark')
    s, c = sorted(times)[len(times) // 2], sorted(cpu)[len(cpu) // 2]
    mem = torch.cuda.max_memory_allocated() / 2**30 if dev.type == 'cuda' else float('nan')
    return dict(ms=s * 1000, wps=batch / s, cpu_wps=batch / c, mem=mem, load=(load0, load()))


def time_eval(stage, bf16:bool, repeats:int) -> dict:
    "Median seconds of one eval-mode pass over the test windows (`predict_windows`), windows/s, load before/after."
    dev = stage.device
    w = stage.bank.eval_windows(stage.test_trials)
    n = len(w['spec'])
    stage.module.eval()
    if dev.type == 'cuda': torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
    load0, times, cpu = load(), [], []
    for i in range(repeats + 1):  # the first pass is the warm-up
        t0, c0 = time.perf_counter(), time.process_time()
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
            stage.predict_windows(w)
        if dev.type == 'cuda': torch.cuda.synchronize()
        if i: times.append(time.perf_counter() - t0); cpu.append(time.process_time() - c0)
    s, c = sorted(times)[len(times) // 2], sorted(cpu)[len(cpu) // 2]
    mem = torch.cuda.max_memory_allocated() / 2**30 if dev.type == 'cuda' else float('nan')
    stage.train_mode()
    return dict(ms=s * 1000, wps=n / s, cpu_wps=n / c, mem=mem, load=(load0, load()), n=n)


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
    ap.add_argument('--cache', default=str(HERE / '.cache'), help='folder of the a2a runs the benchmark makes')
    ap.add_argument('--write', action='store_true', help=f'write the table to {RESULTS.relative_to(RESULTS.parents[2])}')
    ap.add_argument('--label', default='results', help='section title in the results file (a section of that title is replaced)')
    ap.add_argument('--note', default='', help='a line written under the section title')
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    devices = a.device or (['cpu'] + (['cuda'] if torch.cuda.is_available() else []))
    tuned = 'cpu' in devices and tune_cpu_allocator()
    lines = [header(a.threads, tuned) + f'; nsd from {Path(nsd.__file__).parent}', '',
             f'training: median of {a.repeats} steps after {a.warmup} warm-up; evaluation: median of {a.repeats} passes over '
             'the test windows after 1 warm-up (B = eval batch size)', '',
             '| what | decoder | grid | causality | device | precision | B | ms / step (eval: / pass) | windows / s | × original '
             '| windows / CPU-s | peak GPU GiB | load |',
             '|---|---|---|---|---|---|---|---|---|---|---|---|---|']
    print('\n'.join(lines), flush=True)
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
                        stage = None
                        for batch in batches:
                            if stage is None: stage, opt = make_stage(p, run, kind, causality, device, batch, bf16)
                            r = time_train(stage, opt, batch, bf16, a.repeats, a.warmup)
                            lines.append(fmt_row('train step', kind, grid, causality, device, bf16, batch, r, original_speed(device, grid)))
                            print(lines[-1], flush=True)
                        if not a.no_eval:
                            r = time_eval(stage, bf16, a.repeats)
                            lines.append(fmt_row(f"eval ({r['n']} windows)", kind, grid, causality, device, bf16,
                                                 stage.cfg.train.eval_batch_size, r))
                            print(lines[-1], flush=True)
                        stage.participant.close()
                        del stage, opt
    if a.write:
        if not RESULTS.exists(): RESULTS.parent.mkdir(parents=True, exist_ok=True); RESULTS.write_text(TITLE)
        write_section(RESULTS, a.label, (a.note + '\n\n' if a.note else '') + '\n'.join(lines))
        print(f'\nwritten to {RESULTS}')


if __name__ == '__main__':
    main()
