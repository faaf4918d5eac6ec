import { Pool, errors as undiciErrors } from 'undici'
import type { Dispatcher } from 'undici'
import { HttpError, upstreamTimeout, upstreamUnreachable } from '../errors.js'

/**
 * Idle limits, not total ones: an agent run streams for minutes, and a non-streaming call
 * can think for minutes before its headers. Ten silent minutes means the upstream is gone.
 */
export const DEFAULT_HEADERS_TIMEOUT = 10 * 60_000
export const DEFAULT_BODY_TIMEOUT = 10 * 60_000
const DEFAULT_CONNECT_TIMEOUT = 10_000

export interface UpstreamOptions {
  /** Normalized base URL, path ending in `/v1`. */
  base: URL
  headersTimeout?: number
  bodyTimeout?: number
  connectTimeout?: number
}

export interface Upstream {
  readonly dispatcher: Dispatcher
  readonly headersTimeout: number
  readonly bodyTimeout: number
  /** Upstream path (with query) for a client URL. */
  pathFor: (clientUrl: string) => string
  close: () => Promise<void>
}

// Runs of slashes in a client path (`//v1//models`) are collapsed before mapping.
const SLASH_RUN = /\/{2,}/g
const BACKSLASH = /\\/g
// Only used to resolve a path; nothing is ever sent there.
const PATH_BASE = 'http://upstream.invalid'
// A path of plain segments (letters, digits, `-`, `_`), as every OpenAI endpoint is: no
// dot segment, escape, backslash or run of slashes, so the URL parse below would give it
// back unchanged. It skips that parse, which is most of this mapping's cost per request.
const PLAIN_PATH = /^(?:\/[\w-]+)*\/?$/
// The client may or may not include the API version; the base always does.
const VERSION_PREFIX = /^\/v1(?=\/|$)/

export function createUpstream (options: UpstreamOptions): Upstream {
  const { base } = options
  const headersTimeout = options.headersTimeout ?? DEFAULT_HEADERS_TIMEOUT
  const bodyTimeout = options.bodyTimeout ?? DEFAULT_BODY_TIMEOUT
  const dispatcher = new Pool(base.origin, {
    connect: { timeout: options.connectTimeout ?? DEFAULT_CONNECT_TIMEOUT },
    headersTimeout,
    bodyTimeout
  })
  const basePath = base.pathname.replace(/\/+$/, '')
  return {
    dispatcher,
    headersTimeout,
    bodyTimeout,
    pathFor (clientUrl) {
      const q = clientUrl.indexOf('?')
      const target = q === -1 ? clientUrl : clientUrl.slice(0, q)
      // Dot segments (`..`, `%2e%2e`, `\..`) are resolved as WHATWG URL does before the
      // base path is prepended, so a client cannot climb out of it (`/v1/../admin` would
      // reach a sibling of an `/api/v1` base with the configured key). The leading slash
      // and the collapsed runs keep any target (`*`, `//v1`, `/\host`, `http://host/…`) a
      // path, never a host, and make the parse one that cannot throw. Backslashes are
      // slashes to the parser; made so first, `/\` cannot start a host either.
      const path = PLAIN_PATH.test(target) && target.length > 0
        ? target
        : new URL(('/' + target).replace(BACKSLASH, '/').replace(SLASH_RUN, '/'), PATH_BASE).pathname.replace(SLASH_RUN, '/')
      const query = q === -1 ? '' : clientUrl.slice(q)
      return basePath + path.replace(VERSION_PREFIX, '') + query
    },
    close: () => dispatcher.close()
  }
}

/** Maps a failure before the upstream's headers arrived to the error the client gets. */
export function classifyUpstreamError (err: unknown): HttpError {
  if (err instanceof HttpError) return err
  if (err instanceof undiciErrors.HeadersTimeoutError || err instanceof undiciErrors.ConnectTimeoutError) {
    return upstreamTimeout(err)
  }
  return upstreamUnreachable(err)
}
