/**
 * `npm run bench`: builds imagegate, then measures it side by side with the direct path,
 * the floor proxy (node:http + undici, forwarding the bytes of each read), nginx and
 * @fastify/http-proxy, each in its own process, against a mock hermes upstream, with the load generated from yet another process. Writes
 * bench/results/latest.md and prints it.
 *
 * Options:
 *   --profile        also run imagegate under --cpu-prof in the events/s, Responses
 *                    events/s, short answers and /images scenarios and print the top of
 *                    each profile
 *                    (bench/results/*.cpuprofile)
 *   --only a,b       run only these scenarios: ttft, latency, events, responses, memory,
 *                    images (the report is printed, latest.md is left alone)
 *   --reps N         repetitions of each noisy scenario (default 3)
 */
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { formatProfile } from './analyze-profile.mjs'
import { nowUs, sleep } from './lib/clock.mjs'
import { writePng } from './lib/png.mjs'
import { cpuSeconds, createLoadMeter, loadAverage, machine, rssBytes } from './lib/proc.mjs'
import { CONCURRENCY, LABELS, PROXIES, RESPONSES_CONCURRENCY, formatReport } from './lib/report.mjs'
import { RESPONSES_IMAGE_PIECES, responsesEventCount } from './lib/responses.mjs'
import { median } from './lib/stats.mjs'
import { ROOT, findNginx, startFastifyProxy, startFloorProxy, startImagegate, startLoadGenerator, startMock, startNginx } from './lib/systems.mjs'

const SCENARIOS = ['ttft', 'latency', 'events', 'responses', 'memory', 'images']
const RESULTS_DIR = path.join(ROOT, 'bench', 'results')
const IMAGE_BYTES = 1024 * 1024
const IMAGE_NAME = 'apple.png'

// Scenario settings. Each is sized so the whole run stays under five minutes on 2 cores.
const TTFT = { requests: 300, warmup: 30, bench: { mode: 'paced', paceMs: 0, events: 4, imageEvery: 0 } }
// One stream sees few events per run, so it runs longer to give its p99 some samples.
const LATENCY = { durationMs: (concurrency) => (concurrency === 1 ? 3000 : 1500), warmupMs: 500, bench: { mode: 'paced', paceMs: 20, events: 30, imageEvery: 30 } }
const EVENTS = { api: 'chat', concurrency: 16, durationMs: 2000, warmupMs: 1000, bench: { mode: 'fast', events: 10_000_000, batch: 16, imageEvery: 40 } }
// Responses API: the same paced streams at the concurrencies of the targets, and, for
// events/s, whole answers back to back (each ends with the three events that repeat the
// whole text, which imagegate rewrites again), so answers stay a realistic length.
// Profiled only: short answers back to back, so the work done once per request (routing,
// headers, the upstream request, the rewrite session, the log line) shows in the profile
// instead of being buried under the events of long streams.
const ANSWERS = { api: 'chat', concurrency: 16, durationMs: 2000, warmupMs: 1000, bench: { mode: 'fast', events: 4, batch: 16, imageEvery: 0 } }
const RESPONSES = {
  latency: { durationMs: 1500, warmupMs: 500, bench: { mode: 'paced', paceMs: 20, events: 30, imageEvery: 30 } },
  events: { api: 'responses', concurrency: 16, durationMs: 2000, warmupMs: 1000, bench: { mode: 'fast', events: 400, batch: 16, imageEvery: 40 } }
}
// Memory: the fresh process's first 1000 idle streams double as the warm-up round of the
// steady-state measurement, which opens 1000 again in the same process once they closed.
const MEMORY = { streams: 1000, steps: 5, batch: 100, settleMs: 2000 }
const IMAGES = { concurrency: 16, durationMs: 2000, warmupMs: 500 }

function parseArgs (argv) {
  const args = { profile: false, only: SCENARIOS, reps: 3 }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    if (arg === '--profile') args.profile = true
    else if (arg === '--only') args.only = (argv[++i] ?? '').split(',')
    else if (arg === '--reps') args.reps = Number(argv[++i])
    else throw new TypeError(`unknown option ${JSON.stringify(arg)} (known: --profile, --only a,b, --reps N)`)
  }
  const unknown = args.only.filter((s) => !SCENARIOS.includes(s))
  if (unknown.length > 0) throw new TypeError(`--only takes ${SCENARIOS.join(', ')}, got ${unknown.join(', ')}`)
  if (!Number.isInteger(args.reps) || args.reps < 1) throw new TypeError(`--reps must be a positive integer, got ${args.reps}`)
  return args
}

const log = (text) => console.log(`[bench] ${text}`)

/** CPU seconds of benchmark processes that were started and stopped inside a scenario. */
let retiredCpu = 0

/** Systems in a different order each repetition, so none always runs first (cold) or last. */
const rotate = (list, by) => list.map((_, i) => list[(i + by) % list.length])

async function readRss (pid) {
  const reads = []
  for (let i = 0; i < 3; i++) {
    reads.push(rssBytes(pid))
    await sleep(100)
  }
  return median(reads)
}

const escapeRegExp = (text) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

/**
 * Checks one path's answer to the probe request: whole, every stamp there, and the image
 * path rewritten by imagegate (into a signed link) and by nothing else. Returns the
 * signed link imagegate wrote (path and query), which the /images scenario fetches.
 */
function checkProbe (name, { statusCode, text }, { imagePath, imagegateOrigin, stamps, complete }) {
  const stamped = (text.match(/"t": ?\d+/g) ?? []).length
  const problems = []
  if (statusCode !== 200) problems.push(`status ${statusCode}`)
  if (!text.includes(complete)) problems.push(`no ${complete}`)
  if (stamped !== stamps) problems.push(`${stamped} stamped events instead of ${stamps}`)
  let link
  if (name === 'imagegate') {
    const signed = new RegExp(`${escapeRegExp(imagegateOrigin)}(/images/[0-9a-f]{10}/${escapeRegExp(IMAGE_NAME)}\\?sig=[A-Za-z0-9_-]+)`).exec(text)
    if (signed === null) problems.push('image path was not rewritten into a signed link')
    else link = signed[1]
    if (text.includes(imagePath)) problems.push('the cache path still reaches the client')
  } else if (!text.includes(imagePath.slice(imagePath.length >> 1))) {
    problems.push('the image path did not pass through')
  }
  if (problems.length > 0) throw new Error(`${LABELS[name]} does not stream as expected: ${problems.join(', ')}`)
  return link
}

/**
 * Responses API events must keep `sequence_number` strictly increasing without gaps,
 * also when imagegate inserts a delta of held text; returns the number of events.
 */
function checkSequence (name, text) {
  const numbers = [...text.matchAll(/"sequence_number": ?(\d+)/g)].map((m) => Number(m[1]))
  const wrong = numbers.findIndex((n, i) => n !== i)
  if (wrong !== -1) throw new Error(`${LABELS[name]} Responses stream: sequence_number ${numbers[wrong]} at event ${wrong}`)
  return numbers.length
}

async function main () {
  const args = parseArgs(process.argv.slice(2))
  const started = Date.now()
  const only = new Set(args.only)
  const loadAtStart = loadAverage()

  log('building dist/ (npm run build)')
  const build = spawnSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'inherit' })
  if (build.status !== 0) throw new Error('npm run build failed')

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'imagegate-bench-'))
  const cacheDir = path.join(tmp, 'cache')
  fs.mkdirSync(cacheDir)
  // nginx workers run as an unprivileged user and must reach the image.
  fs.chmodSync(tmp, 0o755)
  fs.chmodSync(cacheDir, 0o755)
  const stateDir = path.join(tmp, 'state')
  // Where the Node proxies' heap probe (bench/lib/heap-probe.mjs) answers.
  const probeDir = path.join(tmp, 'probe')
  fs.mkdirSync(probeDir)
  const imagePath = path.join(cacheDir, IMAGE_NAME)
  const imageBytes = writePng(imagePath, IMAGE_BYTES)

  const notes = []
  const nginxBinary = findNginx()
  if (nginxBinary.skipped !== undefined) {
    notes.push(`nginx column skipped: ${nginxBinary.skipped}`)
    console.warn(`[bench] ${nginxBinary.skipped}`)
  }

  const systems = {}
  const cleanup = [() => fs.rmSync(tmp, { recursive: true, force: true })]
  try {
    const mock = systems.direct = await startMock(imagePath)
    cleanup.push(() => mock.stop())
    const load = await startLoadGenerator()
    cleanup.push(() => load.stop())
    const upstreamBase = `${mock.origin}/v1`
    cleanup.push(() => Promise.all(PROXIES.map((s) => systems[s]?.stop())))
    systems.imagegate = await startImagegate({ upstreamBase, cacheDir, stateDir, probeDir })
    if (nginxBinary.path !== undefined) systems.nginx = await startNginx({ binary: nginxBinary.path, dir: path.join(tmp, 'nginx'), upstreamOrigin: mock.origin, cacheDir })
    systems.fastify = await startFastifyProxy(mock.origin, { probeDir })
    systems.floor = await startFloorProxy(mock.origin, { probeDir })
    const names = ['direct', ...PROXIES].filter((s) => systems[s] !== undefined)
    log(`systems: ${names.map((s) => `${LABELS[s]} ${systems[s].origin}`).join(', ')}; imagegate via ${systems.imagegate.via}`)

    let signedImage
    const probeEvents = {}
    for (const name of names) {
      const origin = systems[name].origin
      const check = { imagePath, imagegateOrigin: systems.imagegate.origin }
      const chat = await load.call('probe', { origin, bench: { mode: 'paced', paceMs: 0, events: 24, imageEvery: 12 } })
      const link = checkProbe(name, chat, { ...check, stamps: 26, complete: 'data: [DONE]' })
      if (name === 'imagegate') signedImage = link
      const deltas = RESPONSES.latency.bench.events
      const responses = await load.call('probe', { origin, api: 'responses', bench: { ...RESPONSES.latency.bench, paceMs: 0 } })
      checkProbe(name, responses, { ...check, stamps: responsesEventCount(deltas), complete: 'event: response.completed' })
      probeEvents[name] = checkSequence(name, responses.text)
    }
    log(`every path streams the same chat and Responses answers; imagegate rewrites the image path into ${signedImage}`)

    const results = {
      date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
      machine: { nproc: os.availableParallelism(), cpu: machine().model, node: process.version, nginx: nginxVersion(nginxBinary.path), loadAtStart },
      via: systems.imagegate.via,
      commit: measuredCommit(),
      signedImage,
      responsesInserted: probeEvents.imagegate - probeEvents.direct,
      reps: args.reps,
      systems: names,
      notes,
      method: [],
      load: {}
    }

    // Every benchmark process is a child (or grandchild: nginx workers) of this one.
    const ours = () => retiredCpu + cpuSeconds(process.pid)
    const meter = createLoadMeter(ours)
    const scenario = async (name, run, enabled = only.has(name)) => {
      if (!enabled) return
      meter.start()
      await run()
      results.load[name] = meter.stop()
    }

    await scenario('ttft', async () => {
      log(`TTFT: 1 stream, ${TTFT.requests} sequential short answers × ${args.reps} runs per path`)
      const runs = Object.fromEntries(names.map((s) => [s, []]))
      for (let rep = 0; rep < args.reps; rep++) {
        for (const name of rotate(names, rep)) {
          const { result: r, gc } = await withGc(systems[name], () => load.call('ttft', { origin: systems[name].origin, requests: TTFT.requests, warmup: rep === 0 ? TTFT.warmup : 5, bench: TTFT.bench }))
          if (r.errors > 0) notes.push(`TTFT ${LABELS[name]}: ${r.errors} failed answers`)
          runs[name].push({ ...r.ttft, ...gc })
        }
      }
      results.ttft = mediansOf(runs, ['p50', 'p99', 'n', ...GC_KEYS])
      await load.call('closePools')
      results.method.push(`TTFT: one client, ${TTFT.requests} sequential answers per run (role chunk, 4 deltas, usage chunk, [DONE], all written at once); time from sending the request to reading the first content delta.`)
    })

    await scenario('latency', async () => {
      results.latency = {}
      for (const concurrency of CONCURRENCY) {
        log(`per-event latency: ${concurrency} streams, ${LATENCY.durationMs(concurrency)} ms × ${args.reps} runs per path`)
        results.latency[concurrency] = await measureLatency(load, systems, names, { api: 'chat', concurrency, durationMs: LATENCY.durationMs(concurrency), warmupMs: LATENCY.warmupMs, bench: LATENCY.bench }, args.reps, notes)
      }
      results.method.push(`Per-event latency: closed loop of N concurrent streams for ${LATENCY.durationMs(16)} ms per run (${LATENCY.durationMs(1)} ms for 1 stream); each stream is a role chunk, ${LATENCY.bench.events} content deltas ${LATENCY.bench.paceMs} ms apart (one markdown image path split over 6 of them), a usage chunk and [DONE]. Every chunk carries the upstream's monotonic send time in a \`"t"\` field; delay = client read time − send time.`)
    })

    await scenario('events', async () => {
      log(`events/s: ${EVENTS.concurrency} fast streams, ${EVENTS.durationMs} ms × ${args.reps} runs per path`)
      results.events = await measureThroughput(load, systems, names, mock, EVENTS, args.reps)
      results.method.push(`events/s: ${EVENTS.concurrency} concurrent streams from an upstream writing as fast as the socket takes (${EVENTS.bench.batch} events per write, an image path every ${EVENTS.bench.imageEvery} deltas), ${EVENTS.durationMs} ms per run; CPU from /proc/<pid>/stat (nginx: master and worker).`)
    })

    await scenario('responses', async () => {
      results.responses = { latency: {} }
      for (const concurrency of RESPONSES_CONCURRENCY) {
        log(`Responses API per-event latency: ${concurrency} streams, ${RESPONSES.latency.durationMs} ms × ${args.reps} runs per path`)
        results.responses.latency[concurrency] = await measureLatency(load, systems, names, { api: 'responses', concurrency, ...RESPONSES.latency }, args.reps, notes)
      }
      const e = RESPONSES.events
      log(`Responses API events/s: ${e.concurrency} streams of ${e.bench.events}-delta answers, ${e.durationMs} ms × ${args.reps} runs per path`)
      results.responses.events = await measureThroughput(load, systems, names, mock, e, args.reps)
      const l = RESPONSES.latency.bench
      results.method.push(`Responses API (\`/v1/responses\`, hermes' event shape): per-event latency as for chat, each stream being \`response.created\`, \`response.output_item.added\`, ${l.events} \`response.output_text.delta\` events ${l.paceMs} ms apart (three words each; one markdown image split over ${RESPONSES_IMAGE_PIECES} of them, its path cut in the middle), then \`response.output_text.done\`, \`response.output_item.done\` and \`response.completed\` with the whole text; every \`data\` object ends with the \`"t"\` stamp. events/s: ${e.concurrency} concurrent streams of whole ${e.bench.events}-delta answers back to back (${e.bench.batch} events per write, an image every ${e.bench.imageEvery} deltas), ${e.durationMs} ms per run; every event the client receives counts (imagegate inserted ${results.responsesInserted} event(s) of held text per probe answer). The same limits as for chat apply.`)
    })

    await scenario('memory', async () => {
      results.memory = {}
      for (const name of PROXIES.filter((s) => systems[s] !== undefined)) {
        log(`memory: ${MEMORY.streams} idle streams through a fresh ${LABELS[name]}`)
        results.memory[name] = await measureMemory(load, mock, name, { upstreamBase, cacheDir, stateDir, probeDir, tmp, nginx: nginxBinary.path })
        for (const [round, r] of Object.entries(results.memory[name].rounds)) {
          if (r.errors > 0) notes.push(`memory ${LABELS[name]} (${round}): ${r.errors} of ${MEMORY.streams} idle streams failed`)
        }
      }
      const step = MEMORY.streams / MEMORY.steps
      results.method.push(`RSS per idle stream: VmRSS (/proc/<pid>/status, median of 3 reads) of each proxy idle, then again ${MEMORY.settleMs} ms after ${MEMORY.streams} streams are open and idle (role chunk and one delta sent, the upstream then silent); per stream = difference ÷ ${MEMORY.streams}. The streams are opened in ${MEMORY.steps} steps of ${step} with VmRSS read after each; "median step" is the median of the steps' growth ÷ ${step}. Two rounds in the same process. *Fresh*: a new process that has served only a few short answers, read as it runs. *Steady state* (Node proxies): after the fresh round's ${MEMORY.streams} streams have ended (they are the warm-up round), so V8's young generation, the allocator's arenas and the socket pools have already grown to this load, as in a proxy that has been running; every RSS read of this round follows two full collections (bench/lib/heap-probe.mjs), so the difference does not depend on when V8 last collected the warm-up round's garbage, and the used heap read then is live memory ("live V8 heap"). The ≤ 30 KB target is judged on the steady-state figure, because the fresh one holds growth that happens once per process, not once per stream: V8 doubles its young generation (new space, \`v8.getHeapSpaceStatistics()\`) from 16 to 32 MB once the process has allocated enough, ${(16 * 1024 / MEMORY.streams).toFixed(1)} KB per stream when it lands inside the round (the "V8 young generation" row shows whether it did), and old space grows with the garbage of the burst of stream set-ups until a major collection (compare "V8 heap" with "live V8 heap"). nginx runs the fresh round only.`)
    })

    const imagePaths = { imagegate: signedImage, nginx: `/images/${IMAGE_NAME}` }
    await scenario('images', async () => {
      results.images = {}
      for (const name of ['imagegate', 'nginx'].filter((s) => systems[s] !== undefined)) {
        await checkImageUrls(load, systems[name], imagePaths[name], imageBytes)
        log(`/images: ${IMAGES.concurrency} clients, ${IMAGES.durationMs} ms × ${args.reps} runs, ${LABELS[name]} ${imagePaths[name]}`)
        const runs = []
        for (let rep = 0; rep < args.reps; rep++) runs.push(await measureImages(load, systems[name], imagePaths[name], imageBytes, rep === 0))
        results.images[name] = mediansOf({ x: runs }, ['rps', 'cpu', 'perCpu']).x
      }
      await load.call('closePools')
      results.method.push(`/images: ${IMAGES.concurrency} keep-alive clients GET the same ${(imageBytes / 1048576).toFixed(2)} MB PNG for ${IMAGES.durationMs} ms per run, each body read whole and its status (200) and length checked; imagegate through the signed link it wrote into the probe answer (checked first: 200, \`image/png\` and the file's length with the signature, 404 without it or with a wrong one), nginx serves the same folder with \`alias\` and sendfile. Over loopback, sendfile leaves most of the copying to the receiving side, so nginx's own CPU time is small: the observed ratio (Context column) is the conservative comparison.`)
    })

    await scenario('profile', async () => {
      const profiles = [
        ['events/s scenario', 'events', (system) => measureThroughputOnce(load, system, mock, EVENTS, true), (run) => `${Math.round(run.eps).toLocaleString('en-US')} events/s`, EVENTS.durationMs],
        ['Responses API events/s scenario', 'responses', (system) => measureThroughputOnce(load, system, mock, RESPONSES.events, true), (run) => `${Math.round(run.eps).toLocaleString('en-US')} events/s`, RESPONSES.events.durationMs],
        ['short answers (role chunk, 4 deltas, usage, [DONE]; 16 clients back to back)', 'answers', (system) => measureThroughputOnce(load, system, mock, ANSWERS, true), (run) => `${Math.round(run.aps).toLocaleString('en-US')} answers/s`, ANSWERS.durationMs],
        ['/images scenario', 'images', (system) => measureImages(load, system, signedImage, imageBytes, true), (run) => `${Math.round(run.rps).toLocaleString('en-US')} requests/s`, IMAGES.durationMs]
      ]
      results.profiles = []
      for (const [title, slug, measure, rate, durationMs] of profiles) {
        if (slug === 'images' && signedImage === undefined) continue
        log(`profiling imagegate in the ${title} (--cpu-prof)`)
        results.profiles.push({ title, text: await profile(load, slug, measure, rate, durationMs, { upstreamBase, cacheDir, stateDir }) })
      }
    }, args.profile)

    results.seconds = (Date.now() - started) / 1000
    const report = formatReport(results)
    console.log('\n' + report)
    if (SCENARIOS.every((name) => only.has(name))) {
      fs.mkdirSync(RESULTS_DIR, { recursive: true })
      fs.writeFileSync(path.join(RESULTS_DIR, 'latest.md'), report)
      log('wrote bench/results/latest.md')
    }
    log(`done in ${Math.round((Date.now() - started) / 1000)} s`)
  } finally {
    for (const step of cleanup.reverse()) await step()
  }
}

/** GC pauses of a probed Node proxy during a measured run (none for the others). */
const GC_KEYS = ['gcCount', 'gcMs', 'gcMaxMs']

/** Runs `measure`, returning its result and the system's GC pauses meanwhile (when probed). */
async function withGc (system, measure) {
  if (system.probe === undefined) return { result: await measure(), gc: {} }
  // The read before resets the probe's longest pause, so the one after is this run's.
  const before = (await system.probe()).gc
  const result = await measure()
  const after = (await system.probe()).gc
  return {
    result,
    gc: { gcCount: after.count - before.count, gcMs: after.totalMs - before.totalMs, gcMaxMs: after.maxMs }
  }
}

function mediansOf (runs, keys) {
  const out = {}
  for (const [name, list] of Object.entries(runs)) {
    out[name] = Object.fromEntries(keys.map((k) => [k, median(list.map((r) => r[k]))]))
  }
  return out
}

/** Per-event latency of every path at one concurrency: medians of `reps` runs. */
async function measureLatency (load, systems, names, { api, concurrency, durationMs, warmupMs, bench }, reps, notes) {
  const runs = Object.fromEntries(names.map((s) => [s, []]))
  for (let rep = 0; rep < reps; rep++) {
    for (const name of rotate(names, rep)) {
      const args = { origin: systems[name].origin, api, concurrency, durationMs, bench }
      if (rep === 0) await load.call('latency', { ...args, durationMs: warmupMs })
      let cpuUsPerEvent, cpuCores
      const { result: r, gc } = await withGc(systems[name], async () => {
        const cpu = cpuSeconds(systems[name].pid)
        const from = nowUs()
        const r = await load.call('latency', args)
        const used = cpuSeconds(systems[name].pid) - cpu
        cpuUsPerEvent = used * 1e6 / r.events.n
        // How busy the server's one thread was: queueing delay grows with it.
        cpuCores = used * 1e6 / (nowUs() - from)
        return r
      })
      if (r.errors > 0) notes.push(`per-event (${api}) ${LABELS[name]} at ${concurrency} streams: ${r.errors} failed streams`)
      runs[name].push({ ...r.events, cpuUsPerEvent, cpuCores, ...gc })
    }
  }
  await load.call('closePools')
  return mediansOf(runs, ['p50', 'p99', 'n', 'cpuUsPerEvent', 'cpuCores', ...GC_KEYS])
}

/** events/s of every path: medians of `reps` runs. */
async function measureThroughput (load, systems, names, mock, config, reps) {
  const runs = Object.fromEntries(names.map((s) => [s, []]))
  for (let rep = 0; rep < reps; rep++) {
    for (const name of rotate(names, rep)) runs[name].push(await measureThroughputOnce(load, systems[name], mock, config, rep === 0))
  }
  await load.call('closePools')
  return mediansOf(runs, ['eps', 'cpu', 'perCpu', 'mockCpu', 'loadCpu'])
}

async function measureThroughputOnce (load, system, mock, { api, concurrency, durationMs, warmupMs, bench }, warm) {
  const args = { origin: system.origin, api, concurrency, bench }
  if (warm) await load.call('throughput', { ...args, durationMs: warmupMs })
  const cpu = () => [cpuSeconds(system.pid), cpuSeconds(mock.pid), cpuSeconds(load.pid)]
  const before = cpu()
  const from = nowUs()
  const r = await load.call('throughput', { ...args, durationMs })
  const to = nowUs()
  const after = cpu()
  if (r.errors > 0) throw new Error(`${system.name} ${api} events/s: ${r.errors} failed streams`)
  const [server, upstream, client] = after.map((v, i) => (v - before[i]) / r.seconds)
  const direct = system.name === 'direct'
  return {
    eps: r.events / r.seconds,
    aps: r.answers / r.seconds,
    cpu: direct ? NaN : server,
    perCpu: direct ? NaN : r.events / (server * r.seconds),
    mockCpu: upstream,
    loadCpu: client,
    errors: r.errors,
    window: { from, to }
  }
}

async function measureMemory (load, mock, name, { upstreamBase, cacheDir, stateDir, probeDir, tmp, nginx }) {
  const system = name === 'imagegate'
    ? await startImagegate({ upstreamBase, cacheDir, stateDir, probeDir })
    : name === 'nginx'
      ? await startNginx({ binary: nginx, dir: path.join(tmp, `nginx-memory-${Date.now()}`), upstreamOrigin: mock.origin, cacheDir })
      : name === 'floor'
        ? await startFloorProxy(mock.origin, { probeDir })
        : await startFastifyProxy(mock.origin, { probeDir })
  try {
    await load.call('latency', { origin: system.origin, concurrency: 4, durationMs: 500, bench: TTFT.bench })
    await load.call('closePools')
    await sleep(1000)
    const fresh = await idleRound(load, mock, system)
    // The steady round is about the Node proxies' heaps (collected through the probe);
    // nginx has no one-time growth to remove (its steps all grow alike), and time is short.
    if (name === 'nginx') return { rounds: { fresh } }
    // The fresh round's streams have ended; what the process keeps from them is the
    // steady state a running proxy starts from.
    await sleep(1000)
    const steady = await idleRound(load, mock, system, { collect: true })
    return { rounds: { fresh, steady } }
  } finally {
    retiredCpu += cpuSeconds(system.pid)
    await system.stop()
  }
}

/** V8's young generation, whole heap and used heap, in bytes, from the probe (Node proxies only). */
async function heapOf (system) {
  if (system.probe === undefined) return {}
  const { spaces, memory } = await system.probe()
  return { newSpace: spaces.new_space?.size, heapTotal: memory.heapTotal, heapUsed: memory.heapUsed }
}

/**
 * RSS idle, then with `MEMORY.streams` idle streams opened in `MEMORY.steps` steps; the
 * streams are ended and closed again before it returns. With `collect` (Node proxies),
 * every RSS read follows two full collections, so the difference does not depend on
 * when V8 last collected the garbage of earlier streams, and the used heap then read is
 * live memory.
 */
async function idleRound (load, mock, system, { collect = false } = {}) {
  const full = collect && system.probe !== undefined
  const rssNow = async () => {
    if (full) await system.probe({ fullGc: true })
    return readRss(system.pid)
  }
  const before = await rssNow()
  const heapBefore = await heapOf(system)
  const step = MEMORY.streams / MEMORY.steps
  const hold = { origin: system.origin, count: step, connections: MEMORY.streams, batch: MEMORY.batch }
  const growth = []
  let last = before
  for (let i = 1; i <= MEMORY.steps; i++) {
    await load.call('hold', hold)
    await sleep(i === MEMORY.steps ? MEMORY.settleMs : MEMORY.settleMs / 2)
    const rss = await rssNow()
    growth.push((rss - last) / step)
    last = rss
  }
  const heapWith = await heapOf(system)
  mock.child.send('release')
  const ended = await load.call('holdEnd')
  await load.call('closePools')
  return {
    before,
    with: last,
    perStream: (last - before) / MEMORY.streams,
    // One-time growth (heap spaces, pools) lands in one step; the median leaves it out.
    marginal: median(growth),
    steps: growth,
    heapBefore,
    heapWith,
    live: full ? { idle: heapBefore.heapUsed, with: heapWith.heapUsed, perStream: (heapWith.heapUsed - heapBefore.heapUsed) / MEMORY.streams } : undefined,
    errors: ended.errors
  }
}

/**
 * A wrong URL would measure 404s at full speed: the URL measured must answer 200 with
 * the PNG's bytes, and for imagegate the same name without its signature, or with a
 * wrong one, must answer 404.
 */
async function checkImageUrls (load, system, url, imageBytes) {
  const ok = await load.call('fetch', { origin: system.origin, path: url })
  if (ok.statusCode !== 200 || ok.bytes !== imageBytes || ok.contentType !== 'image/png') {
    throw new Error(`${system.name} GET ${url}: ${ok.statusCode}, ${ok.contentType}, ${ok.bytes} bytes (expected 200, image/png, ${imageBytes})`)
  }
  if (system.name !== 'imagegate') return
  const [name, sig] = url.split('?sig=')
  const forged = sig.startsWith('A') ? `B${sig.slice(1)}` : `A${sig.slice(1)}`
  for (const bad of [name, `${name}?sig=${forged}`]) {
    const r = await load.call('fetch', { origin: system.origin, path: bad })
    if (r.statusCode !== 404) throw new Error(`imagegate GET ${bad}: ${r.statusCode}, expected 404 (links must be signed)`)
  }
}

async function measureImages (load, system, url, imageBytes, warm) {
  const args = { origin: system.origin, path: url, concurrency: IMAGES.concurrency, expectedBytes: imageBytes }
  if (warm) await load.call('files', { ...args, durationMs: IMAGES.warmupMs })
  const before = cpuSeconds(system.pid)
  const from = nowUs()
  const r = await load.call('files', { ...args, durationMs: IMAGES.durationMs })
  const to = nowUs()
  const cpu = (cpuSeconds(system.pid) - before) / r.seconds
  if (r.errors > 0) throw new Error(`${system.name} /images: ${r.errors} failed requests`)
  return { rps: r.requests / r.seconds, cpu, perCpu: r.requests / (cpu * r.seconds), window: { from, to } }
}

/** Runs `measure` against a separate imagegate under --cpu-prof; returns the report text. */
async function profile (load, slug, measure, rate, durationMs, { upstreamBase, cacheDir, stateDir }) {
  const name = `imagegate-${slug}-${Date.now()}.cpuprofile`
  const nodeFlags = ['--cpu-prof', '--cpu-prof-dir', RESULTS_DIR, '--cpu-prof-name', name, '--cpu-prof-interval', '250']
  const system = await startImagegate({ upstreamBase, cacheDir, stateDir, nodeFlags })
  let run
  try {
    run = await measure(system)
    log(`profiled run: ${rate(run)} at ${run.cpu.toFixed(2)} cores (profiler overhead included)`)
    await load.call('closePools')
  } finally {
    retiredCpu += cpuSeconds(system.pid)
    // SIGTERM lets imagegate close and exit normally, which is when V8 writes the profile.
    await system.stop('SIGTERM')
  }
  const file = path.join(RESULTS_DIR, name)
  if (!fs.existsSync(file)) return `No profile was written (${file}): imagegate did not exit cleanly on SIGTERM.`
  const summary = `Profiled run: ${rate(run)} at ${run.cpu.toFixed(2)} cores of imagegate (profiler overhead included); samples outside the ${durationMs} ms measured window (start-up, warm-up, shutdown) are left out.`
  const text = summary + '\n\n' + formatProfile(file, run.window)
  log(`profile: ${path.relative(ROOT, file)} (again: node bench/analyze-profile.mjs ${path.relative(ROOT, file)} --from ${run.window.from} --to ${run.window.to})`)
  return text
}

/** The commit dist/ was built from, and whether src/ differed from it. */
function measuredCommit () {
  const git = (...args) => spawnSync('git', args, { cwd: ROOT, encoding: 'utf8' })
  const head = git('rev-parse', '--short', 'HEAD')
  if (head.status !== 0) return 'of unknown commit'
  const dirty = git('status', '--porcelain', '--', 'src').stdout.trim() !== ''
  return `${head.stdout.trim()}${dirty ? ' with uncommitted src/ changes' : ''}`
}

function nginxVersion (binary) {
  if (binary === undefined) return undefined
  // nginx prints its version on stderr.
  const r = spawnSync(binary, ['-v'], { encoding: 'utf8' })
  return (r.stderr || r.stdout).trim().replace('nginx version: ', '')
}

main().catch((err) => {
  // A usage mistake needs its sentence, not a stack.
  console.error(`[bench] failed: ${err instanceof TypeError ? err.message : err.stack ?? err}`)
  process.exitCode = 1
})
