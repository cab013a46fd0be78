"""One typed decoding for config files, --set strings and environment variables, with one-line errors."""

from pathlib import Path

import pytest

from service.settings import Settings
from translate.config import run_config_from_dict
from translate.errors import ConfigError
from translate.settings import decode_settings, merge, read_config_file


def test_strings_convert_as_the_setting_asks():
    cfg = run_config_from_dict({"train": {"lr": "3e-3", "max_steps": "20", "amp": "false"},
                                "model": {"d_model": "64", "heads": "2"}})
    assert (cfg.train.lr, cfg.train.max_steps, cfg.train.amp) == (0.003, 20, False)
    assert cfg.model == {"d_model": 64, "heads": 2}  # stored typed, as a config file would have them
    assert run_config_from_dict({"train": {"lr": 1}}).train.lr == 1.0  # a TOML integer for a float


@pytest.mark.parametrize("raw,message", [
    ({"train": {"lr": "fast"}}, "[train] setting lr must be float, not 'fast'"),
    ({"train": {"max_steps": 2.5}}, "[train] setting max_steps must be int, not 2.5"),
    ({"train": {"max_steps": True}}, "[train] setting max_steps must be int, not True"),
    ({"train": {"lr_peak": 1}}, "unknown [train] setting(s): lr_peak (known: max_tokens, lr,"),
    ({"model": {"d_modle": 3}}, "unknown transformer model setting(s): d_modle"),
    ({"tokenizer": {"model_type": "word"}}, "[tokenizer] model_type must be unigram or bpe"),
    ({"colour": 1}, "unknown top-level setting(s): colour"),
])
def test_clear_one_line_errors(raw, message):
    with pytest.raises(ConfigError) as e:
        run_config_from_dict(raw)
    assert str(e.value).startswith(message) and "\n" not in str(e.value)


def test_environment_variables_use_the_same_decoding():
    s = Settings.from_env({"TRANSLATE_MAX_TEXTS": "8", "TRANSLATE_MODELS_DIR": "/m", "TRANSLATE_BATCH_WAIT_MS": "2.5",
                           "TRANSLATE_UNRELATED": "x"}, port=9000)
    assert (s.max_texts, s.models_dir, s.batch_wait_ms, s.port) == (8, Path("/m"), 2.5, 9000)
    with pytest.raises(ConfigError, match=r"^TRANSLATE_MAX_TEXTS must be int, not 'many'$"):
        Settings.from_env({"TRANSLATE_MAX_TEXTS": "many"})


def test_files_and_merge(tmp_path):
    (tmp_path / "a.toml").write_text('[train]\nlr = 0.5\n')
    (tmp_path / "a.yaml").write_text("train:\n  lr: 0.25\n")
    (tmp_path / "bad.toml").write_text("[train\n")
    (tmp_path / "a.txt").write_text("lr = 1\n")
    assert read_config_file(tmp_path / "a.toml") == {"train": {"lr": 0.5}}
    assert merge(read_config_file(tmp_path / "a.toml"), read_config_file(tmp_path / "a.yaml")) == {"train": {"lr": 0.25}}
    with pytest.raises(ConfigError, match="cannot parse"):
        read_config_file(tmp_path / "bad.toml")
    with pytest.raises(ConfigError, match="must end in"):
        read_config_file(tmp_path / "a.txt")
    with pytest.raises(ConfigError, match="not found"):
        read_config_file(tmp_path / "none.toml")
    with pytest.raises(ConfigError, match="unknown x setting"):
        decode_settings(Settings, {"nope": 1}, "x")


def test_service_settings_travel_through_the_environment():  # how `translate serve --processes N` hands them over
    s = Settings(models_dir=Path("/m"), processes=3, processes_dir=Path("/tmp/states"), batch_wait_ms=2.5,
                 api_keys="a,b", cors_origins="*")
    assert Settings.from_env(s.to_env()) == s
    assert "TRANSLATE_API_KEYS_FILE" not in s.to_env()  # None: left to its default
