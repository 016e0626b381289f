/**
 * For the baseline servers (bench-bare-server.mjs, bench-signaling-bare.mjs,
 * bench-sfu-baseline.mjs): the port they are told to listen on and the line that says they
 * do, which servers.mjs's startBaseline waits for.
 */

/**
 * argv[2], else PORT, else 0 (any free port); exits 2 unless it is a port number.
 * @param {string} script its name, for the error message
 */
export function portArgument(script) {
  const raw = process.argv[2] ?? process.env.PORT ?? '0';
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`${script}: bad port ${JSON.stringify(raw)}`);
    process.exit(2);
  }
  return port;
}

/**
 * Prints `LISTENING <port>` (and `extra`) on stdout.
 * @param {import('node:net').AddressInfo | string | null} address the listening server's
 * @param {string} [extra]
 */
export function announceListening(address, extra = '') {
  if (!address || typeof address === 'string') throw new Error(`not listening on a TCP port: ${address}`);
  process.stdout.write(`LISTENING ${address.port}${extra}\n`);
}
