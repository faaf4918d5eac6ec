// A public URL with a path (`https://chat.example.org/imagegate`) behind a reverse proxy
// that forwards the path as it is: imagegate answers under it as it does at `/`, with the
// same checks and signatures, and no request shaped like an image link ever reaches the
// upstream with its query (the signature).
import path from 'node:path'
import t from 'tap'
import type { Test } from 'tap'
import { contentOf, pathAndQuery } from './fixtures/gate.js'
import type { Gate } from './fixtures/gate.js'
import { postJson, send } from './fixtures/http.js'
import { DONE, FINISH, ROLE, contentEvents } from './fixtures/chat.js'
import { sse } from './fixtures/mock-upstream.js'
import type { MockUpstream } from './fixtures/mock-upstream.js'
import { startProxy } from './fixtures/proxy.js'
import { solidPng } from './fixtures/png.js'
import { rawRequest } from './fixtures/raw-socket.js'
import { errorBody } from '../src/errors.js'

const PUBLIC_URL = 'https://chat.example.org/imagegate'
const IMAGE = solidPng(12, 8)
const NOT_FOUND = errorBody('not_found')

interface Setup { gate: Gate, upstream: MockUpstream, cache: string }

/** imagegate with `publicUrl` in front of an agent that answers with the image's path. */
async function setup (t: Test, publicUrl: string | undefined): Promise<Setup> {
  const dir = t.testdir({ cache: { 'apple.png': IMAGE } })
  const cache = path.join(dir, 'cache')
  const answer = `Here: ![apple](${path.join(cache, 'apple.png')})`
  const { gate, upstream } = await startProxy(t, {
    options: { cacheDirs: [cache], ...(publicUrl === undefined ? {} : { publicUrl }) },
    upstream: (req, res, body) => {
      if (req.method === 'POST' && req.url === '/v1/chat/completions') {
        return sse([ROLE, ...contentEvents([answer]), FINISH, DONE])(req, res, body)
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"upstream":true}')
    }
  })
  return { gate, upstream, cache }
}

t.test('the API and the images answer under the public URL\'s path and at the root', async t => {
  const { gate, upstream } = await setup(t, PUBLIC_URL)

  const answer = await postJson(gate.url, '/imagegate/v1/chat/completions', { stream: true, messages: [] })
  t.equal(answer.status, 200, 'the chat route answers under the path')
  const name = gate.nameOf('apple.png')
  const link = gate.link('apple.png')
  t.match(link, /^https:\/\/chat\.example\.org\/imagegate\/images\/[\w-]+\/apple\.png\?sig=[\w-]+$/, 'links start with the public URL, path included')
  t.equal(contentOf(answer.text), `Here: ![apple](${link})`, 'the path in the answer became that link')
  t.same(upstream.requests.map((r) => `${r.method} ${r.url}`), ['POST /v1/chat/completions'], 'the upstream got the API path without the public path')

  const sig = new URL(link).search
  for (const mount of ['/imagegate', '']) {
    const image = await send(gate.url, { path: `${mount}/images/${name}${sig}` })
    t.equal(image.status, 200, `${mount}/images/: 200`)
    t.same(image.body, IMAGE, `${mount}/images/: the exact bytes`)
    t.equal(image.headers['content-type'], 'image/png', `${mount}/images/: content type`)
    t.equal(image.headers['x-content-type-options'], 'nosniff', `${mount}/images/: nosniff`)
    t.equal(image.headers['content-security-policy'], "default-src 'none'; sandbox", `${mount}/images/: inert if opened`)

    const head = await send(gate.url, { method: 'HEAD', path: `${mount}/images/${name}${sig}` })
    t.equal(head.headers['content-length'], String(IMAGE.length), `${mount}/images/: HEAD tells the length`)
    const range = await send(gate.url, { path: `${mount}/images/${name}${sig}`, headers: { range: 'bytes=0-7' } })
    t.equal(range.status, 206, `${mount}/images/: ranges`)
    t.same(range.body, IMAGE.subarray(0, 8), `${mount}/images/: the requested bytes`)

    for (const [query, why] of [['', 'no signature'], ['?sig=AAAAAAAAAAAAAAAAAAAAAA', 'a wrong signature'], [`${sig}x`, 'a changed signature']]) {
      const refused = await send(gate.url, { path: `${mount}/images/${name}${query}` })
      t.equal(refused.status, 404, `${mount}/images/ with ${why}: 404`)
      t.same(JSON.parse(refused.text), NOT_FOUND, `${mount}/images/ with ${why}: the fixed body`)
    }
  }

  const health = await send(gate.url, { path: '/imagegate/healthz' })
  t.equal(health.status, 200, 'health answers under the path too')
  t.equal(JSON.parse(health.text).status, 'ok', 'with its body')

  const models = await send(gate.url, { path: '/imagegate/v1/models?limit=1' })
  t.equal(models.text, '{"upstream":true}', 'other API paths are forwarded')
  t.equal(upstream.requests.at(-1)?.url, '/v1/models?limit=1', 'without the public path, with their query')
  t.equal(upstream.requests.length, 2, 'no image request reached the upstream')

  const lines = gate.logs.filter((line) => line.msg === 'request').map((line) => line.url)
  t.ok(lines.includes(`/imagegate/images/${name}`), 'the request log shows the path as received')
  t.ok(lines.includes(`/images/${name}`), 'and the root path as received')
  t.notOk(gate.rawLogs.some((line) => line.includes('sig=')), 'no signature in any log line')
})

t.test('nothing shaped like an image link reaches the upstream with its query', async t => {
  const { gate, upstream } = await setup(t, PUBLIC_URL)
  const sig = new URL(gate.link('apple.png')).search
  const name = gate.nameOf('apple.png')
  const targets = [
    `/imagegate/./images/${name}`,
    `/imagegate/x/../images/${name}`,
    `/imagegate/../imagegate/images/${name}`,
    `/imagegate/%2e/images/${name}`,
    `/imagegate/%252e/images/${name}`,
    `/imagegate/IMAGES/${name}`,
    `/Imagegate/images/${name}`,
    `/IMAGEGATE/IMAGES/${name}`,
    `/imagegate%2fimages/${name}`,
    `/imagegate%2Fimages/${name}`,
    `/imagegate%5cimages/${name}`,
    `/imagegate\\images/${name}`,
    `/%69magegate/images/${name}`,
    `/imagegate/%69mages/${name}`,
    `/imagegate/%2569mages/${name}`,
    `/imagegate;x=1/images/${name}`,
    `/imagegate/images;x=1/${name}`,
    `/imagegate/imagegate/images/${name}`,
    `/imagegate/v1/../images/${name}`,
    '/imagegate/images',
    `/imagegate/x%3f/../images/${name}`,
    `/ig/images/${name}`,
    `/./images/${name}`,
    `/IMAGES/${name}`,
    `/x/../images/${name}`,
    '/images'
  ]
  const methods = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']
  for (const target of targets) {
    for (const method of methods) {
      const response = await rawRequest(gate.url, target + sig, { method })
      t.ok(response.status === 404 || response.status === 400, `${method} ${target}: refused here (${response.status})`)
    }
  }
  t.same(upstream.requests, [], 'not one of them was forwarded')
  t.notOk(gate.rawLogs.some((line) => line.includes('sig=')), 'no signature in any log line')

  // Controls: without a query, or without an images segment, requests pass through.
  await send(gate.url, { method: 'POST', path: '/imagegate/v1/images/generations', body: '{}' })
  await send(gate.url, { method: 'POST', path: '/images/generations', body: '{}' })
  await send(gate.url, { path: '/imagegate/v1/files?purpose=x' })
  t.same(upstream.requests.map((r) => `${r.method} ${r.url}`), [
    'POST /v1/images/generations',
    'POST /v1/images/generations',
    'GET /v1/files?purpose=x'
  ], 'OpenAI\'s image API and other queries are still forwarded')
})

t.test('without a path in the public URL only /images/ serves images', async t => {
  const { gate, upstream } = await setup(t, 'https://chat.example.org')
  const sig = new URL(gate.link('apple.png')).search
  const name = gate.nameOf('apple.png')
  t.equal(gate.link('apple.png'), `https://chat.example.org/images/${name}${sig}`, 'links at the root')
  const plain = await send(gate.url, { path: `/images/${name}${sig}` })
  t.same(plain.body, IMAGE, '/images/ serves the file')
  const prefixed = await send(gate.url, { path: `/imagegate/images/${name}${sig}` })
  t.equal(prefixed.status, 404, 'a path it was not given is nothing of its own')
  t.same(upstream.requests, [], 'and still never goes upstream with the signature')
})

t.test('the default public URL has no path', async t => {
  const { gate } = await setup(t, undefined)
  const link = gate.link('apple.png')
  t.equal(new URL(link).pathname, `/images/${gate.nameOf('apple.png')}`, 'links at the root')
  const image = await send(gate.url, { path: pathAndQuery(link) })
  t.same(image.body, IMAGE, 'served')
})
