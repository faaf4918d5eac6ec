/**
 * Compact images: bytes per picture (the PNG against its WebP), the latency of a first
 * request (which encodes) and of a cached one, and the per-event delay of 100 paced chat
 * streams while pictures are being encoded against none. Runs the built imagegate
 * (`dist/cli.js`, compact images on by default) against the bench's mock upstream, each
 * in its own process, and appends nothing anywhere: it prints a Markdown section.
 *
 * Usage: npm run build && node bench/compact.mjs [--reps 3]   (Node ≥ 22.18: it imports
 * the TypeScript picture fixture)
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Pool } from 'undici'
import { nowUs } from './lib/clock.mjs'
import { machine } from './lib/proc.mjs'
import { median } from './lib/stats.mjs'
import { ROOT, startImagegate, startLoadGenerator, startMock } from './lib/systems.mjs'
import { picturePng } from '../test/fixtures/picture.ts'

const { createSigner, loadOrCreateKey } = await import(path.join(ROOT, 'dist/files/signing.js'))
const { folderId } = await import(path.join(ROOT, 'dist/files/names.js'))

const reps = Number(process.argv[process.argv.indexOf('--reps') + 1] ?? 3) || 3
// Chromium's Accept for <img>.
const BROWSER = 'image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8'
const FIRST_REQUESTS = 7
const CACHED_REQUESTS = 200
const STREAMS = 100
const LATENCY = { durationMs: 4000, warmupMs: 500, bench: { mode: 'paced', paceMs: 20, events: 30, imageEvery: 30 } }
// Fresh pictures (copies under new names: each is encoded anew) fetched two at a time.
const ENCODE_CLIENTS = 2

const log = (text) => console.error(`[bench:compact] ${text}`)

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'imagegate-compact-'))
const cacheDir = path.join(tmp, 'cache')
const stateDir = path.join(tmp, 'state')
fs.mkdirSync(cacheDir)
const picture = await picturePng()
const imageName = 'openai_codex_gpt-image-2-medium_20260424_143801_f2c2ad0c.png'
fs.writeFileSync(path.join(cacheDir, imageName), picture)

const stops = []
try {
  const mock = await startMock(path.join(cacheDir, imageName))
  stops.push(() => mock.stop())
  const load = await startLoadGenerator()
  stops.push(() => load.stop())
  const gate = await startImagegate({ upstreamBase: `${mock.origin}/v1`, cacheDir, stateDir })
  stops.push(() => gate.stop())
  // Links as imagegate writes them: the key it generated in the state folder signs them.
  const signer = createSigner(loadOrCreateKey(stateDir).key)
  const id = folderId(fs.realpathSync(cacheDir))
  const linkPath = (name) => `/images/${id}/${encodeURIComponent(name)}?sig=${signer.sign(`${id}/${encodeURIComponent(name)}`)}`
  const pool = new Pool(gate.origin, { connections: 4 })
  stops.push(() => pool.destroy())
  const get = async (name, accept) => {
    const started = nowUs()
    const { statusCode, headers, body } = await pool.request({ path: linkPath(name), method: 'GET', headers: { accept } })
    const bytes = (await body.arrayBuffer()).byteLength
    if (statusCode !== 200) throw new Error(`GET ${name}: ${statusCode}`)
    return { ms: (nowUs() - started) / 1000, bytes, type: headers['content-type'] }
  }
  let copies = 0
  const freshCopy = () => {
    const name = `copy-${copies++}-${imageName}`
    fs.copyFileSync(path.join(cacheDir, imageName), path.join(cacheDir, name))
    return name
  }

  log('bytes and request latency')
  const original = await get(imageName, '*/*')
  const firsts = []
  for (let i = 0; i < FIRST_REQUESTS; i++) firsts.push(await get(freshCopy(), BROWSER))
  if (firsts.some((r) => r.type !== 'image/webp')) throw new Error(`expected WebP, got ${firsts.map((r) => r.type).join(', ')}`)
  const cached = []
  for (let i = 0; i < CACHED_REQUESTS; i++) cached.push(await get(imageName, BROWSER))
  const originals = []
  for (let i = 0; i < CACHED_REQUESTS; i++) originals.push(await get(imageName, '*/*'))

  log(`per-event delay at ${STREAMS} streams, ${LATENCY.durationMs} ms × ${reps} runs, with and without encodes`)
  await load.call('latency', { origin: gate.origin, concurrency: STREAMS, durationMs: LATENCY.warmupMs, bench: LATENCY.bench })
  const runs = { idle: [], encoding: [] }
  let encoded = 0
  for (let rep = 0; rep < reps; rep++) {
    for (const mode of rep % 2 === 0 ? ['idle', 'encoding'] : ['encoding', 'idle']) {
      let stop = false
      const encoders = mode === 'idle'
        ? []
        : Array.from({ length: ENCODE_CLIENTS }, async () => {
          // eslint-disable-next-line no-unmodified-loop-condition -- set once the latency run below ends; every pass awaits, so the loop sees it
          while (!stop) {
            const r = await get(freshCopy(), BROWSER)
            if (r.type === 'image/webp') encoded++
          }
        })
      const result = await load.call('latency', { origin: gate.origin, concurrency: STREAMS, durationMs: LATENCY.durationMs, bench: LATENCY.bench })
      stop = true
      await Promise.all(encoders)
      if (result.errors > 0) throw new Error(`${mode}: ${result.errors} failed streams`)
      runs[mode].push(result.events)
    }
  }
  await load.call('closePools')

  const ms = (x) => `${x.toFixed(2)} ms`
  const kb = (x) => `${(x / 1024).toFixed(1)} KiB`
  const p = (mode, key) => median(runs[mode].map((r) => r[key]))
  const webpBytes = median(firsts.map((r) => r.bytes))
  console.log([
    `## Compact images (${new Date().toISOString().slice(0, 10)})`,
    '',
    `\`node bench/compact.mjs --reps ${reps}\`, ${os.availableParallelism()} cores (${machine().model}), Node ${process.version}; imagegate \`dist/cli.js\` with its defaults (WebP, quality 80, max width 2048, one encode at a time).`,
    `Picture: the test fixture's generated 1024×1024 PNG (gradients, grain texture, text), ${kb(picture.length)}.`,
    '',
    '| measure | value |',
    '| --- | --- |',
    `| bytes, PNG (\`Accept: */*\`) | ${kb(original.bytes)} |`,
    `| bytes, WebP (\`Accept\` of Chromium) | ${kb(webpBytes)} (${(original.bytes / webpBytes).toFixed(1)}× smaller) |`,
    `| first request, encoded then sent (median of ${FIRST_REQUESTS} new files) | ${ms(median(firsts.map((r) => r.ms)))} |`,
    `| cached WebP (median of ${CACHED_REQUESTS}) | ${ms(median(cached.map((r) => r.ms)))} |`,
    `| the PNG, for comparison (median of ${CACHED_REQUESTS}) | ${ms(median(originals.map((r) => r.ms)))} |`,
    `| per-event delay at ${STREAMS} streams, no encodes: p50 / p99 (median of ${reps} runs) | ${ms(p('idle', 'p50'))} / ${ms(p('idle', 'p99'))} |`,
    `| the same while ${ENCODE_CLIENTS} clients fetch new pictures (${encoded} encoded in ${reps} runs) | ${ms(p('encoding', 'p50'))} / ${ms(p('encoding', 'p99'))} |`,
    ''
  ].join('\n'))
} finally {
  for (const stop of stops.reverse()) await stop()
  fs.rmSync(tmp, { recursive: true, force: true })
}
