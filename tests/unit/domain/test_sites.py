"""Site files: telescopes of a node, and clear errors for bad files."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyros_common.domain.sky.sites import SITES, Telescope, get_site, load_site

ROOT = Path(__file__).resolve().parents[3]

GOOD = """
[site]
id = "twin"
lat_deg = 31.0
lon_deg = -115.5
height_m = 2800

[[telescopes]]
id = "a"

[[telescopes]]
id = "b"
slew_rate_deg_s = 1.5
settle_s = 20
"""


def test_example_site_file_lists_three_telescopes() -> None:
    site = get_site(str(ROOT / "examples" / "sites" / "spm-node.toml"))
    assert site.name == "spm-node"
    assert [t.id for t in site.telescopes] == ["gft", "spm-b", "spm-c"]
    assert site.lat_deg == SITES["gft-spm"].lat_deg
    assert [t.id for t in site.node(2)] == ["gft", "spm-b"]


def test_site_file_defaults_and_values(tmp_path: Path) -> None:
    f = tmp_path / "twin.toml"
    f.write_text(GOOD)
    site = load_site(f)
    assert site.telescopes == (Telescope("a"), Telescope("b", slew_rate_deg_s=1.5, settle_s=20.0))
    assert site.night_sun_altitude_deg == -18.0
    # the geography alone keys the ephemeris caches: same place, same hash
    same_place = type(site)("twin", 31.0, -115.5, 2800.0)
    assert site == same_place and hash(site) == hash(same_place)


def test_a_node_larger_than_the_site_is_refused_with_what_is_listed() -> None:
    with pytest.raises(ValueError, match=r"lists 1 telescope\(s\) \(gft\); 2 asked"):
        SITES["gft-spm"].node(2)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[site]\nid='x'\nlat_deg=1\nlon_deg=2\nheight_m=3\n", "at least one"),
        ("[[telescopes]]\nid='a'\n", "missing the \\[site\\] table"),
        (GOOD.replace("lat_deg = 31.0", "lat_deg = 95.0"), "lat_deg 95.0 outside"),
        (GOOD.replace("lat_deg = 31.0", "lat_deg = 'north'"), "lat_deg: expected a number"),
        (GOOD.replace("height_m = 2800", ""), "missing 'height_m'"),
        (GOOD.replace('id = "b"', 'id = "a"'), "telescope ids repeat"),
        (GOOD.replace("settle_s = 20", "settle_s = -1"), "settle_s must be >= 0"),
        (GOOD.replace("settle_s = 20", "sette_s = 1"), "unknown keys \\['sette_s'\\]"),
        (GOOD + "overheads = 'nope'\n", "unknown profile 'nope'"),
        ("[site\n", "not valid TOML"),
        (GOOD.replace("height_m = 2800", "height_m = 2800\nhorizon = [[400, 10]]"), "azimuth 400 outside"),
        (GOOD.replace("height_m = 2800", "height_m = 2800\nhorizon = [[90, -5]]"), "altitude -5 outside"),
        (GOOD.replace("height_m = 2800", "height_m = 2800\nhorizon = [[90]]"), "expected \\[azimuth_deg"),
        (GOOD.replace("height_m = 2800", "height_m = 2800\nhorizon = [[90, 'up']]"), "two numbers"),
        (GOOD.replace("height_m = 2800", "height_m = 2800\nhorizon = 15"), "horizon: expected a list"),
    ],
)
def test_bad_site_files_say_what_is_wrong(tmp_path: Path, text: str, message: str) -> None:
    f = tmp_path / "bad.toml"
    f.write_text(text)
    with pytest.raises(ValueError, match=message) as err:
        load_site(f)
    assert str(f) in str(err.value)


def test_unknown_site_names_the_choices() -> None:
    with pytest.raises(KeyError, match="built-in sites"):
        get_site("atlantis")
    with pytest.raises(KeyError, match="cannot read site file"):
        get_site("/nonexistent/site.toml")


def test_site_horizon_is_optional_and_sorted_by_azimuth(tmp_path: Path) -> None:
    f = tmp_path / "twin.toml"
    f.write_text(
        GOOD.replace("height_m = 2800", "height_m = 2800\nhorizon = [[270, 20], [0, 15], [90, 25.5]]")
    )
    site = load_site(f)
    assert site.horizon == ((0.0, 15.0), (90.0, 25.5), (270.0, 20.0))
    assert SITES["gft-spm"].horizon == ()
    # not part of the geography: the ephemeris caches are shared
    assert site == type(site)("twin", 31.0, -115.5, 2800.0)


def test_a_site_file_is_read_once_and_again_when_it_changes(tmp_path: Path) -> None:
    import os

    f = tmp_path / "twin.toml"
    f.write_text(GOOD)
    first = get_site(str(f))
    assert get_site(str(f)) is first  # no second parse of an unchanged file
    f.write_text(GOOD.replace('id = "twin"', 'id = "twin2"'))
    os.utime(f, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns + 1_000_000))
    assert get_site(str(f)).name == "twin2"
