"""The command line: run the service, manage its configuration and accounts, analyze, bench."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from emsbox import __version__

# Exit status for bad input (a file or value the program refuses), as argparse uses.
EXIT_BAD_INPUT = 2
WIRINGS = ("1P2W", "2P3W", "3P3W", "3P4W", "3P4W-WL")
# The engine's matrix products are small: BLAS threads would only contend with each other and
# with the rest of the service. Set before numpy is first imported; the environment may override.
_SINGLE_THREAD = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="emsbox", description="emsbox energy management system")
    parser.add_argument("--version", action="version", version=f"emsbox {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    an = sub.add_parser(
        "analyze", help="measure a recording (COMTRADE or CSV) and print every value"
    )
    an.add_argument("file", type=Path, help="a .csv file, or a COMTRADE .cfg/.dat/.cff file")
    an.add_argument("--wiring", required=True, choices=WIRINGS)
    an.add_argument(
        "--nominal-frequency",
        type=int,
        choices=(50, 60),
        default=50,
        help="nominal frequency: 10-cycle windows at 50 Hz, 12-cycle at 60 Hz",
    )
    an.add_argument("--format", choices=("json", "table"), default="table")

    bench = sub.add_parser("bench", help="benchmarks that print numbers")
    bench_sub = bench.add_subparsers(dest="bench", required=True)
    bm = bench_sub.add_parser("metering", help="throughput of the measurement engine")
    bm.add_argument("--loads", type=int, default=11, help="three-phase loads (1 main + extensions)")
    bm.add_argument("--sample-rate", type=float, default=6400.0, help="samples per second")
    bm.add_argument("--seconds", type=float, default=60.0, help="seconds of signal to measure")
    bm.add_argument("--block-s", type=float, default=1.0, help="seconds of samples per block")

    run = sub.add_parser("run", help="run the service: meter, logger and web app with its API")
    run.add_argument(
        "--data-dir", type=Path, default=None, help="where everything is kept (default: per user)"
    )
    run.add_argument(
        "--config", type=Path, default=None, help="configuration file (default: in the data dir)"
    )
    run.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a setting for this run, e.g. --set web.https_port=9443 (repeatable)",
    )

    cfg = sub.add_parser("config", help="check or show the configuration")
    cfg_sub = cfg.add_subparsers(dest="config_command", required=True)
    check = cfg_sub.add_parser("check", help="validate a configuration file without starting")
    check.add_argument("file", type=Path)
    check.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    defaults = cfg_sub.add_parser("defaults", help="print the default configuration (TOML)")
    defaults.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE"
    )

    from emsbox import accounts_cli

    accounts_cli.register(sub)

    watch = sub.add_parser("watch", help="run the meter live on the simulator and print readings")
    watch.add_argument("--data-dir", type=Path, default=None, help="where counters are kept")
    watch.add_argument("--loads", type=int, default=1, help="simulated loads (1 main + extensions)")
    watch.add_argument("--seconds", type=float, default=None, help="stop after this many seconds")
    watch.add_argument("--interval-s", type=float, default=1.0, help="seconds between printouts")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    for name in _SINGLE_THREAD:
        os.environ.setdefault(name, "1")
    args = _parser().parse_args(argv)
    try:
        if args.command == "analyze":
            return _analyze(args)
        if args.command == "bench":
            from emsbox.benchmarks import bench_metering

            return bench_metering(args.loads, args.sample_rate, args.seconds, args.block_s)
        if args.command == "run":
            from emsbox.config import default_data_dir
            from emsbox.runner import run

            return run(args.data_dir or default_data_dir(), args.config, args.overrides)
        if args.command == "config":
            from emsbox.runner import check, show_defaults

            if args.config_command == "check":
                return check(args.file, args.overrides)
            return show_defaults(args.overrides)
        if args.command in ("user", "token"):
            from emsbox import accounts_cli
            from emsbox.config import default_data_dir

            return accounts_cli.run(args, args.data_dir or default_data_dir())
        if args.command == "watch":
            from emsbox.live import watch

            return watch(args.data_dir, args.loads, args.seconds, args.interval_s)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): stop quietly, as command-line tools do.
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - stays open until exit
        return 0
    return EXIT_BAD_INPUT


def _analyze(args: argparse.Namespace) -> int:
    from emsbox.acquisition import analyze_recording
    from emsbox.samples import Wiring
    from emsbox.sources.base import SourceError
    from emsbox.sources.recording import open_recording

    try:
        source = open_recording(
            args.file, Wiring(args.wiring), nominal_frequency_hz=float(args.nominal_frequency)
        )
        try:
            results = analyze_recording(source)
        except SourceError as exc:  # the readers name the file; the analysis does not
            raise SourceError(f"{args.file}: {exc}") from None
        finally:
            source.close()
    except SourceError as exc:
        print(f"emsbox analyze: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    values = results[0].as_dict()
    bad = [k for k, v in values.items() if not math.isfinite(v)]
    if bad:
        print(
            f"emsbox analyze: {args.file}: the recording gives non-finite values for "
            f"{', '.join(bad)}",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    if args.format == "json":
        print(json.dumps(values))
    else:
        print(_table(values, results[0].windows))
    return 0


def _table(values: dict[str, float], windows: int) -> str:
    from emsbox.variables import BY_NAME

    lines = [f"{'variable':<20} {'value':>22}  unit", "-" * 50]
    for name, value in values.items():
        unit = BY_NAME[name].unit if name in BY_NAME else ""
        lines.append(f"{name:<20} {value:>22.9g}  {unit}")
    lines.append(f"({windows} measurement windows)")
    return "\n".join(lines)
