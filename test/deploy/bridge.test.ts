// The README's "Open WebUI in Docker, the agent and imagegate on the host", for real:
// imagegate (the CLI, with the README's flags) bound to a bridge address on the host, the
// agent on 127.0.0.1 only, and a client in its own network namespace, joined to the host
// by a veth pair, standing in for Open WebUI's container. The namespace uses the host
// end's address directly where the container would say host.docker.internal: that is
// what `--add-host host.docker.internal:host-gateway` writes into its /etc/hosts.
import { readFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { startCli } from '../fixtures/cli-process.js'
import { contentOf, dataLines } from '../fixtures/gate.js'
import { IMAGE_NAME, PNG } from '../fixtures/hermes.js'
import { send } from '../fixtures/http.js'
import { freePort, tryConnect } from '../fixtures/raw-socket.js'
import { sse, startMockUpstream } from '../fixtures/mock-upstream.js'
import { createBridge, netnsUnavailable, nodeIn } from '../fixtures/netns.js'

const FIXTURES = new URL('../fixtures/hermes/', import.meta.url)
const README = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')
/** The README's section for this setup, up to the next heading. */
const SECTION = /### Open WebUI in Docker, the agent and imagegate on the host\n([\s\S]*?)\n###/.exec(README)?.[1] ?? ''
/** The section's addresses, replaced in what it says by this test's own. */
const DOCKER0 = '172.17.0.1'
const README_PORT = '8090'
/** The recorded answer's image, as hermes (HERMES_HOME=/root/.hermes) wrote it. */
const RECORDED_PATH = `/root/.hermes/cache/images/${IMAGE_NAME}`

/** Open WebUI's side: one streamed chat completion to its connection URL, answered as JSON on stdout. */
const CHAT = `(async () => {
  const res = await fetch(process.argv[1] + '/chat/completions', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'hermes-agent', stream: true, messages: [{ role: 'user', content: 'draw an apple' }] })
  })
  process.stdout.write(JSON.stringify({ status: res.status, type: res.headers.get('content-type'), body: await res.text() }))
})()`

/** The browser's side: one GET, the body as base64. */
const GET = `(async () => {
  const res = await fetch(process.argv[1])
  const body = Buffer.from(await res.arrayBuffer())
  process.stdout.write(JSON.stringify({ status: res.status, type: res.headers.get('content-type'), body: body.toString('base64') }))
})()`

/** A bare TCP connect: "connected" or the error's code. */
const CONNECT = `const socket = require('node:net').connect(Number(process.argv[2]), process.argv[1])
socket.setTimeout(3000, () => { process.stdout.write('timeout'); socket.destroy() })
socket.on('connect', () => { process.stdout.write('connected'); socket.destroy() })
socket.on('error', (err) => { process.stdout.write(err.code) })`

/** A `| setting | value |` row of the section: the value, without backticks. */
function setting (name: string): string {
  const row = SECTION.split('\n').find((line) => line.startsWith(`| ${name} |`))
  if (row === undefined) throw new Error(`no "${name}" row in the README's section`)
  return /`([^`]+)`/.exec(row.slice(name.length + 3))?.[1] ?? ''
}

async function inNs (ns: string, script: string, args: string[]): Promise<string> {
  const run = await nodeIn(ns, script, args)
  if (run.code !== 0) throw new Error(`node in ${ns} exited with ${String(run.code)}: ${run.stderr}`)
  return run.stdout
}

const unavailable = netnsUnavailable()

t.test('Open WebUI in a container reaches imagegate on the bridge address; the agent stays on loopback', { skip: unavailable ?? false, timeout: 30_000 }, async t => {
  const bridge = createBridge(t)
  const { hostAddress: address } = bridge
  const dir = t.testdir({ '.hermes': { cache: { images: { [IMAGE_NAME]: PNG } } }, state: {} })
  const image = path.join(dir, '.hermes', 'cache', 'images', IMAGE_NAME)
  // The recorded stream splits the path into "/root", "/.her", "mes/cache" …: only its
  // first piece moves to this test's HERMES_HOME, so the split stays as recorded.
  const recorded = readFileSync(new URL('hermes-chat-stream.sse', FIXTURES), 'utf8')
  const answer = recorded.replace('"content": "/root"', `"content": ${JSON.stringify(dir)}`)
  t.not(answer, recorded, 'the recorded answer now points into this test\'s HERMES_HOME')
  const expected = readFileSync(new URL('hermes-chat-stream.expected.txt', FIXTURES), 'utf8')

  const agent = await startMockUpstream(sse([answer]))
  t.teardown(() => agent.close())
  const agentPort = Number(new URL(agent.url).port)
  const port = String(await freePort(address))
  const publicUrl = `http://${address}:${port}`
  // The README's command and table as written, with this bridge's address for docker0's,
  // a free port for 8090 and the mock agent's port for the agent's; the cache folder is
  // found in HERMES_HOME, as the command gives none.
  const ours = (text: string): string => text.replaceAll(DOCKER0, address).replaceAll(`:${README_PORT}`, `:${port}`)
  const command = /^npm start -- (.*)$/m.exec(SECTION)?.[1]
  t.ok(command, 'the section has an npm start command')
  const args = (command ?? '').split(/\s+/).map(ours)
  t.same(args, ['--host', address, '--public-url', publicUrl], 'it names the bridge address and the public URL on it')
  const upstream = new URL(setting('imagegate `--upstream`'))
  t.equal(upstream.hostname, '127.0.0.1', 'the README keeps the agent on loopback')
  upstream.port = String(agentPort)
  const gate = await startCli(t, [...args, '--port', port, '--upstream', upstream.href], {
    env: { HERMES_HOME: path.join(dir, '.hermes'), XDG_STATE_HOME: path.join(dir, 'state') }
  })
  t.equal(gate.url, publicUrl, 'imagegate says it listens on the bridge address')

  // What Open WebUI's container is told to use, with host.docker.internal as the
  // host-gateway entry of its /etc/hosts resolves it.
  const connection = ours(setting('Open WebUI connection URL')).replace('host.docker.internal', address)
  t.equal(connection, `${publicUrl}/v1`, 'the connection URL reaches imagegate on the bridge address')
  const chat = JSON.parse(await inNs(bridge.ns, CHAT, [connection])) as { status: number, type: string, body: string }
  t.equal(chat.status, 200, 'the chat completion succeeds from the namespace')
  t.match(chat.type, /^text\/event-stream/, 'as an event stream')
  t.equal(dataLines(chat.body).at(-1), '[DONE]', 'the stream ends with [DONE]')
  const content = contentOf(chat.body)
  const link = /\]\((http:[^)]+)\)/.exec(content)?.[1] ?? ''
  t.ok(link.startsWith(`${publicUrl}/images/`), `the image link is on the bridge address: ${link}`)
  t.equal(content, expected.replace(RECORDED_PATH, link), 'the whole answer, with only the path replaced by the link')
  t.notOk(content.includes(dir), 'no local path is left in the answer')
  t.equal(agent.requests.length, 1, 'the agent got the one request')

  const inContainer = JSON.parse(await inNs(bridge.ns, GET, [link])) as { status: number, type: string, body: string }
  t.equal(inContainer.status, 200, 'the link works from the namespace')
  t.equal(inContainer.type, 'image/png', 'as a PNG')
  t.same(Buffer.from(inContainer.body, 'base64'), readFileSync(image), 'byte for byte the file in the cache folder')
  const linkUrl = new URL(link)
  const inBrowser = await send(publicUrl, { path: linkUrl.pathname + linkUrl.search })
  t.equal(inBrowser.status, 200, 'the host\'s browser reaches the same link')
  t.same(inBrowser.body, PNG, 'and gets the same bytes')

  t.equal(await inNs(bridge.ns, CONNECT, [address, port]), 'connected', 'control: a bare connect reaches imagegate on the bridge address')
  t.equal(await inNs(bridge.ns, CONNECT, [address, String(agentPort)]), 'ECONNREFUSED', 'the agent, on 127.0.0.1, is not reachable from the namespace')
  t.equal(await tryConnect('127.0.0.1', agentPort), 'connected', 'control: the agent does listen on the host\'s loopback')
  t.equal(await tryConnect('127.0.0.1', Number(port)), 'ECONNREFUSED', 'imagegate does not listen on loopback')
  t.equal(agent.requests.length, 1, 'nothing else reached the agent')
})

t.test('imagegate does not start when the bridge address is not on the host', { skip: unavailable ?? false, timeout: 30_000 }, async t => {
  // The peer address lives only in the namespace, as 172.17.0.1 is nowhere before Docker
  // has created docker0.
  const bridge = createBridge(t)
  const agent = await startMockUpstream()
  t.teardown(() => agent.close())
  const dir = t.testdir({ '.hermes': { cache: { images: {} } }, state: {} })
  const started = startCli(t, ['--host', bridge.peerAddress, '--port', '8090', '--public-url', `http://${bridge.peerAddress}:8090`, '--upstream', agent.url], {
    env: { HERMES_HOME: path.join(dir, '.hermes'), XDG_STATE_HOME: path.join(dir, 'state') }
  })
  const err = await started.then(() => undefined, (reason: Error) => reason)
  t.match(err?.message, /EADDRNOTAVAIL/, 'it exits before listening, naming the error')
  t.match(err?.message, bridge.peerAddress, 'and the address it could not bind')
})
