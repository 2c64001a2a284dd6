"""``emsbox run``: load the configuration, start the service and serve the web app until stopped.

An invalid configuration file is refused with one line per problem naming the key path. When
the file in the data directory is invalid but the previous valid one (``config.toml.bak``) is
there, the service starts with that one and says so, so that a typing mistake in the file
does not leave a device unreachable; otherwise it exits with status 2.
"""

from __future__ import annotations

import gc
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from emsbox.app import Service
from emsbox.config import (
    CONFIG_FILE,
    Config,
    ConfigError,
    apply_overrides,
    load_file,
    save_file,
    to_data,
    validate,
)
from emsbox.service.acquisition_process import LOG_FORMAT
from emsbox.sources.base import SourceError
from emsbox.store.log import StoreError
from emsbox.web.account_types import AccountError
from emsbox.web.api import create_app
from emsbox.web.server import WebServer
from emsbox.web.tls import TlsError, fingerprint_sha256

EXIT_BAD_CONFIG = 2
SWITCH_INTERVAL_S = 0.0005
log = logging.getLogger("emsbox")


def _say(text: str) -> None:
    print(f"emsbox run: {text}", file=sys.stderr, flush=True)


def resolve_config(
    data_dir: Path, config_file: Path | None, overrides: Sequence[str]
) -> tuple[Config, Path]:
    """The configuration to run with and the file it is saved to (ConfigError if none)."""
    path = config_file or data_dir / CONFIG_FILE
    if config_file is None and not path.exists():
        # First start: write the defaults, so there is a file to read and edit.
        save_file(Config(), path)
        _say(f"wrote the default configuration to {path}")
    try:
        return load_file(path, overrides), path
    except ConfigError as exc:
        backup = path.with_name(path.name + ".bak")
        if config_file is not None or not backup.exists():
            raise
        for problem in exc.problems:
            _say(f"{path}: {problem}")
        config = load_file(backup, overrides)
        _say(f"the configuration is invalid; running with the previous valid one, {backup}")
        return config, path


MODBUS_PREFIX = "Modbus TCP: "


def _without_overrides(path: Path, config: Config, overrides: Sequence[str]) -> Config:
    """The file's configuration without this run's ``--set`` overrides: what the settings
    pages edit and save, so an override made for one run is never written to the file."""
    if not overrides:
        return config
    try:
        return load_file(path)
    except ConfigError:  # running from the backup: the file itself is invalid
        return config


def run(data_dir: Path, config_file: Path | None, overrides: Sequence[str]) -> int:
    """Run the service until SIGINT or SIGTERM; return the exit status."""
    # The store's threads hold the interpreter lock while they build rows; a short switch
    # interval keeps them from holding up the web server's event loop for the default 5 ms.
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        config, path = resolve_config(data_dir, config_file, overrides)
    except ConfigError as exc:
        for problem in exc.problems:
            _say(f"{exc.source}: {problem}")
        return EXIT_BAD_CONFIG
    try:
        server = WebServer(config.web, data_dir)
        service = Service(config, data_dir, path, saved=_without_overrides(path, config, overrides))
    except (StoreError, TlsError, AccountError, OSError) as exc:
        _say(" ".join(str(exc).split()))
        return EXIT_BAD_CONFIG
    try:
        service.start()
    except SourceError as exc:
        _say(str(exc))
        service.stop()
        backup = path.with_name(path.name + ".bak")
        if config_file is not None or not backup.exists():
            return EXIT_BAD_CONFIG
        # A valid file that cannot run (e.g. a recording removed since): the last one did.
        try:
            config = load_file(backup, overrides)
            service = Service(config, data_dir, path)
            service.start()
        except (ConfigError, SourceError) as again:
            _say(f"{backup} cannot run either: {again}")
            service.stop()
            return EXIT_BAD_CONFIG
        _say(f"running with the previous configuration, {backup}")
    loads = ", ".join(service.load_names())
    print(f"emsbox {service.version}: site {config.site.name!r}, loads {loads}", flush=True)
    print(f"data directory: {data_dir}", flush=True)
    if server.tls is not None:
        print(f"TLS certificate SHA-256: {fingerprint_sha256(server.tls.certificate)}", flush=True)
    if not service.accounts.has_users():
        print("no user yet: create one with `emsbox user add NAME --role admin`", flush=True)
    if server.redirect_url is not None:
        print(f"plain HTTP (redirects to HTTPS): {server.redirect_url}", flush=True)
    if service.modbus.address is not None:
        print(f"{MODBUS_PREFIX}{service.modbus.address[0]}:{service.modbus.address[1]}", flush=True)
    mqtt = service.config.mqtt
    if mqtt.enabled:
        where = f"{mqtt.host}:{mqtt.port} under {service.mqtt.topic_root()}"
        print(f"MQTT: publishing to {where}", flush=True)
    print(f"web app and API: {server.url}", flush=True)
    app = create_app(service)
    # What start-up made lives as long as the process: keep the cyclic collector from walking
    # it on every full collection, whose pauses (10+ ms) showed in query and API latency.
    gc.freeze()
    try:
        server.serve_forever(app)
    finally:
        service.stop()
        _say("stopped; counters saved and the log flushed")
    return 0


def check(path: Path, overrides: Sequence[str]) -> int:
    """``emsbox config check``: validate a file without starting; 0 when valid."""
    try:
        config = load_file(path, overrides)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"{exc.source}: {problem}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    print(f"{path}: valid ({len(config.meter.load_names())} load(s))")
    return 0


def show_defaults(overrides: Sequence[str]) -> int:
    """``emsbox config defaults``: print the default configuration as TOML."""
    import tomli_w

    data = to_data(Config())
    try:
        apply_overrides(data, overrides)
        print(tomli_w.dumps(to_data(validate(data))), end="")
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"{exc.source}: {problem}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    return 0
