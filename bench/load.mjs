/**
 * The load generator, in its own process (forked by run.mjs, driven over IPC). It speaks
 * plain HTTP/1.1 through undici pools, one pool per target and concurrency, kept warm
 * between repetitions. Each command answers with numbers only; percentiles are
 * computed here so that large sample arrays never cross the IPC channel.
 */
import { setMaxListeners } from 'node:events'
import { Pool } from 'undici'
import { nowUs, sleep } from './lib/clock.mjs'
import { percentile } from './lib/stats.mjs'

const HEADERS = { 'content-type': 'application/json', authorization: 'Bearer bench' }
const LF = 0x0a

/**
 * The two streaming APIs: where to POST, the request body, and how the reader tells a
 * text delta (for TTFT) and the end of a whole answer.
 */
const APIS = {
  chat: {
    path: '/v1/chat/completions',
    payload: (bench) => JSON.stringify({
      model: 'hermes-agent',
      stream: true,
      messages: [{ role: 'user', content: 'Draw a simple red apple' }],
      bench
    }),
    content: '"content"',
    end: 'data: [DONE]'
  },
  responses: {
    path: '/v1/responses',
    payload: (bench) => JSON.stringify({ model: 'hermes-agent', stream: true, input: 'Draw a simple red apple', bench }),
    content: 'output_text.delta',
    end: 'event: response.completed'
  }
}

const pools = new Map()

function poolFor (origin, connections) {
  const key = `${origin} ${connections}`
  let pool = pools.get(key)
  if (pool === undefined) {
    pool = new Pool(origin, { connections, pipelining: 1, keepAliveTimeout: 60_000, headersTimeout: 60_000, bodyTimeout: 60_000 })
    pools.set(key, pool)
  }
  return pool
}

async function closePools () {
  const all = [...pools.values()]
  pools.clear()
  await Promise.all(all.map((pool) => pool.destroy()))
}

/**
 * Splits SSE text into events and hands each stamped one to `onStamp(sentUs, isContent)`.
 * Text is decoded as latin1: only ASCII markers are looked at, and latin1 never
 * mangles a multi-byte character split across chunks into something else.
 */
function createEventReader (api, onStamp) {
  let rest = ''
  let sawDone = false
  return {
    feed (chunk) {
      const text = rest + chunk.toString('latin1')
      let start = 0
      for (let end = text.indexOf('\n\n', start); end !== -1; end = text.indexOf('\n\n', start)) {
        // The stamp is the chunk's last field, so searching back from the end is short.
        const at = text.lastIndexOf('"t":', end)
        if (at >= start) {
          const content = text.lastIndexOf(api.content, at)
          onStamp(parseInt(text.substring(at + 4, at + 30), 10), content >= start)
        }
        if (text.startsWith(api.end, start)) sawDone = true
        start = end + 2
      }
      rest = text.slice(start)
    },
    get complete () { return sawDone }
  }
}

/** One streamed answer; resolves with false when it failed or was cut. */
async function oneStream (pool, api, bench, signal, onStamp, onFirst) {
  try {
    const { statusCode, body } = await pool.request({ path: api.path, method: 'POST', headers: HEADERS, body: api.payload(bench), signal })
    if (statusCode !== 200) {
      await body.dump()
      return false
    }
    let first = onFirst !== undefined
    const reader = createEventReader(api, (sent, isContent) => {
      const at = nowUs()
      onStamp?.(at - sent)
      if (first && isContent) {
        first = false
        onFirst(at)
      }
    })
    for await (const chunk of body) reader.feed(chunk)
    return reader.complete
  } catch (err) {
    if (signal?.aborted) return true
    throw err
  }
}

/** Closed loop: `concurrency` workers each run one stream after another until the deadline. */
async function loop (pool, api, concurrency, durationMs, bench, sample) {
  const controller = new AbortController()
  // Every in-flight request listens on the one deadline signal.
  setMaxListeners(concurrency + 10, controller.signal)
  const timer = setTimeout(() => controller.abort(), durationMs)
  let errors = 0
  let streams = 0
  const worker = async () => {
    while (!controller.signal.aborted) {
      const started = nowUs()
      try {
        const ok = await oneStream(pool, api, bench, controller.signal, sample?.delay, sample === undefined ? undefined : (at) => sample.ttft(at - started))
        if (controller.signal.aborted) break
        if (ok) streams++
        else errors++
      } catch {
        errors++
        await sleep(10)
      }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  clearTimeout(timer)
  return { errors, streams }
}

const summary = (values) => ({ n: values.length, p50: percentile(values, 50) / 1000, p99: percentile(values, 99) / 1000 })

const commands = {
  /** Paced streams at a given concurrency: per-event delay and TTFT percentiles, in ms. */
  async latency ({ origin, api = 'chat', concurrency, durationMs, bench }) {
    const pool = poolFor(origin, concurrency)
    const delays = []
    const ttfts = []
    const counts = await loop(pool, APIS[api], concurrency, durationMs, bench, { delay: (d) => delays.push(d), ttft: (d) => ttfts.push(d) })
    return { ...counts, events: summary(delays), ttft: summary(ttfts) }
  },

  /** Sequential short answers (one at a time): time to the first content delta, in ms. */
  async ttft ({ origin, requests, warmup, bench }) {
    const pool = poolFor(origin, 1)
    const ttfts = []
    let errors = 0
    for (let i = 0; i < warmup + requests; i++) {
      const started = nowUs()
      const ok = await oneStream(pool, APIS.chat, bench, undefined, undefined, (at) => { if (i >= warmup) ttfts.push(at - started) })
      if (!ok) errors++
    }
    return { errors, ttft: summary(ttfts) }
  },

  /** Fast upstream: events (blank-line terminated blocks) received per second. */
  async throughput ({ origin, api = 'chat', concurrency, durationMs, bench }) {
    const pool = poolFor(origin, concurrency)
    const { path, payload } = APIS[api]
    const controller = new AbortController()
    setMaxListeners(concurrency + 10, controller.signal)
    const started = nowUs()
    const timer = setTimeout(() => controller.abort(), durationMs)
    let events = 0
    let bytes = 0
    let errors = 0
    let answers = 0
    const worker = async () => {
      while (!controller.signal.aborted) {
        try {
          const { statusCode, body } = await pool.request({ path, method: 'POST', headers: HEADERS, body: payload(bench), signal: controller.signal })
          if (statusCode !== 200) errors++
          answers++
          let lastLf = false
          for await (const chunk of body) {
            bytes += chunk.length
            if (lastLf && chunk[0] === LF) events++
            for (let i = chunk.indexOf(LF); i !== -1 && i < chunk.length - 1; i = chunk.indexOf(LF, i + 1)) {
              if (chunk[i + 1] === LF) events++
            }
            lastLf = chunk[chunk.length - 1] === LF
          }
        } catch {
          if (!controller.signal.aborted) {
            errors++
            await sleep(10)
          }
        }
      }
    }
    await Promise.all(Array.from({ length: concurrency }, worker))
    clearTimeout(timer)
    return { events, bytes, errors, answers, seconds: (nowUs() - started) / 1e6 }
  },

  /**
   * Opens `count` more idle streams (the pool allows `connections` in all); resolves once
   * every new one has received its first delta. Calls add up until `holdEnd`.
   */
  async hold ({ origin, count, connections, batch }) {
    const pool = poolFor(origin, connections)
    for (let i = 0; i < count; i += batch) {
      const opened = []
      for (let j = i; j < Math.min(count, i + batch); j++) {
        let markOpen
        opened.push(new Promise((resolve) => { markOpen = resolve }))
        held.pending.push(oneStream(pool, APIS.chat, { mode: 'hold' }, undefined, undefined, () => markOpen())
          .then((ok) => { if (!ok) held.errors++ }, () => { held.errors++ })
          .finally(() => markOpen()))
      }
      await Promise.all(opened)
    }
    return { open: held.pending.length }
  },

  /** Waits until the held streams have ended (after the upstream was told to release). */
  async holdEnd () {
    await Promise.all(held.pending)
    const result = { streams: held.pending.length, errors: held.errors }
    held = { pending: [], errors: 0 }
    return result
  },

  /** GET one file repeatedly: requests and bytes per second, checking each length. */
  async files ({ origin, path, concurrency, durationMs, expectedBytes }) {
    const pool = poolFor(origin, concurrency)
    const deadline = Date.now() + durationMs
    const started = nowUs()
    let requests = 0
    let bytes = 0
    let errors = 0
    const worker = async () => {
      while (Date.now() < deadline) {
        try {
          const { statusCode, body } = await pool.request({ path, method: 'GET' })
          let size = 0
          for await (const chunk of body) size += chunk.length
          bytes += size
          if (statusCode === 200 && size === expectedBytes) requests++
          else errors++
        } catch {
          errors++
          await sleep(10)
        }
      }
    }
    await Promise.all(Array.from({ length: concurrency }, worker))
    return { requests, bytes, errors, seconds: (nowUs() - started) / 1e6 }
  },

  /** One whole answer as text, to check that a path streams and rewrites as expected. */
  async probe ({ origin, api = 'chat', bench }) {
    const pool = poolFor(origin, 1)
    const { path, payload } = APIS[api]
    const { statusCode, headers, body } = await pool.request({ path, method: 'POST', headers: HEADERS, body: payload(bench) })
    return { statusCode, contentType: headers['content-type'], text: await body.text() }
  },

  /** One GET: its status and body length, to check a URL before it is measured. */
  async fetch ({ origin, path }) {
    const pool = poolFor(origin, 1)
    const { statusCode, headers, body } = await pool.request({ path, method: 'GET' })
    let bytes = 0
    for await (const chunk of body) bytes += chunk.length
    return { statusCode, contentType: headers['content-type'], bytes }
  },

  closePools
}

let held = { pending: [], errors: 0 }

process.on('message', async ({ id, type, args }) => {
  try {
    const result = await commands[type](args ?? {})
    process.send({ id, result })
  } catch (err) {
    process.send({ id, error: err instanceof Error ? `${err.name}: ${err.message}` : String(err) })
  }
})
process.on('disconnect', () => process.exit(0))
process.send({ ready: true })
