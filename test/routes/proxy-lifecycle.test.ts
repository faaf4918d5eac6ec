// Aborts, failures and timeouts on either side of the proxy.
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { contentOf, dataLines, startGate } from '../fixtures/gate.js'
import type { Gate } from '../fixtures/gate.js'
import { IMAGE_NAME, IMAGE_PATH, cacheWithImage } from '../fixtures/hermes.js'
import { open, postJson, responseOf, send, waitFor } from '../fixtures/http.js'
import { CHAT, DONE, FINISH, ROLE, contentEvents } from '../fixtures/chat.js'
import { startProxy } from '../fixtures/proxy.js'
import { sse } from '../fixtures/mock-upstream.js'
import { SOON_MS, within } from '../fixtures/within.js'
import { errorBody } from '../../src/errors.js'

const UNREACHABLE = JSON.stringify(errorBody('upstream_unreachable'))
const TIMEOUT = JSON.stringify(errorBody('upstream_timeout'))
const BROKEN = JSON.stringify(errorBody('upstream_stream_error'))

/** A port nothing listens on: bound once, then closed. */
async function closedPort (): Promise<number> {
  const server = http.createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise((resolve) => server.close(resolve))
  return port
}

/** Starts a streamed chat request and resolves with its request and response once headers came. */
function startChat (gate: Gate): http.ClientRequest {
  const req = open(gate.url, { method: 'POST', path: '/v1/chat/completions', headers: { 'content-type': 'application/json' } })
  req.on('error', () => {})
  req.end(CHAT)
  return req
}

t.test('a client that goes away mid-stream stops the upstream request', async t => {
  const { upstream, gate } = await startProxy(t)
  upstream.handle(sse([ROLE, ...contentEvents(['Drawing', ' ...'])], { end: false }))
  const closed = upstream.closed()

  const req = startChat(gate)
  const res = await responseOf(req)
  let first = ''
  await new Promise<void>((resolve) => res.once('data', (c: Buffer) => { first = c.toString('utf8'); resolve() }))
  t.match(first, /^data: /, 'events were flowing')
  res.on('error', () => {})
  req.destroy()

  await within(closed, SOON_MS, 'the upstream saw its request close')
  t.pass('the upstream saw its request close')
  await waitFor(() => gate.logs.some((line) => line.msg === 'request'), 'the request line')
  const lines = gate.logs.filter((line) => line.msg === 'request')
  t.equal(lines.length, 1, 'the aborted request is logged once')
  t.match(lines[0], { method: 'POST', url: '/v1/chat/completions', statusCode: 200, aborted: true }, 'as aborted after its headers went out')
})

t.test('a client that goes away before the first token stops the upstream request', async t => {
  const { upstream, gate } = await startProxy(t)
  // The agent is still thinking: no headers yet.
  upstream.handle(() => {})
  const closed = upstream.closed()

  const req = startChat(gate)
  await waitFor(() => upstream.requests.length === 1, 'the upstream to get the request')
  req.destroy()

  await within(closed, SOON_MS, 'the upstream saw its request close')
  t.pass('the upstream saw its request close')
  await waitFor(() => gate.logs.some((line) => line.msg === 'request'), 'the request line')
  const lines = gate.logs.filter((line) => line.msg === 'request')
  t.equal(lines.length, 1, 'the aborted request is logged once')
  t.match(lines[0], { method: 'POST', url: '/v1/chat/completions', aborted: true }, 'as aborted')
  t.equal(lines[0]?.statusCode, undefined, 'without a status, since none was sent')
})

t.test('an unreachable upstream is a 502 with an OpenAI-shaped error', async t => {
  const { cache } = cacheWithImage(t)
  const gate = await startGate(t, { upstream: `http://127.0.0.1:${await closedPort()}/v1`, cacheDirs: [cache] })
  for (const [method, path] of [['POST', '/v1/chat/completions'], ['GET', '/v1/models'], ['POST', '/v1/embeddings']] as const) {
    const res = await send(gate.url, { method, path, ...(method === 'POST' ? { body: CHAT } : {}) })
    t.equal(res.status, 502, `${method} ${path}: 502`)
    t.equal(res.headers['content-type'], 'application/json; charset=utf-8', `${method} ${path}: JSON`)
    t.equal(res.text, UNREACHABLE, `${method} ${path}: the whole body`)
  }
})

t.test('upstream errors on a streamed call keep status and body', async t => {
  const { upstream, gate } = await startProxy(t)
  const cases: Array<[number, string, string]> = [
    [400, 'application/json', `{"error": {"message": "bad ![x](${IMAGE_PATH})", "type": "invalid_request_error"}}`],
    [401, 'application/json', '{"error": {"message": "Invalid API key", "type": "invalid_request_error", "code": "invalid_api_key"}}'],
    [403, 'text/plain; charset=utf-8', 'Forbidden origin'],
    [429, 'application/json', '{"error": {"message": "slow down"}}'],
    [500, 'text/html', '<h1>Internal Server Error</h1>'],
    [502, 'application/json', '{"error": {"message": "model backend down"}}'],
    [503, 'text/event-stream', 'data: {"error": "overloaded"}\n\n']
  ]
  for (const [status, type, body] of cases) {
    upstream.handle((_req, res) => { res.writeHead(status, { 'content-type': type, 'retry-after': '7' }).end(body) })
    const res = await postJson(gate.url, '/v1/chat/completions', CHAT)
    t.equal(res.status, status, `${status}: status passes through`)
    t.equal(res.headers['content-type'], type, `${status}: content-type passes through`)
    t.equal(res.headers['retry-after'], '7', `${status}: other headers pass through`)
    t.equal(res.text, body, `${status}: body unchanged`)
  }
})

t.test('an upstream that dies mid-stream: held text, then an error event, no [DONE]', async t => {
  const { upstream, gate } = await startProxy(t)
  upstream.handle(sse([ROLE, ...contentEvents(['Here: ', '![apple', '](/root/.hermes/cac'])], { destroy: true, delayMs: 5 }))

  const res = await postJson(gate.url, '/v1/chat/completions', CHAT)

  const data = dataLines(res.text)
  t.equal(res.status, 200, 'the stream had started')
  t.equal(data.at(-1), BROKEN, 'the last event is the error')
  t.equal(contentOf(res.text.slice(0, res.text.lastIndexOf('data: {"error"'))), 'Here: ![apple](/root/.hermes/cac', 'the held text comes out untouched first')
  t.notOk(data.includes('[DONE]'), 'no [DONE]: the answer is not complete')
  await waitFor(() => gate.logs.some((line) => line.msg === 'upstream stream failed'), 'the failure to be logged')
  t.equal(gate.logs.find((line) => line.msg === 'upstream stream failed')?.level, 40, 'the failure is a warning')
})

t.test('an upstream that ends without [DONE]', async t => {
  const { upstream, gate } = await startProxy(t)

  t.test('and without a finish is a cut answer', async t => {
    upstream.handle(sse([ROLE, ...contentEvents(['Half an ans'])]))
    const res = await postJson(gate.url, '/v1/chat/completions', CHAT)
    const data = dataLines(res.text)
    t.equal(contentOf(res.text.slice(0, res.text.lastIndexOf('data: {"error"'))), 'Half an ans', 'the text came through')
    t.equal(data.at(-1), BROKEN, 'then the error event')
    t.notOk(data.includes('[DONE]'), 'no [DONE]')
  })

  t.test('with nothing at all is a cut answer', async t => {
    upstream.handle(sse([]))
    const res = await postJson(gate.url, '/v1/chat/completions', CHAT)
    t.same(dataLines(res.text), [BROKEN], 'only the error event')
  })

  t.test('but after every choice finished is whole', async t => {
    upstream.handle(sse([ROLE, ...contentEvents(['Whole.']), FINISH]))
    const res = await postJson(gate.url, '/v1/chat/completions', CHAT)
    const data = dataLines(res.text)
    t.equal(contentOf(res.text), 'Whole.', 'the text came through')
    t.notOk(data.some((line) => line.includes('"error"')), 'no error event')
    t.equal(data.at(-1), dataLines(FINISH)[0], 'the finish chunk is last')
  })
})

t.test('an upstream that does not send headers in time is a 504', async t => {
  const { upstream, gate } = await startProxy(t, { settings: { upstreamTimeouts: { headersTimeout: 200 } } })
  upstream.handle(() => {})
  const closed = upstream.closed()
  for (const [method, path] of [['POST', '/v1/chat/completions'], ['GET', '/v1/models']] as const) {
    const res = await send(gate.url, { method, path, ...(method === 'POST' ? { body: CHAT } : {}) })
    t.equal(res.status, 504, `${method} ${path}: 504`)
    t.equal(res.text, TIMEOUT, `${method} ${path}: the whole body`)
  }
  await within(closed, SOON_MS, 'the stalled upstream request was closed')
  t.pass('the stalled upstream request was closed')
})

t.test('an upstream that goes silent mid-stream ends with an error event', async t => {
  const { upstream, gate } = await startProxy(t, { settings: { upstreamTimeouts: { bodyTimeout: 200 } } })
  upstream.handle(sse([ROLE, ...contentEvents(['Thinking ', 'MEDIA:', IMAGE_PATH])], { end: false }))
  const closed = upstream.closed()

  const res = await postJson(gate.url, '/v1/chat/completions', CHAT)

  const data = dataLines(res.text)
  t.equal(contentOf(res.text.slice(0, res.text.lastIndexOf('data: {"error"'))), `Thinking ![${IMAGE_NAME}](${gate.link(IMAGE_NAME)})`, 'the held tag is released')
  t.equal(data.at(-1), BROKEN, 'then the error event')
  await within(closed, SOON_MS, 'the silent upstream request was closed')
  t.pass('the silent upstream request was closed')
})

t.test('no socket stays open after a run of requests', async t => {
  const { upstream, gate } = await startProxy(t)
  upstream.handle(sse([ROLE, ...contentEvents(['ok']), FINISH, DONE]))
  for (let i = 0; i < 5; i++) await postJson(gate.url, '/v1/chat/completions', CHAT)
  const req = startChat(gate)
  await responseOf(req)
  req.destroy()
  await gate.close()
  const count = await new Promise<number>((resolve, reject) => gate.app.server.getConnections((err, n) => { if (err !== null) reject(err); else resolve(n) }))
  t.equal(count, 0, 'the proxy closed every client connection')
  const res = await new Promise<boolean>((resolve) => {
    const probe = http.get({ host: '127.0.0.1', port: new URL(gate.url).port, path: '/healthz', agent: false }, () => resolve(true))
    probe.on('error', () => resolve(false))
  })
  t.equal(res, false, 'and no longer listens')
})
