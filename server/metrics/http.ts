import type { FastifyInstance } from 'fastify';
import type { Metrics } from './metrics';

/** Requests that matched no route share one label value, so unknown URLs cannot grow the series. */
export const UNMATCHED_ROUTE = 'unmatched';

/**
 * Counts every HTTP request when its response is sent, by method, the route
 * pattern that served it (`/calls/:id`, never the URL) and status code, and
 * observes its duration (Fastify's own reply.elapsedTime). Register it on the
 * root instance before the routes.
 */
export function registerHttpMetrics(app: FastifyInstance, metrics: Metrics): void {
  app.addHook('onResponse', (request, reply, done) => {
    const route = request.routeOptions.url ?? UNMATCHED_ROUTE;
    const method = request.method;
    metrics.httpRequests.inc({ method, route, status: reply.statusCode });
    metrics.httpDuration.observe({ method, route }, reply.elapsedTime / 1000);
    done();
  });
}
