#!/usr/bin/env node
// The container image's HEALTHCHECK: asks imagegate's /healthz on the address it really
// listens on. The port may come from --port, IMAGEGATE_PORT or a config file, and PID 1
// is imagegate only without an init (`docker run --init`, compose's `init: true`). So
// instead of resolving the options a second time, which disagrees with the server as
// soon as a source changed after it started, this asks the kernel: which process runs
// imagegate's CLI, and which TCP sockets of that process listen.
import { readFileSync, readdirSync, readlinkSync } from 'node:fs'
import { endianness } from 'node:os'
import { basename, dirname, extname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { isMainModule } from './cli.js'
import type { Output } from './cli.js'

/** A listening TCP socket as the kernel reports it. */
export interface Listener {
  /** Local address: dotted IPv4, or IPv6 as eight hex groups. */
  address: string
  port: number
}

/** Where to look, so tests can hand over a /proc of their own. */
export interface HealthcheckSettings {
  /** The proc file system; `/proc` in a container. */
  proc?: string
  /** imagegate's CLI script, as the server process was started with it. */
  cli?: string
  /** Milliseconds the /healthz request may take; `DEFAULT_TIMEOUT_MS` unless given. */
  timeoutMs?: number
  output?: Output
}

/** Milliseconds /healthz may take: below the image's HEALTHCHECK --timeout, so that a hung server is reported by the check rather than cut by the engine. */
export const DEFAULT_TIMEOUT_MS = 3000
/** tcp_states.h: TCP_LISTEN, as /proc/net/tcp prints the state column. */
const TCP_LISTEN = '0A'
/** The CLI next to this file: dist/cli.js in the image (cli.ts when run from the sources). */
const DEFAULT_CLI = join(dirname(fileURLToPath(import.meta.url)), `cli${extname(fileURLToPath(import.meta.url))}`)
// `sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode`
const TCP_ROW = /^\s*\d+:\s+([0-9A-F]+):([0-9A-F]{4})\s+[0-9A-F]+:[0-9A-F]{4}\s+([0-9A-F]{2})\s+\S+\s+\S+\s+\S+\s+\d+\s+\d+\s+(\d+)/
const SOCKET_LINK = /^socket:\[(\d+)\]$/

/**
 * The listening sockets of a /proc/net/tcp or tcp6 table whose inode is one of
 * `inodes`. The kernel prints each 32-bit word of an address in the machine's byte
 * order (`0100007F` is 127.0.0.1 on little-endian machines) and the port in big-endian.
 */
export function listenersIn (table: string, inodes: ReadonlySet<string>, byteOrder: 'LE' | 'BE' = endianness()): Listener[] {
  const found: Listener[] = []
  for (const line of table.split('\n')) {
    const row = TCP_ROW.exec(line)
    if (row === null || row[3] !== TCP_LISTEN || !inodes.has(row[4] as string)) continue
    found.push({ address: decodeAddress(row[1] as string, byteOrder), port: parseInt(row[2] as string, 16) })
  }
  return found
}

function decodeAddress (hex: string, byteOrder: 'LE' | 'BE'): string {
  const bytes = Buffer.from(hex, 'hex')
  if (byteOrder === 'LE') bytes.swap32()
  if (bytes.length === 4) return [...bytes].join('.')
  const groups: string[] = []
  for (let at = 0; at < bytes.length; at += 2) groups.push(bytes.readUInt16BE(at).toString(16))
  return groups.join(':')
}

/** The /healthz URL for a listener: a wildcard address is asked on loopback. */
export function healthUrl ({ address, port }: Listener): string {
  if (address === '0.0.0.0') return `http://127.0.0.1:${port}/healthz`
  if (!address.includes(':')) return `http://${address}:${port}/healthz`
  return new URL(`http://[${address === '0:0:0:0:0:0:0:0' ? '::1' : address}]:${port}/healthz`).href
}

/**
 * The processes started with `cli` as one of their arguments (relative arguments are
 * resolved against the process's working folder). Processes that end or cannot be read
 * while the folder is listed are passed over.
 */
export function findServers (proc: string, cli: string): number[] {
  const pids: number[] = []
  for (const name of readdirSync(proc)) {
    if (!/^\d+$/.test(name)) continue
    try {
      const args = readFileSync(join(proc, name, 'cmdline'), 'utf8').split('\0').slice(1)
      const cwd = readlinkSync(join(proc, name, 'cwd'))
      if (args.some((arg) => arg !== '' && !arg.startsWith('-') && resolve(cwd, arg) === cli)) pids.push(Number(name))
    } catch {}
  }
  // In pid order, so that messages naming several read the same on every run.
  return pids.sort((a, b) => a - b)
}

/** The TCP sockets a process listens on, IPv4 first. */
export function listenersOf (proc: string, pid: number): Listener[] {
  const inodes = new Set<string>()
  const fds = join(proc, String(pid), 'fd')
  for (const fd of readdirSync(fds)) {
    try {
      const link = SOCKET_LINK.exec(readlinkSync(join(fds, fd)))
      if (link !== null) inodes.add(link[1] as string)
    } catch {} // closed since the folder was read
  }
  // The process's own view of the tables: its network namespace, not the caller's.
  return ['tcp', 'tcp6'].flatMap((table) => {
    try {
      return listenersIn(readFileSync(join(proc, String(pid), 'net', table), 'utf8'), inodes)
    } catch {
      return [] // a kernel without IPv6
    }
  })
}

/** Runs the check; resolves with the exit code HEALTHCHECK expects (0 healthy, 1 not). */
export async function main (settings: HealthcheckSettings = {}): Promise<number> {
  const { proc = '/proc', cli = DEFAULT_CLI, timeoutMs = DEFAULT_TIMEOUT_MS, output = process } = settings
  const fail = (text: string): number => {
    output.stderr.write(`imagegate healthcheck: ${text}\n`)
    return 1
  }
  const pids = findServers(proc, cli)
  if (pids.length === 0) return fail(`no process runs ${basename(cli)}`)
  // An init started as `docker-init -- node dist/cli.js` names the script too: the
  // processes whose sockets cannot be read are passed over while another one listens.
  const listeners: Listener[] = []
  const unreadable: string[] = []
  for (const pid of pids) {
    try {
      listeners.push(...listenersOf(proc, pid))
    } catch (err) {
      unreadable.push(`${pid} (${String((err as NodeJS.ErrnoException).code)})`)
    }
  }
  const first = listeners[0]
  if (first === undefined && unreadable.length > 0) return fail(`cannot read the sockets of process ${unreadable.join(', ')}`)
  if (first === undefined) return fail(`process ${pids.join(', ')} does not listen yet`)
  const url = healthUrl(first)
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) })
    await response.arrayBuffer()
    if (!response.ok) return fail(`${url} answered ${response.status}`)
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).name
    return fail(`${url} failed: ${cause}`)
  }
  output.stdout.write(`imagegate healthcheck: ${url} ok\n`)
  return 0
}

/* c8 ignore next 2 -- runs as the image's HEALTHCHECK; test/deploy/container.test.ts runs it there, unit tests call main() */
if (isMainModule(import.meta.url, process.argv[1])) process.exitCode = await main()
