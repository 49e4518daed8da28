"""analyzer settings (prefix ``PYROS_ANALYZER_``): catalogue, thresholds, our VOEvent identity."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class AnalyzerSettings(BaseSettings):
    """Knobs of the analyzer, each read from ``PYROS_ANALYZER_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="PYROS_ANALYZER_", extra="ignore")

    catalogue: Literal["tycho2", "simulated-sky"] = Field(
        "tycho2",
        description="Reference stars: 'tycho2' (astrometry.net's Tycho-2 index files through query-starkd; "
        "only ~1 star per 13' field), or 'simulated-sky' (the simulators' sky: Tycho-2 and its seeded faint "
        "field, the deep catalogue of the simulated world; set by pyros night and pyros up --simulate).",
    )
    index_dir: str = Field("/usr/share/astrometry", description="Folder of the index-tycho2-*.fits files.")
    astrometry_net: bool = Field(
        True,
        description="Try astrometry.net's solve-field first when the field is wide enough for the index files.",
    )
    detect_sigma: float = Field(3.0, gt=0, description="Detection threshold above the background [sigma].")
    max_offset_arcmin: float = Field(8.0, gt=0, description="Largest pointing error searched [arcmin].")
    max_rotation_deg: float = Field(1.0, ge=0, description="Largest rotation error searched [deg].")
    min_matches: int = Field(3, ge=2, description="Source-star pairs needed for a WCS.")
    saturation_adu: float = Field(
        60000.0, gt=0, description="Raw level above which a star is saturated [ADU]."
    )
    candidate_min_snr: float = Field(8.0, gt=0, description="Signal-to-noise of a candidate detection.")
    candidate_threshold: float = Field(
        0.65, ge=0, le=1, description="Confidence at which a candidate is reported."
    )
    link_arcsec: float = Field(
        2.0, gt=0, description="Detections this close in two images are one source [arcsec]."
    )
    voevent_stream: str = Field(
        "ivo://pyros/gft", description="Our IVORN stream (packets are <stream>#<id>)."
    )
    voevent_test_role: bool = Field(False, description="Send role='test' instead of 'observation'.")
    vtp_host: str = Field(
        "", description="VTP broker (Comet) receiver host to submit our VOEvents to; empty: none."
    )
    vtp_port: int = Field(8098, gt=0, description="Its receiver port.")
    vtp_timeout_s: float = Field(10.0, gt=0, description="How long a submission may take [s].")
    master_min_frames: int = Field(3, ge=1, description="Frames of one kind before a master is built.")
    alerts_api_url: str = Field(
        "", description="REST API (…/api/v1) that FSC strategy instructions are forwarded to; empty: none."
    )
    alerts_api_token: SecretStr = Field(SecretStr(""), description="Bearer token (admin) for that API.")
    fsc_poll_s: float = Field(30.0, gt=0, description="How often EXTERNAL_ENTITIES/FSC/FROM is read [s].")
