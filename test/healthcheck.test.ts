import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import type { Test } from 'tap'
import type { Output } from '../src/cli.js'
import { findServers, healthUrl, listenersIn, listenersOf, main } from '../src/healthcheck.js'
import { startMockUpstream } from './fixtures/mock-upstream.js'

const ROOT = fileURLToPath(new URL('../', import.meta.url))
const CLI = fileURLToPath(new URL('../src/cli.ts', import.meta.url))

const capture = (): Output & { out: string[], err: string[] } => {
  const out: string[] = []
  const err: string[] = []
  return { out, err, stdout: { write: text => out.push(text) }, stderr: { write: text => err.push(text) } }
}

const HEADER = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode'
/** A /proc/net/tcp row as the kernel prints it. */
const row = (local: string, state: string, inode: number): string =>
  `   0: ${local} 00000000:0000 ${state} 00000000:00000000 00:00000000 00000000  1000        0 ${inode} 1 0000000000000000 100 0 0 10 0`
/** A little-endian machine's IPv4 address and port in the table's hex. */
const hexV4 = (ip: string, port: number): string =>
  `${ip.split('.').reverse().map((n) => Number(n).toString(16).padStart(2, '0')).join('').toUpperCase()}:${port.toString(16).toUpperCase().padStart(4, '0')}`

t.test('listenersIn reads the listening rows of the given sockets', async t => {
  const table = [
    HEADER,
    row('0100007F:1F9A', '0A', 11), // 127.0.0.1:8090, listening
    row('00000000:1F40', '0A', 12), // 0.0.0.0:8000, listening
    row('0100007F:1F9A', '01', 13), // an established connection of the same process
    row('0100007F:0050', '0A', 14), // another process's listener
    'not a row'
  ].join('\n')
  t.same(listenersIn(table, new Set(['11', '12', '13']), 'LE'), [
    { address: '127.0.0.1', port: 8090 },
    { address: '0.0.0.0', port: 8000 }
  ], 'LISTEN (0A) rows of the process\'s own inodes, addresses in host byte order')
  t.same(listenersIn(row('7F000001:1F9A', '0A', 11), new Set(['11']), 'BE'), [{ address: '127.0.0.1', port: 8090 }], 'big-endian machines print the address as is')
  const v6 = [
    row('00000000000000000000000000000000:1F9A', '0A', 21), // ::
    row('00000000000000000000000001000000:1F9B', '0A', 22) // ::1
  ].join('\n')
  t.same(listenersIn(v6, new Set(['21', '22']), 'LE'), [
    { address: '0:0:0:0:0:0:0:0', port: 8090 },
    { address: '0:0:0:0:0:0:0:1', port: 8091 }
  ], 'IPv6 rows of /proc/net/tcp6')
  t.same(listenersIn(table, new Set(), 'LE'), [], 'nothing without inodes')
})

t.test('healthUrl asks a wildcard address on loopback', async t => {
  const cases: Array<[string, number, string]> = [
    ['0.0.0.0', 8090, 'http://127.0.0.1:8090/healthz'],
    ['127.0.0.1', 9000, 'http://127.0.0.1:9000/healthz'],
    ['10.1.2.3', 80, 'http://10.1.2.3:80/healthz'],
    ['0:0:0:0:0:0:0:0', 8090, 'http://[::1]:8090/healthz'],
    ['0:0:0:0:0:0:0:1', 8091, 'http://[::1]:8091/healthz'],
    ['fd00:0:0:0:0:0:0:5', 8092, 'http://[fd00::5]:8092/healthz']
  ]
  for (const [address, port, url] of cases) t.equal(healthUrl({ address, port }), url, `${address} port ${port}`)
})

/**
 * A /proc of its own: process 4242 runs `node --enable-source-maps dist/cli.js` in /app
 * and holds socket 777 (listening on `port` of 127.0.0.1), a file and an entry that is
 * no link; process 99 went away while the folder was read; process 50 has no fd folder.
 */
function fakeProc (t: Test, options: { port?: number, tcp6?: boolean } = {}): string {
  const proc = t.testdir({ self: {}, 99: {} })
  const pid = join(proc, '4242')
  mkdirSync(join(pid, 'net'), { recursive: true })
  writeFileSync(join(pid, 'cmdline'), 'node\0--enable-source-maps\0dist/cli.js\0')
  symlinkSync('/app', join(pid, 'cwd'))
  mkdirSync(join(pid, 'fd'))
  symlinkSync('socket:[777]', join(pid, 'fd', '3'))
  symlinkSync('/dev/null', join(pid, 'fd', '4'))
  writeFileSync(join(pid, 'fd', '5'), '')
  writeFileSync(join(pid, 'net', 'tcp'), [HEADER, ...options.port === undefined ? [] : [row(hexV4('127.0.0.1', options.port), '0A', 777)]].join('\n'))
  if (options.tcp6 !== false) writeFileSync(join(pid, 'net', 'tcp6'), HEADER)
  mkdirSync(join(proc, '50'))
  writeFileSync(join(proc, '50', 'cmdline'), 'node\0/app/dist/cli.js\0')
  symlinkSync('/', join(proc, '50', 'cwd'))
  return proc
}

t.test('findServers and listenersOf read a process table', async t => {
  const proc = fakeProc(t, { port: 8090, tcp6: false })
  t.same(findServers(proc, '/app/dist/cli.js'), [50, 4242], 'relative and absolute script paths, options skipped')
  t.same(findServers(proc, '/app/dist/other.js'), [], 'other scripts are not the server')
  t.same(listenersOf(proc, 4242), [{ address: '127.0.0.1', port: 8090 }], 'its socket, from its own tcp table (no tcp6 on this kernel)')
  t.throws(() => listenersOf(proc, 50), { code: 'ENOENT' }, 'a process whose sockets cannot be listed')
})

t.test('main: healthy only when the server\'s own socket answers /healthz', async t => {
  const upstream = await startMockUpstream((_req, res) => { res.writeHead(200).end('{"status":"ok"}') })
  t.teardown(() => upstream.close())
  const port = Number(new URL(upstream.url).port)
  const cli = '/app/dist/cli.js'
  const healthy = fakeProc(t, { port })
  const run = async (proc: string, timeoutMs?: number): Promise<{ code: number, output: ReturnType<typeof capture> }> => {
    const output = capture()
    const code = await main({ proc, cli, output, ...timeoutMs === undefined ? {} : { timeoutMs } })
    return { code, output }
  }

  // Both pids match, and 50 has no fd folder (as an init naming the script may not).
  let result = await run(healthy)
  t.equal(result.code, 0, 'exit 0 when /healthz answers 200, a process that cannot be read passed over')
  t.same(result.output.out, [`imagegate healthcheck: http://127.0.0.1:${port}/healthz ok\n`], 'says which URL answered')
  t.same(result.output.err, [], 'nothing on stderr')

  upstream.handle((_req, res) => { res.writeHead(503).end() })
  result = await run(healthy)
  t.equal(result.code, 1, 'exit 1 on an error status')
  t.same(result.output.err, [`imagegate healthcheck: http://127.0.0.1:${port}/healthz answered 503\n`], 'with the status')

  upstream.handle(() => {}) // never answers
  result = await run(healthy, 100)
  t.equal(result.code, 1, 'exit 1 when /healthz does not answer in time')
  t.same(result.output.err, [`imagegate healthcheck: http://127.0.0.1:${port}/healthz failed: TimeoutError\n`], 'timed out')

  await upstream.close()
  result = await run(healthy)
  t.equal(result.code, 1, 'exit 1 when nothing listens there any more')
  t.same(result.output.err, [`imagegate healthcheck: http://127.0.0.1:${port}/healthz failed: ECONNREFUSED\n`], 'refused')

  const starting = fakeProc(t)
  result = await run(starting)
  t.equal(result.code, 1, 'exit 1 when no socket can be read')
  t.same(result.output.err, ['imagegate healthcheck: cannot read the sockets of process 50 (ENOENT)\n'], 'names the process that could not be read, and why')
  writeFileSync(join(starting, '50', 'cmdline'), '')
  result = await run(starting)
  t.equal(result.code, 1, 'exit 1 while the server does not listen yet')
  t.same(result.output.err, ['imagegate healthcheck: process 4242 does not listen yet\n'], 'says so')

  const gone = t.testdir({ self: {} })
  result = await run(gone)
  t.equal(result.code, 1, 'exit 1 when no process runs the CLI')
  t.same(result.output.err, ['imagegate healthcheck: no process runs cli.js\n'], 'names the script it looked for')
})

t.test('main against a real imagegate on a port chosen at start', async t => {
  const dir = t.testdir({ images: {}, state: {} })
  // Started through a link of its own, so that imagegates other tests run at the same
  // time are not taken for this one.
  const link = join(dir, 'cli.ts')
  symlinkSync(CLI, link)
  const upstream = await startMockUpstream()
  t.teardown(() => upstream.close())
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('IMAGEGATE_')))
  const child = spawn(process.execPath, [...process.execArgv, link, '--port', '0', '--cache-dir', join(dir, 'images'), '--state-dir', join(dir, 'state'), '--upstream', upstream.url], { cwd: ROOT, env })
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  const exited = once(child, 'close')
  let stdout = ''
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.setEncoding('utf8').on('data', (text: string) => {
      stdout += text
      const found = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(stdout)
      if (found !== null) resolve(found[1] as string)
    })
    exited.then(() => reject(new Error('imagegate exited before listening')), reject)
  })

  const output = capture()
  t.equal(await main({ cli: link, output }), 0, 'healthy, from the real /proc')
  t.same(output.out, [`imagegate healthcheck: ${url}/healthz ok\n`], 'found the port the server chose')
  t.same(findServers('/proc', link), [child.pid], 'the one process started with that script')

  child.kill('SIGKILL')
  await exited
  const after = capture()
  t.equal(await main({ cli: link, output: after }), 1, 'unhealthy once it is gone')
  t.same(after.err, ['imagegate healthcheck: no process runs cli.ts\n'], 'no such process')
})
