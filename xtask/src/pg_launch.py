"""Starts a PostgreSQL 16 server from the PyPI package `pgserver` on 127.0.0.1.

usage: python pg_launch.py DATA_DIR PORT [--keep] [--ssl CERT_PEM KEY_PEM]

A fresh data directory (initdb, trust authentication for the user `postgres`) unless
--keep is given and DATA_DIR already holds a cluster (a restart). With --ssl, the server
also accepts TLS with that certificate and key (copied into the data directory). As root, the server runs
as `nobody` (initdb refuses root). The process execs into the postmaster, so its PID is the
server's: stop it with SIGTERM/SIGINT (clean) or SIGKILL.
"""
import importlib.util
import os
import shutil
import subprocess
import sys

spec = importlib.util.find_spec("pgserver")
if spec is None or not spec.submodule_search_locations:
    sys.exit("pgserver is not installed in this Python (cargo xtask test installs it)")
bindir = os.path.join(list(spec.submodule_search_locations)[0], "pginstall", "bin")
data, port = os.path.abspath(sys.argv[1]), sys.argv[2]
options = sys.argv[3:]
keep = "--keep" in options
tls = None
if "--ssl" in options:
    at = options.index("--ssl")
    # Read before dropping privileges: the files may be readable by this user only.
    tls = [open(path, "rb").read() for path in options[at + 1:at + 3]]
fresh = not (keep and os.path.exists(os.path.join(data, "PG_VERSION")))
if fresh:
    shutil.rmtree(data, ignore_errors=True)
    os.makedirs(data, mode=0o700)
if os.geteuid() == 0:
    import pwd

    user = pwd.getpwnam("nobody")
    for root, dirs, files in os.walk(data):
        os.chown(root, user.pw_uid, user.pw_gid)
    os.chmod(data, 0o700)
    os.setgroups([])
    os.setgid(user.pw_gid)
    os.setuid(user.pw_uid)
if fresh:
    subprocess.run(
        [os.path.join(bindir, "initdb"), "-D", data, "-U", "postgres", "--auth=trust",
         "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"],
        check=True, stdout=subprocess.DEVNULL,
    )
ssl_options = []
if tls is not None:
    for name, content in zip(["server.crt", "server.key"], tls):
        path = os.path.join(data, name)
        with open(path, "wb") as f:
            f.write(content)
        os.chmod(path, 0o600)
    ssl_options = ["-c", "ssl=on", "-c", "ssl_cert_file=server.crt", "-c", "ssl_key_file=server.key"]
postgres = os.path.join(bindir, "postgres")
os.execv(postgres, [
    postgres, "-D", data, "-p", port,
    "-c", "listen_addresses=127.0.0.1",
    "-c", "unix_socket_directories=",
    "-c", "max_connections=300",
    "-c", "fsync=off",
    "-c", "full_page_writes=off",
    "-c", "log_min_messages=warning",
] + ssl_options)
