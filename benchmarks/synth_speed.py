"""Speed of the speech synthesizer alone: forward + backward of one training step's synthesis.

Times `speech_params_from_logits` + `SpeechSynthesizer` (default `SynthConfig`: learned filters,
background noise on) + a scalar loss + backward to the logits and the synthesizer's parameters,
at T = 128 frames (one window), for batch sizes and bin counts given on the command line.
CPU runs use `--threads` torch threads (2 by default, as in CI); if CUDA is available the same
grid runs on the GPU too and reports peak memory. Prints a markdown table.

    python benchmarks/synth_speed.py                      # B = 16, 64; F = 256, 512; CPU (+ GPU)
    python benchmarks/synth_speed.py --batch 16 --bins 256 --repeats 3
"""
import argparse, os, platform, time

import torch

from nsd.synthesizer import N_LOGITS, SpeechSynthesizer, SynthConfig, speech_params_from_logits


def step(synth, logits, sex, generator):
    params = speech_params_from_logits(logits, sex)
    power = synth(params, generator=generator)
    loss = torch.log(power + 1e-6).mean()
    loss.backward()
    return loss


def time_one(device, batch, n_bins, repeats, warmup, filter_shape):
    sex = 'F' if n_bins == 256 else 'M'
    synth = SpeechSynthesizer(SynthConfig(sex=sex, n_bins=n_bins, filter_shape=filter_shape)).to(device).train()
    synth.set_noise_spectrum(torch.full((n_bins,), 1e-4, device=device))
    gen = torch.Generator(device=device).manual_seed(0)
    logits = torch.randn(batch, 128, N_LOGITS, device=device, generator=gen).requires_grad_()
    for _ in range(warmup): step(synth, logits, sex, gen)
    if device == 'cuda':
        torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step(synth, logits, sex, gen)
        if device == 'cuda': torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    ms = sorted(times)[len(times) // 2] * 1000  # median
    mem = torch.cuda.max_memory_allocated() / 2**30 if device == 'cuda' else float('nan')
    return ms, batch / ms * 1000, mem


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--batch', type=int, nargs='+', default=[16, 64])
    ap.add_argument('--bins', type=int, nargs='+', default=[256, 512])
    ap.add_argument('--threads', type=int, default=2, help='torch CPU threads')
    ap.add_argument('--repeats', type=int, default=5)
    ap.add_argument('--warmup', type=int, default=1)
    ap.add_argument('--filter-shape', default='learned', choices=['learned', 'gaussian'])
    ap.add_argument('--no-cpu', action='store_true', help='GPU only')
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    devices = ([] if a.no_cpu else ['cpu']) + (['cuda'] if torch.cuda.is_available() else [])
    from nsd.training import tune_cpu_allocator  # as fit does on a CPU; NSD_TUNE_MALLOC=0 for the untuned figures
    tuned = 'cpu' in devices and tune_cpu_allocator()
    print(f'torch {torch.__version__}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs visible, '
          f'{a.threads} torch threads' + (f', GPU {torch.cuda.get_device_name()}' if torch.cuda.is_available() else ', no GPU')
          + f", glibc malloc {'tuned' if tuned else 'untuned'}")
    if hasattr(os, 'getloadavg'): print(f'load average before: {os.getloadavg()[0]:.2f}')
    print(f'filter shape: {a.filter_shape}; T = 128 frames; median of {a.repeats} steps after {a.warmup} warm-up\n')
    print('| device | B | F | ms / step (fwd+bwd) | windows / s | peak GPU memory (GiB) |')
    print('|---|---|---|---|---|---|')
    for device in devices:
        for n_bins in a.bins:
            for batch in a.batch:
                ms, wps, mem = time_one(device, batch, n_bins, a.repeats, a.warmup, a.filter_shape)
                print(f'| {device} | {batch} | {n_bins} | {ms:.1f} | {wps:.0f} | {"" if mem != mem else f"{mem:.2f}"} |', flush=True)
    if hasattr(os, 'getloadavg'): print(f'\nload average after: {os.getloadavg()[0]:.2f}')


if __name__ == '__main__':
    main()
