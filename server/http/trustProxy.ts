import { BlockList, isIP } from 'node:net';

/**
 * TRUST_PROXY: which peers may tell us the client's address in X-Forwarded-For.
 * `true` trusts every peer, `false` none, a list trusts the peers whose address
 * is in it (addresses, CIDRs, or the names loopback, linklocal, uniquelocal).
 *
 * The same function decides for Fastify (request.ip, the REST rate limit) and for
 * signaling (participants' client_ip), with @fastify/proxy-addr's rule: walk the
 * chain socket address, then X-Forwarded-For from the right, and stop at the
 * first address that is not a trusted proxy; that one is the client.
 */
export type TrustProxy = boolean | string[];
/** Fastify's TrustProxyFunction: is `address` (hop `hop`, 0 = the socket's peer) a trusted proxy? */
export type TrustFn = (address: string, hop: number) => boolean;

/** proxy-addr's named ranges. */
const NAMED: Record<string, string[]> = {
  loopback: ['127.0.0.1/8', '::1/128'],
  linklocal: ['169.254.0.0/16', 'fe80::/10'],
  uniquelocal: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7'],
};

/** '::ffff:10.0.0.1' → '10.0.0.1'; anything else as it is (trimmed). */
export function unmapIp(ip: string): string {
  const v = ip.trim();
  return /^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(v) ? v.slice(7) : v;
}

function addEntry(list: BlockList, entry: string): void {
  const [addr, prefix, extra] = entry.split('/');
  const ip = unmapIp(addr ?? '');
  const family = isIP(ip);
  if (family === 0 || extra !== undefined) throw new Error('not an IP address or CIDR');
  const type = family === 4 ? 'ipv4' : 'ipv6';
  if (prefix === undefined) {
    list.addAddress(ip, type);
    return;
  }
  const bits = Number(prefix);
  if (!/^\d{1,3}$/.test(prefix) || bits > (family === 4 ? 32 : 128)) throw new Error(`prefix must be 0-${family === 4 ? 32 : 128}`);
  list.addSubnet(ip, bits, type);
}

/** Why a TRUST_PROXY list entry is unusable, or undefined when it is an address, a CIDR or a range name. */
export function badTrustEntry(entry: string): string | undefined {
  if (NAMED[entry.toLowerCase()]) return undefined;
  try {
    addEntry(new BlockList(), entry);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

/** The trust function of a TRUST_PROXY setting (entries already checked by badTrustEntry). */
export function compileTrust(setting: TrustProxy): TrustFn {
  if (setting === true) return () => true;
  if (setting === false || setting.length === 0) return () => false;
  const list = new BlockList();
  for (const entry of setting) {
    for (const e of NAMED[entry.toLowerCase()] ?? [entry]) addEntry(list, e);
  }
  return (address) => {
    const ip = unmapIp(address);
    const family = isIP(ip);
    return family !== 0 && list.check(ip, family === 4 ? 'ipv4' : 'ipv6');
  };
}

/** What Fastify's trustProxy option gets: the booleans as they are, a list as its trust function. */
export function fastifyTrustProxy(setting: TrustProxy): boolean | TrustFn {
  return typeof setting === 'boolean' ? setting : compileTrust(setting);
}

/**
 * The client's address: the socket's peer, or, while that hop is a trusted proxy,
 * the next X-Forwarded-For entry from the right (proxy-addr's rule). With every
 * hop trusted it is the leftmost entry.
 */
export function forwardedClientIp(remoteAddress: string | undefined, forwardedFor: string | string[] | undefined, trust: TrustFn): string | undefined {
  if (!remoteAddress) return undefined;
  const header = Array.isArray(forwardedFor) ? forwardedFor.join(',') : (forwardedFor ?? '');
  const chain = [
    remoteAddress,
    ...header
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)
      .reverse(),
  ];
  let i = 0;
  while (i < chain.length - 1 && trust(chain[i]!, i)) i++;
  return chain[i];
}
