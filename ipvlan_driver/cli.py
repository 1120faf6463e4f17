"""`ipvlan-driver`: the docs' docker commands, with `docker` replaced by `ipvlan-driver`.

A thin face over `Driver`: parse like docker, call one verb, print like docker. Every failure is one
`Error: ...` line and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import __version__
from .driver import Driver, DriverConfig, Network
from .errors import DriverError
from .options import network_spec, parse_opt_pairs


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse's default prints usage then exits 2; keep it short
        self.print_usage(sys.stderr)
        print(f"Error: {message}", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="ipvlan-driver",
        description="A reference ipvlan network driver: docker's ipvlan commands, run on network namespaces.",
    )
    p.add_argument("--version", action="version", version=f"ipvlan-driver {__version__}")
    p.add_argument(
        "--state-dir",
        type=Path,
        help="where networks and containers are kept (default /var/lib/ipvlan-driver, or $IPVLAN_DRIVER_STATE_DIR)",
    )
    p.add_argument(
        "--host-netns",
        help="network namespace that plays the Docker host (default: the current one, or $IPVLAN_DRIVER_HOST_NETNS)",
    )
    p.add_argument("--netns-prefix", help="prefix for container namespace names ($IPVLAN_DRIVER_NETNS_PREFIX)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    net = sub.add_parser("network", help="Manage networks", description="Manage networks")
    nsub = net.add_subparsers(dest="network_command", metavar="COMMAND", parser_class=_Parser)
    create = nsub.add_parser("create", help="Create a network", description="Create a network")
    create.add_argument("-d", "--driver", default="ipvlan", help='Driver to manage the Network (only "ipvlan")')
    create.add_argument("--subnet", action="append", default=[], help="Subnet in CIDR format (repeatable)")
    create.add_argument("--gateway", action="append", default=[], help="Gateway for a subnet (repeatable)")
    create.add_argument("--ipv6", action="store_true", help="Enable IPv6 networking")
    create.add_argument("--internal", action="store_true", help="Restrict external access to the network")
    create.add_argument(
        "-o",
        "--opt",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="Driver options: parent=IFACE, ipvlan_mode=l2|l3|l3s, ipvlan_flag=bridge|private|vepa",
    )
    create.add_argument("name", metavar="NETWORK")
    rm = nsub.add_parser(
        "rm",
        aliases=["remove"],
        help="Remove one or more networks",
        description="Remove one or more networks",
    )
    rm.add_argument("names", nargs="+", metavar="NETWORK")
    nsub.add_parser("ls", aliases=["list"], help="List networks", description="List networks")
    inspect = nsub.add_parser(
        "inspect",
        help="Display detailed information on one or more networks",
        description="Display detailed information on one or more networks",
    )
    inspect.add_argument("names", nargs="+", metavar="NETWORK")

    run = sub.add_parser(
        "run",
        help="Create and run a new container",
        description="Create a container (a network namespace) on a network and run a command in it",
    )
    run.add_argument("--net", "--network", dest="network", required=True, help="Connect a container to a network")
    run.add_argument("--name", help="Assign a name to the container")
    run.add_argument("--ip", help="IPv4 address (e.g., 172.30.100.104)")
    run.add_argument("--ip6", help="IPv6 address (e.g., 2001:db8::33)")
    run.add_argument("-d", "--detach", action="store_true", help="Run container in background and print container ID")
    run.add_argument("-i", "--interactive", action="store_true", help="Keep STDIN open (accepted)")
    run.add_argument("-t", "--tty", action="store_true", help="Allocate a pseudo-TTY (accepted)")
    run.add_argument("--rm", action="store_true", help="Automatically remove the container when it exits")
    run.add_argument("image", nargs="?", help="Accepted for docker compatibility; containers share the host's files")
    run.add_argument("cmd", nargs=argparse.REMAINDER, help="Command to run inside the container")

    ex = sub.add_parser(
        "exec",
        help="Execute a command in a running container",
        description="Execute a command in a running container",
    )
    ex.add_argument("-i", "--interactive", action="store_true", help="Keep STDIN open (accepted)")
    ex.add_argument("-t", "--tty", action="store_true", help="Allocate a pseudo-TTY (accepted)")
    ex.add_argument("name", metavar="CONTAINER")
    ex.add_argument("cmd", nargs=argparse.REMAINDER, metavar="COMMAND")

    crm = sub.add_parser("rm", help="Remove one or more containers", description="Remove one or more containers")
    crm.add_argument("-f", "--force", action="store_true", help="Accepted: containers are always removable")
    crm.add_argument("names", nargs="+", metavar="CONTAINER")
    sub.add_parser("ps", help="List containers", description="List containers")
    sub.add_parser(
        "restore",
        help="Re-create missing driver-owned parents after a restart or reboot",
        description="Re-create missing driver-owned parents after a restart or reboot",
    )
    serve = sub.add_parser(
        "serve",
        help="Serve the libnetwork remote network-driver plugin protocol",
        description="Serve the libnetwork remote network-driver protocol on a unix socket",
    )
    serve.add_argument(
        "--name",
        default="ipvlan-conformance",
        help="plugin name: the socket is /run/docker/plugins/NAME.sock and docker uses -d NAME",
    )
    serve.add_argument("--socket", type=Path, help="serve on this socket path instead")
    serve.add_argument("-v", "--verbose", action="store_true", help="log each request and reply in full")
    return p


def _driver(args: argparse.Namespace) -> Driver:
    if args.state_dir is not None and str(args.state_dir) in ("", "."):
        raise DriverError("--state-dir needs a directory name (an empty one would mean the current directory)")
    return Driver(
        DriverConfig.from_env(state_dir=args.state_dir, host_netns=args.host_netns, container_prefix=args.netns_prefix)
    )


def inspect_network(network: Network, endpoints: dict[str, list[str]]) -> dict[str, Any]:
    """The shape of `docker network inspect` for the fields this driver has."""
    config = []
    for pool in network.pools.pools:
        entry = {"Subnet": str(pool.subnet)}
        if pool.gateway is not None:
            entry["Gateway"] = str(pool.gateway)
        config.append(entry)
    options = {
        "ipvlan_mode": network.spec.mode,
        "ipvlan_flag": network.spec.flag,
        "parent": network.parent.name,
    }
    return {
        "Name": network.spec.name,
        "Id": network.id,
        "Driver": "ipvlan",
        "Scope": "local",
        "EnableIPv6": network.spec.ipv6,
        "Internal": network.spec.internal,
        "IPAM": {"Driver": "default", "Config": config},
        "Options": options,
        "Parent": {
            "Name": network.parent.name,
            "Kind": network.parent.kind,
            "Link": network.parent.link,
            "VlanId": network.parent.vlan_id,
            "CreatedByDriver": network.parent.driver_owned,
        },
        "Containers": {name: {"Name": name, "Addresses": addrs} for name, addrs in sorted(endpoints.items())},
    }


def _cmd_network(args: argparse.Namespace) -> int:
    driver = _driver(args)
    sub = args.network_command
    if sub == "create":
        if args.driver != "ipvlan":
            raise DriverError(f'plugin "{args.driver}" not found: this driver only provides "ipvlan"')
        spec = network_spec(
            args.name,
            subnets=args.subnet,
            gateways=args.gateway,
            options=parse_opt_pairs(args.opt),
            internal=args.internal,
            ipv6=args.ipv6,
        )
        print(driver.create_network(spec).id)
    elif sub in ("rm", "remove"):
        status = 0
        for name in args.names:
            try:
                driver.delete_network(name)
                print(name)
            except DriverError as exc:
                print(f"Error: {exc}", file=sys.stderr)
                status = 1
        return status
    elif sub in ("ls", "list"):
        print(f"{'NETWORK ID':<14}{'NAME':<20}{'DRIVER':<10}SCOPE")
        for net in driver.networks():
            print(f"{net.id[:12]:<14}{net.spec.name:<20}{'ipvlan':<10}local")
    elif sub == "inspect":
        print(json.dumps([inspect_network(driver.get_network(n), driver.endpoints(n)) for n in args.names], indent=4))
    else:
        raise DriverError("usage: ipvlan-driver network COMMAND (create, rm, ls, inspect)")
    return 0


def _exec(driver: Driver, name: str, cmd: Sequence[str]) -> int:
    prepare = driver.exec_preparer(name)
    try:
        # preexec_fn is the point: the child must enter the namespace between fork and exec
        return subprocess.call(list(cmd), preexec_fn=prepare)
    except FileNotFoundError:
        raise DriverError(f"exec: {cmd[0]!r}: executable file not found") from None


def _cmd_run(args: argparse.Namespace) -> int:
    driver = _driver(args)
    container = driver.run(args.network, name=args.name, ip=args.ip, ip6=args.ip6)
    if args.detach:
        print(container.id)
        return 0
    cmd = args.cmd or ["/bin/sh"]
    try:
        return _exec(driver, container.name, cmd)
    finally:
        if args.rm:
            driver.remove_container(container.name)


def _cmd_exec(args: argparse.Namespace) -> int:
    if not args.cmd:
        raise DriverError("exec needs a command: ipvlan-driver exec CONTAINER COMMAND [ARG...]")
    return _exec(_driver(args), args.name, args.cmd)


def _cmd_rm(args: argparse.Namespace) -> int:
    driver = _driver(args)
    status = 0
    for name in args.names:
        try:
            driver.remove_container(name)
            print(name)
        except DriverError as exc:
            print(f"Error: {exc}", file=sys.stderr)
            status = 1
    return status


def _cmd_ps(args: argparse.Namespace) -> int:
    driver = _driver(args)
    print(f"{'CONTAINER ID':<14}{'NAMES':<20}{'NETWORKS':<20}ADDRESSES")
    for name in driver.container_names():
        try:
            c = driver.get_container(name)
        except DriverError:
            continue  # set aside with a warning: it blocks no other container
        print(f"{c.id[:12]:<14}{name:<20}{c.network:<20}{','.join(str(a) for a in c.addresses)}")
    return 0


def _cmd_restore(args: argparse.Namespace) -> int:
    for line in _driver(args).restore():
        print(line)
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    import signal

    from .plugin import STOP_SIGNALS, PluginServer, socket_path

    # held until the server's loop handles them: a SIGTERM right after the socket appears still stops it cleanly
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)

    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
    )
    driver = _driver(args)
    for line in driver.restore():
        logging.getLogger("ipvlan_driver.plugin").info("restore: %s", line)
    path = args.socket or socket_path(args.name)
    server = PluginServer(path, driver)
    logging.getLogger("ipvlan_driver.plugin").info("serving NetworkDriver on %s", path)
    try:
        server.serve_forever(handle_signals=True)  # SIGTERM/SIGINT: stop, and remove the socket
    finally:
        server.server_close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handlers = {
        "network": _cmd_network,
        "run": _cmd_run,
        "exec": _cmd_exec,
        "rm": _cmd_rm,
        "ps": _cmd_ps,
        "restore": _cmd_restore,
        "serve": _cmd_serve,
    }
    if args.command not in handlers:
        parser.print_help()
        return 2
    if args.command != "serve":
        # warnings (a record set aside, a repair) are one line each on stderr
        logging.basicConfig(level=logging.WARNING, format="ipvlan-driver: %(message)s", stream=sys.stderr)
    try:
        return handlers[args.command](args)
    except DriverError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    except PermissionError as exc:
        print(f"Error: permission denied ({exc.strerror}): run as root", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"Error: {args.command}: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1
    except Exception as exc:  # the user gets one line, never a traceback; the bug report gets the type
        print(f"Error: {args.command}: internal error ({type(exc).__name__}: {exc})", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
