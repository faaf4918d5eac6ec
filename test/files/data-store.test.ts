import fs from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { createDataStore } from '../../src/files/data-store.js'
import { extensionFor, sniffImageType } from '../../src/files/magic.js'
import { createHash } from 'node:crypto'
import { solidPng } from '../fixtures/png.js'

const PNG = solidPng(4, 3)

t.test('magic bytes', async (t) => {
  const table: Array<[string, Buffer, string | undefined]> = [
    ['png', PNG, 'image/png'],
    ['jpeg', Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 0]), 'image/jpeg'],
    ['gif87a', Buffer.from('GIF87a....'), 'image/gif'],
    ['gif89a', Buffer.from('GIF89a....'), 'image/gif'],
    ['webp', Buffer.from('RIFF\0\0\0\0WEBPVP8 '), 'image/webp'],
    ['avif', Buffer.from('\0\0\0\x1cftypavif\0\0\0\0'), 'image/avif'],
    ['bmp', Buffer.concat([Buffer.from('BM'), Buffer.alloc(30)]), 'image/bmp'],
    ['short bmp', Buffer.from('BM'), undefined],
    ['html', Buffer.from('<html><script>alert(1)</script>'), undefined],
    ['empty', Buffer.alloc(0), undefined]
  ]
  for (const [name, bytes, expected] of table) t.equal(sniffImageType(bytes), expected, name)
  t.equal(extensionFor('image/jpeg'), 'jpg', 'jpeg files end in .jpg')
  t.equal(extensionFor('image/webp'), 'webp', 'others by subtype')
})

t.test('stores by content hash, once, readable, and refuses what it should', async (t) => {
  const dir = path.join(t.testdir(), 'store')
  const store = createDataStore({ dir, maxBytes: 1000 })
  t.equal(fs.statSync(dir).mode & 0o777, 0o700, 'store folder created private')
  const saved = store.save('image/png', PNG.toString('base64'))
  t.ok(saved.ok, 'stored')
  const name = saved.ok ? saved.name : ''
  t.match(name, /^[0-9a-f]{32}\.png$/, 'content-hash name with the right extension')
  t.same(fs.readFileSync(path.join(dir, name)), PNG, 'the decoded bytes')
  t.same(store.save('image/png', PNG.toString('base64')), saved, 'the same image again: same name')
  t.same(fs.readdirSync(dir), [name], 'no temporary files left behind')
  t.same(store.save('image/jpeg', PNG.toString('base64')), { ok: false, reason: 'type-mismatch' }, 'a PNG declared as JPEG')
  t.same(store.save('image/png', Buffer.from('<svg onload=alert(1)>').toString('base64')), { ok: false, reason: 'type-mismatch' }, 'not an image at all')
  const big = Buffer.concat([PNG, Buffer.alloc(2000)]).toString('base64')
  t.same(store.save('image/png', big), { ok: false, reason: 'too-large' }, 'over the size cap, refused before decoding')
})

t.test('the decoded size decides where the length of the text cannot', async (t) => {
  const dir = t.testdir()
  // Unpadded base64 of a body one byte over the cap passes the estimate from the length.
  const unpadded = PNG.toString('base64').replace(/=+$/, '')
  const tight = createDataStore({ dir: path.join(dir, 'tight'), maxBytes: PNG.length - 1 })
  t.same(tight.save('image/png', unpadded), { ok: false, reason: 'too-large' }, 'one byte over, refused after decoding')
  t.same(fs.readdirSync(path.join(dir, 'tight')), [], 'nothing written')
  const exact = createDataStore({ dir: path.join(dir, 'exact'), maxBytes: PNG.length })
  t.match(exact.save('image/png', unpadded), { ok: true, name: /\.png$/ }, 'exactly at the cap, stored')
})

t.test('a failed write is reported, not thrown, and leaves nothing behind', async (t) => {
  const dir = path.join(t.testdir(), 'store')
  const store = createDataStore({ dir, maxBytes: 1000 })
  // A folder where the temporary file would go makes the write fail, even for root.
  const hash = createHash('sha256').update(PNG).digest('hex').slice(0, 32)
  const blocker = path.join(dir, `${hash}.png.${process.pid}.tmp`)
  fs.mkdirSync(blocker)
  t.same(store.save('image/png', PNG.toString('base64')), { ok: false, reason: 'write-failed' }, 'reported')
  t.same(fs.readdirSync(dir), [path.basename(blocker)], 'no stored file, nothing new')
})
