// Image links already in chat histories, written before names carried a folder id.
// Old link shape covered: `<public-url>/images/<path>?sig=<mac>`, e.g.
// `/images/dup.png?sig=…` and `/images/sub/deep.png?sig=…`, where <mac> is the first 16
// bytes of HMAC-SHA256 over `<path>` with the key kept in the state folder, base64url.
// Through a whole imagegate with real files, the old links made here with node:crypto
// exactly as that release did, and followed with Node's fetch as a browser's <img> would.
import { createHmac } from 'node:crypto'
import fs from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import path from 'node:path'
import t, { type Test } from 'tap'
import { folderId } from '../../src/files/names.js'
import type { Gate } from '../fixtures/gate.js'
import { solidPng } from '../fixtures/png.js'
import { startProxy } from '../fixtures/proxy.js'
import { errorBody } from '../../src/errors.js'

const KEY_HEX = '5e'.repeat(32)
const FIRST_DUP = solidPng(3, 3)
const SECOND_DUP = solidPng(5, 5)
const ONLY = solidPng(7, 7)
const DEEP = solidPng(9, 9)
const KEPT = solidPng(11, 11)

/** The signature the release before folder ids wrote for `name`. */
const oldSignature = (name: string): string =>
  createHmac('sha256', Buffer.from(KEY_HEX, 'hex')).update(name, 'utf8').digest().subarray(0, 16).toString('base64url')

interface Setup { gate: Gate, first: string, second: string, store: string }

/** Two cache folders and a store, the key left in the state folder by the old release. */
async function setup (t: Test, options: { noSigning?: boolean, publicUrl?: string } = {}): Promise<Setup> {
  const dir = t.testdir({
    state: { 'signing-key': KEY_HEX + '\n', store: { 'kept.png': KEPT } },
    first: { 'dup.png': FIRST_DUP, sub: { 'deep.png': DEEP } },
    second: { 'dup.png': SECOND_DUP, 'only.png': ONLY }
  })
  fs.chmodSync(path.join(dir, 'state/signing-key'), 0o600)
  const first = path.join(dir, 'first')
  const second = path.join(dir, 'second')
  const store = path.join(dir, 'state/store')
  const { gate } = await startProxy(t, {
    options: {
      cacheDirs: [first, second],
      stateDir: path.join(dir, 'state'),
      storeDir: store,
      noSigning: options.noSigning ?? false,
      ...(options.publicUrl !== undefined ? { publicUrl: options.publicUrl } : {})
    }
  })
  return { gate, first, second, store }
}

/** The link imagegate writes today for a file at `name` in `dir`. */
const currentLink = (gate: Gate, name: string, dir: string): string => gate.link(name, dir).replace(gate.publicUrl, gate.url)

t.test('an old link in a chat history still shows its image, through a permanent redirect', async (t) => {
  const { gate, first, second, store } = await setup(t)
  const table: Array<[old: string, bytes: Buffer, name: string, dir: string, why: string]> = [
    ['dup.png', FIRST_DUP, 'dup.png', first, 'in both folders: the first, as before'],
    ['only.png', ONLY, 'only.png', second, 'only in the second folder'],
    ['sub/deep.png', DEEP, 'sub/deep.png', first, 'in a subfolder'],
    ['kept.png', KEPT, 'kept.png', store, 'an image the upstream sent inline, in the store']
  ]
  for (const [old, bytes, name, dir, why] of table) {
    const oldLink = `${gate.url}/images/${old}?sig=${oldSignature(old)}`
    const followed = await fetch(oldLink)
    t.equal(followed.status, 200, `${why}: shown`)
    t.ok(followed.redirected, `${why}: after a redirect`)
    t.equal(followed.url, currentLink(gate, name, dir), `${why}: at the file's one name`)
    t.equal(followed.headers.get('content-type'), 'image/png', `${why}: as a PNG`)
    t.same(Buffer.from(await followed.arrayBuffer()), bytes, `${why}: exactly its bytes`)

    for (const method of ['GET', 'HEAD']) {
      const moved = await fetch(oldLink, { method, redirect: 'manual' })
      t.equal(moved.status, 301, `${why}: ${method} is moved permanently`)
      t.equal(new URL(moved.headers.get('location') ?? '', oldLink).href, currentLink(gate, name, dir), `${why}: ${method} says where`)
      t.equal(moved.headers.get('cache-control'), 'public, max-age=86400', `${why}: ${method} may be cached`)
      t.equal((await moved.arrayBuffer()).byteLength, 0, `${why}: ${method} sends none of the file`)
    }
  }
  t.notOk(gate.rawLogs.some((line) => line.includes(oldSignature('dup.png')) || line.includes('sig=')), 'no signature reached a log line')
})

t.test('an old name is looked up as before: when the first folder loses the file, the next one holding it', async (t) => {
  const { gate, first, second } = await setup(t)
  const oldLink = `${gate.url}/images/dup.png?sig=${oldSignature('dup.png')}`
  fs.unlinkSync(path.join(first, 'dup.png'))
  const next = await fetch(oldLink)
  t.equal(next.url, currentLink(gate, 'dup.png', second), 'moved to the second folder\'s file')
  t.same(Buffer.from(await next.arrayBuffer()), SECOND_DUP, 'and shows it')
  fs.unlinkSync(path.join(second, 'dup.png'))
  const gone = await fetch(oldLink, { redirect: 'manual' })
  t.equal(gone.status, 404, 'a name whose file is gone is not found')
  t.same(await gone.json(), errorBody('not_found'), 'with the fixed body')
  t.equal(gone.headers.get('location'), null, 'and no redirect')
})

t.test('an old name without its valid old signature is not found', async (t) => {
  const { gate, first } = await setup(t)
  const cases: Array<[query: string, why: string]> = [
    ['', 'no signature'],
    ['?sig=', 'an empty signature'],
    [`?sig=${oldSignature('only.png')}`, 'another old name\'s signature'],
    [`?sig=${gate.signer?.sign(`${folderId(first)}/dup.png`) ?? ''}`, 'the signature of its current name'],
    [`?sig=${oldSignature('dup.png').slice(0, -1)}A`, 'a signature one character off']
  ]
  for (const [query, why] of cases) {
    const response = await fetch(`${gate.url}/images/dup.png${query}`, { redirect: 'manual' })
    t.equal(response.status, 404, `${why}: 404`)
    t.same(await response.json(), errorBody('not_found'), `${why}: the fixed body`)
    t.equal(response.headers.get('location'), null, `${why}: no redirect`)
  }
})

t.test('with signing off, a plain old name moves likewise', async (t) => {
  const { gate, first } = await setup(t, { noSigning: true })
  const followed = await fetch(`${gate.url}/images/sub/deep.png`)
  t.equal(followed.url, `${gate.url}/images/${folderId(first)}/sub/deep.png`, 'to the unsigned one name')
  t.same(Buffer.from(await followed.arrayBuffer()), DEEP, 'exactly its bytes')
})

t.test('under the public URL\'s path, forwarded as it is', async (t) => {
  // A reverse proxy that passes `/imagegate/…` through unchanged: imagegate answers under
  // the path as at the root, and the redirect stays under it.
  const { gate, second } = await setup(t, { publicUrl: 'https://chat.example.org/imagegate' })
  const id = folderId(second)
  const followed = await fetch(`${gate.url}/imagegate/images/only.png?sig=${oldSignature('only.png')}`)
  t.equal(followed.status, 200, 'shown')
  t.equal(followed.url, `${gate.url}/imagegate/images/${id}/only.png?sig=${gate.signer?.sign(`${id}/only.png`) ?? ''}`, 'at the one name, under the path')
  t.same(Buffer.from(await followed.arrayBuffer()), ONLY, 'exactly its bytes')
  const refused = await fetch(`${gate.url}/imagegate/images/only.png`, { redirect: 'manual' })
  t.equal(refused.status, 404, 'not without its signature, under the path too')
})

t.test('behind a reverse proxy that removes the public URL\'s path', async (t) => {
  // What nginx's `location /imagegate/ { proxy_pass http://imagegate/; }` does: the path
  // prefix is removed on the way in, so imagegate never sees it, and the browser resolves
  // the redirect against the URL it asked for.
  let target = ''
  const seen: string[] = []
  const proxy = http.createServer((request, response) => {
    const url = request.url as string
    seen.push(url.replace(/\?.*/, ''))
    if (!url.startsWith('/imagegate/')) {
      response.writeHead(502).end()
      return
    }
    const forwarded = http.request(`${target}${url.slice('/imagegate'.length)}`, { method: request.method, agent: false }, (upstream) => {
      response.writeHead(upstream.statusCode as number, upstream.headers)
      upstream.pipe(response)
    })
    forwarded.end()
  })
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => proxy.close(() => resolve())))
  const publicUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}/imagegate`
  const { gate, second } = await setup(t, { publicUrl })
  target = gate.url

  const followed = await fetch(`${publicUrl}/images/only.png?sig=${oldSignature('only.png')}`)
  t.equal(followed.status, 200, 'shown')
  t.equal(followed.url, gate.link('only.png', second), 'at the link imagegate writes today, under the public URL')
  t.same(Buffer.from(await followed.arrayBuffer()), ONLY, 'exactly its bytes')
  t.same(seen, ['/imagegate/images/only.png', `/imagegate/images/${folderId(second)}/only.png`], 'both requests went through the public URL\'s path')
})
