from pathlib import Path

import pytest

from registry import geo


@pytest.fixture
def fresh_table():
    geo._centroids.cache_clear()
    yield
    geo._centroids.cache_clear()


def test_zip_centroids_are_built_once_into_a_small_file_and_read_back(
    settings, tmp_path: Path, fresh_table
):
    settings.VAR_DIR = tmp_path
    assert geo.zip_centroid("68102") == pytest.approx((41.259, -95.9409))
    assert geo.zip_centroid("12") is None  # not a ZIP
    [cached] = (tmp_path / "cache").glob("zip-centroids-*.json")
    assert cached.stat().st_size < 3_000_000
    # A later process reads the file instead of listing the package's ZIPs again.
    cached.write_text('{"68102": [1.5, 2.5]}')
    geo._centroids.cache_clear()
    assert geo.zip_centroid("68102-1234") == (1.5, 2.5)


def test_a_damaged_cache_file_is_rebuilt(settings, tmp_path: Path, fresh_table):
    settings.VAR_DIR = tmp_path
    (tmp_path / "cache").mkdir()
    damaged = tmp_path / "cache" / f"zip-centroids-{geo.zipcodes.__version__}.json"
    damaged.write_text("{not json")
    assert geo.zip_centroid("10001") is not None
    assert damaged.read_text().startswith("{")
    assert "10001" in damaged.read_text()
