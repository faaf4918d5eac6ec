// Every path other than chat completions goes to the upstream and back untouched.
import { Readable } from 'node:stream'
import t from 'tap'
import { resolveOptions } from '../../src/config/index.js'
import { DEFAULT_MAX_BODY_SIZE } from '../../src/routes/proxy.js'
import { startGate } from '../fixtures/gate.js'
import { IMAGE_PATH, cacheWithImage } from '../fixtures/hermes.js'
import { open, receive, responseOf, send, waitFor, writeUntilAnswered } from '../fixtures/http.js'
import type { MockHandler } from '../fixtures/mock-upstream.js'
import { startMockUpstream } from '../fixtures/mock-upstream.js'
import { errorBody } from '../../src/errors.js'
import { startProxy } from '../fixtures/proxy.js'
import { rawConnection, rawExchange } from '../fixtures/raw-socket.js'
import { watchWarnings } from '../fixtures/warnings.js'

// hermes' answer to GET /v1/models, in its own JSON layout.
const MODELS = '{"object": "list", "data": [{"id": "hermes-agent", "object": "model", "created": 1777026000, "owned_by": "hermes"}]}'

const TOO_LARGE = JSON.stringify(errorBody('request_too_large', DEFAULT_MAX_BODY_SIZE))

/** hermes' model list, for every request. */
const models: MockHandler = (_req, res) => {
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(MODELS), 'x-upstream': 'hermes' }).end(MODELS)
}

t.test('model listing reaches /v1/models however the client spells it', async t => {
  const { upstream, gate } = await startProxy(t, { upstream: models })
  const cases: Array<[string, string]> = [
    ['/v1/models', '/v1/models'],
    ['/models', '/v1/models'],
    ['//v1//models', '/v1/models'],
    ['/v1/models/', '/v1/models/'],
    ['/v1/models?limit=5&after=a%2Fb', '/v1/models?limit=5&after=a%2Fb'],
    ['/v1/models/hermes-agent', '/v1/models/hermes-agent']
  ]
  for (const [path, expected] of cases) {
    const before = upstream.requests.length
    const res = await send(gate.url, { path })
    t.equal(upstream.requests.length, before + 1, `${path}: one upstream request`)
    t.equal(upstream.requests.at(-1)?.url, expected, `${path}: upstream sees ${expected}`)
    t.equal(res.status, 200, `${path}: status passes through`)
    t.equal(res.text, MODELS, `${path}: body passes through byte for byte`)
    t.equal(res.headers['x-upstream'], 'hermes', `${path}: upstream headers pass through`)
    t.equal(res.headers['content-length'], String(Buffer.byteLength(MODELS)), `${path}: content-length passes through`)
  }
})

t.test('no client path climbs out of the upstream base path', async t => {
  const { upstream, gate } = await startProxy(t, { upstream: models })
  const cases: Array<[string, string]> = [
    ['/v1/../admin', '/v1/admin'],
    ['/../../etc/passwd', '/v1/etc/passwd'],
    ['/v1/%2e%2e/%2E%2E/admin?x=1', '/v1/admin?x=1'],
    ['/v1//..//admin', '/v1/admin'],
    ['http://169.254.169.254/latest/meta-data', '/v1/http:/169.254.169.254/latest/meta-data']
  ]
  for (const [path, expected] of cases) {
    const res = await send(gate.url, { path })
    t.equal(res.status, 200, `${path}: answered by the configured upstream`)
    t.equal(upstream.requests.at(-1)?.url, expected, `${path}: upstream sees ${expected}`)
  }
})

t.test('statuses and bodies of other endpoints pass through, references included', async t => {
  const { upstream, gate } = await startProxy(t, { upstream: models })
  const body = `{"object": "response", "output_text": "MEDIA:${IMAGE_PATH}"}`
  const cases: Array<[string, string, number]> = [
    ['GET', '/v1/responses/resp_1', 200],
    ['DELETE', '/v1/responses/resp_1', 204],
    ['POST', '/v1/runs', 202],
    ['GET', '/v1/nope', 404],
    ['PUT', '/v1/files/f', 500]
  ]
  for (const [method, path, status] of cases) {
    upstream.handle((_req, res) => { res.writeHead(status, { 'content-type': 'application/json' }).end(status === 204 ? undefined : body) })
    const res = await send(gate.url, { method, path, ...(method === 'GET' || method === 'DELETE' ? {} : { body: '{}' }) })
    t.equal(upstream.requests.at(-1)?.method, method, `${method} ${path}: method passes through`)
    t.equal(res.status, status, `${method} ${path}: status passes through`)
    t.equal(res.text, status === 204 ? '' : body, `${method} ${path}: body is not rewritten`)
  }
})

t.test('a HEAD request passes through without a body', async t => {
  const { upstream, gate } = await startProxy(t, { upstream: models })
  const res = await send(gate.url, { method: 'HEAD', path: '/v1/models' })
  t.equal(upstream.requests.at(-1)?.method, 'HEAD', 'the upstream sees HEAD')
  t.equal(res.status, 200, 'status passes through')
  t.equal(res.body.length, 0, 'no body')
})

t.test('an embeddings request body reaches the upstream byte for byte', async t => {
  const { upstream, gate } = await startProxy(t, { upstream: models })
  // Python layout, escaped and raw non-ASCII, and a byte that is not UTF-8.
  const body = Buffer.concat([
    Buffer.from('{"model": "hermes-agent", "input": ["caf\\u00e9", "caf\u00e9 \u{1F34E}", "'),
    Buffer.from([0xff, 0xfe]),
    Buffer.from('"]}')
  ])
  const res = await send(gate.url, { method: 'POST', path: '/v1/embeddings', headers: { 'content-type': 'application/json' }, body })
  t.equal(res.status, 200, 'answered')
  t.same(upstream.requests.at(-1)?.body, body, 'the body arrives unchanged')
  t.equal(upstream.requests.at(-1)?.headers['content-length'], String(body.length), 'with its declared length')
  t.equal(upstream.requests.at(-1)?.url, '/v1/embeddings', 'at the same path')
})

t.test('an upstream configured without /v1 gets the same paths', async t => {
  const { cache } = cacheWithImage(t)
  const upstream = await startMockUpstream((_req, res) => { res.writeHead(200, { 'content-type': 'application/json' }).end(MODELS) })
  t.teardown(() => upstream.close())
  const base = upstream.url.replace(/\/v1$/, '')
  const resolved = resolveOptions({ argv: ['--upstream', base, '--cache-dir', cache], env: {}, cwd: cache, homedir: cache })
  if (resolved.kind !== 'run') throw new Error('expected options to run with')
  const gate = await startGate(t, { ...resolved.options, port: 0, host: '127.0.0.1' })

  for (const path of ['/v1/models', '/models']) {
    const res = await send(gate.url, { path })
    t.equal(upstream.requests.at(-1)?.url, '/v1/models', `${path}: upstream sees /v1/models`)
    t.equal(res.text, MODELS, `${path}: body passes through`)
  }
  upstream.handle((_req, res) => { res.writeHead(200, { 'content-type': 'text/event-stream' }).end('data: [DONE]\n\n') })
  const res = await send(gate.url, { method: 'POST', path: '/chat/completions', body: '{"stream": true}' })
  t.equal(upstream.requests.at(-1)?.url, '/v1/chat/completions', 'chat completions reach /v1/chat/completions')
  t.equal(res.text, 'data: [DONE]\n\n', 'and stream back')
})

t.test('a large upload streams through to the upstream', async t => {
  const { upstream, gate } = await startProxy(t, { upstream: models })
  const half = 10 * 1024 * 1024
  const piece = Buffer.alloc(64 * 1024)
  for (let i = 0; i < piece.length; i++) piece[i] = (i * 31 + 7) & 0xff
  let sentFirstHalf = false
  // The second half is only sent once the upstream has bytes of the first: a proxy that
  // buffered whole bodies would wait forever here.
  async function * body (): AsyncGenerator<Buffer> {
    for (let size = 0; size < half; size += piece.length) yield piece
    sentFirstHalf = true
    await waitFor(() => upstream.received > 0, 'the upstream to receive the first bytes')
    for (let size = 0; size < half; size += piece.length) yield piece
  }

  const res = await send(gate.url, { method: 'POST', path: '/v1/files', headers: { 'content-type': 'application/octet-stream' }, body: Readable.from(body()) })

  t.ok(sentFirstHalf, 'the body was streamed in two halves')
  t.equal(res.status, 200, 'answered')
  const received = upstream.requests.at(-1)?.body
  t.equal(received?.length, 2 * half, 'all 20 MB arrive')
  let same = true
  if (received !== undefined) {
    for (let at = 0; at < received.length; at += piece.length) {
      if (!received.subarray(at, at + piece.length).equals(piece)) same = false
    }
  }
  t.ok(same, 'byte for byte')
})

t.test('a body over the limit is refused with 413', async t => {
  const { upstream, gate } = await startProxy(t, { upstream: models })

  t.test('declared in content-length, before anything is sent upstream', async t => {
    const req = open(gate.url, {
      method: 'POST',
      path: '/v1/embeddings',
      headers: { 'content-type': 'application/json', 'content-length': String(DEFAULT_MAX_BODY_SIZE + 1), connection: 'keep-alive' }
    })
    const response = responseOf(req)
    req.write('{"input": "')
    const res = await receive(await response)
    req.destroy()
    t.equal(res.status, 413, 'status 413')
    t.equal(res.headers['content-type'], 'application/json; charset=utf-8', 'a JSON error')
    t.equal(res.text, TOO_LARGE, 'OpenAI-shaped body')
    t.equal(upstream.requests.length, 0, 'the upstream saw no request')
    t.equal(upstream.received, 0, 'nor any byte')
  })

  for (const path of ['/v1/embeddings', '/v1/chat/completions']) {
    t.test(`chunked without a length, on ${path}`, async t => {
      // Keep writing until the proxy answers; it must not wait for the end of the body.
      const { res, written } = await writeUntilAnswered(gate.url, path, DEFAULT_MAX_BODY_SIZE)
      t.equal(res.status, 413, 'status 413')
      t.equal(res.text, TOO_LARGE, 'OpenAI-shaped body')
      t.ok(written > DEFAULT_MAX_BODY_SIZE, 'the answer came only once the limit was passed')
      t.equal(upstream.requests.filter((request) => request.url === path).length, 0, 'the upstream never saw a whole request')
    })
  }
})

t.test('a client that reads only after sending its whole oversized body gets the 413', async t => {
  const { upstream, gate } = await startProxy(t, { upstream: models })
  // Most SDKs work this way: the proxy must keep reading (and dropping) the rest, or the
  // client blocks on a full socket and never sees the answer.
  const piece = Buffer.alloc(1024 * 1024, 0x63)
  const count = DEFAULT_MAX_BODY_SIZE / piece.length + 2
  const complete = (text: string): boolean => text.includes(TOO_LARGE)
  const host = `Host: ${new URL(gate.url).host}\r\n`

  function * declared (): Generator<string | Buffer> {
    yield `POST /v1/embeddings HTTP/1.1\r\n${host}Content-Type: application/octet-stream\r\nContent-Length: ${count * piece.length}\r\n\r\n`
    for (let i = 0; i < count; i++) yield piece
  }
  function * chunked (): Generator<string | Buffer> {
    yield `POST /v1/embeddings HTTP/1.1\r\n${host}Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n`
    for (let i = 0; i < count; i++) {
      yield `${piece.length.toString(16)}\r\n`
      yield piece
      yield '\r\n'
    }
    yield '0\r\n\r\n'
  }

  for (const [label, pieces] of [['with content-length', declared()], ['chunked', chunked()]] as const) {
    const text = await rawExchange(gate.url, pieces, complete)
    t.match(text, /^HTTP\/1\.1 413 /, `${label}: status 413`)
    t.ok(complete(text), `${label}: OpenAI-shaped body`)
  }
  t.equal(upstream.requests.length, 0, 'the upstream never saw a whole request')
})

t.test('refused bodies on one kept-alive connection leave nothing behind on it', async t => {
  const limit = 1024
  const { upstream, gate } = await startProxy(t, { upstream: models, settings: { maxBodySize: limit } })
  const warnings = watchWarnings(t)
  const connection = await rawConnection(t, gate.url)
  const refused = JSON.stringify(errorBody('request_too_large', limit))
  // Past Node's 10 listeners per event: one left per refused request would warn.
  const count = 15
  for (let i = 1; i <= count; i++) {
    connection.socket.write(`POST /v1/embeddings HTTP/1.1\r\nHost: imagegate\r\nContent-Type: application/json\r\nContent-Length: ${2 * limit}\r\n\r\n${'x'.repeat(2 * limit)}`)
    await waitFor(() => connection.received().split(refused).length - 1 === i, `refusal ${i}`)
  }
  t.equal(connection.received().match(/HTTP\/1\.1 413 /g)?.length, count, 'every request refused with 413')
  t.notOk(connection.isClosed(), 'the connection stays open for the next request')
  connection.socket.write('GET /v1/models HTTP/1.1\r\nHost: imagegate\r\n\r\n')
  await waitFor(() => connection.received().includes(MODELS), 'the next answer on the same connection')
  t.same(warnings(), [], 'no process warning (a listener per refused request shows as MaxListenersExceededWarning)')
  t.equal(upstream.requests.filter((request) => request.method === 'POST').length, 0, 'no refused body reached the upstream')
})

t.test('a body right at the limit is accepted', async t => {
  const { upstream, gate } = await startProxy(t, { upstream: models })
  const body = Buffer.alloc(DEFAULT_MAX_BODY_SIZE, 0x62)
  const res = await send(gate.url, { method: 'POST', path: '/v1/embeddings', headers: { 'content-type': 'application/octet-stream' }, body })
  t.equal(res.status, 200, 'answered')
  t.equal(upstream.requests.at(-1)?.body.length, DEFAULT_MAX_BODY_SIZE, 'every byte arrives')
})
