"The config rejects bad values with the file and the dotted key in the message."
import pytest
from vlm_grpo_nb.config import load_config, ConfigError, parse_set

@pytest.mark.parametrize('user, key, says', [
    ({'token_settings': {'max_sequence_length': 100}}, 'token_settings.max_sequence_length', 'must equal max_prompt_length + max_new_tokens'),
    ({'token_settings': {'max_prompt_length': 90, 'max_sequence_length': 115}}, 'token_settings.max_prompt_length', '<= 77'),
    ({'token_settings': {'max_prompt_length': 90}}, 'token_settings.max_prompt_length', '<= 77'),
    ({'training_settings': {'group_sise': 4}}, 'training_settings.group_sise', 'is not a known setting'),
    ({'not_a_section': {}}, 'not_a_section', 'is not a known setting'),
    ({'training_settings': {'learning_rate': 'fast'}}, 'training_settings.learning_rate', 'must be a number'),
    ({'training_settings': {'group_size': 4.5}}, 'training_settings.group_size', 'must be an integer'),
    ({'training_settings': {'group_size': True}}, 'training_settings.group_size', 'must be an integer'),
    ({'generation_settings': {'vlm_generation': {'do_sample': 'yes'}}}, 'generation_settings.vlm_generation.do_sample', 'must be a boolean'),
    ({'training_settings': 3}, 'training_settings', 'must be a section'),
    ({'device_settings': {'reward': 'cuda:x'}}, 'device_settings.reward', "allowed: 'auto', 'cpu', 'mps', 'cuda' or 'cuda:N'"),
])
def test_bad_values_name_file_and_key(tmp_cfg, user, key, says):
    path = tmp_cfg(user)
    with pytest.raises(ConfigError) as e: load_config(path)
    msg = str(e.value)
    assert msg.startswith(f'{path}: `{key}`'), msg
    assert says in msg, msg

def test_valid_user_file_and_overrides_merge(tmp_cfg):
    path = tmp_cfg({'_comment': 'comments are allowed', 'token_settings': {'max_new_tokens': 30, 'max_sequence_length': 107}})
    cfg = load_config(path, **{'training_settings.learning_rate': 2e-6}, preset='tiny')
    assert cfg.token_settings.max_sequence_length == 107
    assert cfg.training_settings.learning_rate == 2e-6        # overrides beat the preset
    assert cfg.model_settings.vlm_model == 'tiny'
    assert cfg.generation_settings.vlm_generation.temperature == 0.8  # untouched defaults survive

def test_not_json_and_missing_file(tmp_cfg, tmp_path):
    with pytest.raises(ConfigError, match=r'not valid JSON \(line 3'): load_config(tmp_cfg('{\n "a": 1,\n }'))
    with pytest.raises(ConfigError, match='config file not found'): load_config(tmp_path/'nope.json')
    with pytest.raises(ConfigError, match="preset 'huge' is unknown"): load_config(preset='huge')

def test_override_errors_and_parse_set():
    with pytest.raises(ConfigError, match='overrides: `training_settings.kl_coef` must be a number'):
        load_config(**{'training_settings.kl_coef': 'high'})
    assert parse_set('generation_settings.image_generation.height=512') == ('generation_settings.image_generation.height', 512)
    assert parse_set('model_settings.aesthetic_head=null') == ('model_settings.aesthetic_head', None)
    with pytest.raises(ConfigError, match='must look like section.key=value'): parse_set('learning_rate')

def test_config_roundtrip(tmp_path):
    cfg = load_config(preset='tiny')
    again = load_config(cfg.save(tmp_path/'saved.json'))
    assert again == cfg
