import type { FastifyServerOptions } from 'fastify'
import type { DestinationStream } from 'pino'
import type { LogLevel } from './config/options.js'

/**
 * Every place a secret could reach a log line. Request lines are written by imagegate
 * itself and never carry headers, so these are the second line of defence (an error
 * object that captured headers, an options object logged by mistake).
 */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  'req.headers["api-key"]',
  'headers.authorization',
  'headers.cookie',
  'options.upstreamApiKey',
  'upstreamApiKey',
  'signingKey'
]

export interface LoggerSettings {
  level: LogLevel
  /** Where lines go (stdout by default); tests pass a sink to read them back. */
  stream?: DestinationStream | undefined
}

/** pino-pretty's factory, as far as imagegate uses it. */
export type PrettyFactory = (options: {
  destination?: DestinationStream | number
  translateTime?: string
  ignore?: string
  singleLine?: boolean
}) => DestinationStream

export interface DestinationSettings {
  /** Whether stdout is a terminal; `process.stdout.isTTY` by default. */
  isTTY?: boolean
  /** Loads pino-pretty, or resolves undefined when it is not installed. */
  load?: () => Promise<PrettyFactory | undefined>
  /** Where pretty lines go; stdout by default. */
  output?: DestinationStream
}

/**
 * Where log lines go: the given stream (tests read lines back from one); else readable
 * lines when stdout is a terminal and the optional pino-pretty is installed; else JSON
 * on stdout, which is what Docker, journald and log shippers expect. Redaction happens
 * in pino before a line reaches any of them.
 */
export async function logDestination (given: DestinationStream | undefined, settings: DestinationSettings = {}): Promise<DestinationStream | undefined> {
  if (given !== undefined) return given
  if (!(settings.isTTY ?? process.stdout.isTTY === true)) return undefined
  const pretty = await (settings.load ?? loadPretty)()
  // One event, one line, as in JSON: a request line's fields and a failure's cause stay
  // on the line of its message, so `grep` finds all of it.
  return pretty?.({ destination: settings.output ?? 1, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname', singleLine: true })
}

/** pino-pretty is an optional dependency: `npm ci --omit=optional` leaves it out. */
export async function loadPretty (specifier = 'pino-pretty'): Promise<PrettyFactory | undefined> {
  try {
    return ((await import(specifier)) as { default: PrettyFactory }).default
  } catch {
    return undefined
  }
}

export function loggerOptions (settings: LoggerSettings): Exclude<FastifyServerOptions['logger'], boolean | undefined> {
  return {
    level: settings.level,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    ...(settings.stream !== undefined ? { stream: settings.stream } : {})
  }
}

// Query strings may carry keys or signatures; the path is enough to follow a request.
export function pathOnly (url: string): string {
  const q = url.indexOf('?')
  return q === -1 ? url : url.slice(0, q)
}

/** How many causes deep `describeCause` follows a chain (undici nests one or two). */
const MAX_CAUSES = 4

/**
 * An expected failure (upstream refused, timed out, cut off) as one line of text: each
 * error's code and message, then its cause's. No stack: it would point into undici, and
 * the operator needs the reason, not the call path. Unforeseen errors are still logged
 * whole under `err`.
 */
export function describeCause (err: unknown): string {
  const parts: string[] = []
  let current: unknown = err
  for (let depth = 0; depth < MAX_CAUSES && current !== undefined && current !== null; depth++) {
    if (!(current instanceof Error)) {
      parts.push(String(current))
      break
    }
    const { code } = current as { code?: unknown }
    const message = current.message.replace(/\s+/g, ' ').trim()
    const named = typeof code === 'string' && !message.includes(code) ? `${code}: ${message}` : message
    parts.push(named === '' ? current.name : named)
    current = current.cause
  }
  return parts.length === 0 ? 'no cause given' : parts.join('; cause: ')
}
