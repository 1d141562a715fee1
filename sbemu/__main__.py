"""``python -m sbemu serve|depths``."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from pathlib import Path

from sbemu.admin import AdminApi, AdminServer
from sbemu.broker import Broker, run
from sbemu.config import load_config
from sbemu.depths import DB_NAME, format_depths, queue_depths
from sbemu.store import Store


def _serve(args: argparse.Namespace) -> int:
    queues = load_config(Path(args.config))
    data = Path(args.data_dir)
    data.mkdir(parents=True, exist_ok=True)
    store = Store(data / DB_NAME)
    admin: AdminServer | None = None

    def listening(port: int) -> None:
        # One line the launcher waits for; both ports are bound when it is printed.
        extra = f" admin http://{args.host}:{admin.port}" if admin else ""
        print(f"sbemu listening on {args.host}:{port}{extra}", flush=True)
        logging.getLogger("sbemu").info("queues: %s", ", ".join(sorted(queues)))

    broker = Broker(queues, store, args.host, args.port, listening)
    if args.admin_port is not None:
        api = AdminApi(queues, data / DB_NAME, broker.accessed)
        admin = AdminServer(api, args.host, args.admin_port).start()

    def stop(signum: int, frame: object) -> None:
        broker.stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        run(broker)
    finally:
        if admin is not None:
            admin.stop()
        store.close()
    return 0


def _depths(args: argparse.Namespace) -> int:
    depths = queue_depths(Path(args.data_dir))
    if args.json:
        print(json.dumps({q: d.as_dict() for q, d in depths.items()}, indent=2))
    else:
        print(format_depths(depths))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(prog="python -m sbemu", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the broker")
    serve.add_argument("--config", required=True, help="Config.json declaring the queues")
    serve.add_argument("--data-dir", required=True, help=f"where {DB_NAME} lives")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=5672, help="0 picks a free port")
    serve.add_argument(
        "--admin-port",
        type=int,
        default=None,
        help="HTTP port of the administration API (Microsoft's emulator: 5300); "
        "0 picks a free port; omitted: not served",
    )
    depths = sub.add_parser("depths", help="print queue depths")
    depths.add_argument("--data-dir", required=True)
    depths.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s"
    )
    return {"serve": _serve, "depths": _depths}[args.command](args)


if __name__ == "__main__":
    raise SystemExit(main())
