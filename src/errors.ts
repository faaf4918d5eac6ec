/**
 * Every error imagegate raises on purpose, and every error body it sends. Each code a
 * client can see is a row of `ERRORS`, with its HTTP status, its OpenAI error `type` and
 * its message; routes, the Fastify error handlers and the SSE error event all build
 * their bodies here (`{"error":{"message","type","code"}}`), so clients such as Open
 * WebUI and the OpenAI SDK show a readable message instead of a bare status, and the
 * README's Errors table can be checked against this one.
 */

/** The OpenAI error `type`s imagegate uses. */
export type ErrorType = 'upstream_error' | 'invalid_request_error' | 'server_error' | 'not_found'

/** Every code imagegate can send to a client. */
export type ErrorCode =
  | 'upstream_unreachable'
  | 'upstream_timeout'
  | 'upstream_stream_error'
  | 'upstream_event_too_large'
  | 'loop_detected'
  | 'request_too_large'
  | 'server_shutting_down'
  | 'not_found'
  | 'precondition_failed'
  | 'range_not_satisfiable'
  | 'malformed_url'
  | 'unsupported_media_type'
  | 'missing_content_type'
  | 'malformed_request'
  | 'request_header_too_large'
  | 'request_timeout'
  | 'internal_error'

/** How a request ended by shutdown is described: cut while running, or never forwarded. */
export type ShutdownMoment = 'answer-cut' | 'not-forwarded'

interface ErrorSpec {
  readonly status: number
  readonly type: ErrorType
  /** The message, or its builder for codes whose message carries a value. */
  readonly message: string | ((arg: never) => string)
}

/** What a client is told for each code. */
export const ERRORS = {
  upstream_unreachable: { status: 502, type: 'upstream_error', message: 'imagegate could not reach the upstream API' },
  upstream_timeout: { status: 504, type: 'upstream_error', message: 'the upstream API did not answer in time' },
  upstream_stream_error: { status: 502, type: 'upstream_error', message: 'the upstream API ended the response early' },
  // Sent only as an SSE error event: the 200 went out with the stream's first bytes.
  upstream_event_too_large: { status: 502, type: 'upstream_error', message: 'the upstream sent an event larger than imagegate accepts' },
  loop_detected: { status: 508, type: 'upstream_error', message: 'imagegate received a request it had forwarded itself: its upstream leads back to it; set --upstream to the agent backend' },
  request_too_large: { status: 413, type: 'invalid_request_error', message: (limit: number) => `request body exceeds ${limit} bytes` },
  server_shutting_down: {
    status: 503,
    type: 'server_error',
    // A request never forwarded is safe to send again; one cut while running is not.
    message: (moment: ShutdownMoment) => moment === 'answer-cut'
      ? 'imagegate is shutting down; the answer was cut'
      : 'imagegate is shutting down; the request was not forwarded, send it again'
  },
  // Fixed, like every /images body: it can never echo the request's name or path.
  not_found: { status: 404, type: 'not_found', message: 'not found' },
  precondition_failed: { status: 412, type: 'invalid_request_error', message: 'precondition failed' },
  range_not_satisfiable: { status: 416, type: 'invalid_request_error', message: 'range not satisfiable' },
  malformed_url: { status: 400, type: 'invalid_request_error', message: 'the request URL is malformed' },
  unsupported_media_type: { status: 415, type: 'invalid_request_error', message: 'the Content-Type header is not a valid media type' },
  // RFC 10008 (QUERY), section 2: the server must refuse a QUERY without a Content-Type.
  missing_content_type: { status: 400, type: 'invalid_request_error', message: 'a QUERY request must have a Content-Type header' },
  malformed_request: { status: 400, type: 'invalid_request_error', message: 'the request is not valid HTTP' },
  request_header_too_large: { status: 431, type: 'invalid_request_error', message: 'the request head is larger than imagegate accepts' },
  request_timeout: { status: 408, type: 'invalid_request_error', message: 'the request head did not arrive in time' },
  // Never the error's own message: it may hold a path or a URL.
  internal_error: { status: 500, type: 'server_error', message: 'internal error' }
} as const satisfies Record<ErrorCode, ErrorSpec>

/** The value a code's message is built from; none for a fixed message. */
export type MessageArgs<C extends ErrorCode> = (typeof ERRORS)[C]['message'] extends (arg: infer A) => string ? [A] : []

/** The OpenAI-shaped body of an error. */
export interface ErrorBody {
  readonly error: { readonly message: string, readonly type: ErrorType, readonly code: ErrorCode }
}

/** The message of `code`, built from `args` where it carries a value. */
export function errorMessage<C extends ErrorCode> (code: C, ...args: MessageArgs<C>): string {
  const { message } = ERRORS[code] as ErrorSpec
  return typeof message === 'string' ? message : (message as (arg: unknown) => string)(args[0])
}

function bodyOf (code: ErrorCode, message: string): ErrorBody {
  return Object.freeze({ error: Object.freeze({ message, type: ERRORS[code].type, code }) })
}

/** The body a client gets for `code`, frozen: fixed bodies can be built once and shared. */
export function errorBody<C extends ErrorCode> (code: C, ...args: MessageArgs<C>): ErrorBody {
  return bodyOf(code, errorMessage(code, ...args))
}

/** The whole 404 body, the same for every miss so it can never echo the request. */
export const NOT_FOUND_BODY = errorBody('not_found')

/**
 * The base of every error imagegate raises on purpose: each has a stable `code` and,
 * where one exists, the underlying `cause`. Programs that embed imagegate can tell them
 * apart from bugs with `instanceof`.
 */
export class ImagegateError extends Error {
  readonly code: string

  constructor (code: string, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'ImagegateError'
    this.code = code
  }
}

/** An error a client is answered with: a row of `ERRORS`, and the cause behind it. */
export class HttpError extends ImagegateError {
  declare readonly code: ErrorCode
  readonly statusCode: number
  readonly type: ErrorType

  constructor (code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options)
    this.name = 'HttpError'
    this.statusCode = ERRORS[code].status
    this.type = ERRORS[code].type
  }

  /** The OpenAI-style body sent to clients. */
  toBody (): ErrorBody {
    return bodyOf(this.code, this.message)
  }
}

/** Exit code for a user mistake in flags, environment or config file (as in getopt tools). */
const EXIT_USAGE = 2

/**
 * A user mistake in flags, environment or config file: printed as one line, no stack,
 * and the process exits with `exitCode`. It stops imagegate before it serves anything,
 * so it has no HTTP status.
 */
export class ConfigError extends ImagegateError {
  readonly exitCode: number = EXIT_USAGE

  constructor (message: string, options?: { cause?: unknown }) {
    super('ERR_CONFIG', message, options)
    this.name = 'ConfigError'
  }
}

function httpError<C extends ErrorCode> (code: C, cause: unknown, ...args: MessageArgs<C>): HttpError {
  return new HttpError(code, errorMessage(code, ...args), cause === undefined ? undefined : { cause })
}

// One factory per code raised as an error, named after it. The 412 and 416 of `/images`
// are only ever sent as fixed bodies (`errorBody`), so they have none.

export const upstreamUnreachable = (cause: unknown): HttpError => httpError('upstream_unreachable', cause)
export const upstreamTimeout = (cause: unknown): HttpError => httpError('upstream_timeout', cause)
/** An upstream body that failed or ended before the answer was whole. */
export const upstreamStreamError = (cause?: unknown): HttpError => httpError('upstream_stream_error', cause)
export const upstreamEventTooLarge = (): HttpError => httpError('upstream_event_too_large', undefined)
export const loopDetected = (): HttpError => httpError('loop_detected', undefined)
export const requestTooLarge = (limit: number): HttpError => httpError('request_too_large', undefined, limit)
/**
 * A request ended by shutdown: an answer still running when the grace is over
 * (`answer-cut`), or a request that arrived during shutdown and never reached the
 * upstream, so it is safe to send again (`not-forwarded`).
 */
export const serverShuttingDown = (moment: ShutdownMoment): HttpError => httpError('server_shutting_down', undefined, moment)
export const notFound = (cause?: unknown): HttpError => httpError('not_found', cause)
export const malformedUrl = (cause?: unknown): HttpError => httpError('malformed_url', cause)
export const unsupportedMediaType = (cause?: unknown): HttpError => httpError('unsupported_media_type', cause)
export const missingContentType = (cause?: unknown): HttpError => httpError('missing_content_type', cause)
export const malformedRequest = (cause?: unknown): HttpError => httpError('malformed_request', cause)
export const requestHeaderTooLarge = (cause?: unknown): HttpError => httpError('request_header_too_large', cause)
export const requestTimeout = (cause?: unknown): HttpError => httpError('request_timeout', cause)
export const internalError = (cause?: unknown): HttpError => httpError('internal_error', cause)

/**
 * The codes of errors imagegate does not raise itself but answers: Fastify's
 * (FST_ERR_…) and those of Node's HTTP parser, which reach Fastify's `clientError`
 * handler. Their own bodies have other shapes, and their codes and messages are the
 * framework's, not imagegate's.
 */
const FOREIGN_CODES: ReadonlyMap<string, (cause: unknown) => HttpError> = new Map([
  ['FST_ERR_BAD_URL', malformedUrl],
  ['FST_ERR_CTP_INVALID_MEDIA_TYPE', unsupportedMediaType],
  ['FST_ERR_ROUTE_MISSING_CONTENT_TYPE', missingContentType],
  ['FST_ERR_NOT_FOUND', notFound],
  ['HPE_HEADER_OVERFLOW', requestHeaderTooLarge],
  ['ERR_HTTP_REQUEST_TIMEOUT', requestTimeout]
])

/**
 * The error a client is answered with for `err`: itself when it is one, a row of the
 * table for an error of Fastify or Node that imagegate knows, else `fallback(err)`
 * (an internal error, or a malformed request for the HTTP parser).
 */
export function toHttpError (err: unknown, fallback: (cause: unknown) => HttpError = internalError): HttpError {
  if (err instanceof HttpError) return err
  const code = (err as { code?: unknown } | null)?.code
  const known = typeof code === 'string' ? FOREIGN_CODES.get(code) : undefined
  return (known ?? fallback)(err)
}
