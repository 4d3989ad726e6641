"""Serve the pipeline flow as a Prefect deployment with a cron schedule.

Needs a Prefect API with a scheduler (`prefect server start`, see `make serve`); the ephemeral
server a plain flow run starts has none. Usage:
    python flows/serve.py [--cron "0 2 * * *"] [--root DIR] [--name nightly]"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flows.pipeline import augflow_pipeline  # noqa: E402

DEFAULT_CRON = "0 2 * * *"   # nightly at 02:00


# One run of the deployment at a time. A run due while another is still running is cancelled by
# Prefect (CANCEL_NEW: it shows as Cancelled in the UI, and the next scheduled run comes as
# usual); `--on-overlap enqueue` makes it wait for the slot instead (ENQUEUE). Before, such runs
# started and waited on the workspace lock, one process each, with nothing bounding the queue.
OVERLAP = {"cancel": "CANCEL_NEW", "enqueue": "ENQUEUE"}


def build_deployment(name: str = "nightly", cron: str = DEFAULT_CRON, root: str = ".",
                     timezone: str = "UTC", on_overlap: str = "cancel"):
    from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
    from prefect.client.schemas.schedules import CronSchedule

    return augflow_pipeline.to_deployment(
        name=name,
        schedule=CronSchedule(cron=cron, timezone=timezone),
        concurrency_limit=ConcurrencyLimitConfig(
            limit=1, collision_strategy=ConcurrencyLimitStrategy(OVERLAP[on_overlap])),
        parameters={"root": str(Path(root).resolve()), "force": False, "wait_for_lock_s": 600.0},
        description="augflow: validate, train, generate, filter, augment, evaluate, track",
        tags=["augflow"],
    )


def main() -> None:
    from prefect import serve

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", default="nightly")
    parser.add_argument("--cron", default=DEFAULT_CRON, help="cron schedule (default nightly 02:00)")
    parser.add_argument("--timezone", default="UTC")
    parser.add_argument("--root", default=".", help="the workspace the scheduled runs use")
    parser.add_argument("--on-overlap", choices=sorted(OVERLAP), default="cancel",
                        help="a run due while one is running: cancelled (default) or queued")
    args = parser.parse_args()
    serve(build_deployment(args.name, args.cron, args.root, args.timezone, args.on_overlap))


if __name__ == "__main__":
    main()
