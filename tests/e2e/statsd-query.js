#!/usr/bin/env node
// Ask the statsd management port one question and print the answer (without
// the closing "END" line). statsd never closes the connection itself, so read
// until a line "END" and hang up. "health" and "help" get a single answer
// without END (statsd 0.9.0): for them the first line is the whole answer.
// "config" has no END either and is not supported.
//
// Usage: node statsd-query.js <command> [--json]
//   command   gauges | counters | timers | stats | health | config | ...
//   --json    print one line of JSON: for gauges/counters/timers instead of
//             statsd's util.inspect() text (which wraps once it is long); for
//             stats/health the "key: value" lines as {"key": value}.
// Env: STATSD_MGMT_PORT (default 18126). Exit: 0 ok, 1 connection/timeout
// error, 2 usage.
"use strict";
const net = require("net");

const [cmd, flag] = process.argv.slice(2);
if (!cmd || (flag && flag !== "--json")) {
  process.stderr.write("usage: statsd-query.js <command> [--json]\n");
  process.exit(2);
}
const oneLine = cmd === "health" || cmd === "help";
const port = parseInt(process.env.STATSD_MGMT_PORT || "18126", 10);
let buf = "";
const sock = net.connect({ host: "127.0.0.1", port }, () => sock.write(cmd + "\n"));
const timer = setTimeout(() => {
  process.stderr.write(`statsd-query: no END from 127.0.0.1:${port} within 5 s\n`);
  process.exit(1);
}, 5000);
sock.on("data", (d) => {
  buf += d.toString();
  const i = oneLine ? buf.indexOf("\n") + 1 : buf.search(/^END$/m);
  if (i <= 0) return;
  clearTimeout(timer);
  sock.destroy();
  const body = buf.slice(0, i);
  if (flag === "--json") {
    // The body is a JS object literal from util.inspect (single-quoted keys,
    // numbers or arrays of numbers): evaluate it in isolation, print as JSON.
    let value;
    if (/^\s*\{/.test(body)) {
      value = new Function(`"use strict"; return (${body});`)();
    } else {
      // "stats" / "health": lines "key: value" -> {"key": value}, numbers as numbers.
      value = {};
      for (const line of body.split("\n")) {
        const m = line.match(/^([^:]+): (.*)$/);
        if (m) value[m[1]] = /^-?\d+(\.\d+)?$/.test(m[2]) ? Number(m[2]) : m[2];
      }
    }
    process.stdout.write(JSON.stringify(value) + "\n");
  } else {
    process.stdout.write(body);
  }
});
sock.on("error", (e) => {
  process.stderr.write(`statsd-query: ${e.message}\n`);
  process.exit(1);
});
