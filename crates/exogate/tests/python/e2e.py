#!/usr/bin/env python3
"""End-to-end check of exogate's MCP server with the official Python MCP SDK (`mcp` on PyPI),
an MCP client exogate did not write. Driven by the Rust test `mcp_python` in tests/it/.

Usage:
  e2e.py http  --url http://127.0.0.1:PORT/mcp --token TOKEN
  e2e.py stdio --token TOKEN -- EXE ARG...      (runs `EXE ARG...` as the stdio server)

Steps (one MCP session):
  1. list the tools and check names, annotations and output schemas;
  2. view Full Access on `sales` at Contoso;
  3. ask grant_send_as for carol on `support`: the answer must be pending_approval;
  4. print {"phase": "pending", ...} as one JSON line, then wait for a line on stdin (the test
     approves the request as a manager meanwhile);
  5. call get_approval_status and print {"phase": "done", "status": ...}.
Exits non-zero on any failure (message on stderr).
"""

import argparse
import json
import sys

import anyio
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

EXPECTED_TOOLS = {
    "list_companies",
    "view_mailbox_permissions",
    "view_send_as_permissions",
    "view_mailbox_details",
    "grant_full_access",
    "grant_send_as",
    "grant_send_on_behalf",
    "remove_full_access",
    "remove_send_as",
    "remove_send_on_behalf",
    "get_approval_status",
    "find_user_access",
    "list_drift_findings",
    "get_access_review_report",
}


class Failure(Exception):
    pass


def check(cond, message):
    if not cond:
        raise Failure(message)


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def check_readable_error(result, code):
    """A tool error any client can read: the code in brackets opening the text and in _meta,
    no structured content (clients check that against the tool's output schema)."""
    text = " ".join(c.text for c in result.content if getattr(c, "type", "") == "text")
    check(text.startswith(f"[{code}] "), f"error text: {text!r}")
    check(result.structured_content is None, f"error with structured content: {result}")
    meta = result.meta or {}
    check(meta.get("code") == code, f"error _meta: {meta}")


async def call(session, name, args):
    result = await session.call_tool(name, args)
    check(not result.is_error, f"{name} failed: {result.content}")
    check(isinstance(result.structured_content, dict), f"{name}: no structured content")
    return result.structured_content


async def run(session):
    init = await session.initialize()
    check(init.server_info.name == "exogate", f"server name {init.server_info.name!r}")

    tools = (await session.list_tools()).tools
    names = {t.name for t in tools}
    check(names == EXPECTED_TOOLS, f"tools {sorted(names)}")
    for t in tools:
        a = t.annotations
        check(a is not None, f"{t.name}: no annotations")
        for hint in ("read_only_hint", "destructive_hint", "idempotent_hint", "open_world_hint"):
            check(getattr(a, hint) is not None, f"{t.name}: {hint} not set")
        check(t.output_schema is not None, f"{t.name}: no output schema")
        check(t.input_schema.get("type") == "object", f"{t.name}: input schema not an object")
        write = t.name.startswith(("grant_", "remove_"))
        check(a.read_only_hint == (not write), f"{t.name}: read_only_hint {a.read_only_hint}")

    full_access = await call(
        session,
        "view_mailbox_permissions",
        {"company": "contoso", "mailbox": "sales@contoso.onmicrosoft.com"},
    )
    check(full_access["permission"] == "full_access", f"view: {full_access}")
    check(full_access["mailbox"]["address"] == "sales@contoso.onmicrosoft.com", f"view: {full_access}")

    pending = await call(
        session,
        "grant_send_as",
        {"company": "contoso", "mailbox": "support", "trustee": "carol"},
    )
    check(pending["status"] == "pending_approval", f"grant: {pending}")
    check(pending["required_role"] == "manager", f"grant: {pending}")

    # A bad call comes back as a tool error, not a protocol error.
    bad = await session.call_tool(
        "grant_send_as",
        {"company": "contoso", "mailbox": "support", "trustee": "carol", "approved": True},
    )
    check(bad.is_error, "an unknown field was accepted")
    check_readable_error(bad, "invalid_input")
    unknown = await session.call_tool(
        "view_mailbox_permissions", {"company": "wingtip", "mailbox": "sales"}
    )
    check(unknown.is_error, "an unknown company was accepted")
    check_readable_error(unknown, "company_not_found")

    emit(
        {
            "phase": "pending",
            "request_id": pending["request_id"],
            "tools": sorted(names),
            "full_access": full_access,
            "pending": pending,
        }
    )
    line = await anyio.to_thread.run_sync(sys.stdin.readline)
    check(line.strip() == "approved", f"unexpected go-ahead {line!r}")

    status = await call(session, "get_approval_status", {"request_id": pending["request_id"]})
    emit({"phase": "done", "status": status})


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("transport", choices=["http", "stdio"])
    parser.add_argument("--url")
    parser.add_argument("--token", required=True)
    argv = sys.argv[1:]
    command = []
    if "--" in argv:
        cut = argv.index("--")
        argv, command = argv[:cut], argv[cut + 1 :]
    args = parser.parse_args(argv)
    args.command = command

    if args.transport == "http":
        http = create_mcp_http_client(headers={"Authorization": f"Bearer {args.token}"})
        async with http:
            async with streamable_http_client(args.url, http_client=http) as (read, write, *_):
                async with ClientSession(read, write) as session:
                    await run(session)
    else:
        check(args.command, "stdio needs the server command after --")
        params = StdioServerParameters(
            command=args.command[0],
            args=args.command[1:],
            env={"EXOGATE_MCP_TOKEN": args.token, "EXOGATE_LOG": "warn"},
        )
        async with stdio_client(params) as (read, write, *_):
            async with ClientSession(read, write) as session:
                await run(session)


if __name__ == "__main__":
    try:
        anyio.run(main)
    except Failure as e:
        print(f"e2e failed: {e}", file=sys.stderr)
        sys.exit(1)
