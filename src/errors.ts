/**
 * Every error imagegate raises on purpose has a stable `code`, an HTTP `statusCode`
 * and, where one exists, the underlying `cause`. Routes turn them into OpenAI-shaped
 * bodies (`{"error":{"message","type","code"}}`), so clients such as Open WebUI and the
 * OpenAI SDK show a readable message instead of a bare status.
 */
export class ImagegateError extends Error {
  readonly code: string
  readonly statusCode: number
  readonly type: string

  constructor (code: string, statusCode: number, type: string, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'ImagegateError'
    this.code = code
    this.statusCode = statusCode
    this.type = type
  }

  /** The OpenAI-style body sent to clients. */
  toBody (): { error: { message: string, type: string, code: string } } {
    return { error: { message: this.message, type: this.type, code: this.code } }
  }
}

/** A user mistake in flags, environment or config file: printed as one line, no stack. */
export class ConfigError extends ImagegateError {
  constructor (message: string, options?: { cause?: unknown }) {
    super('ERR_CONFIG', 1, 'config_error', message, options)
    this.name = 'ConfigError'
  }
}

export const upstreamUnreachable = (cause: unknown): ImagegateError =>
  new ImagegateError('upstream_unreachable', 502, 'upstream_error', 'imagegate could not reach the upstream API', { cause })

export const upstreamTimeout = (cause: unknown): ImagegateError =>
  new ImagegateError('upstream_timeout', 504, 'upstream_error', 'the upstream API did not answer in time', { cause })

export const upstreamBroken = (cause: unknown): ImagegateError =>
  new ImagegateError('upstream_stream_error', 502, 'upstream_error', 'the upstream API ended the response early', { cause })

export const requestTooLarge = (limit: number): ImagegateError =>
  new ImagegateError('request_too_large', 413, 'invalid_request_error', `request body exceeds ${limit} bytes`)

export const loopDetected = (): ImagegateError =>
  new ImagegateError('loop_detected', 508, 'upstream_error', 'imagegate received a request it had forwarded itself: its upstream leads back to it; set --upstream to the agent backend')

/** An answer still running when the shutdown grace is over. */
export const answerCutByShutdown = (): ImagegateError =>
  new ImagegateError('server_shutting_down', 503, 'server_error', 'imagegate is shutting down; the answer was cut')

/** A request that arrives during shutdown: it never reaches the upstream, so it is safe to send again. */
export const refusedByShutdown = (): ImagegateError =>
  new ImagegateError('server_shutting_down', 503, 'server_error', 'imagegate is shutting down; the request was not forwarded, send it again')
