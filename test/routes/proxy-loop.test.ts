// An upstream that leads back to imagegate: refused at start when the address shows it,
// and cut after one round with a 508 when only the request's Via header can tell.
import t from 'tap'
import { startServer } from '../../src/server.js'
import { ConfigError, errorBody } from '../../src/errors.js'
import { startGate } from '../fixtures/gate.js'
import { send } from '../fixtures/http.js'
import { freePort } from '../fixtures/raw-socket.js'
import { testOptions } from '../fixtures/options.js'
import { DONE, contentEvents } from '../fixtures/chat.js'
import { sse, startMockUpstream } from '../fixtures/mock-upstream.js'

const LOOP_BODY = JSON.stringify(errorBody('loop_detected'))
const UPSTREAM_KEY = 'sk-upstream-SECRET-loop-41a7'

t.test('an upstream at imagegate\'s own address is refused once the port is known, and nothing keeps listening', async t => {
  const port = await freePort()
  for (const upstream of [`http://127.0.0.1:${port}/v1`, `http://localhost:${port}/v1`, `http://0.0.0.0:${port}/v1`]) {
    const started = startServer(testOptions(t, { upstream, port, logLevel: 'silent' }))
    await t.rejects(started, new ConfigError(`upstream: "${upstream}" is imagegate's own address (it listens on 127.0.0.1:${port}), so every request would be forwarded to itself; give the agent backend's URL, e.g. "http://127.0.0.1:8642/v1"`), `${upstream}: refused`)
    const refused = await send(`http://127.0.0.1:${port}`, { path: '/healthz' }).then(() => false, () => true)
    t.ok(refused, `${upstream}: the port is closed again`)
  }
})

t.test('two imagegates pointing at each other: one round, then an OpenAI-shaped 508', async t => {
  const portB = await freePort()
  const a = await startGate(t, { upstream: `http://127.0.0.1:${portB}/v1`, upstreamApiKey: UPSTREAM_KEY })
  const b = await startGate(t, { upstream: `${a.url}/v1`, port: portB })

  const chat = await send(a.url, { method: 'POST', path: '/v1/chat/completions', headers: { 'content-type': 'application/json' }, body: '{"stream":true,"messages":[]}' })
  t.equal(chat.status, 508, 'chat: 508 Loop Detected')
  t.equal(chat.text, LOOP_BODY, 'chat: the whole body')
  const models = await send(b.url, { path: '/v1/models' })
  t.equal(models.status, 508, 'a passed-through route: 508 too')
  t.equal(models.text, LOOP_BODY, 'with the same body')

  const requestLines = (gate: typeof a): unknown[] => gate.logs.filter((line) => line.msg === 'request').map((line) => [line.url, line.statusCode])
  t.same(requestLines(a), [['/v1/chat/completions', 508], ['/v1/chat/completions', 508], ['/v1/models', 508]], 'imagegate A saw the chat twice (from the client, then back from B) and the models request once')
  t.same(requestLines(b), [['/v1/chat/completions', 508], ['/v1/models', 508], ['/v1/models', 508]], 'B likewise')
  const warnings = [...a.logs, ...b.logs].filter((line) => line.level === 40)
  t.same(warnings.map((line) => [line.code, line.msg]), [
    ['loop_detected', 'imagegate received a request it had forwarded itself: its upstream leads back to it; set --upstream to the agent backend'],
    ['loop_detected', 'imagegate received a request it had forwarded itself: its upstream leads back to it; set --upstream to the agent backend']
  ], 'each loop is one warning, where it was found')

  const ready = await send(a.url, { path: '/readyz' })
  t.equal(ready.status, 503, 'readiness: not ready')
  t.same(JSON.parse(ready.text), { status: 'unavailable', reason: 'upstream answered 508: --upstream leads back to imagegate (a loop)' }, 'readiness says why')
  t.notOk([...a.rawLogs, ...b.rawLogs].join('\n').includes(UPSTREAM_KEY), 'no key in any log')
})

t.test('forwarded requests carry a Via entry with a random id and no secret; a client\'s Via is kept', async t => {
  const upstream = await startMockUpstream(sse([...contentEvents(['hi']), DONE]))
  t.teardown(() => upstream.close())
  const signingKey = '9b1e4f0a6c2d8e73b5a1c9f04d6e2a87'
  const gate = await startGate(t, { upstream: upstream.url, upstreamApiKey: UPSTREAM_KEY, signingKey })
  const other = await startGate(t, { upstream: upstream.url })

  await send(gate.url, { method: 'POST', path: '/v1/chat/completions', body: '{}' })
  await send(gate.url, { path: '/v1/models', headers: { via: '1.0 corporate-proxy, 1.1 edge' } })
  await send(other.url, { path: '/v1/models' })
  await send(gate.url, { path: '/readyz' })

  const vias = upstream.requests.map((r) => r.headers.via)
  const entry = /^1\.1 imagegate-[0-9a-f]{12}$/
  t.match(vias[0], entry, 'chat: this instance\'s entry')
  t.equal(vias[1], `1.0 corporate-proxy, 1.1 edge, ${String(vias[0])}`, 'the client\'s entries come first')
  t.match(vias[2], entry, 'another instance has an entry too')
  t.not(vias[2], vias[0], 'of its own')
  t.equal(vias[3], vias[0], 'the readiness probe carries it as well')
  for (const via of vias) {
    t.notOk(String(via).includes(UPSTREAM_KEY) || String(via).includes(signingKey), 'no secret in it')
  }
  const looped = await send(gate.url, { path: '/v1/models', headers: { via: `1.1 edge, ${String(vias[0])}` } })
  t.equal(looped.status, 508, 'a request that already passed through this instance is refused')
  t.equal(upstream.requests.length, 4, 'and not forwarded')
})
