/**
 * Whether an error means "Redis is not answering" (retry shortly) rather than
 * a bug: REST answers it with 503 CLUSTER_UNAVAILABLE and signaling with the
 * same code. These are ioredis's own errors for a connection that is down
 * (commands are not queued offline: cluster/cluster.ts), for a command cut off
 * by a lost connection or timed out against a stalled server, and Redis's
 * replies while it loads its data or is a read-only replica after a failover.
 */
const MESSAGES =
  /Connection is closed|Stream isn't writeable|enableOfflineQueue options is false|Command timed out|Reached the max retries per request|^LOADING |^READONLY |^MASTERDOWN /;

export function isRedisOutage(err: unknown): boolean {
  if (!err || typeof err !== 'object') return false;
  const e = err as { name?: string; message?: string };
  if (e.name === 'MaxRetriesPerRequestError') return true;
  return MESSAGES.test(e.message ?? '');
}
