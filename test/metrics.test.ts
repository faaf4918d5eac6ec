import { readFileSync } from 'node:fs'
import path from 'node:path'
import { register as globalRegistry } from 'prom-client'
import t from 'tap'
import type { Test } from 'tap'
import { ABORTED_STATUS, EVENT_LOOP_SAMPLE_MS, REFERENCE_OUTCOMES, UNMATCHED_ROUTE, createMetrics } from '../src/metrics.js'
import type { RequestSummary } from '../src/metrics.js'
import { startCli } from './fixtures/cli-process.js'
import { startGate } from './fixtures/gate.js'
import { CONTAINER_DIR, IMAGE_NAME, IMAGE_PATH, PNG, SECRET } from './fixtures/hermes.js'
import { open, responseOf, send, waitFor } from './fixtures/http.js'
import { DONE, FINISH, ROLE, chunk, contentEvents, pyJson } from './fixtures/chat.js'
import { sse, startMockUpstream } from './fixtures/mock-upstream.js'
import { startProxy } from './fixtures/proxy.js'
import { parseMetrics, sampleValue } from './fixtures/prometheus.js'
import type { Sample } from './fixtures/prometheus.js'

const scrape = async (metrics: ReturnType<typeof createMetrics>): Promise<Sample[]> => parseMetrics(await metrics.registry.metrics())

const summary = (fields: Partial<RequestSummary>): RequestSummary => ({
  method: 'GET', route: '/*', status: 200, finished: true, contentLength: undefined, ...fields
})

t.test('a fresh registry of its own: every outcome listed at 0, streams read at scrape', async t => {
  let active = 3
  const metrics = createMetrics({ activeStreams: () => active, processMetrics: false })
  const samples = await scrape(metrics)
  for (const outcome of REFERENCE_OUTCOMES) {
    t.equal(sampleValue(samples, 'imagegate_references_total', { outcome }), 0, `${outcome} starts at 0`)
  }
  t.equal(sampleValue(samples, 'imagegate_active_streams'), 3, 'active streams as the server counts them')
  active = 0
  t.equal(sampleValue(await scrape(metrics), 'imagegate_active_streams'), 0, 'read again at the next scrape')
  t.equal(sampleValue(samples, 'imagegate_image_bytes_total'), 0, 'no image bytes yet')
  t.notOk(samples.some((sample) => sample.name.startsWith('process_')), 'no process metrics when turned off')
  t.notOk((await globalRegistry.metrics()).includes('imagegate_'), 'nothing lands in prom-client\'s global registry')

  const withProcess = await scrape(createMetrics({ activeStreams: () => 0 }))
  t.ok(sampleValue(withProcess, 'process_cpu_user_seconds_total') !== undefined, 'process metrics by default')
  t.ok(sampleValue(withProcess, 'nodejs_eventloop_lag_seconds') !== undefined, 'with the event loop lag')
})

t.test('requests by route pattern, method and status', async t => {
  const metrics = createMetrics({ activeStreams: () => 0, processMetrics: false })
  metrics.request(summary({ route: '/v1/chat/completions', method: 'POST' }))
  metrics.request(summary({ route: '/v1/chat/completions', method: 'POST' }))
  metrics.request(summary({ route: '/v1/chat/completions', method: 'POST', status: 502 }))
  metrics.request(summary({ route: '/v1/chat/completions', method: 'POST', status: undefined, finished: false }))
  metrics.request(summary({ route: undefined, status: 400 }))
  const samples = await scrape(metrics)
  const count = (labels: Record<string, string>): number | undefined => sampleValue(samples, 'imagegate_http_requests_total', labels)
  t.equal(count({ route: '/v1/chat/completions', method: 'POST', status: '200' }), 2, 'two answered')
  t.equal(count({ route: '/v1/chat/completions', method: 'POST', status: '502' }), 1, 'one failed upstream')
  t.equal(count({ route: '/v1/chat/completions', method: 'POST', status: ABORTED_STATUS }), 1, 'one left before the head')
  t.equal(count({ route: UNMATCHED_ROUTE, method: 'GET', status: '400' }), 1, 'no route: counted as unmatched')
})

t.test('image bytes: Content-Length of GET 200 and 206 sent whole', async t => {
  const cases: Array<[string, Partial<RequestSummary>, number]> = [
    ['200 with a numeric length', { status: 200, contentLength: 100 }, 100],
    ['206 with a text length', { status: 206, contentLength: '7' }, 7],
    ['HEAD has no body', { method: 'HEAD', status: 200, contentLength: 100 }, 0],
    ['404 is not an image', { status: 404, contentLength: 80 }, 0],
    ['304 sends nothing', { status: 304, contentLength: 100 }, 0],
    ['cut off before the end', { status: 200, finished: false, contentLength: 100 }, 0],
    ['a length that is not a number', { status: 200, contentLength: '1e3' }, 0],
    ['no length', { status: 200 }, 0],
    ['another route', { route: '/*', status: 200, contentLength: 100 }, 0]
  ]
  for (const [label, fields, bytes] of cases) {
    const metrics = createMetrics({ activeStreams: () => 0, processMetrics: false })
    metrics.request(summary({ route: '/images/*', ...fields }))
    t.equal(sampleValue(await scrape(metrics), 'imagegate_image_bytes_total'), bytes, `${label}: ${bytes} bytes`)
  }
})

t.test('upstream time to first byte by route', async t => {
  const metrics = createMetrics({ activeStreams: () => 0, processMetrics: false })
  metrics.upstreamFirstByte('/v1/chat/completions', 0.2)
  metrics.upstreamFirstByte('/v1/chat/completions', 40)
  metrics.upstreamFirstByte(undefined, 0.001)
  const samples = await scrape(metrics)
  const route = '/v1/chat/completions'
  t.equal(sampleValue(samples, 'imagegate_upstream_first_byte_seconds_count', { route }), 2, 'two observations')
  t.equal(sampleValue(samples, 'imagegate_upstream_first_byte_seconds_sum', { route }), 40.2, 'their sum')
  t.equal(sampleValue(samples, 'imagegate_upstream_first_byte_seconds_bucket', { route, le: '0.25' }), 1, 'one under 250 ms')
  t.equal(sampleValue(samples, 'imagegate_upstream_first_byte_seconds_bucket', { route, le: '60' }), 2, 'both under a minute')
  t.equal(sampleValue(samples, 'imagegate_upstream_first_byte_seconds_count', { route: UNMATCHED_ROUTE }), 1, 'no route: unmatched')
})

// A cache with one deliverable image and an entry for each way a reference is refused.
function cacheForOutcomes (t: Test): { dir: string, cache: string } {
  const dir = t.testdir({
    'secret.png': SECRET,
    cache: {
      [IMAGE_NAME]: PNG,
      'folder.png': {},
      'escape.png': t.fixture('symlink', '../secret.png')
    }
  })
  return { dir, cache: path.join(dir, 'cache') }
}

t.test('a server run: requests, references by outcome, image bytes, first byte, active streams', async t => {
  const { dir, cache } = cacheForOutcomes(t)
  const { upstream, gate } = await startProxy(t, { options: { cacheDirs: [cache] } })

  // One piece per reference: a reference in code is only seen when it arrives whole.
  upstream.handle(sse([ROLE, ...contentEvents([
    `![apple](${IMAGE_PATH})\n`,
    '![web](https://example.org/x.png)\n',
    '![far](/srv/elsewhere/nothing.png)\n',
    `![gone](${cache}/gone.png)\n`,
    `![folder](${cache}/folder.png)\n`,
    `![page](${CONTAINER_DIR}/page.html)\n`,
    `![up](${cache}/../secret.png)\n`,
    `![link](${cache}/escape.png)\n`,
    `and in code: \`![apple](${IMAGE_PATH})\`\n`
  ]), FINISH, DONE]))
  const chat = await send(gate.url, { method: 'POST', path: '/v1/chat/completions', body: '{"stream": true}' })
  t.equal(chat.status, 200, 'the chat streamed')
  t.ok(chat.text.includes(gate.link(IMAGE_NAME)), 'the one deliverable reference was rewritten')

  const link = new URL(gate.link(IMAGE_NAME))
  const whole = await send(gate.url, { path: link.pathname + link.search })
  t.equal(whole.status, 200, 'the image is served')
  const part = await send(gate.url, { path: link.pathname + link.search, headers: { range: 'bytes=0-3' } })
  t.equal(part.status, 206, 'a range of it')
  const head = await send(gate.url, { method: 'HEAD', path: link.pathname + link.search })
  t.equal(head.status, 200, 'HEAD answers')
  const miss = await send(gate.url, { path: '/images/nothing.png' })
  t.equal(miss.status, 404, 'an unknown name is a 404')
  const bad = await send(gate.url, { path: '/v1/%zz' })
  t.equal(bad.status, 400, 'a malformed URL is a 400')

  const res = await send(gate.url, { path: '/metrics' })
  t.equal(res.status, 200, '/metrics answers')
  t.match(res.headers['content-type'], /^text\/plain; version=0\.0\.4/, 'in Prometheus\' text format')
  t.equal(res.headers['cache-control'], 'no-store', 'never cached')
  t.equal(upstream.requests.length, 1, '/metrics is not forwarded upstream')
  const samples = parseMetrics(res.text)

  const expected: Record<string, number> = {
    rewritten: 1,
    'not-a-path': 1,
    'outside-roots': 1,
    missing: 1,
    'not-a-file': 1,
    extension: 1,
    hostile: 1,
    'symlink-escape': 1,
    'in-code': 1
  }
  for (const [outcome, count] of Object.entries(expected)) {
    t.equal(sampleValue(samples, 'imagegate_references_total', { outcome }), count, `references ${outcome}: ${count}`)
  }

  const requests = (route: string, method: string, status: string): number | undefined =>
    sampleValue(samples, 'imagegate_http_requests_total', { route, method, status })
  t.equal(requests('/v1/chat/completions', 'POST', '200'), 1, 'the chat, by its route pattern')
  t.equal(requests('/images/*', 'GET', '200'), 1, 'the image, by the route pattern, not its name')
  t.equal(requests('/images/*', 'GET', '206'), 1, 'the range')
  t.equal(requests('/images/*', 'HEAD', '200'), 1, 'the HEAD')
  t.equal(requests('/images/*', 'GET', '404'), 1, 'the miss')
  t.equal(requests(UNMATCHED_ROUTE, 'GET', '400'), 1, 'the malformed URL')
  t.notOk(res.text.includes(IMAGE_NAME), 'no file name in any label')
  t.notOk(res.text.includes(dir), 'no path in any label')

  t.equal(sampleValue(samples, 'imagegate_image_bytes_total'), PNG.length + 4, 'image bytes: the whole file and the 4-byte range')
  t.equal(sampleValue(samples, 'imagegate_upstream_first_byte_seconds_count', { route: '/v1/chat/completions' }), 1, 'one upstream first byte timed')
  t.ok((sampleValue(samples, 'imagegate_upstream_first_byte_seconds_sum', { route: '/v1/chat/completions' }) ?? 0) > 0, 'for some time')
  t.equal(sampleValue(samples, 'imagegate_active_streams'), 0, 'no stream running')

  // A stream that stays open shows as active until it ends.
  let release = (): void => {}
  const released = new Promise<void>((resolve) => { release = resolve })
  upstream.handle(async (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    res.write(chunk({ content: 'thinking' }))
    await released
    res.end(FINISH + DONE)
  })
  const req = open(gate.url, { method: 'POST', path: '/v1/chat/completions' })
  const response = responseOf(req)
  req.end('{}')
  const body: Buffer[] = []
  const ended = response.then((r) => new Promise<void>((resolve) => {
    r.on('data', (c: Buffer) => body.push(c))
    r.on('end', resolve)
  }))
  await waitFor(() => gate.streams.size === 1, 'the stream to start')
  const during = parseMetrics((await send(gate.url, { path: '/metrics' })).text)
  t.equal(sampleValue(during, 'imagegate_active_streams'), 1, 'one stream running')
  release()
  await ended
  await waitFor(() => gate.streams.size === 0, 'the stream to end')
  const after = parseMetrics((await send(gate.url, { path: '/metrics' })).text)
  t.equal(sampleValue(after, 'imagegate_active_streams'), 0, 'none once it ended')
  t.equal(sampleValue(after, 'imagegate_http_requests_total', { route: '/metrics', method: 'GET', status: '200' }), 2, 'scrapes count too (each after it ended)')
})

t.test('Responses API streams count each reference once, though it is rewritten again in the done objects', async t => {
  const { cache } = cacheForOutcomes(t)
  const ids = { item_id: 'msg_1', output_index: 0, content_index: 0 }
  const text = `Here: ![apple](${IMAGE_PATH}) and ![gone](${cache}/gone.png)`
  const event = (type: string, sequence: number, fields: Record<string, unknown>): string =>
    `event: ${type}\ndata: ${pyJson({ type, sequence_number: sequence, ...fields })}\n\n`
  const part = { type: 'output_text', text, annotations: [] }
  const item = { id: 'msg_1', type: 'message', role: 'assistant', content: [part] }
  const upstream = await startMockUpstream(sse([
    event('response.output_text.delta', 0, { ...ids, delta: text.slice(0, 20) }),
    event('response.output_text.delta', 1, { ...ids, delta: text.slice(20) }),
    event('response.output_text.done', 2, { ...ids, text }),
    event('response.content_part.done', 3, { ...ids, part }),
    event('response.output_item.done', 4, { output_index: 0, item }),
    event('response.completed', 5, { response: { id: 'resp_1', output: [item], output_text: text } })
  ]))
  t.teardown(() => upstream.close())
  const gate = await startGate(t, { upstream: upstream.url, cacheDirs: [cache] })

  const res = await send(gate.url, { method: 'POST', path: '/v1/responses', body: '{"stream": true}' })
  t.equal(res.text.split(gate.link(IMAGE_NAME)).length - 1, 6, 'the link is in the deltas and in every done object (completed has it twice)')
  const samples = parseMetrics((await send(gate.url, { path: '/metrics' })).text)
  t.equal(sampleValue(samples, 'imagegate_references_total', { outcome: 'rewritten' }), 1, 'one reference rewritten')
  t.equal(sampleValue(samples, 'imagegate_references_total', { outcome: 'missing' }), 1, 'one reference missing')
  t.equal(gate.logs.filter((line) => line.msg === 'reference rewritten').length, 1, 'and logged once')
})

t.test('a text first seen in a closing event is rewritten there, and its references are not counted again', async t => {
  const { cache } = cacheForOutcomes(t)
  const event = (type: string, sequence: number, fields: Record<string, unknown>): string =>
    `event: ${type}\ndata: ${pyJson({ type, sequence_number: sequence, ...fields })}\n\n`
  // `output_text` joins the texts of both parts: a text no delta carried as such.
  const first = `Here: ![apple](${IMAGE_PATH})`
  const second = ` and ![gone](${cache}/gone.png)`
  const ids = (index: number): Record<string, unknown> => ({ item_id: 'msg_1', output_index: 0, content_index: index })
  const item = { id: 'msg_1', type: 'message', role: 'assistant', content: [first, second].map((text) => ({ type: 'output_text', text, annotations: [] })) }
  const upstream = await startMockUpstream(sse([
    event('response.output_text.delta', 0, { ...ids(0), delta: first }),
    event('response.output_text.done', 1, { ...ids(0), text: first }),
    event('response.output_text.delta', 2, { ...ids(1), delta: second }),
    event('response.output_text.done', 3, { ...ids(1), text: second }),
    event('response.completed', 4, { response: { id: 'resp_1', output: [item], output_text: first + second } })
  ]))
  t.teardown(() => upstream.close())
  const gate = await startGate(t, { upstream: upstream.url, cacheDirs: [cache] })

  const res = await send(gate.url, { method: 'POST', path: '/v1/responses', body: '{"stream": true}' })
  const completed = res.text.split('\n').filter((line) => line.startsWith('data: ')).map((line) => JSON.parse(line.slice(6)) as Record<string, any>).at(-1)
  t.equal(completed?.response.output_text, `Here: ![apple](${gate.link(IMAGE_NAME)}) and ![gone](${cache}/gone.png)`, 'the joined text is rewritten')
  const samples = parseMetrics((await send(gate.url, { path: '/metrics' })).text)
  t.equal(sampleValue(samples, 'imagegate_references_total', { outcome: 'rewritten' }), 1, 'one reference rewritten')
  t.equal(sampleValue(samples, 'imagegate_references_total', { outcome: 'missing' }), 1, 'one reference missing')
  t.equal(gate.logs.filter((line) => line.msg === 'reference rewritten').length, 1, 'and logged once')
})

t.test('non-streaming answers count their references', async t => {
  const { cache } = cacheForOutcomes(t)
  const upstream = await startMockUpstream((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(pyJson({ id: 'c', object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content: `![a](${IMAGE_PATH}) ![b](${IMAGE_PATH})` }, finish_reason: 'stop' }] }))
  })
  t.teardown(() => upstream.close())
  const gate = await startGate(t, { upstream: upstream.url, cacheDirs: [cache] })
  const res = await send(gate.url, { method: 'POST', path: '/v1/chat/completions', body: '{}' })
  t.equal(res.status, 200, 'answered')
  const samples = parseMetrics((await send(gate.url, { path: '/metrics' })).text)
  t.equal(sampleValue(samples, 'imagegate_references_total', { outcome: 'rewritten' }), 2, 'both references')
})

// A sidecar spends most of its life idle: it must sleep then, not wake for its own timers.
t.test('an idle imagegate sleeps: its main thread wakes about 10 times a second, not 100', async t => {
  const dir = t.testdir({ images: {}, state: {} })
  const cli = await startCli(t, ['--port', '0', '--cache-dir', path.join(dir, 'images'), '--state-dir', path.join(dir, 'state'), '--upstream', 'http://127.0.0.1:9/v1'])
  // Each wake-up from epoll is a voluntary context switch of the main thread.
  const switches = (): number => Number(/^voluntary_ctxt_switches:\s+(\d+)$/m.exec(readFileSync(`/proc/${cli.pid}/task/${cli.pid}/status`, 'utf8'))?.[1])
  await new Promise((resolve) => setTimeout(resolve, 500))
  const before = switches()
  const started = Date.now()
  await new Promise((resolve) => setTimeout(resolve, 2000))
  const perSecond = (switches() - before) / ((Date.now() - started) / 1000)
  t.ok(perSecond < 1000 / EVENT_LOOP_SAMPLE_MS * 3, `${perSecond.toFixed(1)} wake-ups per second (the event-loop metrics sample every ${EVENT_LOOP_SAMPLE_MS} ms; at prom-client's 10 ms, about 100)`)
  cli.kill('SIGTERM')
  t.equal((await cli.exited).code, 0, 'then stops as asked')
})
