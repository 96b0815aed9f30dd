"Action model: frozen parts stay frozen while LoRA, projector and head learn; 4-bit only where it can run; every size from the configs."
import logging
import pytest
import torch

from vlm_grpo_nb.config import Config, load_config
from vlm_grpo_nb.action_model import (VLMActionAgent, use_4bit, load_vision_tower, load_language_model, meta_agent, _SAID)
from vlm_grpo_nb.action_trainer import ActionTrainer
from vlm_grpo_nb.action_data import load_action_datasets
from vlm_grpo_nb.tiny import set_offline, is_offline, ModelNotAvailable

def _trainer(**kw):
    cfg = load_config(preset='tiny', **{'action_settings.wandb.enabled': False, **kw})
    d = cfg.action_settings.data
    data = load_action_datasets(d.path, image_size=d.image_size, shapes=dict(d.shapes))
    torch.manual_seed(0)
    return ActionTrainer(VLMActionAgent.from_config(cfg), data, cfg)

def _parts(agent):
    "name -> (part, tensor copy) for every parameter."
    def part(n):
        if n.startswith('vision.'): return 'vision'
        if n.startswith('lm.'): return 'lora' if 'lora_' in n else 'lm'
        return n.split('.')[0]
    return {n: (part(n), p.detach().clone()) for n, p in agent.named_parameters()}

@pytest.mark.parametrize('kw', [{}, {'action_settings.model.fusion': 'concat', 'action_settings.model.vision_features': 'pooled',
                                     'action_settings.model.text_pooling': 'first'}])
def test_frozen_parameters_do_not_change_and_trainable_ones_do(kw):
    t = _trainer(**{f'action_settings.model.{k}' if not k.startswith('action') else k: v for k, v in kw.items()})
    before = _parts(t.agent)
    for _ in range(4): t.train_step()
    # a fifth step's gradients: every trainable parameter gets one, no frozen parameter does
    t.agent.train(); t.agent.zero_grad(set_to_none=True)
    t.agent(**t._batch('train', t.batches[4]))['loss'].backward()
    after = dict(t.agent.named_parameters())
    parts = {p for p, _ in before.values()}
    assert {'vision', 'lm', 'lora', 'projector', 'head'} <= parts and (('fusion' in parts) == bool(kw))
    for n, (part, old) in before.items():
        p = after[n]
        if part in ('vision', 'lm'):
            assert not p.requires_grad and p.grad is None and torch.equal(p.detach(), old), n
        else:
            assert p.requires_grad and not torch.equal(p.detach(), old), n
            assert p.grad is not None and p.grad.abs().sum() > 0, n
    assert t.agent.vision.training is False   # the frozen tower stays in eval mode

def test_4bit_needs_cuda_and_bitsandbytes(caplog):
    if torch.cuda.is_available(): pytest.skip('this machine has CUDA')
    with pytest.raises(ValueError, match=r"quantization='4bit' needs CUDA and bitsandbytes, but the device is cpu, not a CUDA GPU; set it to 'auto' or 'none'"):
        use_4bit('4bit', torch.device('cpu'))
    with pytest.raises(ValueError, match="quantization='4bit' needs CUDA"):
        VLMActionAgent.from_config(load_config(preset='tiny', **{'action_settings.model.quantization': '4bit'}))
    _SAID.discard('auto-4bit')
    with caplog.at_level(logging.INFO, logger='vlm_grpo_nb'):
        assert use_4bit('auto', torch.device('cpu')) is False and use_4bit('auto', torch.device('cpu')) is False
    assert caplog.text.count('the language model loads without 4-bit quantisation') == 1   # said once
    lm, _ = load_language_model('tiny', quantization='auto')
    assert next(lm.parameters()).dtype == torch.float32

@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_4bit_on_cuda():
    pytest.importorskip('bitsandbytes')
    cfg = load_config(preset='tiny', **{'action_settings.model.quantization': '4bit', 'action_settings.device': 'cuda'})
    agent = VLMActionAgent.from_config(cfg, torch.device('cuda'))
    assert agent.device_report()['language model 4-bit']
    s = agent.param_summary()
    assert s['parts']['language model'][0] == 139_840    # packed 4-bit weights are counted as the weights they hold

def test_vision_tower_from_open_clip_and_transformers(tmp_path):
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection
    CLIPVisionModelWithProjection(CLIPVisionConfig(hidden_size=32, intermediate_size=37, num_hidden_layers=1, num_attention_heads=2,
                                                   image_size=32, patch_size=8, projection_dim=16)).save_pretrained(tmp_path/'hf')
    hf, oc = load_vision_tower(str(tmp_path/'hf')), load_vision_tower('tiny')
    assert (hf.kind, hf.grid, hf.width, hf.embed_dim) == ('transformers', (4, 4), 32, 16)
    assert (oc.kind, oc.grid, oc.width, oc.embed_dim) == ('open_clip', (4, 4), 64, 32)
    # an agent on the transformers tower: the projector's sizes come from it
    ms = load_config(preset='tiny').action_settings.model
    lm, tok = load_language_model('tiny')
    from vlm_grpo_nb.action_model import add_action_lora
    agent = VLMActionAgent(hf, add_action_lora(lm, ms), tok, ms)
    assert agent.projector.per_patch.in_features == 64 and agent.projector.grid.in_features == 16 * ms.patch_dim
    out = agent(['a red square appeared in the centre'], torch.randn(1, 3, 32, 32), torch.randn(1, 3, 32, 32))
    assert out['action_pred'].shape == (1, 3)

def test_hub_ids_fail_fast_offline_naming_the_action_keys():
    was = is_offline(); set_offline(True)
    try:
        with pytest.raises(ModelNotAvailable, match=r"vision model 'openai/clip-vit-base-patch32' is not in the local Hugging Face cache .*action_settings.model.vision_model=tiny"):
            load_vision_tower('openai/clip-vit-base-patch32')
        with pytest.raises(ModelNotAvailable, match=r"language model 'Qwen/Qwen2.5-0.5B' is not in the local .*action_settings.model.language_model=tiny"):
            load_language_model('Qwen/Qwen2.5-0.5B')
    finally: set_offline(was)

def test_real_size_summary_from_configs():
    s = meta_agent(load_config().action_settings.model).param_summary()
    assert s['parts']['vision tower'] == (87_849_216, 0)             # ViT-B/32 vision tower with its projection
    assert s['parts']['language model'] == (494_032_768, 0)          # Qwen2.5-0.5B without the (tied) LM head
    assert s['parts']['LoRA'] == (540_672, 540_672)
    assert s['trainable'] == 2_258_595 and abs(s['share'] - 0.003867) < 1e-5

def test_bad_model_settings_are_clear_errors():
    with pytest.raises(ValueError, match=r"action_settings.model.head_hidden must be a list of positive integers, got \[256, 0\]"):
        VLMActionAgent.from_config(load_config(preset='tiny', **{'action_settings.model.head_hidden': [256, 0]}))
    with pytest.raises(ValueError, match=r"lora_target_modules=\['c_attn'\] does not fit the language model"):
        VLMActionAgent.from_config(load_config(preset='tiny', **{'action_settings.model.lora_target_modules': ['c_attn']}))
