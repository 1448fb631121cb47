#!/usr/bin/env python3
"""The fleet chaos harness: K `exogate serve` replicas on one PostgreSQL and the Microsoft
emulator, N write requests across several tenants asked through the JSON API and MCP, approved by
a person through the API and executed by the replicas' workers, while replicas are SIGKILLed and
restarted, PostgreSQL is restarted with `pg_ctl restart -m immediate`, and the emulator injects
5xx answers, apply-then-drop, 429 storms and latency. It prints its figures and exits non-zero if
a promise broke (a lost request, an effective change missing or duplicated, a broken audit chain,
two sweeps holding one company).

Standard library only. Run through `scripts/chaos.sh` (which builds the binaries), or directly:
    python3 scripts/chaos/chaos.py --exogate target/release/exogate \
        --emulator target/release/m365-emulator [--smoke]
"""

import argparse
import http.client
import http.cookiejar
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

# The demo apps the emulator knows (crates/m365-emulator/src/scenario.rs).
EXCHANGE_APP = "e0e0e0e0-0000-4000-8000-000000000001"
CONNECT_APP = "e0e0e0e0-0000-4000-8000-000000000002"
EXCHANGE_SECRET = "demo-client-secret"
CONNECT_SECRET = "demo-connect-secret"
EXCHANGE_RESOURCE = "00000002-0000-0ff1-ce00-000000000000"
GRAPH_RESOURCE = "00000003-0000-0000-c000-000000000000"
PASSWORD = "chaos-password-1"
TERMINAL = {"succeeded", "failed", "rejected", "cancelled", "expired", "already_in_state",
            "partially_failed", "not_confirmed"}


def log(msg):
    print(f"[chaos {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Http:
    """A tiny JSON client: no redirects followed, cookies kept per instance."""

    def __init__(self, timeout=15):
        self.jar = http.cookiejar.CookieJar()
        self.timeout = timeout

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *a, **k):
                return None

        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), NoRedirect())

    def call(self, method, url, body=None, headers=None, form=None):
        headers = dict(headers or {})
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers.setdefault("content-type", "application/json")
        elif form is not None:
            data = urllib.parse.urlencode(form).encode()
            headers.setdefault("content-type", "application/x-www-form-urlencoded")
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with self.opener.open(req, timeout=self.timeout) as r:
                return r.status, dict(r.headers), r.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers or {}), e.read().decode("utf-8", "replace")

    def json(self, method, url, body=None, headers=None):
        status, hdrs, text = self.call(method, url, body, headers)
        try:
            return status, json.loads(text) if text else None
        except ValueError:
            return status, {"raw": text}


TRANSIENT = (urllib.error.URLError, ConnectionError, http.client.HTTPException, TimeoutError,
             socket.timeout, OSError)


# ---------------------------------------------------------------- PostgreSQL of our own


class Postgres:
    def __init__(self, root):
        self.dir = os.path.join(root, "pg")
        self.port = free_port()
        bindirs = sorted(d for d in (f"/usr/lib/postgresql/{v}/bin" for v in os.listdir(
            "/usr/lib/postgresql")) if os.path.exists(f"{d}/initdb")) if os.path.isdir(
            "/usr/lib/postgresql") else []
        self.bin = bindirs[-1] if bindirs else os.path.dirname(shutil.which("initdb") or "")
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/exogate"
        self.as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def _run(self, *args, check=True):
        return subprocess.run(self.as_postgres + list(args), check=check,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def start(self):
        os.makedirs(self.dir)
        if os.geteuid() == 0:
            shutil.chown(os.path.dirname(self.dir), "postgres", "postgres")
            shutil.chown(self.dir, "postgres", "postgres")
        self._run(f"{self.bin}/initdb", "-D", self.dir, "-A", "trust", "-U", "postgres")
        self._pg_ctl("start")
        self._run(f"{self.bin}/createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U",
                  "postgres", "exogate")

    def _pg_ctl(self, action, *extra):
        self._run(f"{self.bin}/pg_ctl", "-D", self.dir, "-l", f"{self.dir}/log", "-w", "-t",
                  "60", "-o",
                  f"-p {self.port} -k /tmp -c listen_addresses=127.0.0.1 -c max_connections=200"
                  " -c fsync=off", action, *extra)

    def restart_immediate(self):
        self._pg_ctl("restart", "-m", "immediate")

    def stop(self):
        self._run(f"{self.bin}/pg_ctl", "-D", self.dir, "-m", "immediate", "stop", check=False)


# ---------------------------------------------------------------- the emulator's world


def scenario(tenants, mailboxes, users):
    loopback = ["http://127.0.0.1/*", "http://localhost/*"]
    apps = [
        {"client_id": EXCHANGE_APP, "display_name": "exogate Exchange",
         "secrets": [{"value": EXCHANGE_SECRET}], "certificates": [], "redirect_uris": loopback,
         "required_permissions": [{"resource": EXCHANGE_RESOURCE,
                                   "role": "Exchange.ManageAsApp"}]},
        {"client_id": CONNECT_APP, "display_name": "exogate Connect",
         "secrets": [{"value": CONNECT_SECRET}], "certificates": [], "redirect_uris": loopback,
         "required_permissions": [{"resource": GRAPH_RESOURCE,
                                   "role": "Organization.Read.All"}]},
    ]
    out = []
    for t in tenants:
        out.append({"id": t["tenant"], "display_name": t["name"], "domains": [t["domain"]],
                    "consents": [EXCHANGE_APP, CONNECT_APP],
                    "roles": [{"client_id": EXCHANGE_APP, "role": "Exchange Administrator"}]})
    return {"seed": 14, "apps": apps, "tenants": out}


def tenant_list(count):
    return [{"company": f"chaos{i}", "name": f"Chaos {i}", "domain": f"chaos{i}.onmicrosoft.com",
             "tenant": f"c4a05000-0000-4000-8000-{i:012d}"} for i in range(count)]


# ---------------------------------------------------------------- the harness


class Fleet:
    def __init__(self, args, root):
        self.args = args
        self.root = root
        self.pg = Postgres(root)
        self.ports = [free_port() for _ in range(args.replicas)]
        self.procs = [None] * args.replicas
        self.proc_lock = threading.Lock()
        self.rr = 0
        self.kills = 0
        self.db_restarts = 0
        self.stop = threading.Event()
        self.logs = []
        self.config = os.path.join(root, "exogate.toml")

    def base(self, i):
        return f"http://127.0.0.1:{self.ports[i]}"

    def next_base(self):
        with self.proc_lock:
            self.rr = (self.rr + 1) % len(self.ports)
            return self.base(self.rr)

    def write_config(self, emulator):
        a = self.args
        text = f"""data_dir = {json.dumps(self.root)}
database_url = {json.dumps(self.pg.url)}
[server]
listen = "127.0.0.1:{self.ports[0]}"
public_url = "http://127.0.0.1:{self.ports[0]}"
secure_cookies = false
loopback_hosts = true
[microsoft]
login_url = {json.dumps(emulator)}
graph_url = {json.dumps(emulator)}
exchange_url = {json.dumps(emulator)}
[microsoft.exchange_app]
client_id = "{EXCHANGE_APP}"
client_secret = "{EXCHANGE_SECRET}"
[microsoft.connect_app]
client_id = "{CONNECT_APP}"
client_secret = "{CONNECT_SECRET}"
[status]
propagation_window_seconds = 20
[limits]
token_per_minute = 100000
company_per_minute = 100000
[inventory]
sweep_interval_hours = 1
lease_seconds = 20
[audit]
checkpoint_interval_minutes = 0
[database]
max_connections = 8
acquire_timeout_seconds = 3
[worker]
lease_seconds = {a.lease_seconds}
poll_milliseconds = 200
shutdown_grace_seconds = 5
database_backoff_max_seconds = 2
# The harness proves the fleet, not sign-in: its people sign in with passwords alone (a second
# factor's codes are single-use per 30 s step, and every replica restart signs in again).
[signin]
second_factor = false
"""
        with open(self.config, "w") as f:
            f.write(text)

    def cli(self, *args, stdin=None, check=True):
        cmd = [self.args.exogate, "--config", self.config, "--json", *args]
        r = subprocess.run(cmd, input=stdin, capture_output=True, text=True)
        if check and r.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed: {r.stderr.strip()} {r.stdout.strip()}")
        return json.loads(r.stdout) if r.stdout.strip() else None

    def start_replica(self, i):
        env = dict(os.environ, EXOGATE_SERVER__LISTEN=f"127.0.0.1:{self.ports[i]}",
                   EXOGATE_LOG=os.environ.get("EXOGATE_LOG", "warn"))
        logf = open(os.path.join(self.root, f"replica{i}.log"), "ab")
        p = subprocess.Popen([self.args.exogate, "--config", self.config, "serve"], env=env,
                             stdout=logf, stderr=logf)
        self.procs[i] = p
        return p

    def wait_ready(self, i, timeout=60):
        deadline = time.time() + timeout
        h = Http(timeout=2)
        while time.time() < deadline:
            try:
                s, _ = h.json("GET", self.base(i) + "/readyz")
                if s == 200:
                    return True
            except TRANSIENT:
                pass
            if self.procs[i].poll() is not None:
                self.start_replica(i)
            time.sleep(0.1)
        raise RuntimeError(f"replica {i} never became ready")

    # ------------------------------------------------------------ chaos threads

    def killer(self):
        rnd = random.Random(self.args.seed + 1)
        while not self.stop.is_set():
            if self.stop.wait(rnd.uniform(self.args.kill_every * 0.5, self.args.kill_every * 1.5)):
                break
            i = rnd.randrange(len(self.procs))
            p = self.procs[i]
            if p is None or p.poll() is not None:
                continue
            p.send_signal(signal.SIGKILL)
            p.wait()
            self.kills += 1
            time.sleep(rnd.uniform(0.1, 0.8))
            self.start_replica(i)

    def restarter(self, at_progress):
        while not self.stop.is_set() and at_progress:
            if self.progress() >= at_progress[0]:
                at_progress.pop(0)
                log(f"restarting PostgreSQL (immediate) at {self.progress():.0%} done")
                t = time.time()
                self.pg.restart_immediate()
                self.db_restarts += 1
                log(f"PostgreSQL back after {time.time() - t:.1f}s")
            self.stop.wait(0.2)

    def storms(self, emulator):
        rnd = random.Random(self.args.seed + 2)
        h = Http()
        while not self.stop.wait(rnd.uniform(4, 8)):
            h.json("PUT", emulator + "/_emulator/knobs",
                   {"tenant_rate_per_sec": 3.0, "tenant_rate_burst": 3.0,
                    "retry_after_secs": 0.5})
            if self.stop.wait(rnd.uniform(1, 3)):
                break
            h.json("PUT", emulator + "/_emulator/knobs",
                   {"tenant_rate_per_sec": None, "tenant_rate_burst": None})

    def syncer(self, token):
        """Asks random replicas to sweep every tenant's inventory, so sweeps run (and are killed)
        all through the run, each company's under its store lease."""
        rnd = random.Random(self.args.seed + 3)
        while not self.stop.wait(rnd.uniform(2, 5)):
            try:
                Http(timeout=5).json("POST", self.base(rnd.randrange(len(self.ports)))
                                     + "/api/v1/inventory/sync", {},
                                     {"authorization": f"Bearer {token}"})
            except TRANSIENT:
                pass

    def progress(self):
        return self.done_count / max(1, self.total)


def retrying(fleet, what, fn, deadline_s=300):
    """Calls fn(base) on round-robin replicas until it gives an answer that is not a transport
    failure or a 5xx (the replica may be dead or restarting, the database may be down)."""
    deadline = time.time() + deadline_s
    last = None
    while time.time() < deadline:
        base = fleet.next_base()
        try:
            status, body = fn(base)
            if status < 500 and status != 0:
                return status, body
            last = (status, body)
        except TRANSIENT as e:
            last = e
        time.sleep(0.2)
    raise RuntimeError(f"{what}: no answer in {deadline_s}s (last: {last})")


def login(fleet, user):
    h = Http()
    status, body = retrying(fleet, f"login {user}", lambda b: h.json(
        "POST", b + "/api/v1/login", {"user": user, "password": PASSWORD}))
    if status != 200:
        raise RuntimeError(f"login {user}: {status} {body}")
    return h, body["csrf_token"]


def connect_company(fleet, emulator, t):
    """Connects a company through the admin-consent walk: the CLI's URL, the emulator's consent
    form accepted by the tenant's admin, the redirect back to exogate's callback."""
    url = fleet.cli("company", "connect-url", t["company"], "--tenant", t["tenant"], "--as",
                    "admin")["url"]
    h = Http()
    status, _, page = h.call("GET", url)
    if status != 200:
        raise RuntimeError(f"consent page {status}: {page[:300]}")
    action = re.search(r'<form method="post" action="([^"]+)"', page).group(1)
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page))
    fields = {k: v.replace("&amp;", "&").replace("&quot;", '"') for k, v in fields.items()}
    fields.update({"account": f"admin:{t['tenant']}", "action": "accept"})
    target = urllib.parse.urljoin(url, action.replace("&amp;", "&"))
    status, headers, page = h.call("POST", target, form=fields)
    location = headers.get("Location") or headers.get("location")
    if status not in (302, 303) or not location:
        raise RuntimeError(f"consent answer {status}: {page[:300]}")
    status, _, page = h.call("GET", location)
    if status >= 400:
        raise RuntimeError(f"consent callback {status}: {page[:300]}")
    fleet.cli("company", "check", t["company"], "--as", "admin")


def setup_world(fleet, emulator, tenants, mailboxes, users):
    h = Http()
    for t in tenants:
        for m in range(mailboxes):
            name = f"mb{m:03d}"
            h.json("POST", emulator + f"/_emulator/exchange/{t['tenant']}/objects",
                   {"type": "shared_mailbox", "name": name, "alias": name,
                    "display_name": f"Mailbox {m}", "primary_smtp": f"{name}@{t['domain']}"})
        for u in range(users):
            name = f"u{u:03d}"
            h.json("POST", emulator + f"/_emulator/exchange/{t['tenant']}/objects",
                   {"type": "user_mailbox", "name": name, "alias": name,
                    "display_name": f"User {u}", "upn": f"{name}@{t['domain']}",
                    "primary_smtp": f"{name}@{t['domain']}"})


def plan_requests(tenants, n, mailboxes, users, seed):
    rights = ["grant_full_access", "grant_send_as", "grant_send_on_behalf"]
    combos = [(t, m, u, r) for t in tenants for m in range(mailboxes) for u in range(users)
              for r in rights]
    if len(combos) < n:
        raise SystemExit(f"the world is too small for {n} distinct changes")
    random.Random(seed).shuffle(combos)
    plan = []
    for i, (t, m, u, r) in enumerate(combos[:n]):
        plan.append({"i": i, "company": t["company"], "tenant": t["tenant"],
                     "mailbox": f"mb{m:03d}@{t['domain']}", "trustee": f"u{u:03d}@{t['domain']}",
                     "mailbox_name": f"mb{m:03d}", "trustee_name": f"u{u:03d}",
                     "tool": r, "via": "mcp" if i % 2 else "api"})
    return plan


def ask(fleet, token, req):
    if req["via"] == "api":
        def call(base):
            return Http().json("POST", base + "/api/v1/requests",
                               {"company": req["company"], "tool": req["tool"],
                                "mailbox": req["mailbox"], "trustee": req["trustee"]},
                               {"authorization": f"Bearer {token}"})
        while True:
            status, body = retrying(fleet, "ask via API", call)
            if status in (200, 201):
                return body["id"]
            if status == 409 and body["error"]["code"] == "too_many_pending":
                time.sleep(0.5)
                continue
            if status == 429:
                time.sleep(0.5)
                continue
            raise RuntimeError(f"ask via API: {status} {body}")

    def call(base):
        rpc = {"jsonrpc": "2.0", "id": req["i"], "method": "tools/call",
               "params": {"name": req["tool"],
                          "arguments": {"company": req["company"], "mailbox": req["mailbox"],
                                        "trustee": req["trustee"]}}}
        return Http().json("POST", base + "/mcp", rpc,
                           {"authorization": f"Bearer {token}",
                            "accept": "application/json, text/event-stream"})
    while True:
        status, body = retrying(fleet, "ask via MCP", call)
        result = (body or {}).get("result") or {}
        text = "".join(c.get("text", "") for c in result.get("content", []))
        try:
            out = json.loads(text)
        except ValueError:
            out = {}
        if status == 200 and not result.get("isError") and out.get("request_id"):
            return out["request_id"]
        code = (result.get("_meta") or {}).get("code") or out.get("code") or ""
        if code in ("too_many_pending", "rate_limited", "unavailable", "database_unavailable"):
            time.sleep(0.5)
            continue
        raise RuntimeError(f"ask via MCP: {status} {body}")


def approve(fleet, session, csrf, rid):
    def call(base):
        return session.json("POST", base + f"/api/v1/requests/{rid}/approve",
                            {"reason": "chaos"}, {"x-csrf-token": csrf})
    status, body = retrying(fleet, "approve", call)
    if status == 200 or (status == 409 and body["error"]["code"] == "already_decided"):
        return
    raise RuntimeError(f"approve {rid}: {status} {body}")


def wait_terminal(fleet, session, rid, deadline_s):
    deadline = time.time() + deadline_s
    while time.time() < deadline:
        status, body = retrying(fleet, "read request",
                                lambda b: session.json("GET", b + f"/api/v1/requests/{rid}"))
        if status == 200 and body["state"] in TERMINAL:
            return body
        time.sleep(0.3)
    return None


def parse_time(s):
    from datetime import datetime
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def run(args):
    root = tempfile.mkdtemp(prefix="exogate-chaos-")
    if os.geteuid() == 0:
        os.chmod(root, 0o755)
    fleet = Fleet(args, root)
    fleet.total = args.requests
    fleet.done_count = 0
    emu_proc = None
    threads = []
    started = time.time()
    try:
        log(f"PostgreSQL of our own in {fleet.pg.dir}, port {fleet.pg.port}")
        fleet.pg.start()
        tenants = tenant_list(args.tenants)
        scen = os.path.join(root, "scenario.json")
        with open(scen, "w") as f:
            json.dump(scenario(tenants, args.mailboxes, args.users), f)
        emu_proc = subprocess.Popen([args.emulator, "--scenario", scen, "--port", "0"],
                                    stdout=subprocess.PIPE,
                                    stderr=open(os.path.join(root, "emulator.log"), "ab"),
                                    text=True)
        emulator = emu_proc.stdout.readline().strip().rstrip("/")
        log(f"emulator at {emulator}; {args.replicas} replicas on ports {fleet.ports}")
        setup_world(fleet, emulator, tenants, args.mailboxes, args.users)
        fleet.write_config(emulator)
        # Every replica starts at once on an empty database: they migrate together.
        for i in range(args.replicas):
            fleet.start_replica(i)
        for i in range(args.replicas):
            fleet.wait_ready(i)
        fleet.cli("user", "add", "admin", "--role", "admin", "--companies", "*", "--password-stdin",
                  stdin=PASSWORD + "\n")
        fleet.cli("user", "add", "manager", "--role", "manager", "--companies", "*", "--password-stdin",
                  stdin=PASSWORD + "\n")
        fleet.cli("user", "add", "tech", "--role", "technician", "--companies", "*", "--password-stdin",
                  stdin=PASSWORD + "\n")
        token = fleet.cli("token", "create", "--user", "tech", "--name", "chaos-agent")
        token = token.get("secret") or token.get("token")
        for t in tenants:
            fleet.cli("company", "add", t["company"], "--name", t["name"], "--as", "admin")
            connect_company(fleet, emulator, t)
        plan = plan_requests(tenants, args.requests, args.mailboxes, args.users, args.seed)
        log(f"{len(plan)} requests planned over {len(tenants)} tenants; faults on")
        Http().json("PUT", emulator + "/_emulator/knobs",
                    {"error_5xx_rate": args.error_rate, "apply_then_drop_rate": args.drop_rate,
                     "latency_ms": {"*": args.latency_ms}, "retry_after_secs": 0.5})
        manager, csrf = login(fleet, "manager")
        viewer, _ = login(fleet, "admin")

        results = {}
        errors = []
        queue = list(plan)
        qlock = threading.Lock()

        def client():
            while True:
                with qlock:
                    if not queue:
                        return
                    req = queue.pop(0)
                try:
                    rid = ask(fleet, token, req)
                    req["id"] = rid
                    approve(fleet, manager, csrf, rid)
                    final = wait_terminal(fleet, viewer, rid, args.request_deadline)
                    results[req["i"]] = final
                except Exception as e:  # noqa: BLE001 - reported as a lost request
                    errors.append(f"request {req['i']}: {e}")
                    results[req["i"]] = None
                with qlock:
                    fleet.done_count += 1

        chaos = [threading.Thread(target=fleet.killer, daemon=True),
                 threading.Thread(target=fleet.restarter,
                                  args=([(k + 1) / (args.db_restarts + 1)
                                         for k in range(args.db_restarts)],), daemon=True),
                 threading.Thread(target=fleet.storms, args=(emulator,), daemon=True),
                 threading.Thread(target=fleet.syncer, args=(token,), daemon=True)]
        for t in chaos:
            t.start()
        load_started = time.time()
        threads = [threading.Thread(target=client, daemon=True) for _ in range(args.clients)]
        for t in threads:
            t.start()
        last = 0
        while any(t.is_alive() for t in threads):
            time.sleep(1)
            if time.time() - last > 15:
                last = time.time()
                log(f"{fleet.done_count}/{fleet.total} done, {fleet.kills} kills, "
                    f"{fleet.db_restarts} database restarts")
        # Keep killing until the minimum is reached (the load may finish first).
        while fleet.kills < args.min_kills:
            time.sleep(0.5)
        fleet.stop.set()
        for t in chaos:
            t.join()
        load_secs = time.time() - load_started
        Http().json("PUT", emulator + "/_emulator/knobs",
                    {"error_5xx_rate": 0.0, "apply_then_drop_rate": 0.0, "latency_ms": {},
                     "tenant_rate_per_sec": None, "tenant_rate_burst": None})
        for i in range(args.replicas):
            if fleet.procs[i].poll() is not None:
                fleet.start_replica(i)
            fleet.wait_ready(i)
        return report(args, fleet, emulator, tenants, plan, results, errors, load_secs)
    finally:
        fleet.stop.set()
        for p in fleet.procs:
            if p is not None and p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in fleet.procs:
            if p is not None:
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()
        if emu_proc is not None:
            emu_proc.terminate()
        fleet.pg.stop()
        if args.keep:
            log(f"kept {root} (replica and emulator logs)")
        else:
            shutil.rmtree(root, ignore_errors=True)
        log(f"total {time.time() - started:.0f}s")


RIGHT_OF_TOOL = {"grant_full_access": "FullAccess", "grant_send_as": "SendAs",
                 "grant_send_on_behalf": "SendOnBehalf"}


def effect_key(tenant, mailbox, trustee, right):
    return (tenant.lower(), mailbox.lower(), trustee.lower(), right.lower())


def report(args, fleet, emulator, tenants, plan, results, errors, load_secs):
    _, log_body = Http(timeout=60).json("GET", emulator + "/_emulator/apply-log")
    effects = {}
    for e in log_body["entries"]:
        c = e.get("change") or {}
        op = str(c.get("op", ""))
        if op not in ("add", "grant"):
            continue
        trustee = str(c.get("trustee") or "").split("\\")[-1].split("@")[0]
        mailbox = str(c.get("mailbox") or "")
        right = str(c.get("right") or "")
        key = effect_key(e["tenant"], mailbox, trustee, right)
        effects[key] = effects.get(key, 0) + 1
    states = {}
    lost = 0
    duplicated = 0
    missing = 0
    latencies = []
    per_request = {}
    for req in plan:
        final = results.get(req["i"])
        if final is None:
            lost += 1
            states["lost"] = states.get("lost", 0) + 1
            continue
        states[final["state"]] = states.get(final["state"], 0) + 1
        key = effect_key(req["tenant"], req["mailbox_name"], req["trustee_name"],
                         RIGHT_OF_TOOL[req["tool"]])
        n = effects.get(key, 0)
        per_request[n] = per_request.get(n, 0) + 1
        if n > 1:
            duplicated += 1
        if final["state"] == "succeeded" and n != 1:
            missing += 1
        if final.get("decided_at") and final.get("finished_at"):
            latencies.append(parse_time(final["finished_at"]) - parse_time(final["decided_at"]))
    # Effects nobody asked for would be a change without approval.
    asked = {effect_key(r["tenant"], r["mailbox_name"], r["trustee_name"],
                        RIGHT_OF_TOOL[r["tool"]]) for r in plan}
    unasked = sum(v for k, v in effects.items() if k not in asked)
    audit = fleet.cli("audit", "verify", check=False) or {}
    overlaps, sweeps = sweep_overlaps(fleet)
    latencies.sort()

    def pct(p):
        if not latencies:
            return None
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))], 3)

    figures = {
        "requests": len(plan), "replicas": args.replicas, "tenants": len(tenants),
        "asked_via_api": sum(1 for r in plan if r["via"] == "api"),
        "asked_via_mcp": sum(1 for r in plan if r["via"] == "mcp"),
        "kills": fleet.kills, "database_restarts": fleet.db_restarts,
        "faults": {"error_5xx_rate": args.error_rate, "apply_then_drop_rate": args.drop_rate,
                   "latency_ms": args.latency_ms, "throttle_storms": True},
        "final_states": states,
        "succeeded": states.get("succeeded", 0),
        "effective_changes_per_request": {str(k): v for k, v in sorted(per_request.items())},
        "lost": lost,
        "duplicated_effective_changes": duplicated,
        "succeeded_without_exactly_one_change": missing,
        "changes_nobody_asked_for": unasked,
        "audit_chain": "intact" if audit.get("ok") or audit.get("intact") else audit,
        "sweeps_seen": sweeps,
        "sweep_leases_held_twice": overlaps,
        "approval_to_result_secs": {"p50": pct(0.50), "p99": pct(0.99),
                                    "max": round(latencies[-1], 3) if latencies else None},
        "load_secs": round(load_secs, 1),
        "errors": errors[:10],
    }
    print(json.dumps(figures, indent=2), flush=True)
    ok = (lost == 0 and duplicated == 0 and missing == 0 and unasked == 0 and overlaps == 0
          and figures["audit_chain"] == "intact" and fleet.kills >= args.min_kills
          and fleet.db_restarts >= args.db_restarts)
    print("CHAOS " + ("PASSED" if ok else "FAILED"), flush=True)
    return 0 if ok else 1


def sweep_overlaps(fleet):
    """Inventory sweeps of one company that ran at the same time, from the audit log. Per company,
    each end (finished or failed) closes the latest open start; a start never closed is a sweep
    whose replica was killed (another may take it over once its lease lapsed). Two closed runs
    whose [start, end] overlap mean the company's sweep lease was held twice."""
    session, _ = login(fleet, "admin")
    events = []
    for kind in ("inventory.sweep_started", "inventory.sweep_finished",
                 "inventory.sweep_failed"):
        before = None
        while True:
            q = f"kind={kind}&limit=500" + (f"&before={before}" if before else "")
            status, body = retrying(fleet, "audit", lambda b, q=q: session.json(
                "GET", b + f"/api/v1/audit?{q}"))
            page = (body or {}).get("events") or []
            events.extend(page)
            before = (body or {}).get("next")
            if status != 200 or not page or not before:
                break
    events.sort(key=lambda e: e["seq"])
    open_runs = {}
    closed = []
    for e in events:
        company = e.get("company")
        if e["kind"].endswith("started"):
            open_runs.setdefault(company, []).append(e["seq"])
        elif open_runs.get(company):
            closed.append((company, open_runs[company].pop(), e["seq"]))
    overlaps = 0
    for i, (ca, sa, ea) in enumerate(closed):
        for cb, sb, eb in closed[i + 1:]:
            if ca == cb and sa < eb and sb < ea:
                overlaps += 1
    return overlaps, len(closed)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--exogate", required=True)
    p.add_argument("--emulator", required=True)
    p.add_argument("--smoke", action="store_true", help="a few dozen requests, a few kills")
    p.add_argument("--requests", type=int)
    p.add_argument("--replicas", type=int, default=3)
    p.add_argument("--tenants", type=int, default=5)
    p.add_argument("--clients", type=int)
    p.add_argument("--kill-every", type=float, help="mean seconds between SIGKILLs")
    p.add_argument("--min-kills", type=int)
    p.add_argument("--db-restarts", type=int)
    p.add_argument("--error-rate", type=float, default=0.05)
    p.add_argument("--drop-rate", type=float, default=0.05)
    p.add_argument("--latency-ms", type=int, default=20)
    p.add_argument("--lease-seconds", type=int, default=8)
    p.add_argument("--request-deadline", type=float, default=600)
    p.add_argument("--seed", type=int, default=14)
    p.add_argument("--keep", action="store_true", help="keep the temp dir with the logs")
    args = p.parse_args()
    smoke = args.smoke
    args.requests = args.requests or (36 if smoke else 1000)
    args.clients = args.clients or (6 if smoke else 16)
    args.kill_every = args.kill_every or (3.0 if smoke else 2.5)
    args.min_kills = args.min_kills if args.min_kills is not None else (3 if smoke else 60)
    args.db_restarts = args.db_restarts if args.db_restarts is not None else (1 if smoke else 2)
    args.mailboxes = 12
    args.users = 10
    sys.exit(run(args))


if __name__ == "__main__":
    main()
