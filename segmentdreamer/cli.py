"""The ``segmentdreamer`` command line: one verb per pipeline step (the workflow's rules call these).

    segmentdreamer make-tiny-models DIR     tiny random-weight models for offline tests / smoke runs
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence

log = logging.getLogger("segmentdreamer")


def _make_tiny_models(args: argparse.Namespace) -> int:
    from .tiny_models import make_tiny_models

    start = time.perf_counter()
    written = make_tiny_models(args.dir)
    for key, folder in written.items():
        log.info("%s -> %s", key, folder)
    log.info("tiny models written in %.1f s (random weights: plumbing only, never quality)", time.perf_counter() - start)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="segmentdreamer", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    tiny = verbs.add_parser("make-tiny-models", help="write tiny random-weight models (SD in diffusers layout, CLIP in transformers layout)")
    tiny.add_argument("dir", help="output folder; gets sd/ and clip/")
    tiny.set_defaults(run=_make_tiny_models)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from .models import MissingWeightsError

    try:
        return args.run(args)
    except MissingWeightsError as error:
        log.error("%s", error)
        return 2


if __name__ == "__main__":
    sys.exit(main())
