/**
 * `GET /healthz` (the process is up) and `GET /readyz` (the upstream answers, so a chat
 * can work). Liveness never depends on the agent: an orchestrator that restarts
 * imagegate because the agent is down would only add a second outage.
 */
import type { FastifyInstance } from 'fastify'
import type { Upstream } from '../upstream/client.js'

/** Liveness and readiness probes, which orchestrators ask every few seconds. */
export const HEALTH_PATHS = ['/healthz', '/readyz'] as const

/** How long the readiness probe waits for the upstream's answer. */
const DEFAULT_READINESS_TIMEOUT_MS = 2000
/** How long a readiness answer is reused, so that frequent probes do not reach the agent. */
export const DEFAULT_READINESS_TTL_MS = 5000

/** The upstream's state; `reason` is a fixed phrase or an error code, never a URL or a key. */
export type Readiness = { ready: true } | { ready: false, reason: string }

const READY: Readiness = Object.freeze({ ready: true })

export interface ReadinessOptions {
  /** Asks the upstream once; must not throw, but a rejection counts as unavailable. */
  probe: () => Promise<Readiness>
  ttlMs?: number
  /** Milliseconds clock, for tests. */
  now?: () => number
}

export interface ReadinessChecker {
  /** The last answer while it is younger than the TTL, else a fresh probe's. */
  check: () => Promise<Readiness>
}

/**
 * Caches the probe's answer (either way) for `ttlMs` after it arrives. Checks that come
 * while a probe runs share it, so a burst of probes reaches the upstream once.
 */
export function createReadiness (options: ReadinessOptions): ReadinessChecker {
  const { probe } = options
  const ttlMs = options.ttlMs ?? DEFAULT_READINESS_TTL_MS
  const now = options.now ?? Date.now
  let last: { at: number, result: Readiness } | undefined
  let running: Promise<Readiness> | undefined

  return {
    check () {
      if (last !== undefined && now() - last.at < ttlMs) return Promise.resolve(last.result)
      running ??= probe()
        .catch((): Readiness => ({ ready: false, reason: 'readiness probe failed' }))
        .then((result) => {
          last = { at: now(), result }
          running = undefined
          return result
        })
      return running
    }
  }
}

export interface ProbeOptions {
  upstream: Upstream
  /** Sent as a bearer token when set, as for proxied requests. */
  apiKey: string | undefined
  /** This instance's `Via` entry, as forwarded requests carry it: a loop answers 508. */
  via: string
  timeoutMs?: number
}

// Error codes are fixed identifiers (ECONNREFUSED, UND_ERR_SOCKET): safe to show.
const ERROR_CODE = /^[A-Z][A-Z0-9_]*$/

/** Readiness reasons for answers that say what to change rather than that the agent is down. */
const STATUS_REASONS: ReadonlyMap<number, string> = new Map([
  // An OpenAI-compatible API always has /models: the base URL is wrong (a path pasted
  // with an endpoint, a missing prefix), and every chat would 404 as well.
  [404, 'upstream answered 404 to GET /models: --upstream is not the API\'s base URL (such as http://host:8642/v1)'],
  [508, 'upstream answered 508: --upstream leads back to imagegate (a loop)']
])

/**
 * One cheap `GET <upstream>/models` through the proxy's own pool. Any other answer below
 * 500 means the agent is up: a 401 only says that this probe carries no valid key.
 */
export async function probeUpstream (options: ProbeOptions): Promise<Readiness> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_READINESS_TIMEOUT_MS
  const { upstream, apiKey, via } = options
  try {
    const { statusCode, body } = await upstream.dispatcher.request({
      path: upstream.pathFor('/models'),
      method: 'GET',
      headers: { via, ...(apiKey === undefined ? {} : { authorization: `Bearer ${apiKey}` }) },
      signal: AbortSignal.timeout(timeoutMs)
    })
    await body.dump()
    const reason = STATUS_REASONS.get(statusCode)
    if (reason !== undefined) return { ready: false, reason }
    return statusCode < 500 ? READY : { ready: false, reason: `upstream answered ${statusCode}` }
  } catch (err) {
    return { ready: false, reason: describeFailure(err, timeoutMs) }
  }
}

/** Why the upstream could not be asked, without the error's message (it may hold the URL). */
export function describeFailure (err: unknown, timeoutMs: number): string {
  const { name, code, cause } = (err ?? {}) as { name?: unknown, code?: unknown, cause?: { code?: unknown } }
  if (name === 'TimeoutError' || name === 'AbortError') return `upstream did not answer within ${timeoutMs / 1000} s`
  const found = [code, cause?.code].find((value): value is string => typeof value === 'string' && ERROR_CODE.test(value))
  return found === undefined ? 'upstream unreachable' : `upstream unreachable (${found})`
}

export interface HealthOptions {
  version: string
  readiness: ReadinessChecker
}

export async function registerHealth (app: FastifyInstance, options: HealthOptions): Promise<void> {
  const { version, readiness } = options
  const [healthz, readyz] = HEALTH_PATHS
  app.get(healthz, async () => ({ status: 'ok', version }))
  app.get(readyz, async (_request, reply) => {
    const result = await readiness.check()
    reply.header('cache-control', 'no-store')
    if (result.ready) return { status: 'ready' }
    return reply.code(503).send({ status: 'unavailable', reason: result.reason })
  })
}
