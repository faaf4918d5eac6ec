// Graceful shutdown: a stream running when imagegate is told to stop either completes
// within the grace period or ends with an error event, never silently.
import { once } from 'node:events'
import type { Server } from 'node:http'
import type { Socket } from 'node:net'
import t from 'tap'
import type { Test } from 'tap'
import { CUT_FLUSH_MS } from '../src/shutdown.js'
import { nsPid, startCli } from './fixtures/cli-process.js'
import type { CliProcess, Exit } from './fixtures/cli-process.js'
import { contentOf, dataLines } from './fixtures/gate.js'
import { IMAGE_NAME, IMAGE_PATH } from './fixtures/hermes.js'
import { postJson, send, waitFor } from './fixtures/http.js'
import { DONE, FINISH, ROLE, contentEvents } from './fixtures/chat.js'
import { startMockUpstream } from './fixtures/mock-upstream.js'
import type { MockUpstream } from './fixtures/mock-upstream.js'
import { heldStream, startStream } from './fixtures/held-stream.js'
import type { HeldStream } from './fixtures/held-stream.js'
import { startProxy } from './fixtures/proxy.js'
import { idleConnection, rawConnection } from './fixtures/raw-socket.js'
import { SOON_MS, within } from './fixtures/within.js'
import { errorBody } from '../src/errors.js'

/**
 * What "at once" means for the CLI in a child process: shutdown never waits for the
 * keep-alive timeout (72 s) and ends well within Docker's stop timeout (10 s). On an idle
 * machine it takes 2–300 ms; on a loaded 2-core CI machine a child's exit alone has
 * taken over a second, so the bound is the property, not the idle timing.
 */
const PROMPT_MS = 5000

/** The server's side of the next connection it accepts. */
async function serverSide (server: Server): Promise<Socket> {
  const [socket] = await once(server, 'connection') as [Socket]
  return socket
}

/** Waits until the server has read what the client sent so far on `socket`. */
async function readBy (socket: Socket): Promise<void> {
  await waitFor(() => socket.bytesRead > 0, 'the server to read the partial request head')
}

const SHUTTING_DOWN = JSON.stringify(errorBody('server_shutting_down', 'answer-cut'))

t.test('a stream that finishes within the grace period completes normally', async t => {
  const { upstream, gate } = await startProxy(t, { options: { shutdownGrace: 5 } })
  const stream = heldStream(contentEvents(['Here it is: ']), [...contentEvents([`![apple](${IMAGE_PATH})`]), FINISH, DONE])
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
  t.match(gate.logs.find((line) => line.msg === 'shutting down: waiting for running requests'), { requests: 1, streams: 1, graceSeconds: 5 }, 'the wait is logged')
  t.equal(gate.logs.filter((line) => line.msg === 'shutting down: cutting streams still running').length, 0, 'nothing was cut')
})

t.test('a stream still running after the grace period ends with an error event', async t => {
  const { upstream, gate } = await startProxy(t, { options: { shutdownGrace: 0.2 } })
  // The answer stops inside a reference, which is held back until it is whole.
  const stream = heldStream(contentEvents(['Still working on ', '![apple](/root/.hermes/cache/im']), [])
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
  await within(upstreamClosed, SOON_MS, 'the upstream request was stopped (the agent run ends)')
  t.pass('the upstream request was stopped (the agent run ends)')
  t.equal(gate.streams.size, 0, 'no stream left')
  t.match(gate.logs.find((line) => line.msg === 'shutting down: cutting streams still running'), { level: 40, streams: 1 }, 'the cut is logged as a warning')
})

t.test('close with no stream running is immediate', async t => {
  const { gate } = await startProxy(t, { options: { shutdownGrace: 30 } })
  const started = Date.now()
  await gate.close()
  t.ok(Date.now() - started < 1000, 'no grace period to wait for')
  t.equal(gate.logs.filter((line) => typeof line.msg === 'string' && line.msg.startsWith('shutting down')).length, 0, 'nothing to log')
})

// Keep-alive clients: Open WebUI and Node's fetch keep their connections open after an
// answer, so a server that waits for its connections to close waits for their timeout.

const SHUTTING_DOWN_REFUSED = JSON.stringify(errorBody('server_shutting_down', 'not-forwarded'))

interface FetchReader { text: () => string, ended: Promise<number> }

/** A streaming chat request through Node's fetch, which keeps its connection alive. */
async function fetchStream (url: string): Promise<FetchReader> {
  const res = await fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"stream": true}' })
  const body = res.body as ReadableStream<Uint8Array>
  const decoder = new TextDecoder()
  let text = ''
  const ended = (async () => {
    for await (const piece of body) text += decoder.decode(piece, { stream: true })
    return Date.now()
  })()
  // A process that exits at once cuts the body; tests that expect it read `ended` late.
  ended.catch(() => {})
  return { text: () => text, ended }
}

/**
 * The CLI with a shutdown grace of `grace` seconds in front of an upstream that streams
 * "Working" and holds the answer there until released (then sends `tail` and ends).
 */
async function cliWithHeldStream (t: Test, grace: string, options: { tail?: string[], pid1?: boolean } = {}): Promise<{ upstream: MockUpstream, stream: HeldStream, cli: CliProcess }> {
  const dir = t.testdir({ images: {}, state: {} })
  const upstream = await startMockUpstream()
  t.teardown(() => upstream.close())
  const stream = heldStream([ROLE, ...contentEvents(['Working'])], options.tail ?? [])
  upstream.handle(stream.handler)
  t.teardown(stream.release)
  const args = ['--port', '0', '--cache-dir', `${dir}/images`, '--state-dir', `${dir}/state`, '--upstream', upstream.url, '--shutdown-grace', grace, '--log-level', 'info']
  const cli = await startCli(t, args, { pid1: options.pid1 ?? false })
  return { upstream, stream, cli }
}

t.test('the CLI with keep-alive clients: idle connections close at once, the process exits as soon as the last stream ends', async t => {
  const { stream, cli } = await cliWithHeldStream(t, '20', { tail: [...contentEvents([' and done.']), FINISH, DONE] })

  const idle = await idleConnection(t, cli.url)
  t.match(idle.received(), /^HTTP\/1\.1 200 .*\r\nconnection: keep-alive\r\n/is, 'the idle connection was kept alive')
  const reader = await fetchStream(cli.url)
  await waitFor(() => reader.text().includes('Working'), 'the first event')

  const signalled = Date.now()
  cli.kill('SIGTERM')
  const idleClosed = await idle.closed
  t.ok(idleClosed - signalled < PROMPT_MS, `the idle keep-alive connection is closed at once (${idleClosed - signalled} ms)`)
  const refused = await send(cli.url, { path: '/healthz' }).then(() => false, () => true)
  t.ok(refused, 'no new connection is accepted')
  t.equal(reader.text().includes('done'), false, 'the stream is still running')

  stream.release()
  const ended = await reader.ended
  const exit = await cli.exited
  t.same([exit.code, exit.signal], [0, null], 'exit 0')
  t.ok(exit.at - ended < PROMPT_MS, `the process exits as soon as the last stream ends (${exit.at - ended} ms)`)
  t.equal(contentOf(reader.text()), 'Working and done.', 'the whole answer')
  t.equal(dataLines(reader.text()).at(-1), '[DONE]', 'ending with [DONE]')
  t.equal(cli.stderr(), '', 'nothing on stderr')
  t.match(cli.logs().find((line) => line.msg === 'request' && line.url === '/v1/chat/completions'), { level: 30, statusCode: 200, stream: 'done' }, 'the finished stream is logged as done')
})

t.test('the CLI with a keep-alive client: a stream cut at the grace gets the error event, and the process exits 0 right after', async t => {
  const { upstream, cli } = await cliWithHeldStream(t, '0.3')

  const reader = await fetchStream(cli.url)
  await waitFor(() => reader.text().includes('Working'), 'the first event')
  const upstreamClosed = upstream.closed()
  const signalled = Date.now()
  cli.kill('SIGTERM')
  const ended = await reader.ended
  const exit = await cli.exited

  t.same([exit.code, exit.signal], [0, null], 'exit 0, not killed')
  t.ok(ended - signalled >= 250, `the stream had its grace (${ended - signalled} ms)`)
  t.ok(exit.at - ended < PROMPT_MS, `the process exits right after the cut (${exit.at - ended} ms)`)
  const events = dataLines(reader.text())
  t.equal(events.at(-1), SHUTTING_DOWN, 'the client\'s last event is the whole shutdown error')
  t.notOk(events.includes('[DONE]'), 'no [DONE]: the client can tell the answer was cut')
  await within(upstreamClosed, SOON_MS, 'the upstream request was stopped (the agent run ends)')
  t.pass('the upstream request was stopped (the agent run ends)')
  t.equal(cli.stderr(), '', 'nothing on stderr')
  const logs = cli.logs()
  t.match(logs.find((line) => line.msg === 'shutting down: waiting for running requests'), { requests: 1, streams: 1, graceSeconds: 0.3 }, 'the wait is logged')
  t.match(logs.find((line) => line.msg === 'shutting down: cutting streams still running'), { level: 40, streams: 1 }, 'the cut is logged as a warning')
  const line = logs.find((line) => line.msg === 'request' && line.url === '/v1/chat/completions')
  t.match(line, { level: 40, method: 'POST', statusCode: 200, stream: 'stopped' }, 'the cut stream\'s request line is a warning that says how it ended')
})

/**
 * Starts a stream through the CLI, sends `signal`, and sends it again once the drain has
 * started; resolves with the stream, when the second signal went and how the CLI exited.
 */
async function signalTwiceWhileStreaming (cli: CliProcess, signal: NodeJS.Signals): Promise<{ reader: FetchReader, again: number, exit: Exit }> {
  const reader = await fetchStream(cli.url)
  await waitFor(() => reader.text().includes('Working'), 'the first event')
  cli.kill(signal)
  await waitFor(() => cli.stdout().includes('shutting down: waiting for running requests'), `the first ${signal} to start the drain`)
  const again = Date.now()
  cli.kill(signal)
  return { reader, again, exit: await cli.exited }
}

for (const [signal, code] of [['SIGTERM', 143], ['SIGINT', 130]] as const) {
  t.test(`a second ${signal} while streams drain ends the CLI at once with ${code}`, async t => {
    const { cli } = await cliWithHeldStream(t, '30')

    const { reader, again, exit } = await signalTwiceWhileStreaming(cli, signal)
    t.same([exit.code, exit.signal], [code, null], `exit ${code}, through imagegate's own handler`)
    t.ok(exit.at - again < PROMPT_MS, `at once (${exit.at - again} ms)`)
    t.equal(cli.stderr(), `imagegate: ${signal} again: exiting without waiting for running streams\n`, 'one line on stderr says why')
    await t.rejects(reader.ended, { message: 'terminated' }, 'the client sees its stream cut')
  })
}

t.test('as PID 1 of its namespace (a container without init), the first SIGTERM drains and a second one exits at once', async t => {
  const { cli } = await cliWithHeldStream(t, '30', { pid1: true })
  t.equal(nsPid(cli.pid), 1, 'imagegate is PID 1 in its namespace')

  const { reader, again, exit } = await signalTwiceWhileStreaming(cli, 'SIGTERM')
  t.same([exit.code, exit.signal], [143, null], 'exit 143 (unshare passes on the code of its child)')
  t.ok(exit.at - again < PROMPT_MS, `at once (${exit.at - again} ms)`)
  await t.rejects(reader.ended, { message: 'terminated' }, 'the client sees its stream cut')
})

t.test('a request that arrives on an open connection during shutdown gets a 503 with the OpenAI-shaped error, and the connection closes', async t => {
  const { upstream, gate } = await startProxy(t, { options: { shutdownGrace: 20 } })
  const accepted = serverSide(gate.app.server)
  const { socket, received, closed } = await rawConnection(t, gate.url)
  // The head is not complete yet, so the connection is busy, not idle, when shutdown starts.
  socket.write('POST /v1/chat/completions HTTP/1.1\r\nHost: imagegate\r\nContent-Type: application/json\r\nContent-Length: 16\r\n')
  await readBy(await accepted)
  const closing = gate.close()
  await waitFor(() => !gate.app.server.listening, 'the server to stop listening')
  socket.write('\r\n{"stream": true}')
  await closed
  await closing

  const [head = '', body] = received().split('\r\n\r\n')
  t.match(head, /^HTTP\/1\.1 503 Service Unavailable\r\n/, '503')
  t.match(head, /\r\nconnection: close(\r\n|$)/i, 'Connection: close')
  t.match(head, /\r\ncontent-type: application\/json; charset=utf-8(\r\n|$)/i, 'JSON')
  t.equal(body, SHUTTING_DOWN_REFUSED, 'the whole error body')
  t.equal(upstream.requests.length, 0, 'nothing went upstream, so sending it again is safe')
  t.match(gate.logs.find((line) => line.msg === 'request'), { level: 30, method: 'POST', statusCode: 503 }, 'the request line')
})

t.test('a connection whose request head never ends is closed at the end of the grace', async t => {
  const { upstream, gate } = await startProxy(t, { options: { shutdownGrace: 0.2 } })
  const accepted = serverSide(gate.app.server)
  const { socket, closed } = await rawConnection(t, gate.url)
  socket.write('GET /v1/models HTTP/1.1\r\nHost: imagegate\r\n')
  await readBy(await accepted)
  const started = Date.now()
  await gate.close()
  const closedAt = await closed
  t.ok(closedAt - started >= 180, `the connection had the grace (${closedAt - started} ms)`)
  t.ok(closedAt - started < 180 + CUT_FLUSH_MS + PROMPT_MS, `and was then closed (${closedAt - started} ms)`)
  t.equal(upstream.requests.length, 0, 'nothing went upstream')
})

t.test('a non-streaming request still waiting for the upstream at the grace gets a 503 server_shutting_down', async t => {
  const { upstream, gate } = await startProxy(t, { options: { shutdownGrace: 0.2 } })
  // The agent is still thinking: no headers.
  upstream.handle(() => {})
  const response = postJson(gate.url, '/v1/chat/completions', { stream: false })
  await waitFor(() => upstream.requests.length === 1, 'the upstream to get the request')
  const closed = upstream.closed()
  await gate.close()
  const res = await response
  t.equal(res.status, 503, '503')
  t.equal(res.text, SHUTTING_DOWN, 'the whole error body')
  await within(closed, SOON_MS, 'the upstream request was stopped')
  t.pass('the upstream request was stopped')
})
