// Graceful shutdown: a stream running when imagegate is told to stop either completes
// within the grace period or ends with an error event, never silently.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import type { IncomingMessage } from 'node:http'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { startGate, contentOf, dataLines } from './fixtures/gate.js'
import { IMAGE_NAME, IMAGE_PATH, cacheWithImage } from './fixtures/hermes.js'
import { open, responseOf, send, waitFor } from './fixtures/http.js'
import { DONE, chunk, contentEvents, startMockUpstream } from './fixtures/mock-upstream.js'
import type { MockHandler } from './fixtures/mock-upstream.js'

const ROOT = fileURLToPath(new URL('../', import.meta.url))
const CLI = fileURLToPath(new URL('../src/cli.ts', import.meta.url))

const SHUTTING_DOWN = '{"error":{"message":"imagegate is shutting down; the answer was cut","type":"server_error","code":"server_shutting_down"}}'

/** A stream client: what arrived so far, and a promise for the end of the response. */
interface Reader { text: () => string, ended: Promise<void> }

function read (res: IncomingMessage): Reader {
  let text = ''
  res.setEncoding('utf8').on('data', (piece: string) => { text += piece })
  return { text: () => text, ended: once(res, 'end').then(() => {}) }
}

/** An upstream stream that writes `head`, then waits for `release()` to write `tail` and end. */
function held (head: string[], tail: string[]): { handler: MockHandler, release: () => void } {
  let release = (): void => {}
  const released = new Promise<void>((resolve) => { release = resolve })
  return {
    release,
    handler: async (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      for (const piece of head) res.write(piece)
      await released
      if (res.destroyed) return
      for (const piece of tail) res.write(piece)
      res.end()
    }
  }
}

async function startStream (url: string): Promise<Reader> {
  const req = open(url, { method: 'POST', path: '/v1/chat/completions', headers: { 'content-type': 'application/json' } })
  const response = responseOf(req)
  req.end('{"stream": true}')
  return read(await response)
}

t.test('a stream that finishes within the grace period completes normally', async t => {
  const { cache } = cacheWithImage(t)
  const upstream = await startMockUpstream()
  t.teardown(() => upstream.close())
  const gate = await startGate(t, { upstream: upstream.url, cacheDirs: [cache], shutdownGrace: 5 })
  const stream = held(contentEvents(['Here it is: ']), [...contentEvents([`![apple](${IMAGE_PATH})`]), chunk({}, { finish: 'stop' }), DONE])
  upstream.handle(stream.handler)

  const reader = await startStream(gate.url)
  await waitFor(() => reader.text().includes('Here it is'), 'the first event')
  let closed = false
  const closing = gate.close().then(() => { closed = true })
  await waitFor(() => !gate.app.server.listening, 'the server to stop listening')
  const refused = await send(gate.url, { path: '/healthz' }).then(() => false, () => true)
  t.ok(refused, 'no new connection is accepted while the stream drains')
  t.notOk(closed, 'close waits for the running stream')

  stream.release()
  await reader.ended
  await closing
  const events = dataLines(reader.text())
  t.equal(events.at(-1), '[DONE]', 'the stream ends with [DONE]')
  t.notOk(reader.text().includes('server_shutting_down'), 'no error event')
  t.equal(contentOf(reader.text()), `Here it is: ![apple](${gate.link(IMAGE_NAME)})`, 'the whole answer, rewritten')
  t.match(gate.logs.find((line) => line.msg === 'shutting down: waiting for running streams'), { streams: 1, graceSeconds: 5 }, 'the wait is logged')
  t.equal(gate.logs.filter((line) => line.msg === 'shutting down: cutting streams still running').length, 0, 'nothing was cut')
})

t.test('a stream still running after the grace period ends with an error event', async t => {
  const { cache } = cacheWithImage(t)
  const upstream = await startMockUpstream()
  t.teardown(() => upstream.close())
  const gate = await startGate(t, { upstream: upstream.url, cacheDirs: [cache], shutdownGrace: 0.2 })
  // The answer stops inside a reference, which is held back until it is whole.
  const stream = held(contentEvents(['Still working on ', '![apple](/root/.hermes/cache/im']), [])
  upstream.handle(stream.handler)
  t.teardown(stream.release)

  const reader = await startStream(gate.url)
  await waitFor(() => reader.text().includes('Still working'), 'the first event')
  const upstreamClosed = upstream.closed()
  const started = Date.now()
  await gate.close()
  const waited = Date.now() - started
  await reader.ended

  t.ok(waited >= 180, `close waited for the grace period (${waited} ms)`)
  t.ok(waited < 2000, `and not much longer (${waited} ms)`)
  const events = dataLines(reader.text())
  t.equal(events.at(-1), SHUTTING_DOWN, 'the last event is the whole shutdown error')
  t.notOk(events.includes('[DONE]'), 'no [DONE]: the client can tell the answer was cut')
  t.equal(contentOf(events.slice(0, -1).map((data) => `data: ${data}\n\n`).join('')), 'Still working on ![apple](/root/.hermes/cache/im', 'held text is sent before the error')
  await upstreamClosed
  t.pass('the upstream request was stopped (the agent run ends)')
  t.equal(gate.streams.size, 0, 'no stream left')
  t.match(gate.logs.find((line) => line.msg === 'shutting down: cutting streams still running'), { level: 40, streams: 1 }, 'the cut is logged as a warning')
})

t.test('close with no stream running is immediate', async t => {
  const upstream = await startMockUpstream()
  t.teardown(() => upstream.close())
  const gate = await startGate(t, { upstream: upstream.url, shutdownGrace: 30 })
  const started = Date.now()
  await gate.close()
  t.ok(Date.now() - started < 1000, 'no grace period to wait for')
  t.equal(gate.logs.filter((line) => typeof line.msg === 'string' && line.msg.startsWith('shutting down')).length, 0, 'nothing to log')
})

// The test's environment without IMAGEGATE_* variables.
const cleanEnv = (): NodeJS.ProcessEnv =>
  Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('IMAGEGATE_')))

t.test('the CLI on SIGTERM mid-stream: the client gets the error event, the process exits 0', async t => {
  const dir = t.testdir({ images: {}, state: {} })
  const upstream = await startMockUpstream()
  t.teardown(() => upstream.close())
  const stream = held([chunk({ role: 'assistant' }), ...contentEvents(['Working'])], [])
  upstream.handle(stream.handler)
  t.teardown(stream.release)

  const args = ['--port', '0', '--cache-dir', `${dir}/images`, '--state-dir', `${dir}/state`, '--upstream', upstream.url, '--shutdown-grace', '0.2', '--log-level', 'info']
  const child = spawn(process.execPath, [...process.execArgv, CLI, ...args], { cwd: ROOT, env: cleanEnv() })
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  let stdout = ''
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (text: string) => { stderr += text })
  const exited = once(child, 'close') as Promise<[number | null, NodeJS.Signals | null]>
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.setEncoding('utf8').on('data', (text: string) => {
      stdout += text
      const found = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(stdout)
      if (found !== null) resolve(found[1] as string)
    })
    exited.then(() => reject(new Error(`exited before listening: ${stderr}`)), reject)
  })

  const reader = await startStream(url)
  await waitFor(() => reader.text().includes('Working'), 'the first event')
  child.kill('SIGTERM')
  const [code, signal] = await exited
  await reader.ended

  t.equal(signal, null, 'not killed by the signal')
  t.equal(code, 0, 'exit 0')
  t.equal(stderr, '', 'nothing on stderr')
  const events = dataLines(reader.text())
  t.equal(events.at(-1), SHUTTING_DOWN, 'the client\'s last event is the shutdown error')
  t.notOk(events.includes('[DONE]'), 'no [DONE]')
  t.match(stdout, /"msg":"shutting down: waiting for running streams"/, 'the wait is logged')
})
