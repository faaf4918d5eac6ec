// `stream: false` chat completions: the whole answer is read, rewritten and sent once.
import { gzipSync, gunzipSync } from 'node:zlib'
import t from 'tap'
import { pathAndQuery } from '../fixtures/gate.js'
import { CHAT_WHOLE } from '../fixtures/chat.js'
import { IMAGE_NAME, IMAGE_PATH, PNG, hermesFixture } from '../fixtures/hermes.js'
import { open, postJson, send, waitFor } from '../fixtures/http.js'
import type { MockHandler } from '../fixtures/mock-upstream.js'
import { drained } from '../fixtures/mock-upstream.js'
import { startProxy } from '../fixtures/proxy.js'
import { SOON_MS, within } from '../fixtures/within.js'
import { errorBody } from '../../src/errors.js'

function answer (body: string | Buffer, headers: Record<string, string> = { 'content-type': 'application/json' }, status = 200): MockHandler {
  return (_req, res) => { res.writeHead(status, headers).end(body) }
}

t.test('the recorded MEDIA answer comes back with only the content rewritten', async t => {
  const { upstream, gate } = await startProxy(t)
  const recorded = hermesFixture('hermes-chat-nonstream.json')
  upstream.handle(answer(recorded, { 'content-type': 'application/json; charset=utf-8', 'x-request-id': 'r-1' }))

  const res = await postJson(gate.url, '/v1/chat/completions', CHAT_WHOLE)

  t.equal(res.status, 200, 'status passes through')
  t.equal(res.headers['content-type'], 'application/json; charset=utf-8', 'content-type passes through')
  t.equal(res.headers['x-request-id'], 'r-1', 'other upstream headers pass through')
  t.equal(res.headers['content-length'], String(res.body.length), 'content-length describes the rewritten body')
  t.equal(upstream.requests[0]?.body.toString('utf8'), CHAT_WHOLE, 'the request body reaches the upstream as sent')

  const got = JSON.parse(res.text) as { choices: Array<{ message: { content: string } }> }
  const want = JSON.parse(recorded) as { choices: Array<{ message: { content: string } }> }
  const url = gate.link(IMAGE_NAME)
  t.equal(got.choices[0]?.message.content, `Done.\n\n![${IMAGE_NAME}](${url})\n\nThe file is also in your cache.`, 'the MEDIA tag is now a markdown image')
  const [gotChoice] = got.choices
  const [wantChoice] = want.choices
  if (gotChoice !== undefined && wantChoice !== undefined) wantChoice.message.content = gotChoice.message.content
  t.same(got, want, 'every other field is unchanged')

  const image = await send(gate.url, { path: pathAndQuery(url) })
  t.equal(image.headers['content-type'], 'image/png', 'the link serves a PNG')
  t.same(image.body, PNG, 'the linked file, byte for byte')
})

t.test('an answer with nothing to rewrite is forwarded byte for byte', async t => {
  const { upstream, gate } = await startProxy(t)
  const cases: Array<[string, string, string]> = [
    ['no reference', 'application/json', '{"id": "c", "object": "chat.completion", "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi \\u00e9"}, "finish_reason": "stop"}]}'],
    ['a missing file', 'application/json', `{"choices": [{"index": 0, "message": {"content": "MEDIA:${IMAGE_PATH.replace('.png', '-gone.png')}"}}]}`],
    ['invalid JSON', 'application/json', `{"choices": [MEDIA:${IMAGE_PATH}`],
    ['not a completion', 'application/json', `{"data": [{"content": "MEDIA:${IMAGE_PATH}"}]}`],
    ['plain text', 'text/plain', `MEDIA:${IMAGE_PATH}`],
    ['HTML', 'text/html; charset=utf-8', `<p>![x](${IMAGE_PATH})</p>`]
  ]
  for (const [label, type, body] of cases) {
    upstream.handle(answer(body, { 'content-type': type }))
    const res = await postJson(gate.url, '/v1/chat/completions', CHAT_WHOLE)
    t.equal(res.status, 200, `${label}: status passes through`)
    t.equal(res.headers['content-type'], type, `${label}: content-type passes through`)
    t.equal(res.text, body, `${label}: body unchanged`)
  }
})

t.test('an unchanged answer keeps bytes that are not UTF-8', async t => {
  const { upstream, gate } = await startProxy(t)
  const body = Buffer.concat([Buffer.from('{"choices": [{"index": 0, "message": {"content": "caf'), Buffer.from([0xe9]), Buffer.from('"}}]}')])
  upstream.handle(answer(body))
  const res = await postJson(gate.url, '/v1/chat/completions', CHAT_WHOLE)
  t.same(res.body, body, 'the Latin-1 byte is not replaced')
})

t.test('a compressed answer the proxy cannot read passes through intact', async t => {
  const { upstream, gate } = await startProxy(t)
  // The proxy asks for identity; an upstream (or a proxy before it) may compress anyway.
  const recorded = hermesFixture('hermes-chat-nonstream.json')
  upstream.handle(answer(gzipSync(recorded), { 'content-type': 'application/json', 'content-encoding': 'gzip' }))

  const res = await postJson(gate.url, '/v1/chat/completions', CHAT_WHOLE)

  t.equal(res.status, 200, 'status passes through')
  t.equal(res.headers['content-encoding'], 'gzip', 'the encoding is still declared')
  t.equal(gunzipSync(res.body).toString('utf8'), recorded, 'the body still decodes to the answer')
})

t.test('a compressed event stream passes through intact', async t => {
  const { upstream, gate } = await startProxy(t)
  const recorded = hermesFixture('hermes-chat-stream.sse')
  upstream.handle(answer(gzipSync(recorded), { 'content-type': 'text/event-stream', 'content-encoding': 'gzip' }))

  const res = await postJson(gate.url, '/v1/chat/completions', CHAT_WHOLE)

  t.equal(res.headers['content-encoding'], 'gzip', 'the encoding is still declared')
  t.equal(gunzipSync(res.body).toString('utf8'), recorded, 'the body still decodes to the stream')
})

t.test('an answer larger than the rewrite limit passes through whole', async t => {
  const { upstream, gate } = await startProxy(t)
  // Past the limit the proxy stops reading to rewrite and forwards what it has read plus the rest.
  const { DEFAULT_MAX_JSON_SIZE } = await import('../../src/routes/proxy.js')
  const filler = 'x'.repeat(1024 * 1024)
  const parts = Array.from({ length: Math.ceil(DEFAULT_MAX_JSON_SIZE / filler.length) + 2 }, () => filler)
  const body = `{"choices": [{"index": 0, "message": {"content": "MEDIA:${IMAGE_PATH} ${parts.join('')}"}}]}`
  upstream.handle(async (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' })
    const bytes = Buffer.from(body)
    for (let at = 0; at < bytes.length; at += 256 * 1024) {
      if (!res.write(bytes.subarray(at, at + 256 * 1024))) await drained(res)
    }
    res.end()
  })

  const res = await postJson(gate.url, '/v1/chat/completions', CHAT_WHOLE)

  t.equal(res.status, 200, 'status passes through')
  t.equal(res.body.length, Buffer.byteLength(body), 'every byte arrives')
  t.ok(res.text === body, 'unchanged')
})

t.test('upstream errors on a non-streaming call keep status and body', async t => {
  const { upstream, gate } = await startProxy(t)
  const cases: Array<[number, string, string]> = [
    [400, 'application/json', `{"error": {"message": "bad MEDIA:${IMAGE_PATH}", "type": "invalid_request_error"}}`],
    [401, 'application/json', '{"error": {"message": "Invalid API key", "type": "invalid_request_error", "code": "invalid_api_key"}}'],
    [500, 'text/plain', 'Internal Server Error'],
    [503, 'text/html', '<h1>overloaded</h1>']
  ]
  for (const [status, type, body] of cases) {
    upstream.handle(answer(body, { 'content-type': type }, status))
    const res = await postJson(gate.url, '/v1/chat/completions', CHAT_WHOLE)
    t.equal(res.status, status, `${status}: status passes through`)
    t.equal(res.headers['content-type'], type, `${status}: content-type passes through`)
    t.equal(res.text, body, `${status}: body unchanged`)
  }
})

t.test('a non-streaming answer cut after its headers is a 502, not a 500', async t => {
  const { upstream, gate } = await startProxy(t)
  upstream.handle((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' })
    res.write('{"choices": [')
    setTimeout(() => res.destroy(), 20)
  })
  const res = await postJson(gate.url, '/v1/chat/completions', CHAT_WHOLE)
  t.equal(res.status, 502, 'an upstream failure')
  t.same(JSON.parse(res.text), errorBody('upstream_stream_error'), 'the whole OpenAI-shaped body')
  t.notOk(gate.logs.some((line) => line.level === 50), 'not logged as an internal error')
})

t.test('a client that leaves while a non-streaming answer is read closes the upstream request', async t => {
  const { upstream, gate } = await startProxy(t)
  let headersSent!: () => void
  const started = new Promise<void>((resolve) => { headersSent = resolve })
  upstream.handle((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' })
    res.write('{"choices": [')
    headersSent()
  })
  const closed = upstream.closed()
  const req = open(gate.url, { method: 'POST', path: '/v1/chat/completions', headers: { 'content-type': 'application/json' } })
  req.on('error', () => {})
  req.end(CHAT_WHOLE)
  await started
  // Give the proxy a moment to receive the headers and start reading the body.
  await new Promise((resolve) => setTimeout(resolve, 50))
  req.destroy()
  await within(closed, SOON_MS, 'the upstream saw its request closed')
  t.pass('the upstream saw its request closed')
  await waitFor(() => gate.logs.some((line) => line.msg === 'request' && line.aborted === true), 'the aborted request line')
  t.notOk(gate.logs.some((line) => line.level === 50), 'no internal error logged')
})
