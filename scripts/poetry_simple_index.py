"""Run Poetry with its PyPI repository reading release data from the simple API only.

Some package proxies serve PyPI's simple API (PEP 691 JSON) and the files, with HTTP
range requests, but answer 404 for the per-version JSON API that PyPiRepository uses for
release info and installation links; plain `poetry lock` then fails with "Package X (v)
not found". This wrapper makes PyPiRepository take
both from the simple page, exactly as Poetry does for any other index: file hashes come
from the simple page, dependencies/summary/requires-python from each wheel's METADATA
(read lazily with range requests; sdists are downloaded and inspected). The repository
stays Poetry's PyPI source, so the lock file has no [package.source] entries.

Usage (Poetry installed in the running interpreter): python scripts/poetry_simple_index.py lock
"""

from __future__ import annotations

import os
import sys

from poetry.repositories.legacy_repository import LegacyRepository
from poetry.repositories.pypi_repository import PyPiRepository

# Same logic as LegacyRepository: only get_page()/_links_to_data(), i.e. the simple API.
PyPiRepository._get_release_info = LegacyRepository._get_release_info
PyPiRepository.find_links_for_package = LegacyRepository.find_links_for_package

# Keep release info derived this way out of the user's normal Poetry cache.
os.environ.setdefault("POETRY_CACHE_DIR", os.path.expanduser("~/.cache/pypoetry-simple-index"))

if __name__ == "__main__":
    from poetry.console.application import main

    sys.argv[0] = "poetry"
    sys.exit(main())
