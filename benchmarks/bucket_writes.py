"""Writing a backfill's forecast objects to GCS: one object after another against `Bucket.write_many`, under latency.

The GCS emulator alone cannot answer whether writing several objects at a time helps: it answers on loopback at
once, one request after another. Real GCS answers each upload after a round trip, and concurrency hides round
trips. So the emulator (in memory) runs behind a loopback proxy that holds every request for a fixed delay before
answering (energy_assets_tests.gcs_emulator.LoopbackProxy), both in a process of their own as GCS is elsewhere,
and `GCSBucket` reaches them through STORAGE_EMULATOR_HOST, gcsfs and all, as a deployment does.

The delays: 30 ms, a small upload from a machine in the bucket's region; 80 ms, a typical one. Google's Cloud
Performance Atlas ("Optimizing your Cloud Storage performance", 2018) notes that the fixed cost of each upload
transaction dominates bulk uploads of small objects and that gsutil -m uploads in parallel for that reason; the
public measurements of GCS from clients outside a bucket's region run from 35-75 ms for a metadata request to
0.2-0.45 s for a 100 kB upload (gist markvincze/6b652e5c2052a3fd9932b8df75d6cafe), so 80 ms is, if anything, kind
to the one-at-a-time writes. A round with no delay shows the emulator's own cost.

Each round writes `--objects` forecast objects (76 series x 24 horizons with 80 % and 95 % bounds, 93.7 kB each,
like the 92.6 kB a real run writes) into a new bucket of a freshly started emulator (the emulator rewrites its
whole metadata on every upload, so it slows as it fills); the ways alternate within each round: one
`write_bytes` after another (what `write_many` did before), `write_many` at each `--in-flight`, and gcsfs's own
batched `pipe({...})`. Every way's objects are listed back and counted. Prints the median seconds of each way, the
ratio to one-at-a-time, and the most requests the proxy saw in flight.
Usage: python benchmarks/bucket_writes.py [--objects 240] [--latency-ms 0 30 80] [--rounds 3] [--in-flight 8 16 32]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bucket_read import forecast_object  # noqa: E402  (the sibling benchmark)

from energy_assets.schema import de35_series  # noqa: E402
from energy_assets.settings import STORAGE_EMULATOR_HOST  # noqa: E402
from energy_assets.storage.buckets import GCSBucket  # noqa: E402
from energy_assets.storage.objects import partition_object_key  # noqa: E402
from energy_assets.timeline import HOUR, hour_key  # noqa: E402

FIRST_ISSUE = pd.Timestamp("2023-01-01 00:00", tz="UTC")
PROJECT = "energy-assets-benchmark"


def serve(latency_seconds: float, commands: Connection) -> None:
    """The far side, in its own process: an in-memory emulator behind a proxy that delays every request. Answers
    "fresh" with the proxy's address in front of a new, empty emulator, "most" with the most requests it held at
    once since the last "fresh"; stops on "stop"."""
    from energy_assets_tests.gcs_emulator import LoopbackProxy, start_emulator, start_proxy

    emulator = proxy = None
    while (command := commands.recv()) != "stop":
        if command == "fresh":
            if emulator is not None:
                emulator.stop()
            emulator, url = start_emulator()
            if proxy is None:
                proxy = start_proxy(LoopbackProxy, url)
            proxy.upstream = ("127.0.0.1", int(url.rsplit(":", 1)[1]))
            proxy.traffic.reset(delay=lambda: latency_seconds)
            commands.send(proxy.url)
        elif command == "most":
            commands.send(proxy.traffic.most_in_flight)
    if emulator is not None:
        emulator.stop()
    if proxy is not None:
        proxy.shutdown()
        proxy.server_close()


def write_ways(in_flight: list[int]) -> dict[str, Callable[[GCSBucket, list[tuple[str, bytes]]], object]]:
    def one_at_a_time(bucket: GCSBucket, objects: list[tuple[str, bytes]]) -> object:
        return [bucket.write_bytes(key, data) for key, data in objects]

    def write_many(count: int) -> Callable[[GCSBucket, list[tuple[str, bytes]]], object]:
        def write(bucket: GCSBucket, objects: list[tuple[str, bytes]]) -> object:
            bucket.writes_in_flight = count
            return bucket.write_many(objects)

        return write

    def gcsfs_pipe(bucket: GCSBucket, objects: list[tuple[str, bytes]]) -> object:
        return bucket.filesystem.pipe({f"{bucket.root}/{key}": data for key, data in objects}, batch_size=GCSBucket.writes_in_flight)

    ways = {"one at a time": one_at_a_time}
    ways.update({f"write_many, {count} in flight": write_many(count) for count in in_flight})
    ways[f"gcsfs pipe(dict), batch {GCSBucket.writes_in_flight}"] = gcsfs_pipe
    return ways


def run(latency_ms: float, objects: list[tuple[str, bytes]], rounds: int, in_flight: list[int]) -> None:
    from google.cloud import storage

    commands, far_end = multiprocessing.get_context("spawn").Pipe()
    server = multiprocessing.get_context("spawn").Process(target=serve, args=(latency_ms / 1000, far_end), daemon=True)
    server.start()
    ways = write_ways(in_flight)
    seconds: dict[str, list[float]] = {name: [] for name in ways}
    most: dict[str, int] = {}
    try:
        for round_number in range(rounds + 1):  # round 0 warms up (imports, first connections) and is not counted
            for name, write in ways.items():
                commands.send("fresh")
                url = commands.recv()
                os.environ[STORAGE_EMULATOR_HOST] = url
                bucket_name = f"bench-{uuid.uuid4().hex[:12]}"
                storage.Client(project=PROJECT).create_bucket(bucket_name)
                bucket = GCSBucket(bucket_name=bucket_name, project=PROJECT)
                bucket.list_keys("energy_assets/")  # the file system and its session exist before the clock starts
                start = time.perf_counter()
                write(bucket, objects)
                elapsed = time.perf_counter() - start
                stored = len(bucket.list_keys("energy_assets/"))
                if stored != len(objects):
                    raise RuntimeError(f"{name}: {stored} objects stored of {len(objects)}")
                commands.send("most")
                most[name] = max(most.get(name, 0), commands.recv())
                if round_number:
                    seconds[name].append(elapsed)
    finally:
        commands.send("stop")
        server.join(timeout=30)
    baseline = statistics.median(seconds["one at a time"])
    print(f"\n{latency_ms:g} ms per request, {len(objects)} objects, median of {rounds} rounds (load {os.getloadavg()[0]:.1f}):")
    for name, times in seconds.items():
        median = statistics.median(times)
        print(
            f"  {name:<34} {median:7.2f} s  {median / baseline:5.2f}x of one at a time  "
            f"({len(objects) / median:6.1f} objects/s; at most {most[name]} requests in flight; "
            f"rounds {', '.join(f'{t:.2f}' for t in times)})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=240)
    parser.add_argument("--latency-ms", type=float, nargs="+", default=[0, 30, 80])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--in-flight", type=int, nargs="+", default=[8, 16, 32])
    arguments = parser.parse_args()
    series, rng = de35_series(), np.random.default_rng(0)
    objects = [
        (partition_object_key("energy_assets", ["energy_forecasts"], hour_key(FIRST_ISSUE + n * HOUR)), forecast_object(FIRST_ISSUE + n * HOUR, series, rng))
        for n in range(arguments.objects)
    ]
    print(f"{len(objects)} objects of {np.mean([len(data) for _, data in objects]) / 1000:.1f} kB; ways alternate within each round")
    for latency_ms in arguments.latency_ms:
        run(latency_ms, objects, arguments.rounds, arguments.in_flight)


if __name__ == "__main__":
    main()
