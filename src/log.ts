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
