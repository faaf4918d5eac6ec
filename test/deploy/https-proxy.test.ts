// imagegate behind Debian's nginx over HTTPS, with the README's own nginx locations:
// the public URL has a path (`/imagegate`) that nginx forwards without stripping it. The
// answer streams through nginx event by event, the link it carries is an https link that
// loads through nginx byte for byte, and a real Chromium shows the picture on an https
// page (an http link there would be mixed content).
import fs from 'node:fs'
import https from 'node:https'
import type { IncomingMessage } from 'node:http'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import type { Test } from 'tap'
import { contentOf, dataLines, startGate } from '../fixtures/gate.js'
import type { Gate } from '../fixtures/gate.js'
import { DONE, chunk, contentEvents, startMockUpstream } from '../fixtures/mock-upstream.js'
import type { MockUpstream } from '../fixtures/mock-upstream.js'
import { findProgram, freePort, makeCertificate, startNginx } from '../fixtures/nginx.js'
import type { Certificate, Nginx } from '../fixtures/nginx.js'
import { solidPng } from '../fixtures/png.js'
import { BROWSER_TIMEOUT_MS, CHROMIUM, QUESTION, launchBrowser, renderChat } from '../fixtures/browser/scene.js'
import { startPageServer } from '../fixtures/browser/page-server.js'
import type { PageServer } from '../fixtures/browser/page-server.js'

const README = fs.readFileSync(fileURLToPath(new URL('../../README.md', import.meta.url)), 'utf8')
const WIDTH = 40
const HEIGHT = 30
const IMAGE = solidPng(WIDTH, HEIGHT)
const NAME = 'apple.png'
// The address the README's snippet lets through to the API, and the port it proxies to.
const DOC_CLIENT = '203.0.113.7'
const DOC_ORIGIN = 'http://127.0.0.1:8090'
const CHAT = JSON.stringify({ model: 'hermes-agent', stream: true, messages: [{ role: 'user', content: 'Draw me an apple' }] })

// nginx, openssl, a browser and several servers on a busy 2-core machine.
t.setTimeout(180_000)

const nginxBinary = findProgram('nginx')
const openssl = findProgram('openssl')
const missing = [nginxBinary === undefined ? 'nginx (apt-get install nginx-light)' : '', openssl === undefined ? 'openssl (apt-get install openssl)' : ''].filter((m) => m !== '')

/** The README's nginx block for the reverse proxy setup, as written there. */
function documentedLocations (): string {
  const block = /```nginx\n([\s\S]*?)```/.exec(README)?.[1]
  if (block === undefined) throw new Error('README.md has no nginx block')
  return block
}

interface Held {
  /** Lets the upstream finish the answer it holds open. */
  release: () => void
  /** True once the upstream wrote its last byte. */
  readonly finished: boolean
}

/**
 * The agent's answer: a role chunk and a first sentence, then nothing until the test
 * releases it, then the image path, the finish chunk and `[DONE]`.
 */
function holdAnswer (upstream: MockUpstream, imagePath: string): Held {
  let release = (): void => {}
  const released = new Promise<void>((resolve) => { release = resolve })
  let finished = false
  upstream.handle(async (req, res) => {
    if (req.method !== 'POST' || req.url !== '/v1/chat/completions') {
      res.writeHead(404).end()
      return
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
    res.write(chunk({ role: 'assistant' }))
    res.write(chunk({ content: 'Drawing it now. ' }))
    await released
    for (const event of contentEvents([`Here: ![apple](${imagePath})`])) res.write(event)
    res.write(chunk({}, { finish: 'stop' }))
    res.end(DONE, () => { finished = true })
  })
  return { release: () => { release() }, get finished () { return finished } }
}

/** An HTTPS request to nginx that checks its certificate (self-signed, for localhost). */
function request (nginx: Nginx, certificate: Certificate, options: { method?: string, path: string, body?: string }): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = https.request({
      host: '127.0.0.1',
      port: nginx.port,
      servername: 'localhost',
      ca: certificate.pem,
      method: options.method ?? 'GET',
      path: options.path,
      headers: { host: `localhost:${nginx.port}`, ...(options.body === undefined ? {} : { 'content-type': 'application/json', authorization: 'Bearer k' }) },
      agent: false
    }, resolve)
    req.once('error', reject)
    req.end(options.body)
  })
}

interface Reader {
  /** Status and headers, once they arrived. */
  head: () => IncomingMessage | undefined
  text: () => string
  /** Resolves true once `check` holds for the text so far, false after `ms`. */
  until: (check: (text: string) => boolean, ms: number) => Promise<boolean>
  end: Promise<string>
}

/**
 * Reads a response as it arrives. A buffering proxy may hold back even the response head,
 * so the reader takes the pending response rather than waiting for it.
 */
function reader (pending: Promise<IncomingMessage>): Reader {
  let text = ''
  let head: IncomingMessage | undefined
  const waiters = new Set<() => void>()
  const end = pending.then((res) => new Promise<string>((resolve, reject) => {
    head = res
    res.setEncoding('utf8')
    res.on('data', (piece: string) => {
      text += piece
      for (const wake of waiters) wake()
    })
    res.once('end', () => { resolve(text) })
    res.once('error', reject)
  }))
  const until = (check: (text: string) => boolean, ms: number): Promise<boolean> => new Promise((resolve) => {
    const done = (result: boolean): void => {
      clearTimeout(timer)
      waiters.delete(wake)
      resolve(result)
    }
    const wake = (): void => { if (check(text)) done(true) }
    const timer = setTimeout(() => { done(check(text)) }, ms)
    waiters.add(wake)
    wake()
  })
  return { head: () => head, text: () => text, until, end }
}

/** The answer text of the complete events in `text`. */
const answerSoFar = (text: string): string => contentOf(text.slice(0, text.lastIndexOf('\n\n') + 2))

interface Deployment {
  upstream: MockUpstream
  gate: Gate
  nginx: Nginx
  certificate: Certificate
  imagePath: string
  /** Open WebUI's stand-in, behind nginx at `/`, when asked for. */
  pages?: PageServer
}

/**
 * The agent, imagegate with the public URL nginx gives it, and nginx in front of it with
 * the README's locations (`change` edits them first); with `pages`, the chat page server
 * at nginx's `/`, where Open WebUI would be.
 */
async function deploy (t: Test, options: { change?: (locations: string) => string, pages?: boolean } = {}): Promise<Deployment> {
  const dir = t.testdir({ cache: { [NAME]: IMAGE }, nginx: {} })
  const certificate = makeCertificate(openssl as string, path.join(dir, 'nginx'))
  const upstream = await startMockUpstream()
  t.teardown(() => upstream.close())
  // The public URL names nginx's port, so that port is chosen first.
  const port = await freePort()
  const gate = await startGate(t, { upstream: upstream.url, cacheDirs: [path.join(dir, 'cache')], publicUrl: `https://localhost:${port}/imagegate` })
  // Open WebUI's server reaches imagegate directly, as in the README's setup.
  const pages = options.pages === true ? await startPageServer(t, { backends: { imagegate: `${gate.url}/v1` } }) : undefined
  const documented = (options.change ?? ((l: string) => l))(documentedLocations())
  const locations = documented.replaceAll(DOC_ORIGIN, gate.url).replaceAll(DOC_CLIENT, '127.0.0.1') +
    (pages === undefined ? '' : `location / {\n  proxy_pass ${pages.url};\n  proxy_buffering off;\n}\n`)
  const nginx = await startNginx(t, { binary: nginxBinary as string, port, dir: path.join(dir, 'nginx'), certificate, locations })
  return { upstream, gate, nginx, certificate, imagePath: path.join(dir, 'cache', NAME), ...(pages === undefined ? {} : { pages }) }
}

t.test('the README\'s nginx block keeps the path and streams the API', async (t) => {
  const locations = documentedLocations()
  t.match(locations, /location \/imagegate\/images\/ \{\s*proxy_pass http:\/\/127\.0\.0\.1:8090;\s*\}/, 'images: proxy_pass without a URI, so the path is not stripped')
  const api = /location \/imagegate\/ \{([^}]*)\}/.exec(locations)?.[1] ?? ''
  for (const directive of ['proxy_pass http://127.0.0.1:8090;', 'proxy_http_version 1.1;', 'proxy_set_header Connection "";', 'proxy_buffering off;', 'proxy_read_timeout 1h;', 'client_max_body_size 50m;', 'deny all;']) {
    t.ok(api.includes(directive), `API location: ${directive}`)
  }
})

if (missing.length > 0) {
  t.comment(`skipped: the HTTPS reverse proxy test needs ${missing.join(' and ')}`)
  t.test('HTTPS behind nginx', { skip: `needs ${missing.join(' and ')}` }, async () => {})
} else {
  t.test('through nginx the answer streams unbuffered, and its https link loads byte for byte', async (t) => {
    const { upstream, gate, nginx, certificate, imagePath } = await deploy(t)
    const held = holdAnswer(upstream, imagePath)

    const stream = reader(request(nginx, certificate, { method: 'POST', path: '/imagegate/v1/chat/completions', body: CHAT }))
    const early = await stream.until((text) => answerSoFar(text) === 'Drawing it now. ', 10_000)
    t.ok(early, 'the first sentence reached the client through nginx')
    t.notOk(held.finished, 'while the upstream still held the stream open')
    t.equal(stream.head()?.statusCode, 200, 'nginx answered 200 over TLS with the certificate made for localhost')
    t.match(stream.head()?.headers['content-type'], /^text\/event-stream/, 'an event stream')

    held.release()
    const text = await stream.end
    t.ok(held.finished, 'the upstream then finished')
    const link = gate.link(NAME)
    t.match(link, new RegExp(`^https://localhost:${nginx.port}/imagegate/images/${NAME.replace('.', '\\.')}\\?sig=[\\w-]+$`), 'the link is https, on nginx, under the public path, signed')
    t.equal(contentOf(text), `Drawing it now. Here: ![apple](${link})`, 'the answer carries that link in place of the path')
    t.equal(dataLines(text).at(-1), '[DONE]', 'and ends normally')
    t.same(upstream.requests.map((r) => `${r.method} ${r.url}`), ['POST /v1/chat/completions'], 'the agent got the API path without the public path')

    const url = new URL(link)
    const image = await request(nginx, certificate, { path: url.pathname + url.search })
    const body = Buffer.concat(await image.toArray() as Buffer[])
    t.equal(image.statusCode, 200, 'the link loads through nginx')
    t.same(body, IMAGE, 'byte for byte')
    t.equal(image.headers['content-type'], 'image/png', 'as a PNG')
    t.equal(image.headers['x-content-type-options'], 'nosniff', 'with imagegate\'s headers')

    const unsigned = await request(nginx, certificate, { path: url.pathname })
    await unsigned.toArray()
    t.equal(unsigned.statusCode, 404, 'not without its signature')
    // nginx forwards these as the client wrote them; imagegate answers them itself.
    for (const spelling of [`/imagegate/./images/${NAME}`, `/imagegate/IMAGES/${NAME}`, `/imagegate/v1/../images/${NAME}`]) {
      const odd = await request(nginx, certificate, { path: spelling + url.search })
      const answer = Buffer.concat(await odd.toArray() as Buffer[]).toString()
      t.equal(odd.statusCode, 404, `${spelling}: 404`)
      t.same(JSON.parse(answer), { error: { message: 'not found', type: 'not_found', code: 'not_found' } }, `${spelling}: imagegate's own body`)
    }
    t.equal(upstream.requests.length, 1, 'no image request reached the agent')
  })

  t.test('control: an nginx that buffers holds the first sentence back until the upstream ends', async (t) => {
    // The same locations, but buffering on and imagegate's `X-Accel-Buffering: no` ignored:
    // the check above fails here, so it does measure buffering.
    const { upstream, nginx, certificate, imagePath } = await deploy(t, {
      change: (locations) => locations.replace('proxy_buffering off;', 'proxy_buffering on; proxy_ignore_headers X-Accel-Buffering;')
    })
    const held = holdAnswer(upstream, imagePath)
    const stream = reader(request(nginx, certificate, { method: 'POST', path: '/imagegate/v1/chat/completions', body: CHAT }))
    const early = await stream.until((text) => answerSoFar(text) !== '', 1500)
    t.notOk(early, 'nothing of the answer arrived while the upstream held it')
    held.release()
    t.match(contentOf(await stream.end), /^Drawing it now\. Here: /, 'it all came at the end')
  })

  t.test('Chromium shows the picture on an https page; an http link there is blocked', { skip: fs.existsSync(CHROMIUM) ? false : `needs ${CHROMIUM} (apt-get install chromium)` }, async (t) => {
    // `imagegate.test` is not loopback, so the browser treats `http://imagegate.test:…` as
    // the insecure origin a real http address is; it still resolves to this machine.
    const browser = await launchBrowser(['--host-resolver-rules=MAP imagegate.test 127.0.0.1'])
    t.teardown(() => browser.close())
    const { upstream, gate, nginx, imagePath, pages } = await deploy(t, { pages: true })
    const link = gate.link(NAME)
    const insecure = link.replace(new URL(link).origin + '/imagegate', gate.url.replace('127.0.0.1', 'imagegate.test'))
    t.match(insecure, /^http:\/\/imagegate\.test:\d+\/images\//, 'the control: the same image by imagegate\'s own http address')
    upstream.handle(async (req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      for (const event of contentEvents([`Here: ![apple](${imagePath})\n\n![control](${insecure})`])) res.write(event)
      res.end(chunk({}, { finish: 'stop' }) + DONE)
    })
    const context = await browser.newContext({ ignoreHTTPSErrors: true })
    t.teardown(() => context.close())
    context.setDefaultTimeout(BROWSER_TIMEOUT_MS)
    const query = new URLSearchParams({ via: 'imagegate', q: QUESTION }).toString()

    const secure = await renderChat(await context.newPage(), `${nginx.origin}/?${query}`)
    t.equal(secure.error, undefined, 'the answer streamed to the https page')
    t.same(secure.images.map((image) => image.src), [link, insecure], 'both images are on the page')
    const [shown, blocked] = secure.images
    t.match(shown?.src, /^https:\/\/localhost:\d+\/imagegate\/images\//, 'the link is https, through nginx')
    t.equal(shown?.naturalWidth, WIDTH, 'the browser decoded the picture: natural width')
    t.equal(shown?.naturalHeight, HEIGHT, 'natural height')
    t.equal(blocked?.naturalWidth, 0, 'the http link on the https page did not load (mixed content)')

    const plain = await renderChat(await context.newPage(), `${pages?.url ?? ''}/?${query}`)
    t.equal(plain.images[1]?.naturalWidth, WIDTH, 'the same http link loads on an http page, so the https page is what blocked it')
    t.equal(plain.images[0]?.naturalWidth, WIDTH, 'and the https link loads there too')
  })
}
