// What imagegate writes to its log: one line per request, never a secret.
import path from 'node:path'
import { Writable } from 'node:stream'
import { pino } from 'pino'
import t from 'tap'
import { REDACT_PATHS, describeCause, logDestination, loggerOptions, pathOnly } from '../src/log.js'
import { DEFAULT_MAX_BODY_SIZE } from '../src/routes/proxy.js'
import { startGate } from './fixtures/gate.js'
import { CONTAINER_DIR, IMAGE_NAME, IMAGE_PATH, PNG, SECRET as SECRET_FILE } from './fixtures/hermes.js'
import { open, receive, responseOf, send, waitFor } from './fixtures/http.js'
import { DONE, FINISH, ROLE, contentEvents } from './fixtures/chat.js'
import { sse, startMockUpstream } from './fixtures/mock-upstream.js'
import { startProxy } from './fixtures/proxy.js'

const CLIENT_SECRET = 'sk-client-SECRET-0b7c'
const UPSTREAM_SECRET = 'sk-upstream-SECRET-91fe'
const QUERY_SECRET = 'sig-QUERY-SECRET-5d2a'

function sink (): { stream: Writable, lines: string[] } {
  const lines: string[] = []
  const stream = new Writable({
    write (chunk: Buffer, _encoding, callback) {
      lines.push(...chunk.toString('utf8').split('\n').filter((line) => line.length > 0))
      callback()
    }
  })
  return { stream, lines }
}

t.test('pathOnly drops the query string', async t => {
  const cases: Array<[string, string]> = [
    ['/v1/models', '/v1/models'],
    ['/v1/models?key=abc', '/v1/models'],
    ['/images/a.png?', '/images/a.png'],
    ['/?a=1?b=2', '/'],
    ['', '']
  ]
  for (const [url, expected] of cases) t.equal(pathOnly(url), expected, `pathOnly(${JSON.stringify(url)})`)
})

t.test('every redact path is censored', async t => {
  const { stream, lines } = sink()
  // Fastify takes the stream inside the options; pino itself takes it beside them.
  const log = pino(loggerOptions({ level: 'info' }), stream)
  const secret = 'hunter2-secret'
  log.info({
    req: { headers: { authorization: secret, cookie: secret, 'x-api-key': secret, 'api-key': secret, accept: 'kept' } },
    headers: { authorization: secret, cookie: secret },
    options: { upstreamApiKey: secret },
    upstreamApiKey: secret,
    signingKey: secret
  }, 'everything')
  t.equal(lines.length, 1, 'one line')
  t.notOk(lines[0]?.includes(secret), 'no secret survives')
  t.equal((lines[0]?.match(/\[redacted\]/g) ?? []).length, REDACT_PATHS.length, 'each path is censored')
  t.match(JSON.parse(lines[0] ?? '{}'), { req: { headers: { authorization: '[redacted]', accept: 'kept' } } }, 'other fields stay')
})

t.test('loggerOptions keeps the level and only sets a stream when given one', async t => {
  const withStream = loggerOptions({ level: 'warn', stream: sink().stream })
  const without = loggerOptions({ level: 'debug' })
  t.equal(withStream.level, 'warn', 'level is kept')
  t.ok('stream' in withStream, 'stream is set')
  t.equal(without.level, 'debug', 'level is kept')
  t.notOk('stream' in without, 'stdout by default')
})

t.test('a server run logs one line per request and no secret', async t => {
  const { upstream, gate, cache } = await startProxy(t, { options: { upstreamApiKey: UPSTREAM_SECRET } })
  const auth = { authorization: `Bearer ${CLIENT_SECRET}`, 'x-api-key': CLIENT_SECRET, cookie: `s=${CLIENT_SECRET}` }

  upstream.handle(sse([ROLE, ...contentEvents(['Here: ![a](', IMAGE_PATH, ')']), FINISH, DONE]))
  const streamed = await send(gate.url, { method: 'POST', path: `/v1/chat/completions?key=${QUERY_SECRET}`, headers: auth, body: '{"stream": true}' })
  t.equal(streamed.status, 200, 'streamed chat answered')

  upstream.handle((req, res) => { res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ echoed: req.headers.authorization })) })
  const models = await send(gate.url, { path: `/v1/models?api_key=${QUERY_SECRET}`, headers: auth })
  t.equal(models.status, 200, 'models answered')

  upstream.handle((_req, res) => { res.writeHead(401, { 'content-type': 'application/json' }).end('{"error": {"message": "bad key"}}') })
  const refused = await send(gate.url, { method: 'POST', path: '/v1/chat/completions', headers: auth, body: '{}' })
  t.equal(refused.status, 401, 'an upstream refusal passes through')

  upstream.handle((_req, res) => { res.destroy() })
  const broken = await send(gate.url, { path: '/v1/models', headers: auth })
  t.equal(broken.status, 502, 'a dropped connection is a 502')

  const req = open(gate.url, { method: 'POST', path: '/v1/embeddings', headers: { ...auth, 'content-length': String(DEFAULT_MAX_BODY_SIZE + 1) } })
  const response = responseOf(req)
  req.write('{')
  const tooLarge = await receive(await response)
  req.destroy()
  t.equal(tooLarge.status, 413, 'an oversized body is refused')

  const name = gate.nameOf(IMAGE_NAME)
  const image = await send(gate.url, { path: `/images/${name}?sig=${gate.signer?.sign(name) ?? ''}&v=${QUERY_SECRET}`, headers: auth })
  t.equal(image.status, 200, 'the image is served')
  const missing = await send(gate.url, { path: '/images/passwd', headers: auth })
  t.equal(missing.status, 404, 'a miss is a 404')
  const health = await send(gate.url, { path: '/healthz', headers: auth })
  t.equal(health.status, 200, 'healthz answers')

  const expected: Array<[string, string, number]> = [
    ['POST', '/v1/chat/completions', 200],
    ['GET', '/v1/models', 200],
    ['POST', '/v1/chat/completions', 401],
    ['GET', '/v1/models', 502],
    ['POST', '/v1/embeddings', 413],
    ['GET', `/images/${name}`, 200],
    ['GET', '/images/passwd', 404]
  ]
  const logs = gate.logs
  const byRequest = new Map<unknown, Array<Record<string, unknown>>>()
  for (const line of logs) {
    if (line.reqId === undefined || line.level !== 30) continue
    byRequest.set(line.reqId, [...byRequest.get(line.reqId) ?? [], line])
  }
  t.equal(byRequest.size, expected.length, 'every request has info lines')
  for (const [i, lines] of [...byRequest.values()].entries()) {
    const [method, url, statusCode] = expected[i] ?? []
    t.equal(lines.length, 1, `${method} ${url}: exactly one info line`)
    t.match(lines[0], { msg: 'request', method, url, statusCode, ms: Number }, `${method} ${url}: method, path and status`)
  }

  t.match(logs.filter((line) => line.url === '/healthz'), [{ level: 20, msg: 'request', statusCode: 200 }], 'the probe\'s request line is at debug')

  const raw = gate.rawLogs.join('\n')
  t.notOk(raw.includes(CLIENT_SECRET), 'the client\'s Authorization value never appears')
  t.notOk(raw.includes(UPSTREAM_SECRET), 'the upstream API key never appears')
  t.notOk(raw.includes(QUERY_SECRET), 'query strings are not logged')

  const rewrites = logs.filter((line) => line.msg === 'reference rewritten')
  t.equal(rewrites.length, 1, 'one debug line for the one rewrite')
  t.equal(rewrites[0]?.level, 20, 'at debug level')
  t.equal(rewrites[0]?.name, IMAGE_NAME, 'it names the file')
  const rewriteLine = gate.rawLogs.find((line) => line.includes('reference rewritten')) ?? ''
  t.notOk(rewriteLine.includes(IMAGE_PATH), 'not the path the model wrote')
  t.notOk(rewriteLine.includes(cache), 'nor the path on this machine')
})

t.test('at the default info level nothing per rewrite is written', async t => {
  const { gate } = await startProxy(t, { options: { logLevel: 'info' }, upstream: sse([...contentEvents([`MEDIA:${IMAGE_PATH} `]), DONE]) })
  const res = await send(gate.url, { method: 'POST', path: '/v1/chat/completions', body: '{}' })
  t.ok(res.text.includes('/images/'), 'the reference was rewritten')
  t.equal(gate.logs.filter((line) => line.msg === 'reference rewritten').length, 0, 'no debug line')
  t.equal(gate.logs.filter((line) => line.msg === 'request').length, 1, 'the request line')
})

t.test('each reference left alone is logged once at debug, with its reason and file name only', async t => {
  const dir = t.testdir({
    'secret.png': SECRET_FILE,
    cache: { [IMAGE_NAME]: PNG, 'folder.png': {}, 'escape.png': t.fixture('symlink', '../secret.png') }
  })
  const cache = path.join(dir, 'cache')
  const { upstream, gate } = await startProxy(t, { options: { cacheDirs: [cache], logLevel: 'debug' } })
  upstream.handle(sse([ROLE, ...contentEvents([
    `![apple](${IMAGE_PATH})\n`,
    `![web](https://example.org/web.png?sig=${QUERY_SECRET})\n`,
    '![far](/srv/elsewhere/far.png)\n',
    `![gone](${cache}/gone.png)\n`,
    `![folder](${cache}/folder.png)\n`,
    `![page](${CONTAINER_DIR}/page.html)\n`,
    `![up](${cache}/../up.png)\n`,
    `![link](${cache}/escape.png)\n`,
    `and in code: \`![apple](${cache}/coded.png)\`\n`
  ]), FINISH, DONE]))
  const chat = await send(gate.url, { method: 'POST', path: '/v1/chat/completions', body: '{"stream": true}' })
  t.equal(chat.status, 200, 'the chat streamed')

  const lines = gate.logs.filter((line) => line.msg === 'reference left alone')
  t.same(lines.map(({ level, reason, name }) => ({ level, reason, name })), [
    { level: 20, reason: 'not-a-path', name: 'web.png' },
    { level: 20, reason: 'outside-roots', name: 'far.png' },
    { level: 20, reason: 'missing', name: 'gone.png' },
    { level: 20, reason: 'not-a-file', name: 'folder.png' },
    { level: 20, reason: 'extension', name: 'page.html' },
    { level: 20, reason: 'hostile', name: 'up.png' },
    { level: 20, reason: 'symlink-escape', name: 'escape.png' },
    { level: 20, reason: 'in-code', name: 'coded.png' }
  ], 'one debug line per reference left alone, in order, with its reason and file name')
  t.ok(lines.every((line) => typeof line.reqId === 'string'), 'each under its request')
  const text = gate.rawLogs.filter((line) => line.includes('reference left alone')).join('\n')
  t.notOk(text.includes(dir), 'never a folder of the path')
  t.notOk(text.includes(QUERY_SECRET), 'never a signature or query')
  t.notOk(text.includes(CONTAINER_DIR), 'not the agent\'s folders either')
})

/** The request line of the request to `url`, once it is written. */
async function requestLine (gate: { logs: Array<Record<string, unknown>> }, url: string): Promise<Record<string, unknown>> {
  const find = (): Record<string, unknown> | undefined => gate.logs.find((line) => line.msg === 'request' && line.url === url)
  await waitFor(() => find() !== undefined, `the request line of ${url}`)
  return find() ?? {}
}

t.test('at info, a rewritten answer\'s request line counts its references and says how its stream ended', async t => {
  const { upstream, gate } = await startProxy(t, { options: { logLevel: 'info', shutdownGrace: 0 } })
  // One deliverable file; a missing one, a web URL and one in code: three left.
  const text = ['Here: ![a](', IMAGE_PATH, ') ![b](/tmp/nope.png) ![c](https://example.org/c.png) `![d](/tmp/d.png)`']
  const answer = [ROLE, ...contentEvents(text)]

  upstream.handle(sse([...answer, FINISH, DONE]))
  await send(gate.url, { method: 'POST', path: '/v1/chat/completions?case=done', body: '{}' })
  t.match(await requestLine(gate, '/v1/chat/completions'), { level: 30, statusCode: 200, rewritten: 1, left: 3, stream: 'done' }, '[DONE]: done')

  upstream.handle(sse([...answer, FINISH]))
  await send(gate.url, { method: 'POST', path: '/chat/completions', body: '{}' })
  t.match(await requestLine(gate, '/chat/completions'), { rewritten: 1, left: 3, stream: 'eof' }, 'the upstream closed after the finish: eof')

  upstream.handle(sse(answer, { destroy: true }))
  await send(gate.url, { method: 'POST', path: '/v1//chat/completions', body: '{}' })
  t.match(await requestLine(gate, '/v1//chat/completions'), { rewritten: 1, left: 3, stream: 'upstream-error' }, 'the upstream broke off: upstream-error')

  upstream.handle(sse(answer, { end: false }))
  const req = open(gate.url, { method: 'POST', path: '//v1/chat/completions', headers: { 'content-type': 'application/json' } })
  const res = await responseOf(req.end('{}'))
  await new Promise((resolve) => res.once('data', resolve))
  req.destroy()
  t.match(await requestLine(gate, '//v1/chat/completions'), { aborted: true, stream: 'aborted' }, 'the client left: aborted')

  upstream.handle((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content: text.join('') }, finish_reason: 'stop' }] }))
  })
  await send(gate.url, { method: 'POST', path: '//chat/completions', body: '{}' })
  const json = await requestLine(gate, '//chat/completions')
  t.match(json, { statusCode: 200, rewritten: 1, left: 3 }, 'a JSON answer: the counts')
  t.notOk('stream' in json, 'and no stream')

  upstream.handle((_req, res) => { res.writeHead(200, { 'content-type': 'application/json' }).end('{"data":[]}') })
  await send(gate.url, { path: '/v1/models' })
  const passed = await requestLine(gate, '/v1/models')
  t.notOk('rewritten' in passed || 'left' in passed || 'stream' in passed, 'a passed-through answer has neither')

  upstream.handle(sse(answer, { end: false }))
  const running = open(gate.url, { method: 'POST', path: '/v1///chat/completions', headers: { 'content-type': 'application/json' } })
  const runningRes = await responseOf(running.end('{}'))
  runningRes.resume()
  await new Promise((resolve) => runningRes.once('data', resolve))
  await gate.close()
  t.match(await requestLine(gate, '/v1///chat/completions'), { statusCode: 200, rewritten: 1, left: 3, stream: 'stopped' }, 'cut at shutdown: stopped')
})

t.test('an expected failure is one warning with its cause and no stack, in JSON', async t => {
  const upstream = await startMockUpstream()
  t.teardown(() => upstream.close())
  const refusedGate = await startGate(t, { upstream: 'http://127.0.0.1:9/v1', logLevel: 'info' })
  const refused = await send(refusedGate.url, { method: 'POST', path: '/v1/chat/completions', body: '{}' })
  t.equal(refused.status, 502, 'refused: 502')
  const [refusedLine, ...moreRefused] = refusedGate.logs.filter((line) => line.level === 40)
  t.match(refusedLine, { msg: 'imagegate could not reach the upstream API', code: 'upstream_unreachable', cause: 'connect ECONNREFUSED 127.0.0.1:9' }, 'refused: the message, the code and the cause')
  t.same(moreRefused, [], 'refused: one line')

  upstream.handle(() => {}) // never answers
  const slowGate = await startGate(t, { upstream: upstream.url, logLevel: 'info' }, { upstreamTimeouts: { headersTimeout: 100 } })
  const slow = await send(slowGate.url, { method: 'POST', path: '/v1/chat/completions', body: '{}' })
  t.equal(slow.status, 504, 'timed out: 504')
  const timeoutLines = slowGate.logs.filter((line) => line.level === 40)
  t.match(timeoutLines, [{ msg: 'the upstream API did not answer in time', code: 'upstream_timeout', cause: 'UND_ERR_HEADERS_TIMEOUT: Headers Timeout Error' }], 'timed out: one line with the cause')

  upstream.handle(sse(contentEvents(['half an answer']), { destroy: true }))
  await send(slowGate.url, { method: 'POST', path: '/v1/chat/completions', body: '{"stream":true}' })
  await waitFor(() => slowGate.logs.some((line) => line.msg === 'upstream stream failed'), 'the mid-stream failure')
  t.match(slowGate.logs.find((line) => line.msg === 'upstream stream failed'), { level: 40, cause: /^UND_ERR_SOCKET: other side closed/ }, 'cut mid-stream: the cause')

  for (const line of [...refusedGate.rawLogs, ...slowGate.rawLogs]) {
    t.notMatch(line, /"err"|"stack"|\\n\s+at /, 'no error object and no stack in any line')
  }
})

t.test('an expected failure is one line in pretty mode too', async t => {
  const chunks: string[] = []
  const output = new Writable({ write (chunk: Buffer, _encoding, callback) { chunks.push(chunk.toString('utf8')); callback() } })
  const pretty = await logDestination(undefined, { isTTY: true, output })
  const gate = await startGate(t, { upstream: 'http://127.0.0.1:9/v1', logLevel: 'info' }, pretty === undefined ? {} : { logStream: pretty })
  // startGate reads JSON lines; here the lines go to pino-pretty instead.
  t.ok(pretty !== undefined, 'pino-pretty is installed')
  await send(gate.url, { method: 'POST', path: '/v1/chat/completions', body: '{}' })
  await waitFor(() => chunks.join('').includes('"msg":"request"') || /INFO.*request/.test(chunks.join('')), 'the request line')
  const lines = chunks.join('').split('\n').filter((line) => line.length > 0)
  const failure = lines.filter((line) => line.includes('could not reach'))
  t.equal(failure.length, 1, 'one line for the failure')
  t.match(failure[0], /WARN.*imagegate could not reach the upstream API.*"code":"upstream_unreachable".*"cause":"connect ECONNREFUSED 127\.0\.0\.1:9"/, 'level, message, code and cause on it')
  t.notOk(lines.some((line) => /^\s+at /.test(line)), 'no stack lines')
  t.match(lines.find((line) => line.includes('request')), /INFO.*request.*"method":"POST".*"statusCode":502/, 'the request line is one line as well')
})

t.test('describeCause: codes, messages and causes on one line', async t => {
  const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' })
  const cases: Array<[string, unknown, string]> = [
    ['a code already in the message', refused, 'connect ECONNREFUSED 127.0.0.1:9'],
    ['a code that is not', Object.assign(new Error('Headers Timeout Error'), { code: 'UND_ERR_HEADERS_TIMEOUT' }), 'UND_ERR_HEADERS_TIMEOUT: Headers Timeout Error'],
    ['a chain of causes', new Error('fetch failed', { cause: refused }), 'fetch failed; cause: connect ECONNREFUSED 127.0.0.1:9'],
    ['line breaks', new Error('first\n  second'), 'first second'],
    ['no message', new TypeError(''), 'TypeError'],
    ['not an error', 'socket hang up', 'socket hang up'],
    ['a cause that is not an error', new Error('outer', { cause: 42 }), 'outer; cause: 42'],
    ['nothing', undefined, 'no cause given']
  ]
  for (const [label, err, expected] of cases) t.equal(describeCause(err), expected, label)
  let deep: Error = new Error('level 0')
  for (let i = 1; i < 10; i++) deep = new Error(`level ${i}`, { cause: deep })
  t.equal(describeCause(deep), 'level 9; cause: level 8; cause: level 7; cause: level 6', 'at most four levels')
})
