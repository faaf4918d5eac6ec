import t from 'tap'
import { VERSION } from '../../src/server.js'
import { DEFAULT_READINESS_TTL_MS, createReadiness, describeFailure } from '../../src/routes/health.js'
import type { Readiness } from '../../src/routes/health.js'
import { startGate } from '../fixtures/gate.js'
import { send } from '../fixtures/http.js'
import { startMockUpstream } from '../fixtures/mock-upstream.js'
import type { MockHandler } from '../fixtures/mock-upstream.js'

const UPSTREAM_KEY = 'sk-upstream-SECRET-readyz-4c1d'
const UPSTREAM_PASSWORD = 'pw-SECRET-readyz-77'

const answer = (status: number): MockHandler => (_req, res) => {
  res.writeHead(status, { 'content-type': 'application/json' }).end('{"object": "list", "data": []}')
}

t.test('createReadiness caches either answer for the TTL after it arrives', async t => {
  let now = 1000
  let calls = 0
  let next: Readiness = { ready: true }
  const readiness = createReadiness({ probe: async () => { calls++; return next }, now: () => now })

  t.same(await readiness.check(), { ready: true }, 'first check probes')
  next = { ready: false, reason: 'upstream answered 502' }
  now += DEFAULT_READINESS_TTL_MS - 1
  t.same(await readiness.check(), { ready: true }, 'within the TTL: the cached answer')
  t.equal(calls, 1, 'one probe so far')
  now += 1
  t.same(await readiness.check(), { ready: false, reason: 'upstream answered 502' }, 'at the TTL: probed again')
  t.equal(calls, 2, 'two probes')
  next = { ready: true }
  now += 100
  t.same(await readiness.check(), { ready: false, reason: 'upstream answered 502' }, 'a failure is cached too')
  t.equal(calls, 2, 'still two probes')
})

t.test('createReadiness: checks during a probe share it; a probe that throws is unavailable', async t => {
  let now = 0
  let calls = 0
  let finish = (_: Readiness): void => {}
  const readiness = createReadiness({
    probe: () => { calls++; return new Promise<Readiness>((resolve) => { finish = resolve }) },
    ttlMs: 10,
    now: () => now
  })
  const first = readiness.check()
  const second = readiness.check()
  now = 50 // the probe is slow: the TTL runs from its answer, not from its start
  finish({ ready: true })
  t.same(await Promise.all([first, second]), [{ ready: true }, { ready: true }], 'both get the one answer')
  t.equal(calls, 1, 'one probe for both')
  now = 59
  t.same(await readiness.check(), { ready: true }, 'cached from the answer\'s time')
  t.equal(calls, 1, 'no new probe')

  const throwing = createReadiness({ probe: async () => { throw new Error('secret detail') } })
  t.same(await throwing.check(), { ready: false, reason: 'readiness probe failed' }, 'unavailable, without the error\'s message')
})

t.test('describeFailure gives a timeout or an error code, never a message', async t => {
  const timeout = Object.assign(new Error('The operation was aborted due to timeout'), { name: 'TimeoutError' })
  const cases: Array<[string, unknown, string]> = [
    ['a timeout', timeout, 'upstream did not answer within 2 s'],
    ['an abort', Object.assign(new Error('aborted'), { name: 'AbortError' }), 'upstream did not answer within 2 s'],
    ['a system error', Object.assign(new Error('connect ECONNREFUSED 10.0.0.1:8642'), { code: 'ECONNREFUSED' }), 'upstream unreachable (ECONNREFUSED)'],
    ['an undici error', Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' }), 'upstream unreachable (UND_ERR_SOCKET)'],
    ['a code in the cause', new Error('fetch failed', { cause: { code: 'ENOTFOUND' } }), 'upstream unreachable (ENOTFOUND)'],
    ['a code that is not an identifier', Object.assign(new Error('x'), { code: 'http://user:pw@host' }), 'upstream unreachable'],
    ['not an error', 'boom', 'upstream unreachable'],
    ['nothing', undefined, 'upstream unreachable']
  ]
  for (const [label, err, reason] of cases) t.equal(describeFailure(err, 2000), reason, label)
})

t.test('GET /readyz: ready when the upstream answers below 500', async t => {
  const upstream = await startMockUpstream(answer(200))
  t.teardown(() => upstream.close())
  for (const status of [200, 401, 403]) {
    upstream.handle(answer(status))
    const gate = await startGate(t, { upstream: upstream.url })
    const res = await send(gate.url, { path: '/readyz' })
    t.equal(res.status, 200, `upstream ${status}: 200`)
    t.equal(res.text, '{"status":"ready"}', `upstream ${status}: the whole body`)
    t.equal(res.headers['cache-control'], 'no-store', `upstream ${status}: not cached by proxies`)
  }
  t.same(upstream.requests.map((r) => [r.method, r.url]), [['GET', '/v1/models'], ['GET', '/v1/models'], ['GET', '/v1/models']], 'one GET /v1/models each')
  t.equal(upstream.requests[0]?.headers.authorization, undefined, 'no key configured: none sent')
})

t.test('GET /readyz: a 404 for /models is not ready: the base URL is wrong, and chats would 404 too', async t => {
  const upstream = await startMockUpstream(answer(404))
  t.teardown(() => upstream.close())
  // A base URL with a prefix the agent does not have: /models is /api/v1/models.
  const gate = await startGate(t, { upstream: upstream.url.replace(/\/v1$/, '/api/v1') })
  const res = await send(gate.url, { path: '/readyz' })
  t.equal(res.status, 503, '503')
  t.equal(res.text, '{"status":"unavailable","reason":"upstream answered 404 to GET /models: --upstream is not the API\'s base URL (such as http://host:8642/v1)"}', 'the whole body, saying what to check')
  t.same(upstream.requests.map((r) => r.url), ['/api/v1/models'], 'asked once')
})

t.test('GET /readyz: unavailable on a server error, with the configured key sent and no secret shown', async t => {
  const upstream = await startMockUpstream(answer(503))
  t.teardown(() => upstream.close())
  const withPassword = upstream.url.replace('http://', `http://agent:${UPSTREAM_PASSWORD}@`)
  const gate = await startGate(t, { upstream: withPassword, upstreamApiKey: UPSTREAM_KEY })
  const res = await send(gate.url, { path: '/readyz' })
  t.equal(res.status, 503, '503')
  t.equal(res.text, '{"status":"unavailable","reason":"upstream answered 503"}', 'the whole body')
  t.equal(upstream.requests[0]?.headers.authorization, `Bearer ${UPSTREAM_KEY}`, 'the configured key is sent')
  t.notOk(gate.rawLogs.join('\n').includes(UPSTREAM_KEY), 'the key is not logged')
  t.notOk(gate.rawLogs.join('\n').includes(UPSTREAM_PASSWORD), 'the password is not logged')
})

t.test('GET /readyz: unavailable when nothing listens, or the upstream does not answer in time', async t => {
  const closed = await startMockUpstream()
  const url = closed.url
  await closed.close()
  const refused = await startGate(t, { upstream: url })
  const res = await send(refused.url, { path: '/readyz' })
  t.equal(res.status, 503, 'nothing listening: 503')
  t.same(JSON.parse(res.text), { status: 'unavailable', reason: 'upstream unreachable (ECONNREFUSED)' }, 'connection refused')

  const silent = await startMockUpstream(() => {})
  t.teardown(() => silent.close())
  const slow = await startGate(t, { upstream: silent.url }, { readiness: { timeoutMs: 100 } })
  const started = Date.now()
  const late = await send(slow.url, { path: '/readyz' })
  t.equal(late.status, 503, 'silent upstream: 503')
  t.same(JSON.parse(late.text), { status: 'unavailable', reason: 'upstream did not answer within 0.1 s' }, 'timed out')
  t.ok(Date.now() - started < 2000, 'after the probe timeout, not the upstream pool\'s')
})

t.test('GET /readyz is cached: frequent probes reach the upstream once per TTL', async t => {
  let now = 0
  const upstream = await startMockUpstream(answer(200))
  t.teardown(() => upstream.close())
  const gate = await startGate(t, { upstream: upstream.url }, { readiness: { ttlMs: 5000, now: () => now } })

  for (let i = 0; i < 5; i++) t.equal((await send(gate.url, { path: '/readyz' })).status, 200, `probe ${i + 1}: ready`)
  t.equal(upstream.requests.length, 1, 'five probes, one upstream request')

  upstream.handle(answer(500))
  now = 4999
  t.equal((await send(gate.url, { path: '/readyz' })).status, 200, 'within the TTL: still the cached answer')
  now = 5000
  const res = await send(gate.url, { path: '/readyz' })
  t.equal(res.status, 503, 'after the TTL: the upstream is asked again')
  t.equal(upstream.requests.length, 2, 'a second upstream request')
})

t.test('GET /healthz never asks the upstream', async t => {
  const gate = await startGate(t, { upstream: 'http://127.0.0.1:9/v1' })
  const res = await send(gate.url, { path: '/healthz' })
  t.equal(res.status, 200, '200 with the upstream down')
  t.same(JSON.parse(res.text), { status: 'ok', version: VERSION }, 'status and version')
})
