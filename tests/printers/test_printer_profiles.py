"""Printer profiles: every shipped profile loads; loading is strict and names file, key, line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from printers.errors import ProfileError
from printers.profiles import PROFILE_DIR, available_profiles, get_profile, load_profile

REQUIRED = {
    "evolis-primacy-2",
    "magicard-enduro",
    "fargo-hdp5000",
    "zebra-zxp3",
    "virtual-ipp-card",
}


def test_required_profiles_are_shipped() -> None:
    assert set(available_profiles()) >= REQUIRED


@pytest.mark.parametrize("profile_id", available_profiles())
def test_profile_loads_and_never_scales(profile_id: str) -> None:
    profile = get_profile(profile_id)
    for duplex in (False, True):
        opts = profile.job_options(duplex)
        assert opts["print-scaling"] == "none"
        assert "fit-to-page" not in opts
        assert opts[profile.media.page_option] == profile.media.page_name
        assert opts["sides"] == ("two-sided-long-edge" if duplex else "one-sided")
    assert profile.ribbon.cards_per_roll(True) > 0
    w, h = profile.media.image_px
    assert w >= 1011 and h >= 636  # at least the ID-1 card at 300 dpi


def test_geometry_and_ribbon_facts() -> None:
    evolis = get_profile("evolis-primacy-2")
    assert evolis.media.image_px == (1016, 648)
    assert evolis.job_options()["PageSize"] == "Card"
    assert evolis.ribbon.panels_per_card(True) == 10  # YMCKO colour front + back: two sets
    zebra = get_profile("zebra-zxp3")
    assert zebra.ribbon.panels_per_card(True) == 6  # YMCKOK: one set
    fargo = get_profile("fargo-hdp5000")
    assert fargo.technology == "retransfer"
    assert fargo.media.image_px == (1035, 661)
    assert fargo.ribbon.film_per_card(True) == 2
    virtual = get_profile("virtual-ipp-card")
    assert virtual.job_options()["media"] == "53.98x85.6mm.Borderless"
    assert virtual.encoder.method == "cardsim"


def _copy(tmp_path: Path, profile_id: str = "virtual-ipp-card") -> tuple[Path, str]:
    target = tmp_path / f"{profile_id}.toml"
    text = (PROFILE_DIR / f"{profile_id}.toml").read_text()
    return target, text


def test_unknown_key_names_file_key_and_line(tmp_path: Path) -> None:
    path, text = _copy(tmp_path)
    text = text.replace("dpi = 300", "dpi = 300\nbleed_mm = 1")
    path.write_text(text)
    with pytest.raises(ProfileError) as err:
        load_profile(path)
    line = text.splitlines().index("bleed_mm = 1") + 1
    assert f"{path}:{line}" in str(err.value)
    assert "'media.bleed_mm'" in str(err.value)
    assert "unknown key" in str(err.value)


@pytest.mark.parametrize(
    ("old", "new", "key", "problem"),
    [
        ("dpi = 300", "dpi = 300.5", "media.dpi", "integer"),
        ("dpi = 300", 'dpi = "300"', "media.dpi", "integer"),
        ('orientation = "landscape"', 'orientation = "sideways"', "media.orientation", "one of"),
        ("back_rotation = 0", "back_rotation = 45", "media.back_rotation", "one of"),
        ('technology = "direct"', 'technology = "retransfer"', "ribbon.film_panels_per_side", ""),
        ('method = "cardsim"', 'method = "magic"', "encoder.method", "one of"),
        ('page_option = "media"', "", "media.page_option", "missing"),
        ('back_panels = ["K"]', 'back_panels = ["W"]', "ribbon.back_panels", "panel_set"),
        ("capacity_sets = 200", "capacity_sets = 0", "ribbon.capacity_sets", "positive"),
        ('id = "virtual-ipp-card"', 'id = "other"', "id", "file name"),
        ("[encoder]", '[cups]\noptions = { print-scaling = "fit" }\n[encoder]',
         "cups.options.print-scaling", "library"),
    ],
)  # fmt: skip
def test_invalid_values_are_refused(
    tmp_path: Path, old: str, new: str, key: str, problem: str
) -> None:
    path, text = _copy(tmp_path)
    assert old in text
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(ProfileError, match=re.escape(f"key '{key}'")) as err:
        load_profile(path)
    assert problem in str(err.value)
    assert str(path) in str(err.value)


def test_bad_toml_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "x.toml"
    bad.write_text("id = \n")
    with pytest.raises(ProfileError, match="invalid TOML"):
        load_profile(bad)
    with pytest.raises(ProfileError, match="no printer profile 'nope'"):
        get_profile("nope")


@given(key=st.from_regex(r"[a-z][a-z0-9_]{0,15}", fullmatch=True))
def test_any_unknown_top_level_key_is_named(key: str) -> None:
    known = {"id", "vendor", "model", "technology", "driver", "duplex", "reports_supplies",
             "feeder", "media", "ribbon", "cups", "encoder"}  # fmt: skip
    if key in known:
        return
    import tempfile

    text = (PROFILE_DIR / "virtual-ipp-card.toml").read_text()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "virtual-ipp-card.toml"
        path.write_text(f"{key} = 1\n{text}")
        with pytest.raises(ProfileError) as err:
            load_profile(path)
    assert f"key '{key}': unknown key" in str(err.value)
    assert f"{path}:1" in str(err.value)
