// imagegate behind Debian's nginx and Caddy over HTTPS, each with the README's own
// snippet: the public URL has a path (`/imagegate`) that the proxy forwards without
// stripping it. The answer streams through the proxy event by event, the link it carries
// is an https link that loads through the proxy byte for byte, and a real Chromium shows
// the picture on an https page (an http link there would be mixed content).
import fs from 'node:fs'
import https from 'node:https'
import type { IncomingMessage } from 'node:http'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import type { Test } from 'tap'
import { contentOf, dataLines, startGate } from '../fixtures/gate.js'
import type { Gate } from '../fixtures/gate.js'
import { CHAT, DONE, FINISH, ROLE, chunk, contentEvents } from '../fixtures/chat.js'
import { startMockUpstream } from '../fixtures/mock-upstream.js'
import type { MockUpstream } from '../fixtures/mock-upstream.js'
import { findProgram, makeCertificate, startCaddy, startNginx } from '../fixtures/reverse-proxy.js'
import { freePort } from '../fixtures/raw-socket.js'
import type { Certificate, Proxy } from '../fixtures/reverse-proxy.js'
import { solidPng } from '../fixtures/png.js'
import { BROWSER_TIMEOUT_MS, CHROMIUM, QUESTION, launchBrowser, renderChat } from '../fixtures/browser/scene.js'
import { startPageServer } from '../fixtures/browser/page-server.js'
import type { PageServer } from '../fixtures/browser/page-server.js'
import { errorBody } from '../../src/errors.js'

const README = fs.readFileSync(fileURLToPath(new URL('../../README.md', import.meta.url)), 'utf8')
const WIDTH = 40
const HEIGHT = 30
const IMAGE = solidPng(WIDTH, HEIGHT)
const NAME = 'apple.png'
// In the README's snippets: the one address let through to the API, imagegate's address,
// the site and Open WebUI's address (Caddy).
const DOC_CLIENT = '203.0.113.7'
const DOC_ORIGIN = 'http://127.0.0.1:8090'
const DOC_GATE = '127.0.0.1:8090'
const DOC_SITE = 'chat.example.org'
const DOC_WEBUI = 'reverse_proxy 127.0.0.1:3000'
const NOT_FOUND = errorBody('not_found')
// What stands in for Open WebUI at the proxy's `/` when no page server is asked for.
const WEBUI_TEXT = 'open-webui'

// Proxies, openssl, a browser and several servers on a busy 2-core machine.
t.setTimeout(180_000)

const openssl = findProgram('openssl')
const nginxBinary = findProgram('nginx')
const caddyBinary = findProgram('caddy')

/** Why a proxy's tests cannot run here, or undefined when they can. */
function missing (proxy: 'nginx' | 'caddy'): string | undefined {
  const needs = [
    openssl === undefined ? 'openssl (apt-get install openssl)' : '',
    proxy === 'nginx' && nginxBinary === undefined ? 'nginx (apt-get install nginx-light)' : '',
    proxy === 'caddy' && caddyBinary === undefined ? 'caddy (apt-get install caddy)' : ''
  ].filter((need) => need !== '')
  return needs.length === 0 ? undefined : `needs ${needs.join(' and ')}`
}

/** The README's `lang` block for the reverse proxy setup, as written there. */
function documented (lang: 'nginx' | 'caddy'): string {
  const block = new RegExp('```' + lang + '\\n([\\s\\S]*?)```').exec(README)?.[1]
  if (block === undefined) throw new Error(`README.md has no ${lang} block`)
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
    res.write(ROLE)
    res.write(chunk({ content: 'Drawing it now. ' }))
    await released
    for (const event of contentEvents([`Here: ![apple](${imagePath})`])) res.write(event)
    res.write(FINISH)
    res.end(DONE, () => { finished = true })
  })
  return { release: () => { release() }, get finished () { return finished } }
}

/** An HTTPS request to the proxy that checks its certificate (self-signed, for localhost). */
function request (proxy: Proxy, certificate: Certificate, options: { method?: string, path: string, body?: string }): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = https.request({
      host: '127.0.0.1',
      port: proxy.port,
      servername: 'localhost',
      ca: certificate.pem,
      method: options.method ?? 'GET',
      path: options.path,
      headers: { host: `localhost:${proxy.port}`, ...(options.body === undefined ? {} : { 'content-type': 'application/json', authorization: 'Bearer k' }) },
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

/** A whole response body. */
async function bodyOf (pending: Promise<IncomingMessage>): Promise<{ status: number | undefined, headers: IncomingMessage['headers'], body: Buffer }> {
  const res = await pending
  return { status: res.statusCode, headers: res.headers, body: Buffer.concat(await res.toArray() as Buffer[]) }
}

/** The answer text of the complete events in `text`. */
const answerSoFar = (text: string): string => contentOf(text.slice(0, text.lastIndexOf('\n\n') + 2))

interface Deployment {
  upstream: MockUpstream
  gate: Gate
  proxy: Proxy
  certificate: Certificate
  imagePath: string
  /** Open WebUI's stand-in, behind the proxy at `/`, when asked for. */
  pages?: PageServer
}

interface DeployOptions {
  proxy: 'nginx' | 'caddy'
  /** Edits the README's snippet before use. */
  change?: (snippet: string) => string
  /** Starts the chat page server behind the proxy's `/`, where Open WebUI would be. */
  pages?: boolean
  /** The address the snippet lets through to the API: this machine unless told. */
  client?: string
}

/**
 * The agent, imagegate with the public URL the proxy gives it, and the proxy in front of
 * it with the README's snippet, pointed at imagegate's real port.
 */
async function deploy (t: Test, options: DeployOptions): Promise<Deployment> {
  const dir = t.testdir({ cache: { [NAME]: IMAGE }, proxy: {} })
  const proxyDir = path.join(dir, 'proxy')
  const certificate = makeCertificate(openssl as string, proxyDir)
  const upstream = await startMockUpstream()
  t.teardown(() => upstream.close())
  // The public URL names the proxy's port, so that port is chosen first.
  const port = await freePort()
  const gate = await startGate(t, { upstream: upstream.url, cacheDirs: [path.join(dir, 'cache')], publicUrl: `https://localhost:${port}/imagegate` })
  // Open WebUI's server reaches imagegate directly, as in the README's setup.
  const pages = options.pages === true ? await startPageServer(t, { backends: { imagegate: `${gate.url}/v1` } }) : undefined
  const snippet = (options.change ?? ((text: string) => text))(documented(options.proxy)).replaceAll(DOC_CLIENT, options.client ?? '127.0.0.1')
  const gateAddress = new URL(gate.url).host
  let proxy: Proxy
  if (options.proxy === 'nginx') {
    const locations = snippet.replaceAll(DOC_ORIGIN, gate.url) +
      (pages === undefined ? `location / {\n  return 200 '${WEBUI_TEXT}';\n}\n` : `location / {\n  proxy_pass ${pages.url};\n  proxy_buffering off;\n}\n`)
    proxy = await startNginx(t, { binary: nginxBinary as string, port, dir: proxyDir, certificate, locations })
  } else {
    // The site block's inside: the proxy's own address and certificate replace the site's.
    const site = new RegExp(`^${DOC_SITE} \\{\\n([\\s\\S]*)\\}\\s*$`).exec(snippet)?.[1]
    if (site === undefined) throw new Error(`the README's caddy block is not one site block for ${DOC_SITE}`)
    const webui = pages === undefined ? `respond "${WEBUI_TEXT}" 200` : `reverse_proxy ${new URL(pages.url).host}`
    const directives = site.replaceAll(DOC_GATE, gateAddress).replace(DOC_WEBUI, webui)
    proxy = await startCaddy(t, { binary: caddyBinary as string, port, dir: proxyDir, certificate, directives })
  }
  return { upstream, gate, proxy, certificate, imagePath: path.join(dir, 'cache', NAME), ...(pages === undefined ? {} : { pages }) }
}

/**
 * The answer's first sentence reaches the client through the proxy while the agent still
 * holds the stream open; the rest follows once released, with the path rewritten into an
 * https link under the public path, and that link loads through the proxy byte for byte.
 */
async function streamsAndLoads (t: Test, { upstream, gate, proxy, certificate, imagePath }: Deployment): Promise<void> {
  const held = holdAnswer(upstream, imagePath)
  const stream = reader(request(proxy, certificate, { method: 'POST', path: '/imagegate/v1/chat/completions', body: CHAT }))
  const early = await stream.until((text) => answerSoFar(text) === 'Drawing it now. ', 10_000)
  t.ok(early, 'the first sentence reached the client through the proxy')
  t.notOk(held.finished, 'while the upstream still held the stream open')
  t.equal(stream.head()?.statusCode, 200, 'answered 200 over TLS with the certificate made for localhost')
  t.match(stream.head()?.headers['content-type'], /^text\/event-stream/, 'an event stream')

  held.release()
  const text = await stream.end
  t.ok(held.finished, 'the upstream then finished')
  const link = gate.link(NAME)
  t.match(link, new RegExp(`^https://localhost:${proxy.port}/imagegate/images/[\\w-]+/${NAME.replace('.', '\\.')}\\?sig=[\\w-]+$`), 'the link is https, on the proxy, under the public path, signed')
  t.equal(contentOf(text), `Drawing it now. Here: ![apple](${link})`, 'the answer carries that link in place of the path')
  t.equal(dataLines(text).at(-1), '[DONE]', 'and ends normally')
  t.same(upstream.requests.map((r) => `${r.method} ${r.url}`), ['POST /v1/chat/completions'], 'the agent got the API path without the public path')

  const url = new URL(link)
  const image = await bodyOf(request(proxy, certificate, { path: url.pathname + url.search }))
  t.equal(image.status, 200, 'the link loads through the proxy')
  t.same(image.body, IMAGE, 'byte for byte')
  t.equal(image.headers['content-type'], 'image/png', 'as a PNG')
  t.equal(image.headers['x-content-type-options'], 'nosniff', 'with imagegate\'s headers')
  t.equal((await bodyOf(request(proxy, certificate, { path: url.pathname }))).status, 404, 'not without its signature')
  t.equal(upstream.requests.length, 1, 'no image request reached the agent')
}

t.test('the README\'s nginx block keeps the path and streams the API', async (t) => {
  const locations = documented('nginx')
  t.match(locations, /location \/imagegate\/images\/ \{\s*proxy_pass http:\/\/127\.0\.0\.1:8090;\s*\}/, 'images: proxy_pass without a URI, so the path is not stripped')
  const api = /location \/imagegate\/ \{([^}]*)\}/.exec(locations)?.[1] ?? ''
  for (const directive of [`allow ${DOC_CLIENT};`, 'deny all;', 'proxy_pass http://127.0.0.1:8090;', 'proxy_http_version 1.1;', 'proxy_set_header Connection "";', 'proxy_buffering off;', 'proxy_read_timeout 1h;', 'client_max_body_size 50m;']) {
    t.ok(api.includes(directive), `API location: ${directive}`)
  }
})

t.test('the README\'s Caddy block keeps the path and streams the API', async (t) => {
  const site = documented('caddy')
  t.match(site, /handle \/imagegate\/images\/\* \{\s*reverse_proxy 127\.0\.0\.1:8090\s*\}/, 'images: `handle`, which keeps the path')
  t.notMatch(site, /^\s*handle_path\s/m, 'never `handle_path`, which strips it')
  t.match(site, new RegExp(`remote_ip ${DOC_CLIENT.replaceAll('.', '\\.')}`), 'the API for Open WebUI\'s address only')
  t.match(site, /flush_interval -1/, 'events flushed at once')
})

t.test('nginx', { skip: missing('nginx') ?? false }, async (t) => {
  t.test('the answer streams unbuffered, and its https link loads byte for byte', async (t) => {
    const deployment = await deploy(t, { proxy: 'nginx' })
    await streamsAndLoads(t, deployment)
    const { proxy, certificate, upstream, gate } = deployment
    const { search } = new URL(gate.link(NAME))
    // nginx forwards these as the client wrote them; imagegate answers them itself.
    const name = gate.nameOf(NAME)
    for (const spelling of [`/imagegate/./images/${name}`, `/imagegate/IMAGES/${name}`, `/imagegate/v1/../images/${name}`]) {
      const odd = await bodyOf(request(proxy, certificate, { path: spelling + search }))
      t.equal(odd.status, 404, `${spelling}: 404`)
      t.same(JSON.parse(odd.body.toString()), NOT_FOUND, `${spelling}: imagegate's own body`)
    }
    t.equal(upstream.requests.length, 1, 'none of them reached the agent')
  })

  t.test('control: an nginx that buffers holds the first sentence back until the upstream ends', async (t) => {
    // The same snippet, but buffering on and imagegate's `X-Accel-Buffering: no` ignored:
    // the check above fails here, so it does measure buffering.
    const { upstream, proxy, certificate, imagePath } = await deploy(t, {
      proxy: 'nginx',
      change: (snippet) => snippet.replace('proxy_buffering off;', 'proxy_buffering on; proxy_ignore_headers X-Accel-Buffering;')
    })
    const held = holdAnswer(upstream, imagePath)
    const stream = reader(request(proxy, certificate, { method: 'POST', path: '/imagegate/v1/chat/completions', body: CHAT }))
    const early = await stream.until((text) => answerSoFar(text) !== '', 1500)
    t.notOk(early, 'nothing of the answer arrived while the upstream held it')
    held.release()
    t.match(contentOf(await stream.end), /^Drawing it now\. Here: /, 'it all came at the end')
  })

  t.test('the API is for Open WebUI\'s address only; the images are for everyone', async (t) => {
    const { upstream, gate, proxy, certificate } = await deploy(t, { proxy: 'nginx', client: DOC_CLIENT })
    const api = await bodyOf(request(proxy, certificate, { method: 'POST', path: '/imagegate/v1/chat/completions', body: CHAT }))
    t.equal(api.status, 403, 'the API from another address: 403 from nginx')
    const { pathname, search } = new URL(gate.link(NAME))
    t.same((await bodyOf(request(proxy, certificate, { path: pathname + search }))).body, IMAGE, 'the image link still loads')
    t.same(upstream.requests, [], 'nothing reached the agent')
  })

  t.test('Chromium shows the picture on an https page; an http link there is blocked', { skip: fs.existsSync(CHROMIUM) ? false : `needs ${CHROMIUM} (apt-get install chromium)` }, async (t) => {
    // `imagegate.test` is not loopback, so the browser treats `http://imagegate.test:…` as
    // the insecure origin a real http address is; it still resolves to this machine.
    const browser = await launchBrowser(['--host-resolver-rules=MAP imagegate.test 127.0.0.1'])
    t.teardown(() => browser.close())
    const { upstream, gate, proxy, imagePath, pages } = await deploy(t, { proxy: 'nginx', pages: true })
    const link = gate.link(NAME)
    const insecure = link.replace(new URL(link).origin + '/imagegate', gate.url.replace('127.0.0.1', 'imagegate.test'))
    t.match(insecure, /^http:\/\/imagegate\.test:\d+\/images\//, 'the control: the same image by imagegate\'s own http address')
    upstream.handle(async (req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      for (const event of contentEvents([`Here: ![apple](${imagePath})\n\n![control](${insecure})`])) res.write(event)
      res.end(FINISH + DONE)
    })
    const context = await browser.newContext({ ignoreHTTPSErrors: true })
    t.teardown(() => context.close())
    context.setDefaultTimeout(BROWSER_TIMEOUT_MS)
    const query = new URLSearchParams({ via: 'imagegate', q: QUESTION }).toString()

    const secure = await renderChat(await context.newPage(), `${proxy.origin}/?${query}`)
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
})

t.test('Caddy', { skip: missing('caddy') ?? false }, async (t) => {
  t.test('the answer streams unbuffered, and its https link loads byte for byte', async (t) => {
    await streamsAndLoads(t, await deploy(t, { proxy: 'caddy' }))
  })

  t.test('the API is for Open WebUI\'s address only; the images are for everyone', async (t) => {
    const { upstream, gate, proxy, certificate } = await deploy(t, { proxy: 'caddy', client: DOC_CLIENT })
    const api = await bodyOf(request(proxy, certificate, { method: 'POST', path: '/imagegate/v1/chat/completions', body: CHAT }))
    t.equal(api.body.toString(), WEBUI_TEXT, 'the API from another address goes to Open WebUI, not to imagegate')
    const { pathname, search } = new URL(gate.link(NAME))
    t.same((await bodyOf(request(proxy, certificate, { path: pathname + search }))).body, IMAGE, 'the image link still loads')
    t.same(upstream.requests, [], 'nothing reached the agent')
  })
})
