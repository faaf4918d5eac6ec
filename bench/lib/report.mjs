/**
 * Turns the collected numbers into the markdown report: targets first (PASS/FAIL), then
 * ratios to direct and to nginx, then absolute numbers as context.
 */
export const LABELS = { direct: 'direct', imagegate: 'imagegate', floor: 'floor (node:http + undici)', nginx: 'nginx', fastify: '@fastify/http-proxy' }
export const PROXIES = ['imagegate', 'floor', 'nginx', 'fastify']
export const CONCURRENCY = [1, 16, 100, 500]
/** Responses API latency runs at the concurrencies the targets and the UI care about. */
export const RESPONSES_CONCURRENCY = [16, 100]

const num = (x) => typeof x === 'number' && Number.isFinite(x)

function ms (x) {
  if (!num(x)) return 'n/a'
  return Math.abs(x) < 10 ? x.toFixed(2) : x.toFixed(1)
}
const signedMs = (x) => (num(x) ? (x >= 0 ? '+' : '') + ms(x) : 'n/a')
const ratio = (a, b) => (num(a) && num(b) && b !== 0 ? `${(a / b).toFixed(2)}×` : 'n/a')
const count = (x) => (num(x) ? Math.round(x).toLocaleString('en-US') : 'n/a')
function kb (bytes) {
  if (!num(bytes)) return 'n/a'
  return Math.abs(bytes) >= 10 * 1048576 ? `${(bytes / 1048576).toFixed(1)} MB` : `${(bytes / 1024).toFixed(1)} KB`
}

const mb = (bytes) => (num(bytes) ? `${(bytes / 1048576).toFixed(1)} MB` : 'n/a')
/** GC pauses of one run: count, total and longest. */
const gcCell = (r) => (num(r?.gcCount) ? `${count(r.gcCount)} · ${ms(r.gcMs)} ms · ${ms(r.gcMaxMs)} ms` : '—')

const quotient = (a, b) => (num(a) && num(b) && b !== 0 ? a / b : undefined)
const addedP50 = (x) => (num(x) ? `p50 ${signedMs(x)} ms` : 'n/a')
const times = (r) => (num(r) ? `${r.toFixed(2)}×` : 'n/a')

function row (cells) {
  return `| ${cells.join(' | ')} |`
}

function table (header, rows, align) {
  return [row(header), row(align ?? header.map((_, i) => (i === 0 ? '---' : '---:'))), ...rows.map(row)].join('\n')
}

/** Latency metrics: `[label, pick(results, system) → total ms]`. */
function latencyMetrics (results) {
  const metrics = []
  if (results.ttft !== undefined) {
    metrics.push(['TTFT p50, 1 stream (ms)', (s) => results.ttft[s]?.p50])
    metrics.push(['TTFT p99, 1 stream (ms)', (s) => results.ttft[s]?.p99])
  }
  for (const c of CONCURRENCY) {
    if (results.latency?.[c] === undefined) continue
    metrics.push([`per-event p50, ${c} streams (ms)`, (s) => results.latency[c][s]?.p50])
    metrics.push([`per-event p99, ${c} streams (ms)`, (s) => results.latency[c][s]?.p99])
  }
  for (const c of RESPONSES_CONCURRENCY) {
    const r = results.responses?.latency?.[c]
    if (r === undefined) continue
    metrics.push([`Responses per-event p50, ${c} streams (ms)`, (s) => r[s]?.p50])
    metrics.push([`Responses per-event p99, ${c} streams (ms)`, (s) => r[s]?.p99])
  }
  return metrics
}

/** Server CPU per event rows: `[label, latency results by concurrency, concurrency]`. */
function cpuMetrics (results) {
  const metrics = []
  for (const c of CONCURRENCY) if (results.latency?.[c] !== undefined) metrics.push([`server CPU per event, ${c} streams`, results.latency[c]])
  for (const c of RESPONSES_CONCURRENCY) {
    if (results.responses?.latency?.[c] !== undefined) metrics.push([`Responses server CPU per event, ${c} streams`, results.responses.latency[c]])
  }
  return metrics
}

/** events/s results: `[label prefix, results]` for chat and the Responses API. */
function throughputSets (results) {
  const sets = []
  if (results.events !== undefined) sets.push(['', results.events, '16 fast streams'])
  if (results.responses?.events !== undefined) sets.push(['Responses ', results.responses.events, '16 streams of whole answers'])
  return sets
}

/** The target rows; each `[label, measured text, limit text, pass?]`. */
function targets (results) {
  const rows = []
  const added = (pick) => {
    const a = pick('imagegate')
    const d = pick('direct')
    return num(a) && num(d) ? a - d : undefined
  }
  const verdict = (ok) => (ok === undefined ? 'n/a' : ok ? 'PASS' : 'FAIL')

  const ttft = results.ttft === undefined ? undefined : added((s) => results.ttft[s]?.p99)
  rows.push(['added TTFT p99, 1 stream', num(ttft) ? `${ms(ttft)} ms` : 'n/a', '≤ 1 ms', verdict(num(ttft) ? ttft <= 1 : undefined), addedP50(added((s) => results.ttft?.[s]?.p50))])

  const event = results.latency?.[100] === undefined ? undefined : added((s) => results.latency[100][s]?.p99)
  rows.push(['added per-event p99, 100 streams', num(event) ? `${ms(event)} ms` : 'n/a', '≤ 2 ms', verdict(num(event) ? event <= 2 : undefined), addedP50(added((s) => results.latency?.[100]?.[s]?.p50))])

  const e = (s, k) => results.events?.[s]?.[k]
  // ≥ 0.8× the floor's events per CPU-second is at most 1.25× its CPU per event.
  for (const [other, limit] of [['floor', 0.8], ['fastify', 1], ['nginx', 0.5]]) {
    const r = quotient(e('imagegate', 'perCpu'), e(other, 'perCpu'))
    const observed = quotient(e('imagegate', 'eps'), e(other, 'eps'))
    rows.push([`events per CPU-second vs ${LABELS[other]}`, times(r), `≥ ${limit.toFixed(1)}×`, verdict(num(r) ? r >= limit : undefined), times(observed)])
  }

  if (results.responses !== undefined) {
    const latency = results.responses.latency?.[100]
    const rEvent = latency === undefined ? undefined : added((s) => latency[s]?.p99)
    rows.push(['Responses: added per-event p99, 100 streams', num(rEvent) ? `${ms(rEvent)} ms` : 'n/a', '≤ 2 ms', verdict(num(rEvent) ? rEvent <= 2 : undefined), addedP50(added((s) => latency?.[s]?.p50))])
    const re = (s, k) => results.responses.events?.[s]?.[k]
    for (const [other, limit] of [['floor', 0.8], ['fastify', 1], ['nginx', 0.5]]) {
      const r = quotient(re('imagegate', 'perCpu'), re(other, 'perCpu'))
      const observed = quotient(re('imagegate', 'eps'), re(other, 'eps'))
      rows.push([`Responses: events per CPU-second vs ${LABELS[other]}`, times(r), `≥ ${limit.toFixed(1)}×`, verdict(num(r) ? r >= limit : undefined), times(observed)])
    }
  }

  const memory = results.memory?.imagegate?.rounds
  const rss = memory?.steady.perStream
  const young = memory === undefined ? 'n/a' : `${mb(memory.fresh.heapBefore.newSpace)} → ${mb(memory.fresh.heapWith.newSpace)}`
  const live = memory?.steady.live?.perStream
  rows.push(['RSS per idle stream, 1000 open, steady state', kb(rss), '≤ 30 KB', verdict(num(rss) ? rss <= 30 * 1024 : undefined), `fresh process ${kb(memory?.fresh.perStream)} (young generation ${young}); live heap ${kb(live)}`])

  const i = (s, k) => results.images?.[s]?.[k]
  const r = quotient(i('imagegate', 'perCpu'), i('nginx', 'perCpu'))
  rows.push(['/images (1 MB PNG) requests per CPU-second vs nginx', times(r), '≥ 0.5×', verdict(num(r) ? r >= 0.5 : undefined), times(quotient(i('imagegate', 'rps'), i('nginx', 'rps')))])
  return rows
}

/** How long `npm run bench` took; the profiles of `--profile` come on top. */
function runTime (results) {
  const profiles = results.load.profile?.seconds
  const total = `run time ${Math.round(results.seconds)} s, build included`
  return profiles === undefined ? total : `${total} (${Math.round(results.seconds - profiles)} s without the --profile runs)`
}

export function formatReport (results) {
  const out = []
  const { machine } = results
  out.push('# imagegate benchmark')
  out.push('')
  out.push(`${results.date} · ${machine.nproc} cores (${machine.cpu}) · Node ${machine.node} · ${machine.nginx ?? 'no nginx'} · imagegate ${results.commit} via \`${results.via}\` · load average ${machine.loadAtStart.toFixed(2)} at start · ${runTime(results)}`)
  out.push('')
  out.push(`Each system runs in its own process next to the mock upstream and the load generator, all on this ${machine.nproc}-core machine. ` +
    `Latency and throughput numbers are medians of ${results.reps} runs. "Added" is the path's percentile minus the direct path's percentile. ` +
    'Throughput targets compare work per CPU-second of the server process (events or requests ÷ its user+system CPU time), ' +
    'since the load generator and the mock share the same cores; observed rates are listed below.')
  const loads = Object.values(results.load)
  const seconds = loads.reduce((sum, l) => sum + l.seconds, 0)
  const others = loads.reduce((sum, l) => sum + l.others * l.seconds, 0) / seconds
  if (others > 0.25) {
    out.push('', `> Noisy machine: other processes used ${others.toFixed(2)} of the ${machine.nproc} cores on average while the scenarios ran (see "Machine load" below). ` +
      'Every path waited for the scheduler, so latency percentiles, p99 above all, are inflated and "added" p99 differences are unreliable; CPU-time ratios hold up better.')
  }
  for (const note of results.notes) out.push('', `> ${note}`)
  out.push('')

  out.push('## Targets')
  out.push('')
  out.push(table(['target', 'imagegate', 'limit', 'result', 'context'], targets(results), ['---', '---:', '---:', '---', '---']))
  out.push('')
  out.push('Context: the added p50; for throughput, the same ratio of observed rates; for memory, the same figure in a fresh process (whose first 1000 streams may also grow V8\'s young generation, once) and the live V8 heap per stream after full collections (see Method).')
  out.push('')

  const available = ['direct', ...PROXIES].filter((s) => results.systems.includes(s))
  const latency = latencyMetrics(results)

  out.push('## Ratios')
  out.push('')
  const ratioHeader = ['metric', 'imagegate ÷ direct', 'imagegate ÷ nginx', 'imagegate ÷ @fastify/http-proxy', 'nginx ÷ direct', '@fastify/http-proxy ÷ direct']
  const ratioRows = []
  for (const [label, pick] of latency) {
    ratioRows.push([label.replace(' (ms)', ''), ratio(pick('imagegate'), pick('direct')), ratio(pick('imagegate'), pick('nginx')), ratio(pick('imagegate'), pick('fastify')), ratio(pick('nginx'), pick('direct')), ratio(pick('fastify'), pick('direct'))])
  }
  for (const [label, set] of cpuMetrics(results)) {
    const u = (s) => set[s]?.cpuUsPerEvent
    ratioRows.push([label, '—', ratio(u('imagegate'), u('nginx')), ratio(u('imagegate'), u('fastify')), '—', '—'])
  }
  for (const [prefix, set] of throughputSets(results)) {
    const e = (s, k) => set[s]?.[k]
    ratioRows.push([`${prefix}events/s observed`, ratio(e('imagegate', 'eps'), e('direct', 'eps')), ratio(e('imagegate', 'eps'), e('nginx', 'eps')), ratio(e('imagegate', 'eps'), e('fastify', 'eps')), ratio(e('nginx', 'eps'), e('direct', 'eps')), ratio(e('fastify', 'eps'), e('direct', 'eps'))])
    ratioRows.push([`${prefix}events per CPU-second`, '—', ratio(e('imagegate', 'perCpu'), e('nginx', 'perCpu')), ratio(e('imagegate', 'perCpu'), e('fastify', 'perCpu')), '—', '—'])
  }
  if (results.memory !== undefined) {
    for (const [round, label] of [['fresh', 'fresh process'], ['steady', 'steady state']]) {
      const m = (s) => results.memory[s]?.rounds[round]?.perStream
      ratioRows.push([`RSS per idle stream, ${label}`, '—', ratio(m('imagegate'), m('nginx')), ratio(m('imagegate'), m('fastify')), '—', '—'])
    }
  }
  if (results.images !== undefined) {
    const i = (s, k) => results.images[s]?.[k]
    ratioRows.push(['/images requests/s observed', '—', ratio(i('imagegate', 'rps'), i('nginx', 'rps')), '—', '—', '—'])
    ratioRows.push(['/images requests per CPU-second', '—', ratio(i('imagegate', 'perCpu'), i('nginx', 'perCpu')), '—', '—', '—'])
  }
  out.push(table(ratioHeader, ratioRows))
  out.push('')
  if (available.includes('floor')) {
    // The floor is what any proxy that frames events must spend: node:http, an undici
    // Pool, one write per upstream read, no parsing.
    const floorRows = []
    for (const [label, pick] of latency) floorRows.push([label.replace(' (ms)', ''), ratio(pick('imagegate'), pick('floor')), ratio(pick('fastify'), pick('floor'))])
    for (const [label, set] of cpuMetrics(results)) floorRows.push([label, ratio(set.imagegate?.cpuUsPerEvent, set.floor?.cpuUsPerEvent), ratio(set.fastify?.cpuUsPerEvent, set.floor?.cpuUsPerEvent)])
    for (const [prefix, set] of throughputSets(results)) floorRows.push([`${prefix}events per CPU-second`, ratio(set.imagegate?.perCpu, set.floor?.perCpu), ratio(set.fastify?.perCpu, set.floor?.perCpu)])
    out.push('Against the floor proxy:')
    out.push('')
    out.push(table(['metric', 'imagegate ÷ floor', '@fastify/http-proxy ÷ floor'], floorRows))
    out.push('')
  }
  out.push('Latency ratios are of total latency (time from the upstream writing an event, or from sending the request for TTFT, to the client reading it), and CPU ratios of CPU time per event (stream set-up included): below 1× is better. Throughput ratios: above 1× is better.')
  out.push('')

  out.push('## Absolute numbers')
  out.push('')
  const absRows = []
  for (const [label, pick] of latency) {
    absRows.push([label, ...available.map((s) => (s === 'direct' ? ms(pick(s)) : `${ms(pick(s))} (${signedMs(pick(s) - pick('direct'))})`))])
  }
  for (const [label, set] of cpuMetrics(results)) {
    const u = (s) => set[s]?.cpuUsPerEvent
    absRows.push([`${label} (µs)`, ...available.map((s) => (s === 'direct' ? '—' : num(u(s)) ? u(s).toFixed(1) : 'n/a'))])
  }
  for (const [label, set] of cpuMetrics(results)) {
    const c = (s) => set[s]?.cpuCores
    absRows.push([label.replace('server CPU per event', 'server CPU during the run') + ' (cores)', ...available.map((s) => (s === 'direct' ? '—' : num(c(s)) ? c(s).toFixed(2) : 'n/a'))])
  }
  for (const [prefix, set, what] of throughputSets(results)) {
    const e = (s, k) => set[s]?.[k]
    absRows.push([`${prefix}events/s observed, ${what}`, ...available.map((s) => count(e(s, 'eps')))])
    absRows.push([`${prefix}server CPU during it (cores)`, ...available.map((s) => (s === 'direct' ? '—' : num(e(s, 'cpu')) ? e(s, 'cpu').toFixed(2) : 'n/a'))])
    absRows.push([`${prefix}events per server CPU-second`, ...available.map((s) => (s === 'direct' ? '—' : count(e(s, 'perCpu'))))])
    absRows.push([`${prefix}mock upstream CPU (cores)`, ...available.map((s) => (num(e(s, 'mockCpu')) ? e(s, 'mockCpu').toFixed(2) : 'n/a'))])
    absRows.push([`${prefix}load generator CPU (cores)`, ...available.map((s) => (num(e(s, 'loadCpu')) ? e(s, 'loadCpu').toFixed(2) : 'n/a'))])
  }
  const gcSets = [['TTFT, 1 stream', results.ttft]]
  for (const c of CONCURRENCY) gcSets.push([`per-event, ${c} streams`, results.latency?.[c]])
  for (const c of RESPONSES_CONCURRENCY) gcSets.push([`Responses per-event, ${c} streams`, results.responses?.latency?.[c]])
  for (const [label, set] of gcSets) {
    if (set === undefined) continue
    absRows.push([`GC during one ${label} run (pauses · total · longest)`, ...available.map((s) => gcCell(set[s]))])
  }
  if (results.memory !== undefined) {
    const cell = (s, pick) => (s === 'direct' || results.memory[s] === undefined ? '—' : pick(results.memory[s].rounds))
    for (const [round, label] of [['fresh', 'fresh process'], ['steady', 'steady state']]) {
      const r = (s, pick) => cell(s, (rounds) => (rounds[round] === undefined ? '—' : pick(rounds[round])))
      absRows.push([`RSS idle, ${label}`, ...available.map((s) => r(s, (x) => kb(x.before)))])
      absRows.push([`RSS with 1000 idle streams, ${label}`, ...available.map((s) => r(s, (x) => kb(x.with)))])
      absRows.push([`RSS per idle stream, ${label} (0 → 1000)`, ...available.map((s) => r(s, (x) => kb(x.perStream)))])
      absRows.push([`RSS per idle stream, ${label}, median step`, ...available.map((s) => r(s, (x) => kb(x.marginal)))])
      absRows.push([`RSS per idle stream, ${label}, each step`, ...available.map((s) => r(s, (x) => x.steps.map((b) => (b / 1024).toFixed(0)).join(' / ') + ' KB'))])
      absRows.push([`V8 young generation, ${label}: idle → 1000 open`, ...available.map((s) => r(s, (x) => (x.heapBefore.newSpace === undefined ? '—' : `${mb(x.heapBefore.newSpace)} → ${mb(x.heapWith.newSpace)}`)))])
      absRows.push([`V8 heap, ${label}: idle → 1000 open`, ...available.map((s) => r(s, (x) => (x.heapBefore.heapTotal === undefined ? '—' : `${mb(x.heapBefore.heapTotal)} → ${mb(x.heapWith.heapTotal)}`)))])
    }
    absRows.push(['live V8 heap after full GC: idle → 1000 open', ...available.map((s) => cell(s, (rounds) => (rounds.steady?.live === undefined ? '—' : `${mb(rounds.steady.live.idle)} → ${mb(rounds.steady.live.with)}`)))])
    absRows.push(['live V8 heap per idle stream', ...available.map((s) => cell(s, (rounds) => (rounds.steady?.live === undefined ? '—' : kb(rounds.steady.live.perStream))))])
  }
  if (results.images !== undefined) {
    const i = (s, k) => results.images[s]?.[k]
    absRows.push(['/images requests/s, 1 MB PNG, 16 clients', ...available.map((s) => (results.images[s] === undefined ? '—' : count(i(s, 'rps'))))])
    absRows.push(['/images server CPU (cores)', ...available.map((s) => (results.images[s] === undefined ? '—' : i(s, 'cpu').toFixed(2)))])
    absRows.push(['/images requests per server CPU-second', ...available.map((s) => (results.images[s] === undefined ? '—' : count(i(s, 'perCpu'))))])
  }
  out.push(table(['metric', ...available.map((s) => LABELS[s])], absRows))
  out.push('')
  out.push('Latency cells: total (added versus direct). Server CPU per event: the server process\'s CPU time during a latency run ÷ events delivered, stream set-up and teardown included. ' +
    'GC: garbage collection pauses in the Node proxies during one measured run (median of the runs), from a PerformanceObserver preloaded by bench/lib/heap-probe.mjs. ' +
    'V8 young generation and heap: committed size of V8\'s new space and of the whole heap (`v8.getHeapSpaceStatistics()`, `process.memoryUsage().heapTotal`).')
  out.push('')

  const scenarios = Object.entries(results.load)
  if (scenarios.length > 0) {
    out.push('## Machine load during the run')
    out.push('')
    out.push('The cores are shared: "other processes" is CPU used by anything but the benchmark while a scenario ran, the noise behind the numbers above.')
    out.push('')
    out.push(table(['scenario', 'seconds', 'all processes (cores)', 'this benchmark (cores)', 'other processes (cores)', 'load average at end'],
      scenarios.map(([name, l]) => [name, l.seconds.toFixed(0), l.busy.toFixed(2), l.ours.toFixed(2), l.others.toFixed(2), l.load.toFixed(2)])))
    out.push('')
  }

  out.push('## Method')
  out.push('')
  for (const line of results.method) out.push(`- ${line}`)
  for (const { title, text } of results.profiles ?? []) {
    out.push('')
    out.push(`## CPU profile of imagegate, ${title}`)
    out.push('')
    out.push(text)
  }
  out.push('')
  return out.join('\n')
}
