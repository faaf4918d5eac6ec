/**
 * Prometheus metrics for one server. Each server has a registry of its own, never
 * prom-client's global one, so that two servers in one process (tests, embedding)
 * never add to each other's counts. Labels hold route patterns and fixed reason strings
 * only, never a raw URL or a file name, so the number of series stays bounded whatever
 * clients and models send.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { FastifyInstance } from 'fastify'
import type { Rejection } from './files/resolver.js'
import { IMAGES_PREFIX } from './routes/images.js'

/** What happened to one reference the model wrote. */
export type ReferenceOutcome = 'rewritten' | 'in-code' | Rejection

/** Every outcome, so each series exists (at 0) from the first scrape. */
export const REFERENCE_OUTCOMES = [
  'rewritten', 'in-code', 'not-a-path', 'outside-roots', 'missing', 'not-a-file', 'extension', 'hostile', 'symlink-escape', 'unreadable'
] as const satisfies readonly ReferenceOutcome[]

// Fails to compile when a Rejection is added to the resolver without being listed above.
// eslint-disable-next-line @typescript-eslint/no-unused-vars -- a compile-time check: only its type is read
const everyOutcomeListed: [Exclude<ReferenceOutcome, typeof REFERENCE_OUTCOMES[number]>] extends [never] ? true : never = true

/**
 * Seconds until the upstream's response head. For chat this is the agent's time before
 * it starts answering, which runs from milliseconds (a cached model list) to minutes (a
 * tool-heavy run), hence the wide range.
 */
const UPSTREAM_FIRST_BYTE_BUCKETS = [0.005, 0.025, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300]

/** `route` label of a request no route matched (a URL the router cannot decode). */
export const UNMATCHED_ROUTE = 'unmatched'
/** `status` label of a request whose client went away before a response head was sent. */
export const ABORTED_STATUS = 'aborted'

/** One request as it ended, for the request and image-bytes counters. */
export interface RequestSummary {
  /** Node's HTTP parser accepts only known methods, so this label stays bounded. */
  method: string
  /** The route pattern (`/images/*`), undefined when no route matched. */
  route: string | undefined
  /** undefined when no response head was sent. */
  status: number | undefined
  /** The whole response was handed to the kernel. */
  finished: boolean
  /** The response's Content-Length header, as Fastify holds it. */
  contentLength: unknown
}

export interface MetricsOptions {
  /** Event streams running now, read at each scrape. */
  activeStreams: () => number
  /** Bytes in the store of inline images, read at each scrape. */
  storeBytes?: () => number
  /** Node's process metrics (CPU, memory, event loop, handles); on unless false. */
  processMetrics?: boolean
}

export interface Metrics {
  readonly registry: Registry
  /** Counts one request that ended (or was abandoned), and the image bytes it sent. */
  request: (summary: RequestSummary) => void
  /** Seconds from sending a request upstream to its response head. */
  upstreamFirstByte: (route: string | undefined, seconds: number) => void
  reference: (outcome: ReferenceOutcome) => void
  /** Counts one stored inline image removed to keep the store under its bound. */
  storeEviction: () => void
}

/** Where Prometheus scrapes. */
export const METRICS_PATH = '/metrics'

const IMAGES_ROUTE = `${IMAGES_PREFIX}/*`
const DIGITS = /^\d+$/

/**
 * How often the event loop's delay is sampled for the `nodejs_eventloop_lag_*` metrics,
 * in ms. prom-client's default of 10 ms is a timer that wakes the process 100 times a
 * second whether or not anything happens, which cost an idle sidecar CPU and every
 * paced stream an extra turn of the event loop per event or so. 100 ms still gives a
 * scrape every 15 s 150 samples.
 */
export const EVENT_LOOP_SAMPLE_MS = 100

export function createMetrics (options: MetricsOptions): Metrics {
  const registry = new Registry()
  if (options.processMetrics !== false) collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS })

  const requests = new Counter({
    name: 'imagegate_http_requests_total',
    help: 'HTTP requests by route pattern, method and status (aborted: the client left before a response head).',
    labelNames: ['route', 'method', 'status'] as const,
    registers: [registry]
  })
  // eslint-disable-next-line no-new -- a metric registers itself in `registers` and reads its value in `collect`; nothing else holds it
  new Gauge({
    name: 'imagegate_active_streams',
    help: 'Event streams being proxied now.',
    registers: [registry],
    collect () { this.set(options.activeStreams()) }
  })
  const firstByte = new Histogram({
    name: 'imagegate_upstream_first_byte_seconds',
    help: 'Seconds from sending a request upstream to its response head, by route pattern.',
    labelNames: ['route'] as const,
    buckets: UPSTREAM_FIRST_BYTE_BUCKETS,
    registers: [registry]
  })
  const references = new Counter({
    name: 'imagegate_references_total',
    help: 'References to files in answers: rewritten, or left alone and why.',
    labelNames: ['outcome'] as const,
    registers: [registry]
  })
  for (const outcome of REFERENCE_OUTCOMES) references.inc({ outcome }, 0)
  const imageBytes = new Counter({
    name: 'imagegate_image_bytes_total',
    help: 'Body bytes of /images responses sent whole (200 and 206 to GET).',
    registers: [registry]
  })

  const { storeBytes } = options
  if (storeBytes !== undefined) {
    // eslint-disable-next-line no-new -- a metric registers itself in `registers` and reads its value in `collect`; nothing else holds it
    new Gauge({
      name: 'imagegate_store_bytes',
      help: 'Bytes of the inline images kept in the store folder.',
      registers: [registry],
      collect () { this.set(storeBytes()) }
    })
  }
  const evictions = new Counter({
    name: 'imagegate_store_evictions_total',
    help: 'Stored inline images removed, least recently used first, to keep the store under --store-max-bytes.',
    registers: [registry]
  })

  return {
    registry,
    request (summary) {
      const route = summary.route ?? UNMATCHED_ROUTE
      requests.inc({ route, method: summary.method, status: summary.status === undefined ? ABORTED_STATUS : String(summary.status) })
      if (route === IMAGES_ROUTE && summary.method === 'GET' && summary.finished && (summary.status === 200 || summary.status === 206)) {
        const length = summary.contentLength
        const bytes = typeof length === 'number' ? length : typeof length === 'string' && DIGITS.test(length) ? Number(length) : 0
        imageBytes.inc(bytes)
      }
    },
    upstreamFirstByte (route, seconds) {
      firstByte.observe({ route: route ?? UNMATCHED_ROUTE }, seconds)
    },
    reference (outcome) {
      references.inc({ outcome })
    },
    storeEviction () {
      evictions.inc()
    }
  }
}

/** `GET /metrics` in Prometheus' text format. */
export async function registerMetrics (app: FastifyInstance, options: { metrics: Metrics }): Promise<void> {
  const { registry } = options.metrics
  app.get(METRICS_PATH, async (_request, reply) => {
    const text = await registry.metrics()
    return reply.header('cache-control', 'no-store').type(registry.contentType).send(text)
  })
}
