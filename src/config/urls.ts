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

/**
 * The path of a public URL, without a trailing slash: `/imagegate` for
 * `https://chat.example.org/imagegate`, '' for a URL at the root. imagegate answers under
 * it as well as at `/`, so a reverse proxy can forward the path as it is.
 */
export function publicPath (publicUrl: string | undefined): string {
  return publicUrl === undefined ? '' : new URL(publicUrl).pathname.replace(/\/+$/, '')
}

/**
 * The request target with `mount` taken off its start (`/imagegate/images/x?sig=…` →
 * `/images/x?sig=…`), so both reach the same routes and the same checks; any other target
 * unchanged. The mount must match byte for byte and be followed by `/`: a spelling that
 * differs (`/Imagegate/`, `/imagegate%2f`) is left to the router, which knows no such path.
 */
export function unmount (target: string, mount: string): string {
  return mount !== '' && target.startsWith(mount + '/') ? target.slice(mount.length) : target
}

// ASCII escapes only: no router or file API reads `%c3%a9` as a separator or a dot.
const PERCENT_ESCAPE = /%([0-7][0-9a-f])/gi
// Kept as escapes: decoded, they would end the path for the URL parser, and the rest,
// which may hold the `/../images/` that a lenient server resolves, would go unchecked.
const PATH_ENDS = new Set(['?', '#'])
const RAW_FRAGMENT = /#/g
const SEPARATOR_RUN = /[\\/]+/g
// Only used to resolve dot segments; nothing is ever sent there.
const PATH_BASE = 'http://path.invalid'
// Enough for `%25252e` (three layers); a path still changing after that is suspect.
const MAX_DECODES = 4

/**
 * A path as every more lenient server behind us could read it: each layer of
 * percent-encoding of ASCII undone, `\` as `/`, runs of separators as one, in lower case,
 * each both before and after its dot segments are resolved (a server that does not
 * resolve them sees `/images/` in `/images/../x`). `undefined` when it still changes after
 * `MAX_DECODES` rounds.
 */
function readings (path: string): string[] | undefined {
  const seen: string[] = []
  let current = path
  for (let round = 0; round < MAX_DECODES; round++) {
    const decoded = current
      .replace(PERCENT_ESCAPE, (escape, hex: string) => {
        const char = String.fromCharCode(parseInt(hex, 16))
        return PATH_ENDS.has(char) ? escape : char
      })
      .replace(RAW_FRAGMENT, '%23')
    // The leading `/` keeps any target (`*`, `http://host/…`) a path, never a host.
    const collapsed = ('/' + decoded).replace(SEPARATOR_RUN, '/')
    const next = new URL(collapsed, PATH_BASE).pathname.toLowerCase()
    seen.push(collapsed.toLowerCase(), next)
    if (next === current) return seen
    current = next
  }
  return undefined
}

// A segment some server could read as `images`: `;` starts path parameters for many.
const IMAGES_SEGMENT = /\/images(?:;[^/]*)?(?:\/|$)/

/**
 * Whether a request target looks like an image link with its query string: a path with
 * an `images` segment in any spelling a server could take for one (`/IMAGES/`,
 * `/./images/`, `/x/../images/`, `/imagegate%2fimages/`, under any prefix). Such a
 * request is never forwarded upstream, because its query may hold a link's signature.
 * Without a query nothing secret goes upstream, and OpenAI's `POST /images/generations`
 * still passes through.
 */
export function isImageLink (target: string): boolean {
  const query = target.indexOf('?')
  if (query === -1) return false
  const paths = readings(target.slice(0, query))
  // Still changing after four layers of encoding: no honest client sends that.
  return paths === undefined || paths.some((path) => IMAGES_SEGMENT.test(path))
}
