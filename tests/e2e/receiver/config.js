/*
 * Config for the statsd 0.9.0 receiver used by the postfix-dogstatsd e2e tests
 * (started by ../statsd-start.sh). statsd does not require() this file: it
 * evaluates it as `config = <this file>`, so it must be ONE object-literal
 * expression (comments allowed, no statements). process.env is reachable.
 *
 * Env:
 *   STATSD_PORT          UDP port for metrics       (default 18125)
 *   STATSD_MGMT_PORT     TCP management port        (default 18126)
 *   STATSD_KEY_SANITIZE  "0" keeps keys exactly as received after tag folding;
 *                        default sanitises them (see statsd-start.sh notes:
 *                        "/" becomes "-", characters outside [A-Za-z0-9_.;=-]
 *                        are dropped).
 * Everything is bound to 127.0.0.1. flushInterval is 10 minutes so the values
 * stay put while a test reads them (gauges survive flushes anyway; counters
 * would be reset by a flush).
 */
{
  address: "127.0.0.1",
  port: parseInt(process.env.STATSD_PORT || "18125", 10),
  mgmt_address: "127.0.0.1",
  mgmt_port: parseInt(process.env.STATSD_MGMT_PORT || "18126", 10),
  backends: ["./backends/console"],
  flushInterval: 600000,
  keyNameSanitize: process.env.STATSD_KEY_SANITIZE !== "0",
  console: { prettyprint: false },
  automaticConfigReload: false
}
