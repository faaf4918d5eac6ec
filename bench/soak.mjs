/**
 * `npm run soak`: builds imagegate, then runs 200 concurrent streams for 60 s through it
 * (dist/, in its own process) against the bench's mock upstream, and checks that it
 * neither fails, nor corrupts, nor leaks:
 *
 * - every stream ends with [DONE] and no error event, and its text is exactly the
 *   expected rewrite (the mock's deterministic text with each image path replaced by its
 *   signed link); every 25th stream also fetches that link and compares the bytes;
 * - imagegate's RSS after a full GC, measured after a warm-up round and again after the
 *   run, grows by less than 10 %;
 * - imagegate holds no client socket afterwards, and no more upstream sockets than
 *   streams ran at once (idle keep-alive connections wait in its pool for reuse).
 *
 * Prints a summary, writes it to bench/results/soak.md and exits non-zero on a failure.
 *
 * Options: --streams N (200), --seconds S (60), --warmup S (10)
 */
import { spawn, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { Pool } from 'undici'
import { sleep } from './lib/clock.mjs'
import { contentSource } from './lib/hermes.mjs'
import { writePng } from './lib/png.mjs'
import { listeningPort, rssBytes, tcpSockets } from './lib/proc.mjs'
import { startFlags, startMock } from './lib/systems.mjs'

const ROOT = path.dirname(path.dirname(fileURLToPath(import.meta.url)))
const RESULTS = path.join(ROOT, 'bench', 'results', 'soak.md')
const IMAGE_NAME = 'apple.png'
/** Deltas per stream, one every 20 ms: each stream lasts about a second. */
const BENCH = { mode: 'paced', events: 50, paceMs: 20, imageEvery: 10 }
const IMAGE_CHECK_EVERY = 25
const RSS_GROWTH_LIMIT = 0.10
const MiB = 1024 * 1024

const log = (text) => console.log(`[soak] ${text}`)

function parseArgs (argv) {
  const args = { streams: 200, seconds: 60, warmup: 10 }
  for (let i = 0; i < argv.length; i++) {
    const key = argv[i]?.replace(/^--/, '')
    const value = Number(argv[++i])
    if (!(key in args)) throw new TypeError(`unknown option ${JSON.stringify(argv[i - 1])} (known: --streams N, --seconds S, --warmup S)`)
    if (!Number.isInteger(value) || value < 1) throw new TypeError(`--${key} must be a positive integer, got ${JSON.stringify(argv[i])}`)
    args[key] = value
  }
  return args
}

/** The kernel's state code for a listening socket (/proc/net/tcp). */
const LISTEN = '0A'

/** imagegate's TCP sockets, by role. */
function classifySockets (pid, gatePort, mockPort) {
  const sockets = tcpSockets(pid)
  return {
    total: sockets.length,
    listening: sockets.filter((s) => s.state === LISTEN).length,
    clients: sockets.filter((s) => s.state !== LISTEN && s.local === gatePort).length,
    upstream: sockets.filter((s) => s.remote === mockPort).length
  }
}

/** Starts imagegate's CLI in its own process (through soak-gate.mjs, for the GC hook). */
async function startGate (flags) {
  const child = spawn(process.execPath, [...startFlags(), '--expose-gc', path.join(ROOT, 'bench', 'soak-gate.mjs'), ...flags], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe', 'ipc']
  })
  let output = ''
  child.stdout.on('data', (data) => { output = (output + data).slice(-4000) })
  child.stderr.on('data', (data) => { output = (output + data).slice(-4000) })
  process.on('exit', () => child.kill('SIGKILL'))
  const deadline = Date.now() + 15_000
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`imagegate exited while starting:\n${output}`)
    const port = listeningPort(child.pid)
    if (port !== undefined) return { child, port, output: () => output }
    await sleep(50)
  }
  throw new Error(`imagegate did not listen within 15 s:\n${output}`)
}

/** A full GC in imagegate, then its memory: RSS from /proc (median of three reads), heap from V8. */
async function measure (gate, mockPort) {
  const answer = new Promise((resolve) => gate.child.once('message', resolve))
  gate.child.send('gc')
  const { gc, memory } = await answer
  if (!gc) throw new Error('imagegate runs without --expose-gc')
  const reads = []
  for (let i = 0; i < 3; i++) {
    await sleep(200)
    reads.push(rssBytes(gate.child.pid))
  }
  reads.sort((a, b) => a - b)
  return { rss: reads[1], heapUsed: memory.heapUsed, sockets: classifySockets(gate.child.pid, gate.port, mockPort) }
}

/** The content of choice 0, whether the stream ended with [DONE], and its error events. */
function readStream (text) {
  let content = ''
  let done = false
  let errors = 0
  for (const block of text.split('\n\n')) {
    const data = block.split('\n').filter((line) => line.startsWith('data: ')).map((line) => line.slice(6)).join('\n')
    if (data === '') continue
    if (data === '[DONE]') {
      done = true
      continue
    }
    const chunk = JSON.parse(data)
    if (chunk.error !== undefined) errors++
    for (const choice of chunk.choices ?? []) if (choice.index === 0 && typeof choice.delta?.content === 'string') content += choice.delta.content
  }
  return { content, done, errors }
}

/** `streams` workers, each running one stream after another until `ms` have passed. */
async function runLoad (pool, { streams, ms, expected, imagePath, png }) {
  const payload = JSON.stringify({ model: 'hermes-agent', stream: true, messages: [{ role: 'user', content: 'Draw a simple red apple' }], bench: BENCH })
  const link = new URL(expected.link)
  const deadline = Date.now() + ms
  const stats = { streams: 0, errors: 0, mismatches: 0, images: 0, firstProblem: undefined }
  const problem = (what) => { stats.firstProblem ??= what }
  let started = 0
  const worker = async () => {
    while (Date.now() < deadline) {
      const n = started++
      try {
        const { statusCode, body } = await pool.request({ path: '/v1/chat/completions', method: 'POST', headers: { 'content-type': 'application/json' }, body: payload })
        const text = await body.text()
        const stream = statusCode === 200 ? readStream(text) : undefined
        stats.streams++
        if (stream === undefined || !stream.done || stream.errors > 0) {
          stats.errors++
          problem(`status ${statusCode}, [DONE] ${stream?.done}, error events ${stream?.errors}: ${text.slice(-200)}`)
          continue
        }
        if (stream.content !== expected.text) {
          stats.mismatches++
          problem(`content ${JSON.stringify(stream.content.slice(0, 300))} instead of ${JSON.stringify(expected.text.slice(0, 300))}`)
          continue
        }
        if (stream.content.includes(imagePath)) problem('the cache path reached the client')
        if (n % IMAGE_CHECK_EVERY === 0) {
          const image = await pool.request({ path: link.pathname + link.search, method: 'GET' })
          const bytes = Buffer.from(await image.body.arrayBuffer())
          stats.images++
          if (image.statusCode !== 200 || !bytes.equals(png)) {
            stats.errors++
            problem(`image: status ${image.statusCode}, ${bytes.length} bytes`)
          }
        }
      } catch (err) {
        stats.errors++
        problem(`request failed: ${err.message}`)
        await sleep(10)
      }
    }
  }
  await Promise.all(Array.from({ length: streams }, worker))
  return stats
}

function expectedText (imagePath, link) {
  const next = contentSource(imagePath, BENCH.imageEvery)
  let text = ''
  for (let i = 0; i < BENCH.events; i++) text += next(i)
  if (!text.includes(imagePath)) throw new Error('the mock text holds no image path: nothing would be rewritten')
  return text.replaceAll(imagePath, link)
}

const mib = (bytes) => `${(bytes / MiB).toFixed(1)} MiB`
const sockets = (s) => `${s.total} (listening ${s.listening}, clients ${s.clients}, upstream ${s.upstream})`

function report ({ args, run, before, after, growth, checks, seconds }) {
  const cpu = os.cpus()
  const rows = [
    ['streams completed', run.streams.toLocaleString('en'), '—', ''],
    ['streams per second', (run.streams / args.seconds).toFixed(0), '—', ''],
    ['images fetched and compared', run.images.toLocaleString('en'), '—', ''],
    ...checks.map(({ name, value, limit, ok }) => [name, value, limit, ok ? 'PASS' : 'FAIL'])
  ]
  return [
    '# imagegate soak test',
    '',
    `${new Date().toISOString().replace(/\.\d+Z$/, 'Z')} · ${cpu.length} cores (${cpu[0]?.model ?? 'unknown'}) · Node ${process.version} · imagegate via \`dist/cli.js\` (\`main()\` in bench/soak-gate.mjs, with npm start's Node flags \`${startFlags().join(' ')}\` and \`--expose-gc\`) · load average ${os.loadavg()[0].toFixed(2)} at the end`,
    '',
    `${args.streams} concurrent streams for ${args.seconds} s after a ${args.warmup} s warm-up, through imagegate to the bench's mock upstream (${BENCH.events} deltas ${BENCH.paceMs} ms apart per stream, an image path split over two deltas every ${BENCH.imageEvery}). Every stream's text is compared with the expected rewrite; every ${IMAGE_CHECK_EVERY}th stream also fetches its signed image link. Memory is read after a full GC in imagegate, after the warm-up and after the run, with no stream open. Total ${seconds.toFixed(0)} s.`,
    '',
    '| check | result | limit | |',
    '| --- | ---: | ---: | --- |',
    ...rows.map((row) => `| ${row.join(' | ')} |`),
    '',
    `Heap used after GC: ${mib(before.heapUsed)} → ${mib(after.heapUsed)}. Idle keep-alive connections to the upstream stay in imagegate's pool for reuse (the mock keeps them 120 s).`,
    ...(run.firstProblem === undefined ? [] : ['', `First problem: ${run.firstProblem}`]),
    ''
  ].join('\n')
}

async function main () {
  const args = parseArgs(process.argv.slice(2))
  const startedAt = performance.now()
  log('building dist/ (npm run build)')
  const build = spawnSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'inherit' })
  if (build.status !== 0) throw new Error('npm run build failed')

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'imagegate-soak-'))
  const cleanup = [() => fs.rmSync(tmp, { recursive: true, force: true })]
  try {
    const cacheDir = path.join(tmp, 'cache')
    fs.mkdirSync(cacheDir)
    const imagePath = path.join(cacheDir, IMAGE_NAME)
    writePng(imagePath, 64 * 1024)
    const png = fs.readFileSync(imagePath)

    const mock = await startMock(imagePath)
    cleanup.push(() => mock.stop())
    const mockPort = Number(new URL(mock.origin).port)
    const key = randomBytes(32).toString('hex')
    const gate = await startGate([
      '--upstream', `${mock.origin}/v1`, '--cache-dir', cacheDir, '--state-dir', path.join(tmp, 'state'),
      '--signing-key', key, '--port', '0', '--log-level', 'warn'
    ])
    cleanup.push(async () => {
      gate.child.kill('SIGTERM')
      await new Promise((resolve) => { if (gate.child.exitCode !== null) resolve(); else gate.child.once('exit', resolve) })
    })
    const origin = `http://127.0.0.1:${gate.port}`
    const { createSigner } = await import('../dist/files/signing.js')
    const { folderId } = await import('../dist/files/names.js')
    const name = `${folderId(cacheDir)}/${IMAGE_NAME}`
    const link = `${origin}/images/${name}?sig=${createSigner(key).sign(name)}`
    const expected = { text: expectedText(imagePath, link), link }
    const load = { streams: args.streams, expected, imagePath, png }
    const newPool = () => new Pool(origin, { connections: args.streams, pipelining: 1, headersTimeout: 60_000, bodyTimeout: 60_000 })

    log(`warm-up: ${args.streams} streams for ${args.warmup} s`)
    const warmPool = newPool()
    const warm = await runLoad(warmPool, { ...load, ms: args.warmup * 1000 })
    await warmPool.close()
    await sleep(1000)
    const before = await measure(gate, mockPort)
    log(`after warm-up: ${warm.streams} streams, ${warm.errors} errors; RSS ${mib(before.rss)}, sockets ${sockets(before.sockets)}`)

    log(`soak: ${args.streams} streams for ${args.seconds} s`)
    const pool = newPool()
    const run = await runLoad(pool, { ...load, ms: args.seconds * 1000 })
    await pool.close()
    await sleep(1000)
    const after = await measure(gate, mockPort)
    log(`after soak: ${run.streams} streams, ${run.errors} errors, ${run.mismatches} mismatches; RSS ${mib(after.rss)}, sockets ${sockets(after.sockets)}`)

    const growth = (after.rss - before.rss) / before.rss
    const checks = [
      { name: 'errors', value: String(run.errors + warm.errors), limit: '0', ok: run.errors + warm.errors === 0 },
      { name: 'mismatched outputs', value: String(run.mismatches + warm.mismatches), limit: '0', ok: run.mismatches + warm.mismatches === 0 },
      { name: 'RSS after GC, after warm-up → after soak', value: `${mib(before.rss)} → ${mib(after.rss)} (${growth >= 0 ? '+' : ''}${(growth * 100).toFixed(1)} %)`, limit: `< +${RSS_GROWTH_LIMIT * 100} %`, ok: growth < RSS_GROWTH_LIMIT },
      { name: 'client sockets held afterwards', value: `${before.sockets.clients} → ${after.sockets.clients}`, limit: '0', ok: after.sockets.clients === 0 },
      { name: 'upstream sockets held afterwards (idle, pooled)', value: `${before.sockets.upstream} → ${after.sockets.upstream}`, limit: `≤ ${args.streams}`, ok: after.sockets.upstream <= args.streams },
      { name: 'TCP sockets of imagegate', value: `${before.sockets.total} → ${after.sockets.total}`, limit: `≤ ${args.streams + 1}`, ok: after.sockets.total <= args.streams + 1 }
    ]
    if (run.firstProblem === undefined && warm.firstProblem !== undefined) run.firstProblem = `(warm-up) ${warm.firstProblem}`
    const text = report({ args, run, before, after, growth, checks, seconds: (performance.now() - startedAt) / 1000 })
    console.log(`\n${text}`)
    fs.mkdirSync(path.dirname(RESULTS), { recursive: true })
    fs.writeFileSync(RESULTS, text)
    log(`written to ${path.relative(ROOT, RESULTS)}`)
    process.exitCode = checks.every((check) => check.ok) ? 0 : 1
  } finally {
    for (const step of cleanup.reverse()) await step()
  }
}

main().catch((err) => {
  console.error(`[soak] ${err.stack ?? err}`)
  process.exitCode = 1
})
