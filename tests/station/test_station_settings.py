"""Typed station settings: every key is known, typed and used; an unknown key or a wrong type
is an error that names the settings file and the line; backends are chosen by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from printsrv.config import load_settings
from printsrv.errors import ConfigError
from printsrv.station.devices import (
    ENCODER_BACKENDS,
    PRINTER_BACKENDS,
    StationConfig,
    build_encoder,
    build_printer,
    parse_station,
)


def _settings(tmp_path: Path, station: str) -> Path:
    path = tmp_path / "printsrv.toml"
    path.write_text(
        f'instance_dir = "{tmp_path / "instance"}"\n'
        "\n"
        "[stations.other]\n"
        'office = "35.26.01"\n'
        "\n"
        "[stations.loket1]\n" + station
    )
    return path


def test_an_unknown_key_names_the_file_and_line(tmp_path: Path) -> None:
    path = _settings(tmp_path, 'office = "35.26.01"\nprofile = "virtual-ipp-card"\n'
                               'prnter = "directory"\n')
    settings = load_settings(path)
    with pytest.raises(ConfigError) as err:
        StationConfig.from_settings(settings, "loket1")
    assert str(err.value).startswith(f"{path}:9: station 'loket1': unknown key 'prnter'")
    assert "printer" in str(err.value)  # the known keys are listed


def test_a_wrong_type_or_backend_names_the_line(tmp_path: Path) -> None:
    path = _settings(tmp_path, 'office = "35.26.01"\nmax_failures = "many"\n')
    with pytest.raises(ConfigError, match=rf"^{path}:8: station 'loket1': max_failures"):
        StationConfig.from_settings(load_settings(path), "loket1")
    path = _settings(tmp_path, 'office = "35.26.01"\nencoder = "magnetic"\n')
    with pytest.raises(ConfigError, match=r":8: station 'loket1': encoder = 'magnetic'"):
        StationConfig.from_settings(load_settings(path), "loket1")
    path = _settings(tmp_path, 'profile = "virtual-ipp-card"\n')
    with pytest.raises(ConfigError, match="'office' is required"):
        StationConfig.from_settings(load_settings(path), "loket1")


def test_every_key_is_typed_and_reaches_the_devices(tmp_path: Path) -> None:
    path = _settings(tmp_path, 'office = "35.26.01"\nprinter = "directory"\n'
                               f'directory = "{tmp_path / "cards"}"\nprint_seconds = 1\n'
                               'encoder = "fake"\nfake_chip_seconds = 0.25\nmax_failures = 5\n'
                               'recovery = "operator"\n')
    settings = load_settings(path)
    config = StationConfig.from_settings(settings, "loket1")
    assert (config.printer, config.encoder, config.recovery) == ("directory", "fake", "operator")
    assert config.print_seconds == 1.0 and isinstance(config.print_seconds, float)
    assert config.max_failures == 5
    printer = build_printer(settings, config)
    assert type(printer).__name__ == "DirectoryPrinter" and (tmp_path / "cards").is_dir()
    encoder = build_encoder(settings, config)
    assert type(encoder).__name__ == "FakeEncoder" and encoder.seconds == 0.25  # type: ignore[attr-defined]
    assert set(PRINTER_BACKENDS) == {"cups", "directory"}
    assert set(ENCODER_BACKENDS) == {"pcsc", "virtual", "fake"}


def test_settings_without_a_file_still_check_keys() -> None:
    with pytest.raises(ConfigError, match="unknown key 'colour'"):
        parse_station("x", {"office": "35.26.01", "colour": "red"})
    assert parse_station("x", {"office": "35.26.01", "cups_port": "631"}).cups_port == 631


def test_without_a_reader_the_profile_names_the_encoder(monkeypatch: pytest.MonkeyPatch) -> None:
    import chip.pcsc
    from printsrv.station.devices import encoder_reader

    readers = ["OMNIKEY 5022 00 00", "Evolis Primacy 2 Contactless 01 00"]
    monkeypatch.setattr(chip.pcsc, "list_readers", lambda: readers)
    config = parse_station("loket1", {"office": "35.26.01", "profile": "evolis-primacy-2"})
    assert encoder_reader(config) == "Evolis Primacy 2 Contactless 01 00"
    named = parse_station("loket1", {"office": "35.26.01", "profile": "evolis-primacy-2",
                                     "reader": "OMNIKEY 5022 00 00"})
    assert encoder_reader(named) == "OMNIKEY 5022 00 00"
    magicard = parse_station("loket1", {"office": "35.26.01", "profile": "magicard-enduro"})
    with pytest.raises(ConfigError, match="0 readers match the profile's reader_pattern"):
        encoder_reader(magicard)
