"""Thin Dagster assets: read inputs, call the domain code, write, report metadata."""

import warnings

from dagster import BetaWarning

# The beta parameters the assets use on purpose, accepted here so that their notices do not repeat in
# every process that loads the code location (CLI, code server, each run); any other beta notice still shows.
# - `backfill_policy`: a range of hours is one run (BackfillPolicy.single_run()); no stable API does that.
warnings.filterwarnings("ignore", message=r"Parameter `backfill_policy` of function `asset`", category=BetaWarning)
# - `allow_nonexistent_upstream_partitions`: windows of past hours reach before the first partition
#   (partitions.past_hours); without it, the first hours of the set could not be materialized.
warnings.filterwarnings(
    "ignore", message=r"Parameter `allow_nonexistent_upstream_partitions`", category=BetaWarning
)
