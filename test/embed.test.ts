import { Writable } from 'node:stream'
import t from 'tap'
import { createImagegate } from '../src/embed.js'
import * as api from '../src/index.js'
import { ConfigError } from '../src/errors.js'
import { IMAGE_NAME, IMAGE_PATH, cacheWithImage } from './fixtures/hermes.js'
import { send } from './fixtures/http.js'
import { DONE, contentEvents } from './fixtures/chat.js'
import { sse, startMockUpstream } from './fixtures/mock-upstream.js'

t.test('the package exports the embedding API and nothing else', async t => {
  t.same(Object.keys(api).sort(), ['ConfigError', 'ImagegateError', 'VERSION', 'createImagegate', 'resolveImagegateOptions'], 'values')
})

t.test('createImagegate starts from plain options, logs to the given stream and closes', async t => {
  const { dir, cache } = cacheWithImage(t)
  const upstream = await startMockUpstream(sse([...contentEvents([`MEDIA:${IMAGE_PATH} `]), DONE]))
  t.teardown(() => upstream.close())
  const lines: string[] = []
  const logStream = new Writable({ write (chunk: Buffer, _encoding, callback) { lines.push(chunk.toString('utf8')); callback() } })
  const gate = await createImagegate({ upstream: upstream.url, cacheDirs: [cache], port: 0, stateDir: `${dir}/state`, logLevel: 'info' }, { logStream })
  t.teardown(() => gate.close())

  t.match(gate.url, /^http:\/\/127\.0\.0\.1:\d+$/, 'listening on a free port')
  t.equal(gate.publicUrl, gate.url, 'links use it')
  t.equal(gate.address, gate.url.slice('http://'.length), 'bound there')
  const res = await send(gate.url, { method: 'POST', path: '/v1/chat/completions', body: '{}' })
  t.match(res.text, new RegExp(`\\]\\(${gate.url}/images/[\\w-]+/${IMAGE_NAME}\\?sig=[\\w-]+\\)`), 'answers are rewritten into signed links')
  t.match(lines.join(''), `imagegate listening on http://${gate.address}`, 'the start line went to the given stream')

  await gate.close()
  t.ok(await send(gate.url, { path: '/healthz' }).then(() => false, () => true), 'closed')
})

t.test('createImagegate refuses bad options before listening, with the warnings of a good start passed on', async t => {
  await t.rejects(createImagegate({ upstream: 'http://127.0.0.1:8642/v1', port: -1 }), new ConfigError('options.port: must be an integer from 0 to 65535, got -1'), 'a ConfigError naming the key')
  const lines: string[] = []
  const logStream = new Writable({ write (chunk: Buffer, _encoding, callback) { lines.push(chunk.toString('utf8')); callback() } })
  const dir = t.testdir({ home: {} })
  process.env.HERMES_HOME = `${dir}/no-hermes`
  t.teardown(() => { delete process.env.HERMES_HOME })
  const gate = await createImagegate({ upstream: 'http://127.0.0.1:9/v1', port: 0, stateDir: `${dir}/state` }, { logStream })
  t.teardown(() => gate.close())
  t.match(lines.join(''), /"level":40,.*no cache folder found in/, 'the missing cache folder is a logged warning')
})
