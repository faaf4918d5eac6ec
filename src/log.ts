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
  return pretty?.({ destination: settings.output ?? 1, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' })
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
