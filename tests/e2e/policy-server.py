#!/usr/bin/env python3
"""A Postfix policy server (SMTPD_POLICY_README's protocol) for the e2e tests.

Usage: policy-server.py PORT
Binds 127.0.0.1 only. For recipient policy@localhost it answers
"action=REJECT pfdtest policy rejection", for greylist@localhost
"action=DEFER_IF_PERMIT Greylisted by pfdtest, try again later" (the words a
greylisting server uses), and "action=DUNNO" for anything else. Runs until
killed.
"""
import socketserver
import sys

VERDICTS = {
    "policy@localhost": "REJECT pfdtest policy rejection",
    "greylist@localhost": "DEFER_IF_PERMIT Greylisted by pfdtest, try again later",
}


class Handler(socketserver.StreamRequestHandler):
    def handle(self):
        attrs = {}
        for raw in self.rfile:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if line:
                name, _, value = line.partition("=")
                attrs[name] = value
                continue
            # An empty line ends a request; the connection may carry more.
            verdict = VERDICTS.get(attrs.get("recipient", "").lower(), "DUNNO")
            self.wfile.write(f"action={verdict}\n\n".encode())
            self.wfile.flush()
            attrs = {}


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


if __name__ == "__main__":
    Server(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
