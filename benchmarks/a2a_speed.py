"""Speed of stage-1 (a2a) training: whole steps through the real `A2AStage`, and the synthesizer alone.

One step is what `nsd.training.fit` does per iteration: `TrialBank.sample_train` → `SpeechEncoder` →
`SpeechSynthesizer` → `a2a_loss` → backward → Adam step (equalised learning rates, as `fit`), plus the
detached loss sums `fit` keeps. Warm-up steps are left out; the figure is the median of the timed steps.
Participants default to the shipped SIM01 (female, F = 256) and SIM02 (male, F = 512). CPU runs use
`--threads` torch threads (2 by default); on CUDA each case also runs with bf16 autocast
(`TrainConfig(bf16=True)`) and peak memory is reported (`torch.cuda.max_memory_allocated`).
As `fit` does on a CPU, glibc malloc is first told to keep freed memory (`tune_cpu_allocator`); run with
`NSD_TUNE_MALLOC=0` for the untuned figures (the header says which).
The synthesizer alone (forward + backward, `benchmarks/synth_speed.py`) is timed for the same grid.
The load average (`os.getloadavg`) is recorded with every row: on a shared 2-core machine a load
above 2 slows the 2-thread figures a lot; compare before/after at `--threads 1` then.

    python benchmarks/a2a_speed.py                          # SIM01, SIM02; B = 16, 64; CPU (+ CUDA)
    python benchmarks/a2a_speed.py --device cuda --batch 16 64 256
    python benchmarks/a2a_speed.py --label after --threads 1 --write   # add a section to the results file
"""
import argparse, datetime, os, platform, re, sys, time
from pathlib import Path

import torch

import nsd
from nsd.training import A2AConfig, A2AStage, TrainConfig, make_optimizer, tune_cpu_allocator

sys.path.insert(0, str(Path(__file__).resolve().parent))
import synth_speed  # noqa: E402  (the synthesizer-alone timing)

EXAMPLE = Path(nsd.__file__).resolve().parents[1] / 'example_data'
RESULTS = Path(__file__).resolve().parent / 'results' / 'a2a_speed.md'


def load() -> float:
    "1-minute load average (nan where the OS has none)."
    return os.getloadavg()[0] if hasattr(os, 'getloadavg') else float('nan')


def make_stage(participant:Path, device:str, batch:int, bf16:bool):
    "An `A2AStage` and the optimiser `fit` would build for it."
    cfg = A2AConfig(train=TrainConfig(batch_size=batch, device=device, bf16=bf16, progress=False))
    stage = A2AStage(participant, cfg)
    opt = make_optimizer(stage.module, cfg.train)
    stage.module.train()
    return stage, opt


def train_step(stage, opt, batch_size:int, device:torch.device, bf16:bool, sums:dict):
    "One iteration of `fit`'s inner loop (without its periodic host sync)."
    batch = stage.train_batch(batch_size)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        total, terms = stage.loss(batch, 0)
    opt.zero_grad(set_to_none=True)
    total.float().backward()
    opt.step()
    with torch.no_grad():
        for k, v in {'loss': total, **terms}.items():
            v = v.detach().float()
            sums[k] = sums[k] + v if k in sums else v.clone()


def time_a2a(participant:Path, device:str, batch:int, bf16:bool, repeats:int, warmup:int) -> dict:
    "Median seconds of one a2a training step, windows/s, peak GPU memory, load before/after."
    stage, opt = make_stage(participant, device, batch, bf16)
    dev, sums = torch.device(device), {}
    for _ in range(warmup): train_step(stage, opt, batch, dev, bf16, sums)
    if dev.type == 'cuda': torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
    load0, times = load(), []
    for _ in range(repeats):
        t0 = time.perf_counter()
        train_step(stage, opt, batch, dev, bf16, sums)
        if dev.type == 'cuda': torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    if not all(torch.isfinite(v) for v in sums.values()): raise RuntimeError(f'non-finite loss in the benchmark ({participant.name})')
    s = sorted(times)[len(times) // 2]
    mem = torch.cuda.max_memory_allocated() / 2**30 if dev.type == 'cuda' else float('nan')
    stage.participant.close()
    return dict(ms=s * 1000, wps=batch / s, mem=mem, load=(load0, load()))


def time_synth(n_bins:int, device:str, batch:int, repeats:int, warmup:int) -> dict:
    "The synthesizer alone (forward + backward), as `benchmarks/synth_speed.py` times it."
    load0 = load()
    ms, wps, mem = synth_speed.time_one(device, batch, n_bins, repeats, warmup, 'learned')
    return dict(ms=ms, wps=wps, mem=mem, load=(load0, load()))


def fmt_row(what, name, device, batch, bf16, r):
    mem = '' if r['mem'] != r['mem'] else f"{r['mem']:.2f}"
    return (f"| {what} | {name} | {device} | {'bf16' if bf16 else 'fp32'} | {batch} | {r['ms']:.1f} | {r['wps']:.0f} | {mem} "
            f"| {r['load'][0]:.2f} → {r['load'][1]:.2f} |")


def header(threads:int, malloc_tuned:bool) -> str:
    gpu = f', GPU {torch.cuda.get_device_name()}' if torch.cuda.is_available() else ', no GPU'
    return (f"{datetime.datetime.now().isoformat(timespec='minutes')}; {platform.node()}: {platform.processor() or platform.machine()}, "
            f"{os.cpu_count()} CPUs visible{gpu}; torch {torch.__version__}, {threads} CPU thread(s); Python {platform.python_version()}; "
            f"glibc malloc {'tuned (tune_cpu_allocator)' if malloc_tuned else 'untuned'}")


def add_report_args(ap:argparse.ArgumentParser, results:Path):
    "The options every speed benchmark shares: where the table goes (`--write`, `--label`, `--note`)."
    ap.add_argument('--write', action='store_true', help=f'write the table to {results.relative_to(results.parents[2])}')
    ap.add_argument('--label', default='results', help='section title in the results file (a section of that title is replaced)')
    ap.add_argument('--note', default='', help='a line written under the section title')


def start(a) -> tuple:
    "Threads set, devices chosen (cpu, and cuda where available, unless `--device`), malloc tuned for CPU runs: (devices, tuned)."
    torch.set_num_threads(a.threads)
    devices = a.device or (['cpu'] + (['cuda'] if torch.cuda.is_available() else []))
    return devices, 'cpu' in devices and tune_cpu_allocator()


def write_section(path:Path, label:str, text:str):
    "Add (or replace) the section `## label` of the results file, keeping the others."
    old = path.read_text() if path.exists() else ('# a2a training speed (benchmarks/a2a_speed.py)\n\n'
                                                  'One a2a training step through the real `A2AStage` (sample → encoder → synthesizer '
                                                  '→ loss → backward → Adam), median after warm-up; and the synthesizer alone '
                                                  '(forward + backward). Load = 1-minute load average before → after the row.\n')
    sections = [s.strip() for s in re.split(r'(?m)^(?=## )', old) if s.strip()]
    body = f'## {label}\n\n{text.strip()}'
    at = [i for i, s in enumerate(sections) if s.startswith(f'## {label}\n')]
    if at: sections[at[0]] = body
    else: sections.append(body)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('\n\n'.join(sections) + '\n')


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--participants', nargs='+', default=[str(EXAMPLE / 'SIM01.h5'), str(EXAMPLE / 'SIM02.h5')])
    ap.add_argument('--batch', type=int, nargs='+', default=[16, 64])
    ap.add_argument('--threads', type=int, default=2, help='torch CPU threads')
    ap.add_argument('--device', nargs='+', default=None, help="'cpu', 'cuda' (default: cpu, and cuda if available)")
    ap.add_argument('--repeats', type=int, default=7)
    ap.add_argument('--warmup', type=int, default=2)
    ap.add_argument('--no-bf16', action='store_true', help='skip the bf16 autocast rows on CUDA')
    ap.add_argument('--no-synth', action='store_true', help='skip the synthesizer-alone rows')
    add_report_args(ap, RESULTS)
    a = ap.parse_args()
    devices, tuned = start(a)
    lines = [header(a.threads, tuned), '', f'median of {a.repeats} steps after {a.warmup} warm-up', '',
             '| what | participant | device | precision | B | ms / step | windows / s | peak GPU GiB | load |',
             '|---|---|---|---|---|---|---|---|---|']
    print('\n'.join(lines), flush=True)
    for device in devices:
        for p in map(Path, a.participants):
            n_bins = None
            for batch in a.batch:
                for bf16 in ([False, True] if device.startswith('cuda') and not a.no_bf16 else [False]):
                    r = time_a2a(p, device, batch, bf16, a.repeats, a.warmup)
                    lines.append(fmt_row('a2a step', p.stem, device, batch, bf16, r)); print(lines[-1], flush=True)
            if a.no_synth: continue
            import h5py
            with h5py.File(p, 'r') as f: n_bins = f['wave_re_spec_alldataset'].shape[1]
            for batch in a.batch:
                r = time_synth(n_bins, device, batch, a.repeats, a.warmup)
                lines.append(fmt_row('synth fwd+bwd', f'F={n_bins}', device, batch, False, r)); print(lines[-1], flush=True)
    if a.write:
        write_section(RESULTS, a.label, (a.note + '\n\n' if a.note else '') + '\n'.join(lines))
        print(f'\nwritten to {RESULTS}')


if __name__ == '__main__':
    main()
