"""Validity of stage 2 (issue 15): every decoder × causality on the simulated participants, against both baselines
and against the same decoder trained on time-shuffled ECoG (the chance control).

Per participant: one a2a run, then one e2a run per decoder × causality through it, and one chance-control run
(`shuffled_ecog=true`: every training window gets another window's ECoG, rotated in time) per decoder for each
causality in `--shuffled`. Every run is the real command a user types (`nsd train a2a|e2a ... --set ...`), in its own
process with `--threads` torch threads, `--jobs` at a time, so a run folder is an ordinary nsd run (config.yaml,
log.csv, metrics.json, contributions, audio) and a stopped benchmark resumes where it was (nsd resumes a run folder).
The table reads each run's `metrics.json` (the test trials: spectrogram PCC, word-frame PCC, mel PCC, STOI, STOI+,
both baselines on the PCC and on the word's frames), its test PCC at each evaluation (log.csv) and its wall time, and is printed and, with `--write`, added to
`benchmarks/results/e2a_validity.md` under `--label`.

The e2a runs use the demo's loss and learning rate (`nsd.cli.DEMO_E2A_OVERRIDES`: no flooding, the plain α term,
lr 0.005; why in benchmarks/RESULTS.md) unless `--set` says otherwise; the a2a run uses the demo's
(`nsd.cli.DEMO_A2A_OVERRIDES`: lr 0.01, Praat pitch supervision). Sizes: `--width kind=N` (default: the original's).

    python benchmarks/e2a_validity.py --out scratch/validity                          # everything, original sizes (hours on a CPU)
    python benchmarks/e2a_validity.py --participants SIM01 --a2a-steps 2000 --steps 1200 --width resnet=8 --jobs 2 --threads 1
    python benchmarks/e2a_validity.py --device cuda --a2a-steps 20000 --steps 20000 --jobs 4 --write --label "H200, 20k steps"
"""
import argparse, json, os, subprocess, sys, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from a2a_speed import add_report_args, write_section  # noqa: E402

HERE = Path(__file__).resolve().parent
EXAMPLE = HERE.parent / 'example_data'
RESULTS = HERE / 'results' / 'e2a_validity.md'
TITLE = ('# Validity of stage 2 (benchmarks/e2a_validity.py)\n\n'
         'Test trials of each simulated participant; PCC = spectrogram PCC on the evaluation windows (onset − 32 … onset + 96), '
         'word = the PCC over the frames of the spoken word only, shuffled = the same decoder, budget and seed trained on '
         'time-shuffled ECoG (chance control), mean / linear = the two baselines on the same trials, word baseline = the same '
         'scored on the word\'s frames (as word PCC).\n')
DECODERS, CAUSALITIES = ('resnet', 'lstm', 'swin', 'linear'), ('causal', 'noncausal', 'anticausal', 'legacy')


def participant_path(p:str) -> Path:
    "An example participant's name (SIM01) or a participant file."
    path = EXAMPLE / f'{p}.h5' if not p.endswith('.h5') else Path(p)
    if not path.is_file(): sys.exit(f'--participants: expected an example name (SIM01) or an .h5 file, got {p!r} (no file {path})')
    return path


def plan(a) -> list[dict]:
    "The runs, in an order that respects their dependencies (each participant's a2a first)."
    from nsd.cli import DEMO_A2A_OVERRIDES, DEMO_E2A_OVERRIDES
    strip = lambda ov, st: [o.split(':', 1)[1] for o in ov if o.startswith(st + ':')]
    common = [f'train.device={a.device}', 'train.progress=false', f'train.seed={a.seed}']
    epochs = max(1, a.steps // a.steps_per_epoch)
    runs = []
    for p in a.participants:
        path = participant_path(p)
        pdir = Path(a.out) / path.stem
        a2a = dict(name=f'{path.stem}/a2a', participant=path, dir=pdir / 'a2a', needs=None, kind='a2a', causality='', shuffled=False,
                   args=['a2a'], sets=[*strip(DEMO_A2A_OVERRIDES, 'a2a'), *common, f'train.epochs={max(1, a.a2a_steps // 40)}',
                                       'train.windows_per_epoch=640', f'train.eval_every={max(1, a.a2a_steps // 40 // 5)}'])
        runs.append(a2a)
        for kind in a.decoders:
            for causality in a.causalities:
                for shuffled in ((False, True) if causality in a.shuffled and kind in a.shuffled_decoders else (False,)):
                    if kind == 'linear' and causality not in ('causal', 'noncausal'): continue
                    name = f'{kind}-{causality}' + ('-shuffled' if shuffled else '')
                    sets = [*strip(DEMO_E2A_OVERRIDES, 'e2a'), *common, f'train.epochs={epochs}',
                            f'train.windows_per_epoch={16 * a.steps_per_epoch}', f'train.eval_every={max(1, epochs // a.evals)}']
                    if kind in a.width: sets.append(f'decoder.width={a.width[kind]}')
                    if shuffled: sets += ['shuffled_ecog=true', 'contributions=false', 'audio=false']
                    runs.append(dict(name=f'{path.stem}/{name}', participant=path, dir=pdir / name, needs=a2a['dir'], kind=kind,
                                     causality=causality, shuffled=shuffled, sets=[*sets, *a.set],
                                     args=['e2a', '--a2a', str(pdir / 'a2a'), '--decoder', kind, '--causality', causality]))
    return runs


def planned_epochs(r:dict) -> int: return int(next(s for s in r['sets'] if s.startswith('train.epochs=')).split('=')[1])


def read_metrics(run_dir:Path) -> dict:
    "A run's metrics.json, or {} where it has none yet."
    return json.loads((run_dir / 'metrics.json').read_text()) if (run_dir / 'metrics.json').is_file() else {}


def run_status(r:dict) -> str:
    "'done' when the run's metrics.json is of its last epoch; else how far it got."
    m = read_metrics(r['dir'])
    if not m: return 'not run'
    return 'done' if m.get('epoch') == planned_epochs(r) else f"evaluated at epoch {m.get('epoch')} of {planned_epochs(r)}"


def run_one(r:dict, threads:int, nsd_bin:str) -> dict:
    "One `nsd train` process; its output goes to RUN.log beside the run folder. Returns the run with its status."
    if run_status(r) == 'done': return {**r, 'status': 'done (earlier)', 'seconds': None}
    cmd = [nsd_bin, 'train', r['args'][0], str(r['participant']), '--out', str(r['dir']), *r['args'][1:]]
    for s in r['sets']: cmd += ['--set', s]
    env = {**os.environ, 'OMP_NUM_THREADS': str(threads), 'MKL_NUM_THREADS': str(threads), 'PYTHONUNBUFFERED': '1'}
    r['dir'].parent.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    print(f'[{time.strftime("%H:%M:%S")}] start {r["name"]}', flush=True)
    with open(r['dir'].with_suffix('.log'), 'a') as log:
        rc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env).returncode
    secs = round(time.time() - t0)
    what = 'done' if rc == 0 else f"FAILED (exit {rc}, see {r['dir']}.log)"
    print(f'[{time.strftime("%H:%M:%S")}] {what} {r["name"]} in {secs} s', flush=True)
    return {**r, 'status': 'done' if rc == 0 else f'failed ({rc})', 'seconds': secs}


def run_all(runs:list, jobs:int, threads:int, nsd_bin:str) -> list:
    "Each participant's a2a first, then its e2a runs, `jobs` processes at a time; a failed run never stops the others."
    results, a2a_ok = [], {}
    with ThreadPoolExecutor(jobs) as ex:
        for r in ex.map(lambda r: run_one(r, threads, nsd_bin), [r for r in runs if r['needs'] is None]):
            results.append(r); a2a_ok[r['dir']] = r['status'].startswith('done')
        todo = [r for r in runs if r['needs'] is not None]
        for r in todo:
            if not a2a_ok.get(r['needs']): results.append({**r, 'status': 'not run (its a2a run failed)', 'seconds': None})
        results += list(ex.map(lambda r: run_one(r, threads, nsd_bin), [r for r in todo if a2a_ok.get(r['needs'])]))
    return results


def _f(v, nd=3): return f'{v:.{nd}f}' if isinstance(v, (int, float)) and v == v else ''


def decoder_lr(run_dir:Path) -> str:
    "The decoder's base learning rate, train.lr × decoder.lr_factor, from the run's config.yaml (runs made before the factor existed: × 1)."
    import yaml
    if not (run_dir / 'config.yaml').is_file(): return ''
    c = yaml.safe_load((run_dir / 'config.yaml').read_text())
    return f"{c['train']['lr'] * ((c.get('decoder') or {}).get('lr_factor') or 1):g}"


def curve(run_dir:Path) -> str:
    "The test PCC of every evaluation in the run's log, in order (a fall at the end is overfitting)."
    import csv
    if not (run_dir / 'log.csv').is_file(): return ''
    with open(run_dir / 'log.csv') as f: rows = list(csv.DictReader(f))
    return ' / '.join(f"{float(r['test_pcc']):.2f}" for r in rows if r.get('test_pcc'))


def table(results:list, a) -> str:
    "The markdown table: one row per participant × decoder × causality (the shuffled run as a column of its row)."
    by = {r['name']: r for r in results}
    rows = ['| participant | run | width | steps | PCC | word PCC | mel PCC | STOI | STOI+ | shuffled PCC | shuffled word PCC '
            '| baseline: mean | baseline: linear | word baseline: mean | word baseline: linear | PCC at each evaluation | decoder lr | wall s |',
            '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|']
    for r in results:
        if r['shuffled']: continue
        m, s = read_metrics(r['dir']), by.get(r['name'] + '-shuffled')
        sm = read_metrics(s['dir']) if s else {}
        p, run = r['name'].split('/')
        per_epoch = 40 if r['kind'] == 'a2a' else a.steps_per_epoch
        steps = '' if r['kind'] == 'linear' or not m else m['epoch'] * per_epoch
        width = a.width.get(r['kind'], 'original') if r['kind'] not in ('a2a', 'linear') else ''
        status = '' if r['status'].startswith('done') else f" ({r['status']})"
        rows.append(f"| {p} | {run}{status} | {width} | {steps} | {_f(m.get('pcc'))} | {_f(m.get('pcc_speech'))} | {_f(m.get('pcc_mel'))} "
                    f"| {_f(m.get('stoi'))} | {_f(m.get('stoi_plus'))} | {_f(sm.get('pcc'))} | {_f(sm.get('pcc_speech'))} "
                    f"| {_f(m.get('baseline_mean_pcc', m.get('pcc_baseline_mean_spec')))} | {_f(m.get('baseline_linear_pcc'))} "
                    f"| {_f(m.get('baseline_mean_pcc_speech'))} | {_f(m.get('baseline_linear_pcc_speech'))} | {curve(r['dir'])} "
                    f"| {decoder_lr(r['dir']) if r['kind'] not in ('a2a', 'linear') else ''} "
                    f"| {_f(m.get('wall_time_s'), 0)} |")
    return '\n'.join(rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--participants', nargs='+', default=['SIM01', 'SIM02'], help='example names or participant .h5 files')
    ap.add_argument('--decoders', nargs='+', default=list(DECODERS), choices=DECODERS)
    ap.add_argument('--causalities', nargs='+', default=['causal', 'noncausal'], choices=CAUSALITIES)
    ap.add_argument('--shuffled', nargs='*', default=['causal'], choices=CAUSALITIES,
                    help='causalities that also get a chance-control run (shuffled ECoG); none: no control runs')
    ap.add_argument('--shuffled-decoders', nargs='*', default=['resnet', 'lstm', 'swin'], choices=DECODERS[:3],
                    help='decoders that get the chance-control runs (default all three networks)')
    ap.add_argument('--a2a-steps', type=int, default=2000, help='a2a training steps (batch 16; epochs of 40 steps)')
    ap.add_argument('--steps', type=int, default=1200, help='e2a training steps per decoder (batch 16)')
    ap.add_argument('--steps-per-epoch', type=int, default=100, help='e2a steps per epoch')
    ap.add_argument('--evals', type=int, default=4, help='test evaluations per e2a run (the last is the reported one)')
    ap.add_argument('--width', nargs='*', default=[], help="decoder sizes, kind=N (e.g. resnet=8); default the original's")
    ap.add_argument('--set', nargs='*', default=[], help='extra e2a overrides, key=value')
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--device', default='cpu', help="'cpu', 'cuda', 'auto'")
    ap.add_argument('--jobs', type=int, default=1, help='runs at a time')
    ap.add_argument('--threads', type=int, default=max(1, (os.cpu_count() or 1)), help='torch threads per run')
    ap.add_argument('--table-only', action='store_true', help='run nothing: the table of the runs already in --out')
    ap.add_argument('--out', default=str(HERE.parent / 'scratch' / 'validity'), help='folder of the runs (OUT/<participant>/<run>)')
    add_report_args(ap, RESULTS)
    a = ap.parse_args()
    try: a.width = {k: int(v) for k, v in (w.split('=') for w in a.width)}
    except ValueError: sys.exit(f'--width: expected kind=N (e.g. resnet=8), got {a.width}')
    nsd_bin = str(Path(sys.executable).with_name('nsd'))
    runs = plan(a)
    t0 = time.time()
    if a.table_only:
        results = [{**r, 'status': run_status(r)} for r in runs]
    else: results = run_all(runs, a.jobs, a.threads, nsd_bin)
    how = ('table of runs made earlier' if a.table_only else
           f"{time.time() - t0:.0f} s for this call; device {a.device}, {a.jobs} run(s) at a time, {a.threads} thread(s) each")
    text = (f"{time.strftime('%Y-%m-%dT%H:%M')}, {how}; a2a {a.a2a_steps} steps, e2a {a.steps} steps per decoder (batch 16), seed {a.seed}; "
            f"e2a overrides: the demo's{', ' + ', '.join(a.set) if a.set else ''}; runs in {a.out}\n\n" + table(results, a))
    if a.note: text = a.note + '\n\n' + text
    print(text, flush=True)
    if a.write:
        if not RESULTS.exists(): RESULTS.write_text(TITLE)
        write_section(RESULTS, a.label, text)
    failed = [r['name'] for r in results if not r['status'].startswith('done')]
    if failed: sys.exit(f'runs not done: {", ".join(failed)}')


if __name__ == '__main__':
    main()
