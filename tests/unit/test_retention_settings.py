"""The archiver's settings: read from the environment once, refusing what cannot work."""

from __future__ import annotations

import pytest

from services.archiver.faults import CRASH_POINTS, crash_after, no_crash
from services.archiver.settings import ArchiverSettings


def test_the_defaults_sweep_every_five_minutes_into_a_local_directory() -> None:
    settings = ArchiverSettings.from_env({})
    assert (settings.sweep_interval_s, settings.crash_after) == (300.0, "")
    assert settings.cold_storage.url == "var/cold"


def test_settings_name_the_cold_storage_the_interval_and_a_crash_point() -> None:
    settings = ArchiverSettings.from_env(
        {
            "COLD_STORAGE_URL": "s3://cold/archives",
            "COLD_STORAGE_S3_ENDPOINT": "http://minio:9000",
            "ARCHIVER_SWEEP_INTERVAL_S": "2.5",
            "ARCHIVER_CRASH_AFTER": "verified",
        }
    )
    assert settings.cold_storage.url == "s3://cold/archives"
    assert settings.cold_storage.s3_endpoint == "http://minio:9000"
    assert (settings.sweep_interval_s, settings.crash_after) == (2.5, "verified")


def test_an_unknown_crash_point_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(ValueError, match="use one of expired, archived, verified"):
        ArchiverSettings.from_env({"ARCHIVER_CRASH_AFTER": "halfway"})


def test_a_sweep_interval_that_is_not_positive_is_refused() -> None:
    with pytest.raises(ValueError, match="must be positive"):
        ArchiverSettings.from_env({"ARCHIVER_SWEEP_INTERVAL_S": "0"})


def test_without_a_crash_point_every_step_continues() -> None:
    assert crash_after("") is no_crash
    hook = crash_after("deleted")
    for step in CRASH_POINTS[:-1]:
        hook(step)  # only "deleted" would end the process
