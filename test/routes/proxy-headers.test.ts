// Which headers cross the proxy, in both directions.
import t from 'tap'
import { IMAGE_PATH } from '../fixtures/hermes.js'
import { send } from '../fixtures/http.js'
import { DONE, chunk } from '../fixtures/chat.js'
import { startProxy } from '../fixtures/proxy.js'
import { sse } from '../fixtures/mock-upstream.js'

const CLIENT_HEADERS = {
  authorization: 'Bearer client-token',
  origin: 'http://openwebui.example:3000',
  cookie: 'session=abc',
  'accept-encoding': 'gzip, deflate, br',
  'content-type': 'application/json',
  'x-openwebui-user-id': 'u-1',
  // Hop-by-hop: for this connection only (RFC 9110 7.6.1).
  connection: 'keep-alive, x-hop-secret',
  'x-hop-secret': 'only for the next hop',
  'keep-alive': 'timeout=5',
  'proxy-authorization': 'Basic cHJveHk6cHc=',
  te: 'trailers'
}

t.test('request headers: end-to-end ones pass, hop-by-hop ones and Origin do not', async t => {
  const { upstream, gate } = await startProxy(t)
  for (const path of ['/v1/chat/completions', '/v1/embeddings']) {
    // Trailer is only valid on a chunked body.
    await send(gate.url, { method: 'POST', path, headers: { ...CLIENT_HEADERS, trailer: 'x-checksum' }, body: '{"stream": false}' })
    const seen = upstream.requests.at(-1)?.headers ?? {}
    t.equal(seen.authorization, 'Bearer client-token', `${path}: Authorization is forwarded`)
    t.equal(seen.cookie, 'session=abc', `${path}: other end-to-end headers are forwarded`)
    t.equal(seen['x-openwebui-user-id'], 'u-1', `${path}: custom headers are forwarded`)
    t.equal(seen['content-type'], 'application/json', `${path}: content-type is forwarded`)
    t.equal(seen.origin, undefined, `${path}: Origin is dropped`)
    t.equal(seen['x-hop-secret'], undefined, `${path}: a header named in Connection is dropped`)
    t.equal(seen['keep-alive'], undefined, `${path}: Keep-Alive is dropped`)
    t.equal(seen['proxy-authorization'], undefined, `${path}: Proxy-Authorization is dropped`)
    t.equal(seen.te, undefined, `${path}: TE is dropped`)
    t.equal(seen.trailer, undefined, `${path}: Trailer is dropped`)
    t.equal(seen.host, new URL(upstream.url).host, `${path}: Host names the upstream`)
    t.notOk(String(seen.connection ?? '').includes('x-hop-secret'), `${path}: the client's Connection list is not forwarded`)
  }
})

t.test('chat completions ask for an uncompressed answer, other paths keep the client\'s choice', async t => {
  const { upstream, gate } = await startProxy(t)
  await send(gate.url, { method: 'POST', path: '/v1/chat/completions', headers: CLIENT_HEADERS, body: '{}' })
  t.equal(upstream.requests.at(-1)?.headers['accept-encoding'], 'identity', 'chat completions: identity')
  await send(gate.url, { method: 'POST', path: '/chat/completions', headers: CLIENT_HEADERS, body: '{}' })
  t.equal(upstream.requests.at(-1)?.headers['accept-encoding'], 'identity', 'chat completions without /v1: identity')
  await send(gate.url, { path: '/v1/models', headers: CLIENT_HEADERS })
  t.equal(upstream.requests.at(-1)?.headers['accept-encoding'], 'gzip, deflate, br', 'models: the client\'s encodings')
})

t.test('a configured upstream API key replaces the client\'s Authorization', async t => {
  const { upstream, gate } = await startProxy(t, { options: { upstreamApiKey: 'sk-upstream-KEY' } })
  for (const path of ['/v1/chat/completions', '/v1/models']) {
    await send(gate.url, { method: 'POST', path, headers: CLIENT_HEADERS, body: '{}' })
    t.equal(upstream.requests.at(-1)?.headers.authorization, 'Bearer sk-upstream-KEY', `${path}: the upstream sees the configured key`)
  }
  await send(gate.url, { path: '/v1/models' })
  t.equal(upstream.requests.at(-1)?.headers.authorization, 'Bearer sk-upstream-KEY', 'also when the client sent none')
})

t.test('response headers: end-to-end ones pass, hop-by-hop ones and stale lengths do not', async t => {
  const { upstream, gate } = await startProxy(t)
  const upstreamHeaders = {
    'x-request-id': 'r-9',
    'set-cookie': 'a=1',
    'x-hop-reply': 'only for this hop',
    connection: 'keep-alive, x-hop-reply',
    'keep-alive': 'timeout=30',
    'proxy-authenticate': 'Basic',
    etag: '"abc"'
  }
  const body = `{"choices": [{"index": 0, "message": {"content": "MEDIA:${IMAGE_PATH}"}}]}`

  upstream.handle((_req, res) => { res.writeHead(200, { ...upstreamHeaders, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body) })
  const rewritten = await send(gate.url, { method: 'POST', path: '/v1/chat/completions', body: '{}' })
  t.not(rewritten.text, body, 'the body was rewritten')
  t.equal(rewritten.headers['content-length'], String(rewritten.body.length), 'rewritten: the length is the new body\'s')
  t.equal(rewritten.headers.etag, undefined, 'rewritten: the ETag of the old body is dropped')

  upstream.handle((_req, res) => { res.writeHead(200, { ...upstreamHeaders, 'content-type': 'application/json', 'content-length': 2 }).end('{}') })
  const passed = await send(gate.url, { path: '/v1/models' })
  t.equal(passed.headers.etag, '"abc"', 'passed through: the ETag is kept')
  t.equal(passed.headers['content-length'], '2', 'passed through: the length is kept')

  upstream.handle(async (req, res) => {
    res.setHeader('x-request-id', 'r-9')
    res.setHeader('x-hop-reply', 'only for this hop')
    res.setHeader('connection', 'keep-alive, x-hop-reply')
    await sse([chunk({ content: 'hi' }), DONE])(req, res, Buffer.alloc(0))
  })
  const streamed = await send(gate.url, { method: 'POST', path: '/v1/chat/completions', body: '{}' })

  for (const [label, res] of [['rewritten', rewritten], ['passed through', passed], ['streamed', streamed]] as const) {
    t.equal(res.headers['x-request-id'], 'r-9', `${label}: end-to-end headers pass`)
    t.equal(res.headers['x-hop-reply'], undefined, `${label}: a header named in Connection is dropped`)
    t.notOk(String(res.headers.connection ?? '').includes('x-hop-reply'), `${label}: the upstream's Connection list is not forwarded`)
    if (label !== 'streamed') {
      t.equal(res.headers['set-cookie']?.[0], 'a=1', `${label}: Set-Cookie passes`)
      t.equal(res.headers['keep-alive'] === 'timeout=30', false, `${label}: the upstream's Keep-Alive is dropped`)
      t.equal(res.headers['proxy-authenticate'], undefined, `${label}: Proxy-Authenticate is dropped`)
    }
  }
})
