import fs from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import path from 'node:path'
import Fastify from 'fastify'
import t, { type Test } from 'tap'
import { folderId } from '../../src/files/names.js'
import { createFileResolver, type FileResolver } from '../../src/files/resolver.js'
import { movedLocation, rawNameFromUrl, registerImages } from '../../src/routes/images.js'
import { createSigner, type Signer } from '../../src/files/signing.js'
import { APPLE_A, APPLE_B, DEEP, SECRET, X_B, buildTree } from '../fixtures/files/tree.js'
import { errorBody } from '../../src/errors.js'

interface Response { status: number, headers: http.IncomingHttpHeaders, body: Buffer }

/** Sends the path byte for byte: fetch and URL would normalize `..` and `\` first. */
function raw (base: string, rawPath: string, options: { method?: string, headers?: http.OutgoingHttpHeaders } = {}): Promise<Response> {
  const { hostname, port } = new URL(base)
  return new Promise((resolve, reject) => {
    const request = http.request({ hostname, port, method: options.method ?? 'GET', path: rawPath, headers: options.headers ?? {}, agent: false }, (response) => {
      const chunks: Buffer[] = []
      response.on('data', (chunk: Buffer) => chunks.push(chunk))
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks) }))
      response.on('error', reject)
    })
    request.on('error', reject)
    request.end()
  })
}

const tree = buildTree(t)
const files = createFileResolver({ cacheDirs: [tree.cacheA, tree.cacheB], homedir: tree.homedir })
const NOT_FOUND_JSON = JSON.stringify(errorBody('not_found'))
// Every name starts with its folder's id.
const A = folderId(tree.cacheA)
const B = folderId(tree.cacheB)
const IA = `/images/${A}`
const IB = `/images/${B}`

async function start (t: Test, resolver: FileResolver = files, signer?: Signer): Promise<string> {
  const app = Fastify()
  await registerImages(app, { files: resolver, signer })
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  return base
}

function assertNotFound (t: Test, response: Response, label: string): void {
  t.equal(response.status, 404, `${label}: 404`)
  t.equal(response.body.toString(), NOT_FOUND_JSON, `${label}: the fixed JSON body`)
  t.match(response.headers['content-type'], /^application\/json/, `${label}: JSON`)
  t.equal(response.headers['x-content-type-options'], 'nosniff', `${label}: nosniff`)
}

t.test('GET serves the exact bytes with the right headers', async (t) => {
  const base = await start(t)
  const response = await raw(base, `${IA}/apple.png`)
  t.equal(response.status, 200, 'ok')
  t.same(response.body, APPLE_A, 'byte-exact body')
  t.equal(response.headers['content-type'], 'image/png', 'content type')
  t.equal(response.headers['content-length'], String(APPLE_A.length), 'content length')
  t.equal(response.headers['x-content-type-options'], 'nosniff', 'nosniff')
  t.equal(response.headers['access-control-allow-origin'], '*', 'any origin may embed it')
  t.equal(response.headers['cross-origin-resource-policy'], 'cross-origin', 'cross-origin embedding allowed')
  t.equal(response.headers['cache-control'], 'public, max-age=86400', 'cached for a day')
  t.equal(response.headers['content-security-policy'], "default-src 'none'; sandbox", 'inert if opened directly')
  t.equal(response.headers['accept-ranges'], 'bytes', 'ranges advertised')
  t.ok(response.headers.etag, 'has an ETag')
  t.ok(response.headers['last-modified'], 'has Last-Modified')
})

t.test('nested and encoded names, each served from its own folder', async (t) => {
  const base = await start(t)
  const table: Array<[rawPath: string, body: Buffer | string, type: string]> = [
    [`${IA}/sub/deep.png`, DEEP, 'image/png'],
    [`${IB}/x.png`, X_B, 'image/png'],
    [`${IB}/apple.png`, APPLE_B, 'image/png'],
    [`${IB}/sub/deep.png`, 'shadowed by A', 'image/png'],
    [`${IA}/alias.png`, APPLE_A, 'image/png'],
    [`${IA}/apple.png?v=2&x=..%2f`, APPLE_A, 'image/png'],
    [`${IA}/a%20b%20%281%29.png`, 'spaces and parens', 'image/png'],
    [`${IA}/pomm%C3%A9%20%F0%9F%8D%8E.png`, 'unicode', 'image/png'],
    [`${IA}/50%25.png`, 'percent', 'image/png'],
    [`${IA}/UPPER.PNG`, 'upper', 'image/png'],
    [`${IB}/banana.jpg`, 'banana', 'image/jpeg'],
    [`${IA}/photo.avif`, 'avif', 'image/avif'],
    [`${IA}/sound.mp3`, 'ID3 sound', 'audio/mpeg'],
    [`${IA}/voice.opus`, 'OggS opus', 'audio/ogg'],
    [`${IA}/clip.mov`, 'quicktime', 'video/quicktime'],
    [`${IA}/video.mp4`, 'mp4', 'video/mp4'],
    [`${IA}/x.png/inside-a-dir.png`, 'dir named x.png', 'image/png']
  ]
  for (const [rawPath, body, type] of table) {
    const response = await raw(base, rawPath)
    t.equal(response.status, 200, `${rawPath}: 200`)
    t.same(response.body, Buffer.from(body), `${rawPath}: exact bytes`)
    t.equal(response.headers['content-type'], type, `${rawPath}: ${type}`)
  }
})

t.test('conditional requests, ranges and HEAD', async (t) => {
  const base = await start(t)
  const first = await raw(base, `${IA}/apple.png`)
  const etag = first.headers.etag
  t.ok(etag, 'ETag to revalidate with')

  const revalidated = await raw(base, `${IA}/apple.png`, { headers: { 'if-none-match': String(etag) } })
  t.equal(revalidated.status, 304, '304 on a matching If-None-Match')
  t.equal(revalidated.body.length, 0, 'no body on 304')

  const since = await raw(base, `${IA}/apple.png`, { headers: { 'if-modified-since': String(first.headers['last-modified']) } })
  t.equal(since.status, 304, '304 on If-Modified-Since')

  const stale = await raw(base, `${IA}/apple.png`, { headers: { 'if-none-match': '"other"' } })
  t.equal(stale.status, 200, '200 on a different ETag')

  const range = await raw(base, `${IA}/apple.png`, { headers: { range: 'bytes=2-9' } })
  t.equal(range.status, 206, '206 for a range')
  t.same(range.body, APPLE_A.subarray(2, 10), 'exactly the requested bytes')
  t.equal(range.headers['content-range'], `bytes 2-9/${APPLE_A.length}`, 'content range')

  const suffix = await raw(base, `${IA}/apple.png`, { headers: { range: 'bytes=-4' } })
  t.same(suffix.body, APPLE_A.subarray(-4), 'suffix range')

  const unsatisfiable = await raw(base, `${IA}/apple.png`, { headers: { range: `bytes=${APPLE_A.length + 10}-` } })
  t.equal(unsatisfiable.status, 416, '416 past the end')
  t.equal(unsatisfiable.headers['content-range'], `bytes */${APPLE_A.length}`, '416 tells the length')
  t.same(JSON.parse(unsatisfiable.body.toString()), errorBody('range_not_satisfiable'), '416 body')

  const precondition = await raw(base, `${IA}/apple.png`, { headers: { 'if-match': '"other"' } })
  t.equal(precondition.status, 412, '412 on a failed If-Match')
  t.same(JSON.parse(precondition.body.toString()), errorBody('precondition_failed'), '412 body')

  const head = await raw(base, `${IA}/apple.png`, { method: 'HEAD' })
  t.equal(head.status, 200, 'HEAD 200')
  t.equal(head.body.length, 0, 'HEAD has no body')
  t.equal(head.headers['content-length'], String(APPLE_A.length), 'HEAD tells the length')
  t.equal(head.headers['content-type'], 'image/png', 'HEAD tells the type')
  t.equal(head.headers.etag, etag, 'HEAD tells the ETag')

  const headMissing = await raw(base, `${IA}/nothing.png`, { method: 'HEAD' })
  t.equal(headMissing.status, 404, 'HEAD of a missing name is 404')

  const post = await raw(base, `${IA}/apple.png`, { method: 'POST' })
  t.equal(post.status, 404, 'other methods are not routed here')
})

t.test('traversal and other hostile URLs never reach a file outside the cache', async (t) => {
  const base = await start(t)
  const table: Array<[rawPath: string, why: string]> = [
    ['/images/../secret.png', 'dot-dot'],
    ['/images/sub/../../secret.png', 'nested dot-dot'],
    ['/images/%2e%2e/secret.png', 'encoded dot-dot'],
    ['/images/%2E%2E/secret.png', 'encoded dot-dot, uppercase'],
    ['/images/.%2e/secret.png', 'half-encoded dot-dot'],
    ['/images/%252e%252e/secret.png', 'double-encoded dot-dot'],
    ['/images/%252e%252e%252fsecret.png', 'double-encoded dot-dot and slash'],
    ['/images/sub%2fx.png', 'encoded slash'],
    ['/images/sub%2Fdeep.png', 'encoded slash to a real file'],
    ['/images/..%2fsecret.png', 'dot-dot with encoded slash'],
    ['/images/..%5csecret.png', 'dot-dot with encoded backslash'],
    ['/images/%5c..%5csecret.png', 'encoded backslashes'],
    ['/images/\\..\\secret.png', 'backslashes'],
    ['/images/sub\\deep.png', 'backslash to a real file'],
    ['/images//etc/passwd', 'empty segment to an absolute path'],
    ['/images//apple.png', 'empty segment to a real file'],
    ['/images/./apple.png', 'dot segment'],
    ['/images/%2e/apple.png', 'encoded dot segment'],
    ['/images/sub/./deep.png', 'inner dot segment'],
    ['/images/x.png%00.png', 'encoded NUL'],
    ['/images/apple.png%00', 'trailing NUL'],
    ['/images/apple%0a.png', 'encoded newline'],
    ['/images/.hidden.png', 'dotfile'],
    ['/images/%2ehidden.png', 'encoded dotfile'],
    ['/images/.dotdir/in.png', 'dot-dir'],
    ['/images/escape.png', 'symlink pointing outside'],
    ['/images/escape-dir/secret.png', 'symlinked folder pointing outside'],
    ['/images/to-dot.png', 'symlink to a dotfile'],
    ['/images/looks.png', 'symlink to a text file'],
    ['/images/notes.sh', 'not on the allowlist'],
    ['/images/page.html', 'active content'],
    ['/images/', 'no directory index'],
    ['/images', 'the mount itself'],
    ['/images/sub', 'a folder'],
    ['/images/sub/', 'a folder with a slash'],
    // Without an id, `x.png` is an old name and moves to B's file (see 'old names').
    [`${IA}/x.png`, 'a folder named like an image, not replaced by the file in cache B'],
    ['/images/' + 'a'.repeat(5000) + '.png', 'very long name'],
    ['/images/' + 'a'.repeat(300) + '.png', 'name longer than NAME_MAX'],
    ['/images/Apple.png', 'case variant'],
    ['/images/APPLE.PNG', 'case variant of the whole name'],
    ['/images/apple%2Epng', 'needless escape'],
    ['/images/%61pple.png', 'needless escape of a letter'],
    ['/images/a%20b%20(1).png', 'raw parentheses'],
    ['/images/pomm%c3%a9%20%f0%9f%8d%8e.png', 'lowercase escapes'],
    ['/images/apple.png/', 'trailing slash'],
    ['/images/apple.png#frag', 'fragment sent by a broken client'],
    ['/images/%zz.png', 'invalid UTF-8: bad escape'],
    ['/images/%C0%AE%C0%AE/secret.png', 'invalid UTF-8: overlong dots'],
    ['/images/%ED%A0%80.png', 'invalid UTF-8: encoded surrogate'],
    ['/images/secret.png', 'the name of a file above the cache'],
    ['/images/..', 'bare dot-dot'],
    ['/images/%2e%2e', 'bare encoded dot-dot'],
    ['/images/..;/secret.png', 'path parameter trick'],
    ['http://127.0.0.1/images/../secret.png', 'absolute-form request target']
  ]
  // Each URL as written, and again below a real folder id.
  const underId = table.map(([rawPath, why]): [string, string] => [rawPath.replace('/images/', `${IA}/`), `${why}, below a folder id`])
  for (const [rawPath, why] of [...table, ...underId]) {
    const response = await raw(base, rawPath)
    const label = `${why} ${JSON.stringify(rawPath.slice(0, 60))}`
    t.equal(response.body.indexOf(SECRET), -1, `${label}: no secret byte`)
    t.notOk(response.body.toString().includes(tree.dir), `${label}: no local path`)
    if (why.startsWith('invalid UTF-8')) {
      // Fastify's router refuses these before any route runs (FST_ERR_BAD_URL); its body
      // is the server's `frameworkErrors` business, not this route's.
      t.equal(response.status, 400, `${label}: refused by the router`)
      continue
    }
    assertNotFound(t, response, label)
    t.notOk(response.body.toString().includes('secret'), `${label}: the path is not echoed`)
  }
})

/** A resolver that vouches for one fixed file, to reach what happens after the check. */
function vouching (realPath: string): FileResolver {
  return {
    roots: [tree.dir],
    resolveReference: () => ({ ok: false, reason: 'missing' }),
    resolveName: () => ({ name: 'x.png', root: tree.dir, realPath, kind: 'image' }),
    resolveLegacyName: () => undefined,
    nameIn: () => 'x.png'
  }
}

t.test('a file that changes after the check is not found, and no path leaks', async (t) => {
  fs.symlinkSync('loop.png', path.join(tree.dir, 'loop.png'))
  const table: Array<[file: string, why: string]> = [
    [path.join(tree.dir, 'vanished.png'), 'removed after the check'],
    [path.join(tree.dir, 'loop.png'), 'unreadable after the check'],
    [path.join(tree.dir, 'cacheA/sub'), 'replaced by a folder']
  ]
  for (const [file, why] of table) {
    const base = await start(t, vouching(file))
    assertNotFound(t, await raw(base, `${IA}/x.png`), why)
  }
})

t.test('a file that fails only when its stream opens gets the fixed 404, not a 500 with its headers', async (t) => {
  // A UNIX socket passes the stat that @fastify/send does before it sets the file's
  // headers, and then cannot be opened, even by root: the same stage at which a file
  // made unreadable after its check fails for an unprivileged server. (A socket's size
  // is 0, so every range of it is a 416; ranges and HEAD of a really unreadable file are
  // in test/routes/images-unreadable.test.ts.)
  const socketPath = path.join(tree.dir, 'socket.png')
  const listener = net.createServer()
  await new Promise<void>((resolve) => listener.listen(socketPath, resolve))
  t.teardown(() => new Promise<void>((resolve) => listener.close(() => resolve())))
  const base = await start(t, vouching(socketPath))
  const requests: Array<[label: string, options: { method?: string, headers?: http.OutgoingHttpHeaders }]> = [
    ['GET', {}],
    ['GET with a validator (the disk path)', { headers: { 'if-none-match': '"other"' } }]
  ]
  for (const [label, options] of requests) {
    const response = await raw(base, `${IA}/x.png`, options)
    assertNotFound(t, response, label)
    t.equal(response.headers.etag, undefined, `${label}: no ETag of the file`)
    t.equal(response.headers['last-modified'], undefined, `${label}: no Last-Modified of the file`)
    t.equal(response.headers['cache-control'], 'no-store', `${label}: not cached`)
  }
})

t.test('mounting', async (t) => {
  t.test('with no cache dirs nothing is served', async (t) => {
    const base = await start(t, createFileResolver({ cacheDirs: [] }))
    assertNotFound(t, await raw(base, `${IA}/apple.png`), 'no cache dirs')
  })

  t.test('under an outer prefix, next to the app\'s own 404 handler', async (t) => {
    const app = Fastify()
    await app.register(async (api) => registerImages(api, { files }), { prefix: '/v1' })
    app.setNotFoundHandler((_request, reply) => reply.code(404).send('app 404'))
    const base = await app.listen({ port: 0, host: '127.0.0.1' })
    t.teardown(() => app.close())
    const hit = await raw(base, `/v1${IA}/apple.png`)
    t.same(hit.body, APPLE_A, 'served under the prefix')
    assertNotFound(t, await raw(base, `/v1${IA}/nothing.png`), 'miss under the prefix')
    t.equal((await raw(base, '/elsewhere')).body.toString(), 'app 404', 'the app keeps its own 404')
  })

  t.test('the same cache dir listed twice', async (t) => {
    const base = await start(t, createFileResolver({ cacheDirs: [tree.cacheA, tree.cacheA] }))
    t.same((await raw(base, `${IA}/apple.png`)).body, APPLE_A, 'served once')
  })
})

t.test('rawNameFromUrl', async (t) => {
  const table: Array<[url: string, name: string | undefined]> = [
    ['/images/apple.png', 'apple.png'],
    ['/images/sub/deep.png?x=..', 'sub/deep.png'],
    ['/images/a%2525b.png', 'a%2525b.png'],
    ['/images/a%252fb.png', undefined],
    ['/images/a%252Eb.png', undefined],
    ['/images/a%255Cb.png', undefined],
    ['/images/a%2500b.png', undefined],
    ['/imagesX/apple.png', undefined],
    ['/other/apple.png', undefined],
    ['', undefined]
  ]
  for (const [url, name] of table) {
    t.equal(rawNameFromUrl(url, '/images/'), name, `${JSON.stringify(url)}`)
  }
})

t.test('with a signer, only correctly signed names are served, and misses look like 404s', async (t) => {
  const signer = createSigner('s'.repeat(32))
  const base = await start(t, files, signer)
  const good = await raw(base, `${IA}/apple.png?sig=${signer.sign(`${A}/apple.png`)}`)
  t.equal(good.status, 200, 'signed name served')
  t.same(good.body, APPLE_A, 'byte-exact')
  const head = await raw(base, `${IA}/sub/deep.png?sig=${signer.sign(`${A}/sub/deep.png`)}`, { method: 'HEAD' })
  t.equal(head.status, 200, 'HEAD with a signature')
  const cases: Array<[string, string]> = [
    ['no signature', `${IA}/apple.png`],
    ['empty signature', `${IA}/apple.png?sig=`],
    ['signature of another name', `${IA}/apple.png?sig=${signer.sign(`${A}/x.png`)}`],
    ['signature of the same file name in another folder', `${IA}/apple.png?sig=${signer.sign(`${B}/apple.png`)}`],
    ['signature of the name without its folder', `${IA}/apple.png?sig=${signer.sign('apple.png')}`],
    ['signature from another key', `${IA}/apple.png?sig=${createSigner('t'.repeat(32)).sign(`${A}/apple.png`)}`],
    ['signature twice', `${IA}/apple.png?sig=${signer.sign(`${A}/apple.png`)}&sig=${signer.sign(`${A}/apple.png`)}`],
    ['signed but missing file', `${IA}/missing.png?sig=${signer.sign(`${A}/missing.png`)}`],
    ['signed name of a file only in the other folder', `${IA}/banana.jpg?sig=${signer.sign(`${A}/banana.jpg`)}`],
    ['signed old name of a missing file', `/images/missing.png?sig=${signer.sign('missing.png')}`],
    ['old name with the signature of its new name', `/images/apple.png?sig=${signer.sign(`${A}/apple.png`)}`],
    ['old name without a signature', '/images/apple.png'],
    ['signed traversal', `${IA}/../secret.png?sig=${signer.sign(`${A}/../secret.png`)}`],
    ['signed traversal into the other folder', `${IA}/../${B}/apple.png?sig=${signer.sign(`${A}/../${B}/apple.png`)}`]
  ]
  for (const [label, url] of cases) assertNotFound(t, await raw(base, url), label)
})

// Old link shape covered: `/images/<path>?sig=…` as releases before folder ids wrote it,
// e.g. `/images/apple.png?sig=…` or `/images/sub/deep.png?sig=…` (no folder id).
t.test('old names: a permanent redirect to the one name, resolved as before, never the bytes', async (t) => {
  const signer = createSigner('s'.repeat(32))
  const base = await start(t, files, signer)
  const table: Array<[old: string, name: string, location: string, why: string]> = [
    ['apple.png', `${A}/apple.png`, `${A}/apple.png`, 'the first folder holding the name'],
    ['banana.jpg', `${B}/banana.jpg`, `${B}/banana.jpg`, 'only in the second folder'],
    ['x.png', `${B}/x.png`, `${B}/x.png`, 'a folder named like an image in A is passed over, as before'],
    ['sub/deep.png', `${A}/sub/deep.png`, `../${A}/sub/deep.png`, 'a subfolder: relative to the request\'s own folder'],
    ['sub/inner/deeper.webp', `${A}/sub/inner/deeper.webp`, `../../${A}/sub/inner/deeper.webp`, 'two folders deep'],
    ['a%20b%20%281%29.png', `${A}/a%20b%20%281%29.png`, `${A}/a%20b%20%281%29.png`, 'an encoded name']
  ]
  for (const [old, name, location, why] of table) {
    const sig = `?sig=${signer.sign(name)}`
    for (const method of ['GET', 'HEAD']) {
      const label = `${method} ${old} (${why})`
      const response = await raw(base, `/images/${old}?sig=${signer.sign(old)}`, { method })
      t.equal(response.status, 301, `${label}: moved permanently`)
      t.equal(response.headers.location, location + sig, `${label}: to its one name, freshly signed`)
      t.equal(new URL(location + sig, `${base}/images/${old}`).pathname, `/images/${name}`, `${label}: which resolves below the mount`)
      t.equal(response.headers['cache-control'], 'public, max-age=86400', `${label}: cached like the file`)
      t.equal(response.body.length, 0, `${label}: no bytes of the file`)
      if (method === 'GET') t.equal(response.headers['content-length'], '0', `${label}: and says so`)
      t.equal(response.headers.etag, undefined, `${label}: none of the file's headers`)
      t.equal(response.headers['x-content-type-options'], 'nosniff', `${label}: the route's headers`)
    }
  }
  // The query is checked, never copied: only `sig` counts, and the Location is built anew.
  const extra = await raw(base, `/images/apple.png?x=%0d%0aSet-Cookie:1&sig=${signer.sign('apple.png')}&y=..%2f`)
  t.equal(extra.headers.location, `${A}/apple.png?sig=${signer.sign(`${A}/apple.png`)}`, 'other parameters are not carried along')
  t.equal(extra.headers['set-cookie'], undefined, 'nothing injected')
  // A range or a validator asks for bytes the old name does not have.
  const ranged = await raw(base, `/images/apple.png?sig=${signer.sign('apple.png')}`, { headers: { range: 'bytes=0-3', 'if-none-match': '*' } })
  t.equal(ranged.status, 301, 'a range on an old name is redirected too')
  t.equal(ranged.body.length, 0, 'with no bytes')

  // Without signing, the plain old name moves the same way, to an unsigned link.
  const open = await start(t, files)
  const plain = await raw(open, '/images/sub/deep.png')
  t.equal(plain.status, 301, 'signing off: moved')
  t.equal(plain.headers.location, `../${A}/sub/deep.png`, 'signing off: no signature')
})

t.test('movedLocation', async (t) => {
  t.equal(movedLocation('a.png', 'abc/a.png'), 'abc/a.png', 'a name at the top: its sibling')
  t.equal(movedLocation('s/a.png', 'abc/s/a.png'), '../abc/s/a.png', 'one folder deep: one level up')
  t.equal(movedLocation('s/t/u/a.png', 'abc/a.png'), '../../../abc/a.png', 'three folders deep')
})

t.test('SVG only with allowSvg, and then sandboxed', async (t) => {
  const dir = t.testdir({ 'logo.svg': '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>' })
  const plain = createFileResolver({ cacheDirs: [dir] })
  t.notOk(plain.resolveReference(path.join(dir, 'logo.svg'), 'image').ok, 'not deliverable by default')
  assertNotFound(t, await raw(await start(t, plain), `/images/${folderId(dir)}/logo.svg`), 'not served by default')
  const svg = createFileResolver({ cacheDirs: [dir], allowSvg: true })
  const resolved = svg.resolveReference(path.join(dir, 'logo.svg'), 'image')
  t.ok(resolved.ok && resolved.delivery.kind === 'image', 'an image with allowSvg')
  const response = await raw(await start(t, svg), `/images/${folderId(dir)}/logo.svg`)
  t.equal(response.status, 200, 'served')
  t.equal(response.headers['content-type'], 'image/svg+xml', 'as SVG')
  t.equal(response.headers['content-security-policy'], "default-src 'none'; sandbox", 'scripts cannot run')
  t.equal(response.headers['x-content-type-options'], 'nosniff', 'never sniffed')
})

t.test('a file from memory looks exactly like one from disk', async (t) => {
  const base = await start(t)
  const fromMemory = await raw(base, `${IA}/apple.png`)
  const again = await raw(base, `${IA}/apple.png`)
  // A validator that matches nothing sends the request down @fastify/send's path.
  const fromDisk = await raw(base, `${IA}/apple.png`, { headers: { 'if-none-match': '"nothing"' } })
  t.equal(fromDisk.status, 200, 'the disk path answers 200 too')
  for (const response of [fromMemory, again, fromDisk]) t.same(response.body, APPLE_A, 'byte-exact body')
  const names = ['content-type', 'content-length', 'etag', 'last-modified', 'cache-control', 'accept-ranges',
    'x-content-type-options', 'access-control-allow-origin', 'cross-origin-resource-policy', 'content-security-policy']
  for (const name of names) t.equal(fromMemory.headers[name], fromDisk.headers[name], `${name} is the same`)
  const revalidated = await raw(base, `${IA}/apple.png`, { headers: { 'if-none-match': String(fromMemory.headers.etag) } })
  t.equal(revalidated.status, 304, 'the ETag given from memory revalidates on disk')
})
