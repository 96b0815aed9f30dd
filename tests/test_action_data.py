"Action data: both on-disk formats load to the same samples; damaged pairs are reported, skipped and counted; missing annotations are one clear error."
import json, logging, shutil
from pathlib import Path
import numpy as np
import pytest
import torch

from vlm_grpo_nb.action_data import (ActionDataError, LevirCCActionDataset, NO_CHANGE, change_pairs, detect_format, load_action_datasets,
                                     save_arrow, save_levir_folder, shapes_change_data, ARROW_SPLITS, LEVIR_JSON)
from vlm_grpo_nb.shapes import pair_split

@pytest.fixture(scope='module')
def shapes_root(tmp_path_factory):
    "A small ShapesWorld change set in both formats, built by the same function the 'shapes' data path uses."
    return shapes_change_data(24, 8, 8, seed=3, cache_dir=tmp_path_factory.mktemp('cache'))

@pytest.fixture(scope='module')
def pairs():
    return change_pairs(10, 0)

def _same(a, b):
    assert len(a) == len(b) and len(a) > 0
    for x, y in zip(a, b):
        assert x.keys() == y.keys()
        for k in x: assert (torch.equal(x[k], y[k]) if torch.is_tensor(x[k]) else x[k] == y[k]), k

def test_both_formats_load_identical_samples(shapes_root):
    assert (detect_format(shapes_root/'arrow'), detect_format(shapes_root/'levir')) == ('arrow', 'folder')
    A, F = load_action_datasets(shapes_root/'arrow', image_size=64), load_action_datasets(shapes_root/'levir', image_size=64)
    assert {k: len(v) for k, v in A.items()} == {'train': 24, 'validation': 8, 'test': 8}
    for k in ARROW_SPLITS: _same(list(A[k]), list(F[k]))
    # resized to another size and normalised the same way too
    _same(list(load_action_datasets(shapes_root/'arrow', image_size=96)['test']), list(load_action_datasets(shapes_root/'levir', image_size=96)['test']))

def test_shapes_path_and_format_choice(shapes_root, tmp_path):
    kw = dict(shapes={'n_train': 24, 'n_val': 8, 'n_test': 8, 'seed': 3}, cache_dir=shapes_root.parent, image_size=64)
    a, f = load_action_datasets('shapes', 'arrow', **kw), load_action_datasets('shapes', 'folder', **kw)
    _same(list(a['validation']), list(f['validation']))
    with pytest.raises(ActionDataError, match=r"format is 'folder', but the folder holds the 'arrow' format"):
        load_action_datasets(shapes_root/'arrow', 'folder')

def test_masks_give_the_boxes_of_a_levir_mci_folder(shapes_root, tmp_path):
    mci = tmp_path/'mci'; shutil.copytree(shapes_root/'levir', mci)
    j = json.loads((mci/LEVIR_JSON).read_text())
    for e in j['images']: del e['bbox']
    (mci/LEVIR_JSON).write_text(json.dumps(j))
    M, A = load_action_datasets(mci, image_size=64), load_action_datasets(shapes_root/'arrow', image_size=64)
    for k in ARROW_SPLITS:
        mb, ab = torch.stack([s['bbox'] for s in M[k]]), torch.stack([s['bbox'] for s in A[k]])
        assert (mb - ab).abs().max() <= 1.01        # the mask covers the antialiased edge pixels
        assert mb[:, :2].le(ab[:, :2] + 1e-6).all() and mb[:, 2:].ge(ab[:, 2:] - 1e-6).all()   # and holds the true box

def test_held_out_pairs_never_reach_training():
    rng_pairs = change_pairs(200, 7, 'train') + change_pairs(100, 8, 'heldout')
    held = lambda p: any(pair_split(o['colour'], o['shape']) == 'heldout' for o in p['before'] + p['after'])
    assert not any(held(p) for p in rng_pairs[:200]) and all(held(p) for p in rng_pairs[200:])

def _folder(tmp_path, pairs, **kw):
    return save_levir_folder({'train': pairs}, tmp_path/'f', **kw)

def test_corrupt_image_is_reported_skipped_and_counted(tmp_path, pairs, caplog):
    root = _folder(tmp_path, pairs)
    bad = root/'images'/'train'/'B'/'train_000004.png'; bad.write_bytes(b'\x89PNG\r\n\x1a\n but not really')
    with caplog.at_level(logging.WARNING, logger='vlm_grpo_nb'):
        ds = LevirCCActionDataset(json_source(root), image_size=64, name='f/train')
    assert len(ds) == 9 and ds.skipped == {'unreadable image': 1}
    assert 'train_000004.png' in caplog.text and 'unreadable image' in caplog.text
    # the Arrow format: one row's image bytes are garbage
    from datasets import Dataset, Features, Image as HFImage, Sequence, Value
    rows = [{'image': {'bytes': b'garbage', 'path': None} if i == 2 else p['image'], 'image2': p['image2'], 'caption': p['caption'],
             'bbox': p['bbox']} for i, p in enumerate(pairs)]
    feats = Features({'image': HFImage(), 'image2': HFImage(), 'caption': Value('string'), 'bbox': Sequence(Value('float64'), length=4)})
    from PIL import Image
    hf = Dataset.from_list([{**r, 'image': r['image'] if isinstance(r['image'], dict) else Image.fromarray(r['image']),
                             'image2': Image.fromarray(r['image2'])} for r in rows], features=feats)
    ds = LevirCCActionDataset(hf, image_size=64, name='arrow')
    assert len(ds) == 9 and ds.skipped == {'unreadable image': 1}

def json_source(root):
    from vlm_grpo_nb.action_data import FolderPairs
    return FolderPairs(root, json.loads((root/LEVIR_JSON).read_text())['images'], 'f/train')

def test_missing_caption_and_box_outside_are_skipped_and_counted(tmp_path, pairs, caplog):
    root = _folder(tmp_path, pairs)
    j = json.loads((root/LEVIR_JSON).read_text())
    j['images'][0]['sentences'] = []                          # no caption at all
    j['images'][1]['sentences'][0]['raw'] = '   '             # an empty one
    j['images'][2]['bbox'] = [10, 10, 90, 20]                 # a box outside the 64x64 image
    (root/LEVIR_JSON).write_text(json.dumps(j))
    with caplog.at_level(logging.INFO, logger='vlm_grpo_nb'):
        ds = LevirCCActionDataset(json_source(root), image_size=64, name='f/train', max_skip_fraction=0.5)
    assert len(ds) == 7 and ds.skipped == {'no caption': 2, 'box outside the image': 1}
    assert 'box outside the image: [10.0, 10.0, 90.0, 20.0] on a 64x64 image' in caplog.text
    assert 'f/train: 7 pairs, 3 skipped (no caption: 2, box outside the image: 1)' in caplog.text
    # in memory too, and a box inside by less than a pixel of rounding is clipped, not skipped
    mem = [dict(p) for p in pairs]; mem[0]['caption'] = None; mem[1]['bbox'] = [-0.4, 0, 10, 64.6]
    ds = LevirCCActionDataset(mem, image_size=64, max_skip_fraction=0.5)
    assert ds.skipped == {'no caption': 1} and ds[0]['bbox'].tolist() == [0., 0., 10., 64.]

def test_too_many_damaged_pairs_is_an_error(tmp_path, pairs):
    root = _folder(tmp_path, pairs)
    for i in (1, 2): (root/'images'/'train'/'A'/f'train_00000{i}.png').write_bytes(b'')
    with pytest.raises(ActionDataError, match=r'f/train: 2 of 10 pairs are damaged \(unreadable image: 2\), more than action_settings.data.max_skip_fraction=0.1'):
        LevirCCActionDataset(json_source(root), image_size=64, name='f/train')
    with pytest.raises(ActionDataError, match='no usable pair among 2'):
        LevirCCActionDataset([{**p, 'caption': ''} for p in pairs[:2]], max_skip_fraction=1.0)

def test_neither_boxes_nor_masks_is_one_clear_error(tmp_path, pairs):
    _folder(tmp_path, pairs, boxes=False)
    with pytest.raises(ActionDataError, match=r"have captions but neither boxes .* nor change masks .*LEVIR-CC alone cannot train"):
        load_action_datasets(tmp_path/'f')
    save_arrow({'train': pairs}, tmp_path/'a')
    from datasets import load_from_disk
    d = load_from_disk(str(tmp_path/'a'))['train'].remove_columns(['bbox'])
    with pytest.raises(ActionDataError, match='neither boxes'): LevirCCActionDataset(d)

def test_empty_masks_are_no_change_not_damage(tmp_path, pairs):
    same = [{**p, 'image2': p['image'], 'mask': np.zeros((64, 64), np.uint8)} for p in pairs[:6]] + pairs[6:]
    root = save_levir_folder({'train': same}, tmp_path/'m', masks=True, boxes=False)
    ds = LevirCCActionDataset(json_source(root), image_size=64)
    assert len(ds) == 4 and ds.skipped == {NO_CHANGE: 6}     # 60% are no-change pairs, and that is not an error

def test_bad_folders_are_one_clear_error(tmp_path):
    (tmp_path/'x.txt').write_text('x'); (tmp_path/'empty').mkdir()
    with pytest.raises(ActionDataError, match='no such data folder'): detect_format(tmp_path/'nope')
    with pytest.raises(ActionDataError, match='is a file'): detect_format(tmp_path/'x.txt')
    with pytest.raises(ActionDataError, match=r'neither an Arrow dataset .* it holds: nothing'): detect_format(tmp_path/'empty')
    with pytest.raises(ActionDataError, match="action_settings.data.path is not set"): load_action_datasets(None)
    (tmp_path/'empty'/'dataset_dict.json').write_text('{not json')
    with pytest.raises(ActionDataError, match='not a readable Arrow dataset'): load_action_datasets(tmp_path/'empty')
