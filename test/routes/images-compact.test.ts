// Compact renderings through real HTTP: browsers that name image/webp (or image/avif) get
// a much smaller picture at the same signed URL; everyone else gets the file.
import fs from 'node:fs'
import path from 'node:path'
import sharp from 'sharp'
import t from 'tap'
import type { Test } from 'tap'
import type { Options } from '../../src/config/options.js'
import { pathAndQuery, startGate } from '../fixtures/gate.js'
import type { Gate } from '../fixtures/gate.js'
import { send } from '../fixtures/http.js'
import { startProxy } from '../fixtures/proxy.js'
import { picturePng } from '../fixtures/picture.js'
import { animatedGif } from '../fixtures/pictures-small.js'

const PICTURE = await picturePng()
const GIF = await animatedGif()
const WEBP = await sharp(PICTURE).resize({ width: 64 }).webp().toBuffer()
const CORRUPT = Buffer.from('\x89PNG\r\n\x1a\nnot really a picture')
// Chromium's Accept for <img>; Firefox and Safari name the same types.
const BROWSER = 'image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8'

async function setup (t: Test, options: Partial<Options> = {}): Promise<Gate & { cache: string }> {
  const dir = t.testdir({ cache: { 'apple.png': PICTURE, 'moving.gif': GIF, 'small.webp': WEBP, 'corrupt.png': CORRUPT } })
  const cache = path.join(dir, 'cache')
  const { gate } = await startProxy(t, { options: { cacheDirs: [cache], compactImages: 'webp', ...options } })
  return Object.assign(gate, { cache })
}

t.test('a browser gets WebP at the same URL; curl and SDKs get the PNG', async (t) => {
  const gate = await setup(t)
  const url = pathAndQuery(gate.link('apple.png'))

  const head = await send(gate.url, { method: 'HEAD', path: url, headers: { accept: BROWSER } })
  t.equal(head.headers['content-type'], 'image/png', 'HEAD before any GET: the PNG, nothing is encoded for a HEAD')
  t.equal(head.headers['cache-control'], 'no-cache', 'marked to be asked again')
  const webp = await send(gate.url, { path: url, headers: { accept: BROWSER } })
  t.equal(webp.status, 200, 'ok')
  t.equal(webp.headers['content-type'], 'image/webp', 'WebP')
  t.equal(webp.headers.vary, 'Accept', 'Vary: Accept')
  t.equal(webp.headers['x-content-type-options'], 'nosniff', 'nosniff')
  t.equal(webp.headers['content-security-policy'], "default-src 'none'; sandbox", 'sandboxed')
  t.equal(Number(webp.headers['content-length']), webp.body.length, 'its own length')
  const meta = await sharp(webp.body).metadata()
  t.same([meta.format, meta.width, meta.height], ['webp', 1024, 1024], 'a real 1024×1024 WebP')
  t.ok(webp.body.length * 5 < PICTURE.length, `at least 5× smaller: ${PICTURE.length} → ${webp.body.length} bytes`)

  const png = await send(gate.url, { path: url, headers: { accept: '*/*' } })
  t.equal(png.headers['content-type'], 'image/png', '*/* gets the PNG')
  t.same(png.body, PICTURE, 'byte for byte')
  t.equal(png.headers.vary, 'Accept', 'with Vary: Accept too')
  t.not(png.headers.etag, webp.headers.etag, 'each rendering has its own ETag')
  const bare = await send(gate.url, { path: url })
  t.same(bare.body, PICTURE, 'no Accept at all: the PNG')

  const cached = await send(gate.url, { path: url, headers: { accept: BROWSER } })
  t.same(cached.body, webp.body, 'asked again: the same WebP')
  t.equal(cached.headers.etag, webp.headers.etag, 'with the same ETag')
  t.same(fs.readdirSync(gate.cache).sort(), ['apple.png', 'corrupt.png', 'moving.gif', 'small.webp'], 'nothing was written next to the pictures')

  const notModified = await send(gate.url, { path: url, headers: { accept: BROWSER, 'if-none-match': String(webp.headers.etag) } })
  t.equal(notModified.status, 304, 'revalidated: 304')
  t.equal(notModified.headers.vary, 'Accept', 'the 304 says Vary: Accept')
  const stale = await send(gate.url, { path: url, headers: { accept: '*/*', 'if-none-match': String(webp.headers.etag) } })
  t.equal(stale.status, 200, 'the WebP\'s ETag does not validate the PNG')
  t.same(stale.body, PICTURE, 'which is sent whole')

  const range = await send(gate.url, { path: url, headers: { accept: BROWSER, range: 'bytes=0-11' } })
  t.equal(range.status, 206, 'ranges of the WebP')
  t.same(range.body, webp.body.subarray(0, 12), 'its first bytes')

  const headAfter = await send(gate.url, { method: 'HEAD', path: url, headers: { accept: BROWSER } })
  t.equal(headAfter.headers['content-type'], 'image/webp', 'HEAD describes the stored WebP')
  t.equal(Number(headAfter.headers['content-length']), webp.body.length, 'its length')
})

t.test('?original picks the file; the signature rule is the same', async (t) => {
  const gate = await setup(t)
  const link = gate.link('apple.png')
  const original = await send(gate.url, { path: pathAndQuery(link) + '&original', headers: { accept: BROWSER } })
  t.equal(original.headers['content-type'], 'image/png', 'the PNG for a browser that asked for the original')
  t.same(original.body, PICTURE, 'byte for byte')
  const first = new URL(link)
  const reordered = await send(gate.url, { path: `${first.pathname}?original&sig=${first.searchParams.get('sig') ?? ''}`, headers: { accept: BROWSER } })
  t.same(reordered.body, PICTURE, '?original before the signature: the same')
  const valued = await send(gate.url, { path: pathAndQuery(link) + '&original=../../../etc/passwd', headers: { accept: BROWSER } })
  t.same(valued.body, PICTURE, 'a value after original names nothing: still this file')
  const unsigned = await send(gate.url, { path: `/images/${gate.nameOf('apple.png')}?original`, headers: { accept: BROWSER } })
  t.equal(unsigned.status, 404, '?original without a signature: 404')
  const forged = await send(gate.url, { path: `/images/${gate.nameOf('apple.png')}?original&sig=AAAAAAAAAAAAAAAAAAAAAA` })
  t.equal(forged.status, 404, '?original with a wrong signature: 404')
  const other = await send(gate.url, { path: `/images/${gate.nameOf('moving.gif')}?original&sig=${first.searchParams.get('sig') ?? ''}` })
  t.equal(other.status, 404, 'one file\'s signature with ?original does not open another file')
})

t.test('animated GIFs, WebP files and broken files are sent as they are', async (t) => {
  const gate = await setup(t)
  const gif = await send(gate.url, { path: pathAndQuery(gate.link('moving.gif')), headers: { accept: BROWSER } })
  t.equal(gif.headers['content-type'], 'image/gif', 'the animated GIF as a GIF')
  t.same(gif.body, GIF, 'with all its frames')
  const webp = await send(gate.url, { path: pathAndQuery(gate.link('small.webp')), headers: { accept: BROWSER } })
  t.same(webp.body, WEBP, 'a WebP file as it is')
  t.equal(webp.headers.vary, 'Accept', 'Vary on every image response')
  for (const attempt of [1, 2]) {
    const broken = await send(gate.url, { path: pathAndQuery(gate.link('corrupt.png')), headers: { accept: BROWSER } })
    t.equal(broken.status, 200, `broken file, request ${attempt}: 200`)
    t.same(broken.body, CORRUPT, `request ${attempt}: the file as it is`)
  }
  const warnings = gate.logs.filter((line) => line.msg === 'image could not be compacted; the original is sent')
  t.equal(warnings.length, 1, 'logged once')
  t.equal(warnings[0]?.name, 'corrupt.png', 'with the file name')
  t.notOk(gate.rawLogs.some((line) => line.includes(gate.cache)), 'never with its folder')
})

t.test('with --compact-images avif, AVIF where accepted and WebP elsewhere', async (t) => {
  const gate = await setup(t, { compactImages: 'avif' })
  const url = pathAndQuery(gate.link('apple.png'))
  const avif = await send(gate.url, { path: url, headers: { accept: BROWSER } })
  t.equal(avif.headers['content-type'], 'image/avif', 'AVIF for a browser that names it')
  t.ok(avif.body.length * 5 < PICTURE.length, `smaller: ${avif.body.length} bytes`)
  const webp = await send(gate.url, { path: url, headers: { accept: 'image/webp,*/*' } })
  t.equal(webp.headers['content-type'], 'image/webp', 'WebP for one that names only WebP')
})

t.test('with --compact-images off, every client gets the file and no Vary', async (t) => {
  const gate = await setup(t, { compactImages: 'off' })
  const res = await send(gate.url, { path: pathAndQuery(gate.link('apple.png')), headers: { accept: BROWSER } })
  t.equal(res.headers['content-type'], 'image/png', 'the PNG')
  t.same(res.body, PICTURE, 'byte for byte')
  t.equal(res.headers.vary, undefined, 'no Vary')
})

t.test('the maximum width applies to the compact rendering only', async (t) => {
  const gate = await setup(t, { compactMaxWidth: 300 })
  const url = pathAndQuery(gate.link('apple.png'))
  const webp = await send(gate.url, { path: url, headers: { accept: BROWSER } })
  const meta = await sharp(webp.body).metadata()
  t.same([meta.width, meta.height], [300, 300], 'scaled down, aspect ratio kept')
  const original = await send(gate.url, { path: url + '&original', headers: { accept: BROWSER } })
  t.same(original.body, PICTURE, 'the original keeps its size')
})

t.test('a busy encoder sends the original at once instead of making the browser wait', async (t) => {
  const gate = await setup(t)
  // A second server on the same folder, with no queue: a second picture while one is encoding gets the original.
  const busy = await startGate(t, { upstream: 'http://127.0.0.1:9/v1', cacheDirs: [gate.cache], compactImages: 'webp' }, { compactor: { concurrency: 1, queueLimit: 0 } })
  const second = sharp(PICTURE).flop().png().toBuffer()
  fs.writeFileSync(path.join(gate.cache, 'flopped.png'), await second)
  const [a, b] = await Promise.all([
    send(busy.url, { path: pathAndQuery(busy.link('apple.png')), headers: { accept: BROWSER } }),
    send(busy.url, { path: pathAndQuery(busy.link('flopped.png')), headers: { accept: BROWSER } })
  ])
  const [png, webp] = a.headers['content-type'] === 'image/png' ? [a, b] : [b, a]
  t.equal(png.headers['content-type'], 'image/png', 'one picture is sent as it is')
  t.equal(webp.headers['content-type'], 'image/webp', 'the other encoded')
  t.equal(png.headers['cache-control'], 'no-cache', 'the stand-in original is not kept by the browser')
  t.equal(webp.headers['cache-control'], 'public, max-age=86400', 'the rendering is, for a day')
  const later = await send(busy.url, { path: pathAndQuery(busy.link(png === a ? 'apple.png' : 'flopped.png')), headers: { accept: BROWSER } })
  t.equal(later.headers['content-type'], 'image/webp', 'asked again, the browser gets the rendering')
})
