"""Time building every tiny preset from scratch and reloading it, each in a fresh process.

    python bench/tiny_presets.py [--repeats 3]

Prints a markdown table: import time, build time per preset and in all, and reload time through the same
`from_pretrained` / open_clip calls the components use. Targets (issue #2): build < 15 s, reload < 3 s.
"""
import argparse, json, subprocess, sys, tempfile, statistics

CHILD = r'''
import json, sys, time
t0 = time.perf_counter()
import torch, transformers, diffusers, open_clip
from vlm_grpo_nb.tiny import tiny_path, quiet, TINY_BUILDERS
t_import = time.perf_counter() - t0
cache, out = sys.argv[1], {'import': t_import}
for k in TINY_BUILDERS:
    t = time.perf_counter(); tiny_path(k, cache); out[f'build {k}'] = time.perf_counter() - t
out['build all'] = sum(v for k, v in out.items() if k.startswith('build '))
from transformers import AutoTokenizer, AutoModelForCausalLM
from diffusers import StableDiffusion3Pipeline, StableDiffusionPipeline
loads = {
    'policy': lambda p: (AutoTokenizer.from_pretrained(p), AutoModelForCausalLM.from_pretrained(p)),
    'sd3': lambda p: StableDiffusion3Pipeline.from_pretrained(p, text_encoder_3=None, tokenizer_3=None),
    'sd15': lambda p: StableDiffusionPipeline.from_pretrained(p),
    'clip': lambda p: (open_clip.create_model_and_transforms(f'local-dir:{p}'), open_clip.get_tokenizer(f'local-dir:{p}')),
}
with quiet():
    for k, f in loads.items():
        t = time.perf_counter(); f(tiny_path(k, cache)); out[f'reload {k}'] = time.perf_counter() - t
out['reload all'] = sum(v for k, v in out.items() if k.startswith('reload '))
print(json.dumps(out))
'''

def run_once():
    with tempfile.TemporaryDirectory() as cache:
        r = subprocess.run([sys.executable, '-c', CHILD, cache], capture_output=True, text=True, check=True)
        return json.loads(r.stdout.strip().splitlines()[-1])

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0]); ap.add_argument('--repeats', type=int, default=3)
    runs = [run_once() for _ in range(ap.parse_args().repeats)]
    print(f'| step | median s | min s | max s |  (n={len(runs)}, fresh process and empty cache each)\n|---|---|---|---|')
    for k in runs[0]:
        xs = [r[k] for r in runs]
        print(f'| {k} | {statistics.median(xs):.2f} | {min(xs):.2f} | {max(xs):.2f} |')
