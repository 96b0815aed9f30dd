"""ShapesWorld CLIP image towers: why the shipped one is a ResNet trained on recoloured views, measured.

    OMP_NUM_THREADS=1 python bench/shapes_image_tower.py --measure DIR         # an open_clip local-dir CLIP, as it is
    OMP_NUM_THREADS=1 python bench/shapes_image_tower.py --train NAME --arch vit|resnet16|resnet24|resnet32 \
        --views none|grey|recoloured [--steps 1000] [--work /tmp/towers]

`--train` runs `train_image_tower` (notebook 13) from seed 0 against the shipped CLIP's locked text tower (the text
tower every shapes CLIP since the third recipe shares) with another tower (`--arch`) or extra views (`--views`: none,
greyscale, or recoloured as shipped), saves the CLIP into WORK/NAME and measures it.

Measured, from the image embeddings alone: a linear probe per attribute fitted on 3,000 training-pair renders and
scored on 800 held-out-pair renders (the text embeddings of the same scenes' detailed captions, too, with --measure);
top-1 retrieval among one-attribute distractors on 200 held-out and 200 training-pair renders (`clip_retrieval`,
through the package's reward with this CLIP); and the Spearman
correlation with the renderer's quality labels of an `AestheticHead` trained on the embeddings as the build trains it.
Prints one JSON line.
"""
import argparse, json, time
import numpy as np, torch, torch.nn.functional as F
from vlm_grpo_nb import shapes as S, shapes_models as M
from vlm_grpo_nb.tiny import SHAPES_DIR

def _train(name, arch, views, steps, work, seed=0):
    "`train_image_tower` with another tower or views, against the shipped CLIP's text tower; saved into WORK/NAME."
    tower = M.IMAGE_TOWER if arch == 'resnet24' else {**M.CLIP_CONFIG['vision_cfg']} if arch == 'vit' else {**M.IMAGE_TOWER, 'width': int(arch[6:])}
    model, _ = M.train_image_tower(M.load_clip(SHAPES_DIR/'clip'), M.world_data(30_000, seed + 2), steps, seed=seed, views=views, tower=tower)
    return M.save_clip(model, f'{work}/{name}', {**M.CLIP_CONFIG, 'vision_cfg': tower})

def _probe(Xtr, ytr, Xte, yte, k):
    torch.manual_seed(0); lin = torch.nn.Linear(Xtr.shape[1], k); opt = torch.optim.Adam(lin.parameters(), 1e-2)
    for _ in range(500): opt.zero_grad(); F.cross_entropy(lin(10 * Xtr), ytr).backward(); opt.step()
    with torch.no_grad(): return round((lin(10 * Xte).argmax(1) == yte).float().mean().item(), 4)

def measure(folder, seed=0):
    clip, res = M.load_clip(folder), {'clip': str(folder)}
    tr, ho, rng = M.world_data(3000, 11), M.world_data(800, 12, 'heldout'), np.random.default_rng(0)
    ys = lambda d, a: torch.tensor([M._VALUES[a].index(getattr(s.objects[0], a)) for s in d['scenes']])
    fi = [F.normalize(M.clip_image_features(clip, d['images']), dim=-1) for d in (tr, ho)]
    ft = [M.clip_text_features(clip, [S.detailed_caption(s, rng, True) for s in d['scenes']]) for d in (tr, ho)]
    for a in M.ATTRIBUTES:
        k = len(M._VALUES[a])
        res[f'image probe {a}'] = _probe(fi[0], ys(tr, a), fi[1], ys(ho, a), k)
        res[f'text probe {a}'] = _probe(ft[0], ys(tr, a), ft[1], ys(ho, a), k)
    from vlm_grpo_nb.config import load_config
    from vlm_grpo_nb.clip_reward import CLIPRewardCalculator
    reward = CLIPRewardCalculator(config=load_config(preset='shapes', **{'model_settings.clip_model': str(folder)}))
    for split in ('heldout', 'train'):   # as the reward sees them
        for k, v in M.clip_retrieval(reward, M.heldout_cases(200, 0, split), seed=0).items(): res[f'retrieval {split} {k}'] = round(v, 4)
    from scipy.stats import spearmanr
    head, _ = M.train_quality(clip, M.world_data(15_000, seed + 3), 3000, seed=seed, progress=False)
    d = M.world_data(500, 0, 'heldout')
    with torch.no_grad(): res['quality Spearman'] = round(float(spearmanr(head(M.clip_image_features(clip, d['images'])).numpy(), d['quality']).statistic), 4)
    return res

def main():
    ap = argparse.ArgumentParser(); ap.add_argument('--measure'); ap.add_argument('--train'); ap.add_argument('--arch', default='resnet24')
    ap.add_argument('--views', default='recoloured', choices=('none', 'grey', 'recoloured')); ap.add_argument('--steps', type=int, default=1000)
    ap.add_argument('--work', default='/tmp/towers'); a = ap.parse_args()
    t0 = time.time(); torch.set_num_threads(1)
    folder = a.measure or _train(a.train, a.arch, a.views, a.steps, a.work)
    res = {**measure(folder), 'minutes': round((time.time() - t0) / 60, 1)}
    if a.train: res.update(arch=a.arch, views=a.views, steps=a.steps)
    print(json.dumps(res))

if __name__ == '__main__': main()
