"""A throwaway PostgreSQL cluster for the tests, started once per session.

initdb and pg_ctl refuse to run as root, so as root they run as the
`postgres` user, in a directory it owns under /tmp (pytest's tmp_path is
0700 and belongs to root). The template database is migrated once; each test
then gets a copy of it (CREATE DATABASE ... STRATEGY FILE_COPY, about 40 ms)
instead of paying for the migrations again. When PostgreSQL cannot start,
this raises: the tests fail, they never skip.
"""

import asyncio
import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor

import asyncpg



def _newest_bin() -> str:
    """Debian's newest installed PostgreSQL (15 or later: STRATEGY FILE_COPY)."""
    found = glob.glob("/usr/lib/postgresql/*/bin/initdb")
    found.sort(key=lambda path: int(path.split("/")[4]) if path.split("/")[4].isdigit() else 0)
    return os.path.dirname(found[-1]) if found else "/usr/lib/postgresql/15/bin"


BIN = os.environ.get("AUDIOSERVER_PG_BIN") or _newest_bin()
TEMPLATE = "audioserver_template"


def run_async(coro):
    """Run `coro` to the end on a loop of its own, whether or not the
    calling thread already runs one (sync fixtures may be called from inside
    a test's loop)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresServer:
    """`start()`, then `url(database)`, `create_database()`; `stop()` at the end."""

    def __init__(self):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="audioserver-pg-")
        self.data = os.path.join(self.dir, "data")
        self._numbers = itertools.count(1)

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        if not os.access(os.path.join(BIN, "initdb"), os.X_OK):
            raise RuntimeError(f"PostgreSQL is not installed ({BIN}/initdb is missing): "
                               "apt-get install postgresql")
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run("initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "-E", "UTF8",
                  "--locale=C.UTF-8", "--no-sync")
        # -w waits until it accepts connections; the server's own output goes
        # to a log file, or pg_ctl's caller waits on the inherited pipes.
        self._run("pg_ctl", "-D", self.data, "-w", "-l", os.path.join(self.dir, "log"),
                  "-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1"
                  " -c fsync=off -c max_connections=200", "start")

    def stop(self) -> None:
        if os.path.exists(os.path.join(self.data, "postmaster.pid")):
            self._run("pg_ctl", "-D", self.data, "-m", "immediate", "stop", check=False)
        shutil.rmtree(self.dir, ignore_errors=True)

    def make_template(self, migrate) -> None:
        """Create the template database and `await migrate(url)` it."""
        self.run_sql(f"CREATE DATABASE {TEMPLATE}")
        run_async(migrate(self.url(TEMPLATE)))

    def create_database(self, template: str = TEMPLATE) -> str:
        """A new database copied from `template` (template0: an empty one); its URL."""
        name = f"test_{next(self._numbers)}"
        self.run_sql(f"CREATE DATABASE {name} TEMPLATE {template} STRATEGY FILE_COPY")
        return self.url(name)

    def run_sql(self, sql: str) -> None:
        """One statement in the `postgres` database, as the superuser."""
        run_async(self._execute(sql))

    async def _execute(self, sql: str) -> None:
        conn = await asyncpg.connect(self.url("postgres"))
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    def _run(self, program: str, *args: str, check: bool = True) -> None:
        command = [os.path.join(BIN, program), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=120)
        if check and done.returncode != 0:
            raise RuntimeError(f"{program} failed ({done.returncode}):\n{done.stdout}"
                               + self._log_tail())

    def _log_tail(self) -> str:
        try:
            with open(os.path.join(self.dir, "log")) as log:
                return log.read()[-2000:]
        except OSError:
            return ""
