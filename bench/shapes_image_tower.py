"""ShapesWorld CLIP image towers: why the shipped one is a ResNet trained on recoloured views, measured.

    OMP_NUM_THREADS=1 python bench/shapes_image_tower.py --measure DIR         # an open_clip local-dir CLIP, as it is
    OMP_NUM_THREADS=1 python bench/shapes_image_tower.py --train NAME --arch vit|resnet16|resnet24|resnet32 \
        --views none|gray|recoloured [--steps 1000] [--work /tmp/towers]

`--train` trains a new image tower from seed 0 against the shipped CLIP's locked text tower (the text tower every
shapes CLIP since the third recipe shares), as `train_image_tower` does: contrastive loss and one-attribute hard
negatives against the locked text embeddings, attribute probes shared with the text embeddings, a linear quality probe,
and on half of each batch one of: no extra view, a greyscale view, or a recoloured view (`recoloured_views`), read by
the shape, size and position probes. It saves the CLIP into WORK/NAME and measures it.

Measured, from the image embeddings alone: a linear probe per attribute fitted on 3,000 training-pair renders and
scored on 800 held-out-pair renders (the text embeddings of the same scenes' detailed captions, too, with --measure);
top-1 retrieval among one-attribute distractors on 200 held-out and 200 training-pair renders; and the Spearman
correlation with the renderer's quality labels of an `AestheticHead` trained on the embeddings as the build trains it.
Prints one JSON line.
"""
import argparse, json, time
import numpy as np, torch, torch.nn.functional as F
from vlm_grpo_nb import shapes as S, shapes_models as M
from vlm_grpo_nb.tiny import SHAPES_DIR

def _train(name, arch, views, steps, work, seed=0):
    import open_clip
    from open_clip.loss import ClipLoss
    locked = M.load_clip(SHAPES_DIR/'clip')
    cfg = json.loads(json.dumps(M.CLIP_CONFIG))
    if arch.startswith('resnet'): cfg['vision_cfg'] = {'image_size': S.SIZE, 'layers': [1, 1, 1, 1], 'width': int(arch[6:]), 'head_width': 32}
    M.set_seed(seed); model = open_clip.CLIP(**cfg)
    model.load_state_dict({k: v for k, v in locked.state_dict().items() if not k.startswith('visual.')}, strict=False)
    for n, p in model.named_parameters(): p.requires_grad_(n.startswith('visual.') or n == 'logit_scale')
    data, rng, g = M.world_data(30_000, seed + 2), np.random.default_rng(seed), torch.Generator().manual_seed(seed)
    X, q = M.clip_images(data['images']), torch.from_numpy(data['quality'])
    T = M.clip_text_features(locked, data['captions'])
    N = M.clip_text_features(locked, [M.hard_negative(c, s, rng) for c, s in zip(data['captions'], data['scenes'])])
    mean, std = torch.tensor(M.CLIP_NORM['mean'])[:, None, None], torch.tensor(M.CLIP_NORM['std'])[:, None, None]
    def grey(x): return ((((x * std + mean) * torch.tensor([0.299, 0.587, 0.114])[:, None, None]).sum(1, keepdim=True)).expand(-1, 3, -1, -1) - mean) / std
    V = None
    if views == 'recoloured':   # as `recoloured_views`, with each fill's and noise seed's draws interleaved
        rr = np.random.default_rng(seed + 7)
        V = M.clip_images(np.stack([S.render(s, int(rr.integers(2**31)), fills=[f]) for s in data['scenes']
                                    for f in [M.free_fill(s.objects[0].shape, s.background, rr)]]))
    y_img, y_txt = M.attribute_labels(data['scenes'], data['captions'])
    probes = torch.nn.ModuleList(torch.nn.Linear(64, len(M._VALUES[a])) for a in M.ATTRIBUTES); qprobe, cl = torch.nn.Linear(64, 1), ClipLoss()
    def loss(i):
        j = torch.randint(0, len(X), (96,), generator=g)
        img, scale = F.normalize(model.encode_image(X[j]), dim=-1), model.logit_scale.exp()
        L = cl(img, T[j], scale) + F.cross_entropy(scale * img @ torch.cat([T[j], N[j]]).T, torch.arange(96))
        for a, p in enumerate(probes): L = L + F.cross_entropy(p(10 * img), y_img[j, a]) + F.cross_entropy(p(10 * T[j]), y_txt[j, a], ignore_index=-100)
        L = L + F.mse_loss(qprobe(10 * img).squeeze(-1), q[j])
        if views != 'none':
            k = j[:48]; v = F.normalize(model.encode_image(grey(X[k]) if views == 'gray' else V[k]), dim=-1)
            for a, p in enumerate(probes):
                if M.ATTRIBUTES[a] != 'colour': L = L + F.cross_entropy(p(10 * v), y_img[k, a])
        return L
    M.train_loop([p for p in model.parameters() if p.requires_grad] + [*probes.parameters(), *qprobe.parameters()], loss, steps, 1e-3, 0.1, name)
    M.save_clip(model.eval().requires_grad_(False), f'{work}/{name}', cfg)
    return f'{work}/{name}'

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
    for split in ('heldout', 'train'):
        hits = {k: [] for k in ('all', *M.ATTRIBUTES)}
        for i, c in enumerate(M.heldout_cases(200, 0, split)):
            o = c['scene'].objects[0]; caps = M.one_attribute_distractors(o, c['scene'].background)
            sims = (F.normalize(M.clip_image_features(clip, S.render(c['scene'], i)[None]), dim=-1) @ M.clip_text_features(clip, caps).T)[0]
            kinds = [k for k, vals in (('colour', S.COLOURS), ('shape', S.SHAPES), ('size', S.SIZES), ('position', S.POSITIONS)) for v in vals if v != getattr(o, k)]
            hits['all'].append(int(sims.argmax()) == 0)
            for k in M.ATTRIBUTES: hits[k].append(bool((sims[0] > sims[1:][[j for j, kk in enumerate(kinds) if kk == k]]).all()))
        for k, v in hits.items(): res[f'retrieval {split} {k}'] = round(float(np.mean(v)), 4)
    from scipy.stats import spearmanr
    head, _ = M.train_quality(clip, M.world_data(15_000, seed + 3), 3000, seed=seed, progress=False)
    d = M.world_data(500, 0, 'heldout')
    with torch.no_grad(): res['quality Spearman'] = round(float(spearmanr(head(M.clip_image_features(clip, d['images'])).numpy(), d['quality']).statistic), 4)
    return res

def main():
    ap = argparse.ArgumentParser(); ap.add_argument('--measure'); ap.add_argument('--train'); ap.add_argument('--arch', default='resnet24')
    ap.add_argument('--views', default='recoloured', choices=('none', 'gray', 'recoloured')); ap.add_argument('--steps', type=int, default=1000)
    ap.add_argument('--work', default='/tmp/towers'); a = ap.parse_args()
    t0 = time.time(); torch.set_num_threads(1)
    folder = a.measure or _train(a.train, a.arch, a.views, a.steps, a.work)
    res = {**measure(folder), 'minutes': round((time.time() - t0) / 60, 1)}
    if a.train: res.update(arch=a.arch, views=a.views, steps=a.steps)
    print(json.dumps(res))

if __name__ == '__main__': main()
