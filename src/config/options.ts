import { ConfigError } from '../errors.js'
import { redactUrl } from './urls.js'

/** pino's level names; `silent` turns logging off. */
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'

export const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']

/** How deliverable files reach the browser: a link to imagegate, or inline `data:` URIs. */
export type Mode = 'link' | 'data-uri'

export const MODES: readonly Mode[] = ['link', 'data-uri']

/**
 * Which compact rendering of an image browsers that ask for one get: WebP, AVIF (to
 * browsers that accept it, WebP to the rest), or none (`off`).
 */
export type CompactImages = 'webp' | 'avif' | 'off'

export const COMPACT_IMAGES: readonly CompactImages[] = ['webp', 'avif', 'off']

/**
 * Options after every source (flags > env > file > defaults) was merged and validated.
 * Each property but hermesHome is an option declared in option-table.ts; a check there
 * fails to compile when the two differ.
 */
export interface Options {
  /** Upstream base URL, normalized: no trailing slash, path ends with `/v1`. */
  upstream: URL
  /** Absolute cache folders whose files may be delivered. */
  cacheDirs: string[]
  port: number
  host: string
  /** Base URL the browser uses to reach imagegate, no trailing slash; undefined = derive from the listening address. */
  publicUrl: string | undefined
  /** Replaces the client's Authorization header upstream when set. */
  upstreamApiKey: string | undefined
  logLevel: LogLevel
  /** Key for signing image links; undefined = generated once and kept in `stateDir`. */
  signingKey: string | undefined
  /** Serve plain names without a signature. */
  noSigning: boolean
  /** Folder for state that must survive restarts (the generated signing key). */
  stateDir: string
  /** Deliver SVG files (served sandboxed). */
  allowSvg: boolean
  /** Seconds running streams may take to finish on SIGTERM/SIGINT. */
  shutdownGrace: number
  /** Seconds of upstream silence before a `: keepalive` comment is sent; 0 = never. */
  keepalive: number
  mode: Mode
  /** Largest file inlined as a `data:` URI in `data-uri` mode; larger ones become links. */
  inlineMaxBytes: number
  /** Writable folder for images decoded from upstream `data:` URIs. */
  storeDir: string
  /** Largest decoded upstream `data:` image that is stored; larger ones pass through. */
  dataImageMaxBytes: number
  /** Bound on the store's files together; the least recently used go first. */
  storeMaxBytes: number
  /** Compact renderings of images for browsers that accept them. */
  compactImages: CompactImages
  /** Encoder quality of compact renderings, 1–100. */
  compactQuality: number
  /** Compact renderings of wider images are scaled down to this width; 0 = never. */
  compactMaxWidth: number
  /** Bound on the folder of compact renderings (`<state-dir>/compact`). */
  compactMaxBytes: number
  /** Drop named SSE events (`event: hermes.tool.progress`) from chat completions streams. */
  dropNamedEvents: boolean
  /**
   * The HERMES_HOME searched for cache folders when no source named any: it is searched
   * again for folders created later. undefined when cache folders were given.
   */
  hermesHome: string | undefined
}

/** hermes-agent's api_server listens here out of the box. */
export const DEFAULT_UPSTREAM = 'http://127.0.0.1:8642/v1'
export const DEFAULT_PORT = 8090
/** Loopback only: exposing the proxy (and so the cache folders) is a deliberate choice. */
export const DEFAULT_HOST = '127.0.0.1'
export const DEFAULT_LOG_LEVEL: LogLevel = 'info'
/** XDG's state folder: links stored in chat history must survive restarts. */
export const DEFAULT_STATE_DIR = '~/.local/state/imagegate'
/**
 * Below Docker's 10 s stop timeout (and Kubernetes' 30 s), with room for the half second
 * cut streams get to send their error event, so imagegate ends them before it is killed.
 */
export const DEFAULT_SHUTDOWN_GRACE = 8
/** Below the 30–60 s idle timeouts of common load balancers and of Open WebUI's reader. */
export const DEFAULT_KEEPALIVE = 15
export const DEFAULT_MODE: Mode = 'link'
/** Keeps one SSE line under the 128 KiB that Open WebUI's reader accepted before v0.11. */
export const DEFAULT_INLINE_MAX_BYTES = 96 * 1024
export const DEFAULT_DATA_IMAGE_MAX_BYTES = 20 * 1024 * 1024
export { DEFAULT_STORE_MAX_BYTES } from '../files/data-store.js'
/**
 * WebP is the default: about 100 ms for a 1024×1024 picture on one core here; AVIF
 * (at effort 2) takes two to three times as long, on a machine where encodes compete
 * with the streams for two cores.
 */
export const DEFAULT_COMPACT_IMAGES: CompactImages = 'webp'
/** libwebp's own default; generated pictures show no visible loss at it. */
export const DEFAULT_COMPACT_QUALITY = 80
/** Twice a chat column on a high-density screen; wider pictures are scaled down. */
export const DEFAULT_COMPACT_MAX_WIDTH = 2048
export const DEFAULT_COMPACT_MAX_BYTES = 256 * 1024 * 1024
export const MAX_QUALITY = 100
/** libwebp's largest dimension. */
export const MAX_WIDTH = 16383
/** An HMAC key shorter than this is guessable. */
const MIN_SIGNING_KEY_LENGTH = 32
/**
 * A key of 32+ characters with fewer different ones was typed, not generated: 32 random
 * hex digits use 14 on average, and fewer than 8 in about one key of 30 million.
 */
const MIN_SIGNING_KEY_DISTINCT = 8
// config.example.yaml's `change-me-to-32-or-more-random-characters`, and variants of it.
const PLACEHOLDER_KEY = /^change-?me/i
// `abcabcabc…`: the whole key is one shorter text written again and again.
const REPEATED_PATTERN = /^([\s\S]+?)\1+$/
const GENERATE_KEY = 'e.g. openssl rand -hex 32'
const MAX_SECONDS = 24 * 3600

export const MAX_PORT = 65535
const DIGITS = /^\d+$/
// Host names, IPv4 and IPv6 literals (with an optional `%zone`), as Node's listen() takes
// them: no brackets, no scheme, no port.
const HOST = /^[a-z0-9._:%-]+$/i
// The key becomes an HTTP header value; whitespace or line breaks would be rejected there
// at the first request, so they are refused at start instead.
const API_KEY = /^[\x21-\x7e]+$/

/** Where a raw value came from, so that messages name what the user has to change. */
export interface Origin {
  /** `--port`, `IMAGEGATE_PORT` or `config.yaml: port`. */
  where: string
  /** 1-based line in the config file, when the value came from one. */
  line?: number | undefined
}

/** A value as a source gave it, before validation. */
export interface Raw {
  value: unknown
  origin: Origin
}

/** A one-line ConfigError: `<where>: <text> (line N)`. */
export function configError (origin: Origin, text: string): ConfigError {
  const line = origin.line === undefined ? '' : ` (line ${origin.line})`
  return new ConfigError(`${origin.where}: ${text}${line}`)
}

/** `<where>: <rule>, got <value>`; the value is quoted text or a type name. */
export function invalid (origin: Origin, rule: string, got: string): ConfigError {
  return configError(origin, `${rule}, got ${got}`)
}

/** How a value appears after "got": quoted text, a number, or the name of its type. */
export function show (value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value)
  if (typeof value === 'number' || typeof value === 'boolean') return String(value)
  return typeName(value)
}

/** The type of a YAML value in words, for messages that must not show the value itself. */
export function typeName (value: unknown): string {
  if (Array.isArray(value)) return 'a list'
  if (value === null) return 'null'
  if (typeof value === 'object') return 'a mapping'
  return `a ${typeof value}`
}

/** The value as a string; YAML may give any type. */
export function expectString ({ value, origin }: Raw): string {
  if (typeof value !== 'string') throw invalid(origin, 'must be a string', typeName(value))
  return value
}

/**
 * Endpoints a client appends to the base URL. A URL pasted from an API's documentation
 * often ends in one; imagegate would append `/v1` to it and every request would 404.
 * `/chat/completions` before `/completions`, so the message names the whole endpoint.
 */
const UPSTREAM_ENDPOINTS = ['/chat/completions', '/responses', '/models', '/completions', '/embeddings'] as const

/** Upstream base URL, normalized so routes can append `/chat/completions` and friends. */
export function parseUpstream (raw: Raw): URL {
  const url = parseHttpUrl(raw)
  const path = url.pathname.replace(/\/+$/, '')
  const endpoint = UPSTREAM_ENDPOINTS.find(name => path.toLowerCase().endsWith(name))
  if (endpoint !== undefined) {
    const base = new URL(url)
    base.pathname = withVersion(path.slice(0, -endpoint.length))
    throw configError(raw.origin, `ends in the endpoint ${JSON.stringify(endpoint)}; give the base URL, e.g. ${JSON.stringify(redactUrl(base))}`)
  }
  url.pathname = withVersion(path)
  return url
}

function withVersion (path: string): string {
  return path.endsWith('/v1') ? path : `${path}/v1`
}

/** Public base URL as text without a trailing slash, so `${publicUrl}/images/…` is right. */
export function parsePublicUrl (raw: Raw): string {
  const url = parseHttpUrl(raw)
  // The public URL ends up in every image link, and so in chat history and screenshots.
  if (url.username !== '' || url.password !== '') {
    throw configError(raw.origin, `must not contain a user name or password, got ${JSON.stringify(redactUrl(url))}`)
  }
  return url.origin + url.pathname.replace(/\/+$/, '')
}

function parseHttpUrl (raw: Raw): URL {
  const text = expectString(raw)
  const shown = JSON.stringify(redactUrl(text))
  let url: URL
  try {
    url = new URL(text)
  } catch {
    throw invalid(raw.origin, 'must be an absolute http or https URL', shown)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw invalid(raw.origin, 'must be an absolute http or https URL', shown)
  }
  // `url.search` is empty for a bare `?`, the href is not.
  if (url.href.includes('?') || url.hash !== '') {
    throw invalid(raw.origin, 'must not have a query or fragment', shown)
  }
  return url
}

export function parseHost (raw: Raw): string {
  const host = expectString(raw)
  if (!HOST.test(host)) {
    throw invalid(raw.origin, 'must be a host name or IP address (IPv6 without brackets)', show(host))
  }
  return host
}

/**
 * One of `choices`, in any case, since environment variables are often written in
 * capitals.
 */
export function parseChoice<T extends string> (raw: Raw, choices: readonly T[]): T {
  const text = expectString(raw)
  const choice = choices.find(name => name === text.toLowerCase())
  if (choice === undefined) throw invalid(raw.origin, `must be one of ${choices.join(', ')}`, show(text))
  return choice
}

/** The key is a secret: messages give its type at most, never its text. */
export function parseApiKey ({ value, origin }: Raw): string {
  if (typeof value !== 'string') throw invalid(origin, 'must be a string', typeName(value))
  if (!API_KEY.test(value)) throw configError(origin, 'must be non-empty printable text without spaces')
  return value
}

/** true/false from a flag (already boolean), YAML (boolean) or text (env). */
export function parseBoolean ({ value, origin }: Raw): boolean {
  if (typeof value === 'boolean') return value
  if (typeof value === 'string') {
    const text = value.toLowerCase()
    if (['true', '1', 'yes', 'on'].includes(text)) return true
    if (['false', '0', 'no', 'off'].includes(text)) return false
  }
  throw invalid(origin, 'must be true or false', show(value))
}

/** A duration in seconds: a non-negative number, fractions allowed, at most a day. */
export function parseSeconds ({ value, origin }: Raw): number {
  const number = typeof value === 'string' && /^\d+(\.\d+)?$/.test(value) ? Number(value) : value
  if (typeof number !== 'number' || !Number.isFinite(number) || number < 0 || number > MAX_SECONDS) {
    throw invalid(origin, `must be a number of seconds from 0 to ${MAX_SECONDS}`, show(value))
  }
  return number
}

/** A size in bytes: a non-negative integer. */
export function parseBytes ({ value, origin }: Raw): number {
  const number = typeof value === 'string' && DIGITS.test(value) ? Number(value) : value
  if (typeof number !== 'number' || !Number.isSafeInteger(number) || number < 0) {
    throw invalid(origin, 'must be a whole number of bytes', show(value))
  }
  return number
}

/** An integer from `min` to `max`, from YAML (a number) or text. */
export function parseIntegerIn ({ value, origin }: Raw, min: number, max: number): number {
  const number = typeof value === 'string' && DIGITS.test(value) ? Number(value) : value
  if (typeof number !== 'number' || !Number.isInteger(number) || number < min || number > max) {
    throw invalid(origin, `must be an integer from ${min} to ${max}`, show(value))
  }
  return number
}

/**
 * A secret like the API key: never shown, long enough that it cannot be guessed, and not
 * one anybody can guess anyway: the placeholder from config.example.yaml (whoever read
 * the example could sign links to every cached file) or a key typed to get past the
 * length rule.
 */
export function parseSigningKey (raw: Raw): string {
  const key = parseApiKey(raw)
  const fail = (rule: string): ConfigError => configError(raw.origin, `${rule} (${GENERATE_KEY})`)
  if (key.length < MIN_SIGNING_KEY_LENGTH) throw fail(`must be at least ${MIN_SIGNING_KEY_LENGTH} characters`)
  if (PLACEHOLDER_KEY.test(key)) throw fail('must be a secret of your own, not the placeholder from config.example.yaml')
  const distinct = new Set(key).size
  if (distinct < MIN_SIGNING_KEY_DISTINCT) {
    throw fail(`must use at least ${MIN_SIGNING_KEY_DISTINCT} different characters, got ${distinct}`)
  }
  if (REPEATED_PATTERN.test(key)) throw fail('must not be a shorter text repeated')
  if (runLength(key) * 2 > key.length) throw fail('must not be mostly runs such as "aaaa", "abcd" or "4321"')
  return key
}

/** Characters that repeat or continue the character before them (`aa`, `ab`, `ba`). */
function runLength (key: string): number {
  let count = 0
  for (let i = 1; i < key.length; i++) {
    if (Math.abs(key.charCodeAt(i) - key.charCodeAt(i - 1)) <= 1) count++
  }
  return count
}
