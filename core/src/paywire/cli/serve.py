"""`paywire serve`: the webhook endpoint, the Janitor, /healthz and /metrics in one process."""

from __future__ import annotations

import argparse
import logging

import attrs

from paywire.cli.operations import service
from paywire.cli.values import port, positive_int, seconds


def run(args: argparse.Namespace) -> int:
    from paywire.config import load_config
    from paywire.serve.server import ServeOptions, bind, require_server, serve

    # The options are checked first: one that cannot work opens (and so creates) no ledger.
    options = ServeOptions.from_settings(
        load_config(args.config)[1].get("serve"), host=args.host, port=args.port, interval=args.interval,
        max_in_hand=args.max_in_hand,
        webhooks=False if args.no_webhooks else None, janitor=False if args.no_janitor else None,
    )
    if args.backoff_first is not None or args.backoff_cap is not None:  # over the configured backoff's
        given = {"first": args.backoff_first, "cap": args.backoff_cap}
        backoff = attrs.evolve(options.backoff, **{k: v for k, v in given.items() if v is not None})
        options = ServeOptions.from_settings({**attrs.asdict(options, recurse=False), "backoff": backoff})
    require_server()  # a start that cannot run (uvicorn missing, an address it cannot serve) creates no ledger
    sock = bind(options)
    try:
        svc = service(args, create=True)  # started before the first payment, as a deployment does
    except BaseException:
        sock.close()
        raise
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    serve(svc, options, sock=sock)
    return 0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("serve", help="serve webhooks, reconcile open outcomes, /healthz and /metrics "
                                     "(needs paywire[server])")
    p.add_argument("--host", help="address to listen on (default 127.0.0.1, or [paywire.serve] host)")
    p.add_argument("--port", type=port, help="port (default 8080, or [paywire.serve] port)")
    p.add_argument("--interval", type=seconds, help="seconds between reconcile passes (default 5)")
    p.add_argument("--backoff-first", type=seconds, help="seconds before a transaction left open is looked at "
                                                       "again (default 15, doubling each time)")
    p.add_argument("--backoff-cap", type=seconds, help="the longest wait between two looks (default 900)")
    p.add_argument("--max-in-hand", type=positive_int, help="webhook deliveries held at once before more are "
                                                            "answered 503 (default 64 per thread of the endpoint)")
    p.add_argument("--no-webhooks", action="store_true", help="no webhook endpoint: the Janitor, health and metrics")
    p.add_argument("--no-janitor", action="store_true", help="no reconciliation in this process")
    p.set_defaults(run=run)
