/**
 * Whether the upstream is imagegate itself. `--upstream http://127.0.0.1:8090` next to
 * `--port 8090` (an easy swap) makes every request forward to itself, nested until the
 * sockets run out: about 10,000 requests in 4 s from one chat message. The check is pure
 * and covers the ways one address is written differently; an address it cannot see
 * through (a DNS name for this machine, a port forward) is caught per request by the
 * `Via` header instead (see upstream/headers.ts).
 */
import { isIPv4, isIPv6 } from 'node:net'
import { networkInterfaces, type NetworkInterfaceInfo } from 'node:os'
import { redactUrl } from './urls.js'

/** Where imagegate listens: as configured, or as bound once `listen` chose a port. */
export interface ListenAddress {
  host: string
  port: number
}

// An IPv6 address made only of zeros and colons is the wildcard, like 0.0.0.0.
const ALL_ZERO_IPV6 = /^[0:]+$/
const LOOPBACK_IPV4 = /^127\./
const MAPPED_IPV4 = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/

/**
 * A host as one canonical text: lower case, IPv6 without brackets in its shortest form,
 * IPv4-mapped IPv6 as plain IPv4, and IPv4 in dotted form (WHATWG URL parsing turns
 * `127.1` and `2130706433` into `127.0.0.1`).
 */
export function canonicalHost (host: string): string {
  const bare = (host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host).toLowerCase()
  let parsed: string
  try {
    parsed = new URL(`http://${isIPv6(bare) ? `[${bare}]` : bare}`).hostname
  } catch {
    return bare // a zone index (`fe80::1%eth0`) or a name URL parsing refuses
  }
  const unbracketed = parsed.startsWith('[') ? parsed.slice(1, -1) : parsed
  const mapped = MAPPED_IPV4.exec(unbracketed)
  if (mapped === null) return unbracketed
  const [high, low] = mapped.slice(1).map(hex => parseInt(hex, 16)) as [number, number]
  return [high >> 8, high & 255, low >> 8, low & 255].join('.')
}

/** `0.0.0.0`, `::` and the empty host: every address of the machine. */
export function isWildcardHost (host: string): boolean {
  const bare = canonicalHost(host)
  return bare === '' || bare === '0.0.0.0' || (isIPv6(bare) && ALL_ZERO_IPV6.test(bare))
}

/** `localhost`, 127.0.0.0/8 and `::1`: reachable from this machine only. */
export function isLoopbackHost (host: string): boolean {
  const bare = canonicalHost(host)
  return bare === 'localhost' || bare.endsWith('.localhost') || bare === '::1' || (isIPv4(bare) && LOOPBACK_IPV4.test(bare))
}

/** The port a URL connects to, with the scheme's default when none is written. */
export function urlPort (url: URL): number {
  if (url.port !== '') return Number(url.port)
  return url.protocol === 'https:' ? 443 : 80
}

/**
 * Whether a request to `upstream` reaches a server listening on `listen`. A wildcard or
 * loopback host on either side stands for this machine: connecting to 0.0.0.0 reaches
 * the loopback interface, and a wildcard listener answers on every address of the
 * machine (`localAddresses`, from os.networkInterfaces()).
 */
export function reachesListener (upstream: URL, listen: ListenAddress, localAddresses: readonly string[] = []): boolean {
  if (urlPort(upstream) !== listen.port) return false
  const target = canonicalHost(upstream.hostname)
  const bound = canonicalHost(listen.host)
  if (target === bound) return true
  const targetIsLocal = isLoopbackHost(target) || isWildcardHost(target)
  if (isWildcardHost(bound)) return targetIsLocal || localAddresses.map(canonicalHost).includes(target)
  return isLoopbackHost(bound) && targetIsLocal
}

/** `0.0.0.0:8090`, `[::]:8090`: a listening address as an operator writes it. */
export function formatAddress ({ host, port }: ListenAddress): string {
  const bare = canonicalHost(host)
  return `${isIPv6(bare) ? `[${bare}]` : bare}:${port}`
}

/** What the user reads when the upstream is imagegate itself. */
export function selfUpstreamMessage (upstream: URL, listen: ListenAddress): string {
  return `${JSON.stringify(redactUrl(upstream))} is imagegate's own address (it listens on ${formatAddress(listen)}), ` +
    'so every request would be forwarded to itself; give the agent backend\'s URL, e.g. "http://127.0.0.1:8642/v1"'
}

/** Every address of this machine's interfaces, which a wildcard listener answers on. */
export function machineAddresses (): string[] {
  return Object.values(networkInterfaces()).flat()
    .filter((info): info is NetworkInterfaceInfo => info !== undefined)
    .map(info => info.address)
}
