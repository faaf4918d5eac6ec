/**
 * Reads a V8 .cpuprofile (from `node --cpu-prof`) and prints where the time went: top
 * functions by self time, the same grouped by package or imagegate folder (self, and
 * inclusive: samples with the group anywhere on the stack), and imagegate's own
 * functions by total (inclusive) time. Compiled dist/ positions are
 * mapped back to src/*.ts through the build's source maps.
 *
 * V8 stamps samples with the monotonic clock (microseconds), the same clock as
 * `process.hrtime`, so `from`/`to` can cut the profile to the window a scenario ran in
 * and leave start-up and shutdown out.
 *
 * Usage: node bench/analyze-profile.mjs <file.cpuprofile> [--top N] [--from US] [--to US]
 */
import fs from 'node:fs'
import { SourceMap } from 'node:module'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const ROOT = path.dirname(path.dirname(fileURLToPath(import.meta.url)))
const sourceMaps = new Map()

function sourceMapFor (file) {
  if (!sourceMaps.has(file)) {
    let map
    try {
      map = new SourceMap(JSON.parse(fs.readFileSync(`${file}.map`, 'utf8')))
    } catch {}
    sourceMaps.set(file, map)
  }
  return sourceMaps.get(file)
}

/** Where a frame lives, as `src/x.ts:line`, `package/file.js:line` or a Node internal. */
function place (frame) {
  const { url, lineNumber, columnNumber } = frame
  if (url === '') return { where: '', group: 'V8 / native' }
  if (url.startsWith('node:')) return { where: `${url}:${lineNumber + 1}`, group: 'node internals' }
  // undici's HTTP parser (llhttp) is WebAssembly.
  if (url.startsWith('wasm:')) return { where: url, group: 'WebAssembly (undici llhttp)' }
  const file = url.startsWith('file://') ? fileURLToPath(url) : url
  const modules = file.lastIndexOf('/node_modules/')
  if (modules !== -1) {
    const rest = file.slice(modules + '/node_modules/'.length)
    const parts = rest.split('/')
    const pkg = parts[0].startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]
    return { where: `${rest}:${lineNumber + 1}`, group: pkg }
  }
  const relative = path.relative(ROOT, file)
  if (relative.startsWith('dist/')) {
    const entry = sourceMapFor(file)?.findEntry(lineNumber, columnNumber)
    if (entry !== undefined && entry.originalSource !== undefined) {
      const source = path.relative(ROOT, entry.originalSource.startsWith('file:') ? fileURLToPath(entry.originalSource) : path.resolve(path.dirname(file), entry.originalSource))
      return { where: `${source}:${entry.originalLine + 1}`, group: `imagegate ${path.dirname(source)}` }
    }
    return { where: `${relative}:${lineNumber + 1}`, group: `imagegate ${path.dirname(relative)}` }
  }
  return { where: `${relative}:${lineNumber + 1}`, group: relative.startsWith('..') ? 'other' : `bench ${relative}` }
}

const SPECIAL = new Set(['(idle)', '(program)', '(garbage collector)', '(root)'])

/** Self and total microseconds per function and per group, plus totals, for samples in [from, to]. */
export function readProfile (file, { from = -Infinity, to = Infinity } = {}) {
  const profile = JSON.parse(fs.readFileSync(file, 'utf8'))
  const parent = new Map()
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id)

  const functions = new Map()
  const groupTotals = new Map()
  const keyOf = new Map()
  for (const node of profile.nodes) {
    const frame = node.callFrame
    const name = frame.functionName === '' ? '(anonymous)' : frame.functionName
    const { where, group } = SPECIAL.has(name) ? { where: '', group: name } : place(frame)
    const key = `${name} ${where}`
    keyOf.set(node.id, key)
    if (!functions.has(key)) functions.set(key, { name, where, group, self: 0, total: 0 })
  }

  // timeDeltas[i] is the time before sample i, so sample i lasted timeDeltas[i + 1].
  const { samples, timeDeltas } = profile
  let busy = 0
  let idle = 0
  let at = profile.startTime
  for (let i = 0; i < samples.length; i++) {
    at += timeDeltas[i]
    if (at < from || at > to) continue
    const us = timeDeltas[i + 1] ?? timeDeltas[i] ?? 0
    const id = samples[i]
    const fn = functions.get(keyOf.get(id))
    fn.self += us
    if (fn.name === '(idle)') {
      idle += us
      continue
    }
    busy += us
    const seen = new Set()
    const groups = new Set()
    for (let node = id; node !== undefined; node = parent.get(node)) {
      const key = keyOf.get(node)
      if (seen.has(key)) continue
      seen.add(key)
      const f = functions.get(key)
      f.total += us
      groups.add(f.group)
    }
    for (const group of groups) groupTotals.set(group, (groupTotals.get(group) ?? 0) + us)
  }
  return { functions: [...functions.values()], groupTotals, busy, idle }
}

const pct = (part, whole) => `${(100 * part / whole).toFixed(1)}%`
const ms = (us) => (us / 1000).toFixed(0)

/** Markdown report of a profile; percentages are of non-idle time. */
export function formatProfile (file, { top = 25, from, to } = {}) {
  const { functions, groupTotals, busy, idle } = readProfile(file, { from, to })
  const lines = []
  const window = from === undefined ? '' : ' in the measured window'
  lines.push(`Profile \`${path.relative(ROOT, file)}\`: ${ms(busy + idle)} ms sampled${window}, ${pct(busy, busy + idle)} busy. Percentages are of busy time.`)
  lines.push('')
  lines.push('Top functions by self time:')
  lines.push('')
  lines.push('| self | self ms | function | where |')
  lines.push('| ---: | ---: | --- | --- |')
  const bySelf = functions.filter((fn) => fn.name !== '(idle)' && fn.self > 0).sort((a, b) => b.self - a.self)
  for (const fn of bySelf.slice(0, top)) lines.push(`| ${pct(fn.self, busy)} | ${ms(fn.self)} | \`${fn.name}\` | ${fn.where} |`)
  lines.push('')

  const groups = new Map()
  for (const fn of bySelf) groups.set(fn.group, (groups.get(fn.group) ?? 0) + fn.self)
  lines.push('Time by package or imagegate folder (self; inclusive = samples with the group anywhere on the stack):')
  lines.push('')
  lines.push('| self | inclusive | group |')
  lines.push('| ---: | ---: | --- |')
  for (const [group, self] of [...groups].sort((a, b) => b[1] - a[1]).slice(0, 15)) lines.push(`| ${pct(self, busy)} | ${pct(groupTotals.get(group) ?? 0, busy)} | ${group} |`)
  lines.push('')

  const own = functions.filter((fn) => fn.group.startsWith('imagegate ')).sort((a, b) => b.total - a.total)
  lines.push('imagegate functions by total time (self plus callees):')
  lines.push('')
  lines.push('| total | self | function | where |')
  lines.push('| ---: | ---: | --- | --- |')
  for (const fn of own.slice(0, 15)) lines.push(`| ${pct(fn.total, busy)} | ${pct(fn.self, busy)} | \`${fn.name}\` | ${fn.where} |`)
  return lines.join('\n')
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const args = process.argv.slice(2)
  const file = args.find((arg, i) => !arg.startsWith('--') && !args[i - 1]?.startsWith('--'))
  if (file === undefined) {
    console.error('usage: node bench/analyze-profile.mjs <file.cpuprofile> [--top N]')
    process.exit(2)
  }
  const option = (name) => {
    const at = args.indexOf(name)
    return at === -1 ? undefined : Number(args[at + 1])
  }
  console.log(formatProfile(path.resolve(file), { top: option('--top') ?? 25, from: option('--from'), to: option('--to') }))
}
