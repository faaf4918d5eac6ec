import type { IncomingHttpHeaders } from 'node:http'

/**
 * Hop-by-hop headers (RFC 9110 7.6.1) belong to one connection and are never forwarded.
 * `host` is set by the client for the upstream; `content-length` is recomputed where a
 * body changes.
 */
const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'proxy-connection',
  'te', 'trailer', 'transfer-encoding', 'upgrade', 'host', 'http2-settings'
])

export interface RequestHeaderOptions {
  /** Replaces the client's Authorization header when set. */
  apiKey: string | undefined
  /** The response will be parsed, so ask for it uncompressed. */
  identity: boolean
  /** This proxy's `Via` entry (`1.1 imagegate-…`), added after the client's. */
  via?: string | undefined
}

/** This instance's name in `Via` headers: a random id, so it says nothing about the host or its keys. */
export function viaName (id: string): string {
  return `imagegate-${id}`
}

/**
 * Whether a request already passed through the proxy named `name`: its `Via` header
 * (RFC 9110 7.6.3: one `protocol name` entry per proxy, comma-separated) lists it. Only
 * then can a request have gone round a loop, whatever addresses the loop took.
 */
export function viaIncludes (via: string | string[] | undefined, name: string): boolean {
  if (via === undefined) return false
  const entries = (Array.isArray(via) ? via.join(',') : via).split(',')
  return entries.some((entry) => entry.trim().split(/\s+/)[1] === name)
}

/**
 * Headers sent upstream. `Origin` is dropped because hermes' api_server answers 403 to an
 * origin it does not know, and the browser's origin means nothing to the backend anyway.
 */
export function upstreamRequestHeaders (incoming: IncomingHttpHeaders, options: RequestHeaderOptions): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {}
  const connectionListed = listedInConnection(incoming.connection)
  for (const [name, value] of Object.entries(incoming)) {
    if (value === undefined || HOP_BY_HOP.has(name) || connectionListed.has(name) || name === 'origin') continue
    out[name] = value
  }
  if (options.apiKey !== undefined) out.authorization = `Bearer ${options.apiKey}`
  if (options.via !== undefined) out.via = out.via === undefined ? options.via : `${String(out.via)}, ${options.via}`
  if (options.identity) out['accept-encoding'] = 'identity'
  return out
}

/** Headers sent back to the client; `rewritten` drops what describes the original body. */
export function clientResponseHeaders (upstream: Record<string, string | string[] | undefined>, rewritten: boolean): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {}
  const connectionListed = listedInConnection(upstream.connection)
  for (const [name, value] of Object.entries(upstream)) {
    if (value === undefined || HOP_BY_HOP.has(name) || connectionListed.has(name)) continue
    if (rewritten && (name === 'content-length' || name === 'content-encoding' || name === 'etag' || name === 'content-md5')) continue
    out[name] = value
  }
  return out
}

/** Headers named in `Connection` are hop-by-hop too (RFC 9110 7.6.1). */
function listedInConnection (value: string | string[] | undefined): Set<string> {
  if (value === undefined) return new Set()
  const joined = Array.isArray(value) ? value.join(',') : value
  return new Set(joined.split(',').map((name) => name.trim().toLowerCase()).filter((name) => name.length > 0))
}
