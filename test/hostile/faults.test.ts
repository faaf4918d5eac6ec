// Faults on both sides of the proxy: a client that goes away at every stage, and an
// upstream that resets, stops early, stalls or fails with a body that is no JSON. The
// client always gets a well-formed end, the upstream always sees its request closed, and
// no socket is left open on either side.
import http from 'node:http'
import t from 'tap'
import type { Test } from 'tap'
import { contentOf, dataLines } from '../fixtures/gate.js'
import type { Gate } from '../fixtures/gate.js'
import { IMAGE_NAME, IMAGE_PATH } from '../fixtures/hermes.js'
import { open, postJson, responseOf, send, waitFor } from '../fixtures/http.js'
import { CHAT, DONE, FINISH, ROLE, chunk, contentEvents } from '../fixtures/chat.js'
import { sse } from '../fixtures/mock-upstream.js'
import type { MockHandler, MockUpstream } from '../fixtures/mock-upstream.js'
import { startProxy } from '../fixtures/proxy.js'
import type { Proxy } from '../fixtures/proxy.js'
import { connectionCount } from '../fixtures/raw-socket.js'
import { errorBody } from '../../src/errors.js'

const UNREACHABLE = JSON.stringify(errorBody('upstream_unreachable'))
const TIMEOUT = JSON.stringify(errorBody('upstream_timeout'))
const BROKEN = JSON.stringify(errorBody('upstream_stream_error'))

/** How soon the upstream must see its request closed after the client went away. */
const ABORT_PROPAGATION_MS = 100
/** Every test here ends well within this, or it hangs. */
const TEST_TIMEOUT = 10_000

/**
 * No socket left open: the clients' connections to the proxy all close, and so do the
 * proxy's connections to the upstream, except (with `idle`) one that finished its
 * response cleanly and waits in the pool for the next request. Waits a little, since
 * each side closes on its own schedule after an error.
 */
async function assertNoSockets (t: Test, { upstream, gate }: Proxy, label: string, idle = 0): Promise<void> {
  let toUpstream = -1
  let toGate = -1
  const deadline = Date.now() + 2000
  while (Date.now() < deadline) {
    toUpstream = await upstream.connections()
    toGate = await connectionCount(gate.app.server)
    if (toUpstream <= idle && toGate === 0) break
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  t.ok(toUpstream <= idle, idle === 0
    ? `${label}: no connection to the upstream is left open (${toUpstream})`
    : `${label}: at most ${idle} idle keep-alive connection to the upstream (${toUpstream})`)
  t.equal(toGate, 0, `${label}: no client connection to imagegate is left open`)
}

/** A chat request on a connection of its own; errors after a destroy are expected. */
function startChat (gate: Gate, path = '/v1/chat/completions', body = CHAT): http.ClientRequest {
  const req = open(gate.url, { method: 'POST', path, headers: { 'content-type': 'application/json' } })
  req.on('error', () => {})
  req.end(body)
  return req
}

/** Destroys the client's request and measures how long until the upstream saw it close. */
async function abortAndMeasure (upstream: MockUpstream, req: http.ClientRequest): Promise<number> {
  const closed = upstream.closed().then(() => performance.now())
  const started = performance.now()
  req.destroy()
  return (await closed) - started
}

/** An upstream that sends `first`, then one content delta every 10 ms until it is closed. */
function endless (first: string[]): MockHandler {
  return async (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    for (const piece of first) res.write(piece)
    for (let i = 0; !res.destroyed; i++) {
      res.write(chunk({ content: ` word${i}` }))
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
  }
}

t.test('a client that goes away: the upstream sees its request closed within 100 ms', { timeout: TEST_TIMEOUT }, async (t) => {
  const proxy = await startProxy(t)
  const { upstream, gate } = proxy

  t.test('before the upstream sent its headers', async (t) => {
    upstream.handle(() => {})
    const req = startChat(gate)
    await waitFor(() => upstream.requests.length === 1, 'the upstream to get the request')
    const ms = await abortAndMeasure(upstream, req)
    t.ok(ms < ABORT_PROPAGATION_MS, `closed upstream after ${ms.toFixed(1)} ms`)
    await assertNoSockets(t, proxy, 'before headers')
  })

  t.test('while waiting for the first token', async (t) => {
    // Headers and the role chunk went out; the agent is still thinking.
    upstream.handle(sse([ROLE], { end: false }))
    const req = startChat(gate)
    const res = await responseOf(req)
    t.equal(res.statusCode, 200, 'the client had its headers')
    res.on('error', () => {})
    const ms = await abortAndMeasure(upstream, req)
    t.ok(ms < ABORT_PROPAGATION_MS, `closed upstream after ${ms.toFixed(1)} ms`)
    await assertNoSockets(t, proxy, 'before the first token')
  })

  t.test('mid-stream', async (t) => {
    upstream.handle(endless([ROLE]))
    const req = startChat(gate)
    const res = await responseOf(req)
    res.on('error', () => {})
    let received = ''
    await new Promise<void>((resolve) => {
      res.on('data', (piece: Buffer) => {
        received += piece.toString('utf8')
        if (received.includes('word3')) resolve()
      })
    })
    const ms = await abortAndMeasure(upstream, req)
    t.ok(ms < ABORT_PROPAGATION_MS, `closed upstream after ${ms.toFixed(1)} ms`)
    await assertNoSockets(t, proxy, 'mid-stream')
  })

  t.test('mid-stream on the Responses API', async (t) => {
    upstream.handle(endless([]))
    const req = startChat(gate, '/v1/responses', '{"model": "hermes-agent", "stream": true, "input": "draw"}')
    const res = await responseOf(req)
    res.on('error', () => {})
    await new Promise((resolve) => res.once('data', resolve))
    const ms = await abortAndMeasure(upstream, req)
    t.ok(ms < ABORT_PROPAGATION_MS, `closed upstream after ${ms.toFixed(1)} ms`)
    await assertNoSockets(t, proxy, 'Responses API')
  })

  t.test('while a passthrough call waits for its answer', async (t) => {
    upstream.handle(() => {})
    const req = open(gate.url, { method: 'GET', path: '/v1/models' })
    req.on('error', () => {})
    req.end()
    await waitFor(() => upstream.requests.some((request) => request.url.endsWith('/models')), 'the upstream to get the request')
    const ms = await abortAndMeasure(upstream, req)
    t.ok(ms < ABORT_PROPAGATION_MS, `closed upstream after ${ms.toFixed(1)} ms`)
    await assertNoSockets(t, proxy, 'passthrough')
  })
})

/** The stream's text before the error event, and its events. */
function split (body: string): { text: string, data: string[] } {
  const at = body.lastIndexOf('data: {"error"')
  return { text: contentOf(at === -1 ? body : body.slice(0, at)), data: dataLines(body) }
}

function assertCut (t: Test, body: string, text: string, label: string): void {
  const { text: got, data } = split(body)
  t.equal(got, text, `${label}: the text that came is delivered`)
  t.equal(data.at(-1), BROKEN, `${label}: the last event is the error`)
  t.equal(data.filter((line) => line.startsWith('{"error"')).length, 1, `${label}: exactly one error event`)
  t.notOk(data.includes('[DONE]'), `${label}: no [DONE], the answer is not whole`)
}

t.test('an upstream that fails: the client gets a well-formed end, never a hang or a fake finish', { timeout: TEST_TIMEOUT }, async (t) => {
  const proxy = await startProxy(t)
  const { upstream, gate } = proxy

  t.test('reset before its headers', async (t) => {
    upstream.handle((_req, res) => { res.socket?.destroy() })
    const res = await postJson(gate.url, '/v1/chat/completions', CHAT)
    t.equal(res.status, 502, '502')
    t.equal(res.text, UNREACHABLE, 'the whole error body')
    await assertNoSockets(t, proxy, 'reset before headers')
  })

  t.test('reset mid-stream, mid-reference', async (t) => {
    upstream.handle(sse([ROLE, ...contentEvents(['Here: ', '![apple](', IMAGE_PATH.slice(0, 10)])], { destroy: true }))
    const res = await postJson(gate.url, '/v1/chat/completions', CHAT)
    assertCut(t, res.text, `Here: ![apple](${IMAGE_PATH.slice(0, 10)}`, 'reset')
    await assertNoSockets(t, proxy, 'reset mid-stream')
  })

  t.test('EOF without [DONE]: mid-event, mid-character, right after a delta', async (t) => {
    const cases: Array<[string, Array<string | Buffer>, string]> = [
      ['mid-event', [ROLE, ...contentEvents(['Half']), 'data: {"choices": [{"index": 0, "delta": {"con'], 'Half'],
      ['mid-character', [ROLE, ...contentEvents(['Apple ']), Buffer.from('data: {"choices": [{"index": 0, "delta": {"content": "\u{1F34E}', 'utf8').subarray(0, -2)], 'Apple '],
      ['after a delta', [ROLE, ...contentEvents(['MEDIA:', IMAGE_PATH])], `![${IMAGE_NAME}](${gate.link(IMAGE_NAME)})`]
    ]
    for (const [label, pieces, text] of cases) {
      upstream.handle(sse(pieces))
      const res = await postJson(gate.url, '/v1/chat/completions', CHAT)
      assertCut(t, res.text, text, label)
    }
    // The upstream ended its response cleanly: its connection may be kept for reuse.
    await assertNoSockets(t, proxy, 'EOF', 1)
  })

  t.test('garbage instead of an event stream', async (t) => {
    upstream.handle(sse([Buffer.from([0xff, 0xfe, 0x00, 0x01, 0x80, 0x0a, 0x0a, 0xc3]), '\u0000\r\r\n\n']))
    const res = await postJson(gate.url, '/v1/chat/completions', CHAT)
    t.equal(res.status, 200, 'the stream had started')
    t.equal(dataLines(res.text).at(-1), BROKEN, 'the last event is the error')
    await assertNoSockets(t, proxy, 'garbage', 1)
  })

  t.test('error statuses with bodies that are no JSON pass through whole', async (t) => {
    const bodies: Array<[number, string, string | Buffer]> = [
      [400, 'text/html', '<html><body>bad request</body></html>'],
      [401, 'text/plain', ''],
      [404, 'application/octet-stream', Buffer.from([0, 1, 2, 0xff, 0xfe, 0x0a])],
      [413, 'application/json', '{"error": '],
      [429, 'text/event-stream', 'data: {"error": "slow down"}\n\ndata: [DONE]\n\n'],
      [500, 'text/html', `<pre>${'trace '.repeat(200_000)}</pre>`],
      [502, 'text/plain; charset=latin1', Buffer.from([0xe9, 0x0a])],
      [503, 'application/json', 'not json at all']
    ]
    for (const [status, type, body] of bodies) {
      upstream.handle((_req, res) => { res.writeHead(status, { 'content-type': type }).end(body) })
      const res = await postJson(gate.url, '/v1/chat/completions', CHAT)
      t.equal(res.status, status, `${status} ${type}: the status`)
      t.equal(res.headers['content-type'], type, `${status} ${type}: the type`)
      t.same(res.body, Buffer.from(body), `${status} ${type}: the body, byte for byte`)
    }
    await assertNoSockets(t, proxy, 'error statuses', 1)
  })

  t.test('an error body cut by a reset ends the client response too', async (t) => {
    upstream.handle(async (_req, res) => {
      res.writeHead(500, { 'content-type': 'text/html' })
      res.write('<html>partial')
      await new Promise((resolve) => setTimeout(resolve, 20))
      res.socket?.destroy()
    })
    const req = startChat(gate)
    const res = await responseOf(req)
    t.equal(res.statusCode, 500, 'the status came through')
    const outcome = await new Promise<string>((resolve) => {
      res.on('end', () => resolve('end'))
      res.on('error', () => resolve('error'))
      res.on('aborted', () => resolve('aborted'))
      res.resume()
    })
    t.not(outcome, 'end', `the client sees the body cut (${outcome}), not a complete one`)
    await assertNoSockets(t, proxy, 'cut error body')
  })
})

t.test('an upstream that stalls is cut at the idle timeouts', { timeout: TEST_TIMEOUT }, async (t) => {
  const proxy = await startProxy(t, { settings: { upstreamTimeouts: { headersTimeout: 300, bodyTimeout: 300 } } })
  const { upstream, gate } = proxy

  t.test('before its headers', async (t) => {
    upstream.handle(() => {})
    const closed = upstream.closed()
    const started = performance.now()
    const res = await postJson(gate.url, '/v1/chat/completions', CHAT)
    t.equal(res.status, 504, '504')
    t.equal(res.text, TIMEOUT, 'the whole error body')
    t.ok(performance.now() - started < 2000, 'soon after the timeout')
    await closed
    await assertNoSockets(t, proxy, 'stall before headers')
  })

  t.test('after its headers, before the first event', async (t) => {
    upstream.handle((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      res.flushHeaders()
    })
    const closed = upstream.closed()
    const started = performance.now()
    const res = await postJson(gate.url, '/v1/chat/completions', CHAT)
    t.equal(res.status, 200, 'the stream had started')
    t.same(dataLines(res.text), [BROKEN], 'the error event is all there is')
    t.ok(performance.now() - started < 2000, 'soon after the timeout')
    await closed
    await assertNoSockets(t, proxy, 'stall before the first event')
  })

  for (const [label, pieces, text] of [
    ['after a delta, holding a reference', [ROLE, ...contentEvents(['Look: ![a](', IMAGE_PATH.slice(0, 12)])], `Look: ![a](${IMAGE_PATH.slice(0, 12)}`],
    ['in the middle of an event', [ROLE, ...contentEvents(['Half']), 'data: {"choices": [{"ind'], 'Half']
  ] as const) {
    t.test(label, async (t) => {
      upstream.handle(sse([...pieces], { end: false }))
      const closed = upstream.closed()
      const started = performance.now()
      const res = await postJson(gate.url, '/v1/chat/completions', CHAT)
      assertCut(t, res.text, text, label)
      t.ok(performance.now() - started < 2000, `${label}: soon after the timeout`)
      await closed
      await assertNoSockets(t, proxy, label)
    })
  }

  t.test('a whole answer after a stall shorter than the timeout', async (t) => {
    upstream.handle(sse([ROLE, ...contentEvents(['slow ', 'but ', 'whole']), FINISH, DONE], { delayMs: 100 }))
    const res = await postJson(gate.url, '/v1/chat/completions', CHAT)
    t.equal(contentOf(res.text), 'slow but whole', 'the text')
    t.equal(dataLines(res.text).at(-1), '[DONE]', 'and a clean end')
  })
})

t.test('after every fault, closing imagegate leaves no socket behind', { timeout: TEST_TIMEOUT }, async (t) => {
  const proxy = await startProxy(t)
  const { upstream, gate } = proxy
  const handlers: MockHandler[] = [
    sse([ROLE, ...contentEvents(['ok']), FINISH, DONE]),
    sse([ROLE, ...contentEvents(['cut'])], { destroy: true }),
    (_req, res) => { res.writeHead(500, { 'content-type': 'text/html' }).end('<b>no</b>') },
    sse([ROLE, ...contentEvents(['eof'])])
  ]
  for (let i = 0; i < 20; i++) {
    upstream.handle(handlers[i % handlers.length] as MockHandler)
    const res = await send(gate.url, { method: 'POST', path: '/v1/chat/completions', body: CHAT })
    t.ok(res.status === 200 || res.status === 500, `request ${i}: answered`)
  }
  t.ok(await upstream.connections() <= 1, 'kept-alive upstream connections do not pile up')
  await gate.close()
  await assertNoSockets(t, proxy, 'after close')
})
