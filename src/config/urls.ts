import { isIPv6 } from 'node:net'

// Everything between `scheme:` (with any slashes; WHATWG also accepts backslashes and
// none at all for special schemes) and the last `@` before the path is userinfo. Greedy
// on purpose: a password may itself contain an encoded or raw `@`.
const USERINFO = /^([a-z][a-z0-9+.-]*:[\\/]*)[^\\/?#]*@/i

// An IPv6 address made only of zeros and colons (`::`, `::0`, `0:0:0:0:0:0:0:0`) is the
// wildcard, like 0.0.0.0 for IPv4; Node's listen() also takes an empty host that way.
const ALL_ZERO_IPV6 = /^[0:]+$/
const WILDCARD_IPV4 = '0.0.0.0'

/**
 * The URL as text with any `user:password@` replaced by `***@`, for messages and logs.
 * Works on text that is not a valid URL too, since that is exactly what error messages show.
 */
export function redactUrl (url: string | URL): string {
  const text = typeof url === 'string' ? url : url.href
  return text.replace(USERINFO, '$1***@')
}

/**
 * The base URL a browser can use when no `public-url` is configured: `http://host:port`,
 * with `localhost` for a wildcard host (a browser cannot connect to 0.0.0.0 or ::) and
 * IPv6 literals in brackets as RFC 3986 requires.
 */
export function defaultPublicUrl (host: string, port: number): string {
  return `http://${browserHost(host)}:${port}`
}

function browserHost (host: string): string {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host
  if (bare === '' || bare === WILDCARD_IPV4) return 'localhost'
  if (isIPv6(bare)) return ALL_ZERO_IPV6.test(bare) ? 'localhost' : `[${bare}]`
  return bare
}
