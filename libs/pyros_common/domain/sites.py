"""Observatory sites: where a telescope stands and how dark its night must be."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Site:
    """A telescope site (geodetic WGS84 coordinates; longitude positive east)."""

    name: str
    lat_deg: float
    lon_deg: float
    height_m: float
    night_sun_altitude_deg: float = -18.0

    def __post_init__(self) -> None:
        if not -90.0 <= self.lat_deg <= 90.0:
            raise ValueError(f"site {self.name}: lat_deg {self.lat_deg} outside [-90, 90]")
        if not -180.0 <= self.lon_deg <= 360.0:
            raise ValueError(f"site {self.name}: lon_deg {self.lon_deg} outside [-180, 360]")
        if not -90.0 < self.night_sun_altitude_deg < 0.0:
            raise ValueError(f"site {self.name}: night_sun_altitude_deg must be in (-90, 0)")


SITES: dict[str, Site] = {
    # SVOM Ground Follow-up Telescope (Colibrí), OAN San Pedro Mártir, Baja California.
    "gft-spm": Site("gft-spm", lat_deg=31.0439, lon_deg=-115.4637, height_m=2800.0),
    # Observatoire de Haute-Provence: a northern site with short summer nights.
    "ohp": Site("ohp", lat_deg=43.9308, lon_deg=5.7133, height_m=650.0),
}


def get_site(name: str) -> Site:
    """The site called ``name``; KeyError listing the known sites otherwise."""
    try:
        return SITES[name]
    except KeyError:
        raise KeyError(f"unknown site {name!r}; known sites: {sorted(SITES)}") from None
