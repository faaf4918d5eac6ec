import fs from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { createDataStore } from '../../src/files/data-store.js'
import { base64Length } from '../../src/files/file-types.js'
import { createHash } from 'node:crypto'
import { solidPng } from '../fixtures/png.js'

const PNG = solidPng(4, 3)

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
  // Unpadded base64 of a body one byte over the cap: refused, whether by its length or
  // after decoding (73 bytes: by its length).
  const unpadded = PNG.toString('base64').replace(/=+$/, '')
  const tight = createDataStore({ dir: path.join(dir, 'tight'), maxBytes: PNG.length - 1 })
  t.same(tight.save('image/png', unpadded), { ok: false, reason: 'too-large' }, 'one byte over, refused')
  t.same(fs.readdirSync(path.join(dir, 'tight')), [], 'nothing written')
  const exact = createDataStore({ dir: path.join(dir, 'exact'), maxBytes: PNG.length })
  t.match(exact.save('image/png', unpadded), { ok: true, name: /\.png$/ }, 'exactly at the cap, stored')

  // Each body length modulo 3 (so 0, 1 or 2 padding characters), at the cap and one byte
  // over, padded and unpadded. A PNG with bytes after its end is still a PNG.
  // [body bytes, cap, padded, passes the length check, stored]
  const table: Array<[bytes: number, cap: number, padded: boolean, byLength: boolean, stored: boolean]> = [
    [300, 300, true, true, true],
    [300, 300, false, true, true],
    [301, 301, true, true, true],
    [301, 301, false, true, true],
    [302, 302, true, true, true],
    [302, 302, false, true, true],
    [301, 300, true, false, false],
    [301, 300, false, false, false],
    [302, 301, true, true, false],
    [302, 301, false, true, false],
    [303, 302, true, true, false],
    [303, 302, false, true, false]
  ]
  for (const [i, [bytes, cap, padded, byLength, stored]] of table.entries()) {
    const body = Buffer.concat([PNG, Buffer.alloc(bytes - PNG.length, i)])
    const text = padded ? body.toString('base64') : body.toString('base64').replace(/=+$/, '')
    const label = `${bytes} bytes ${padded ? 'padded' : 'unpadded'} (${text.length} characters), cap ${cap}`
    t.equal(text.length <= base64Length(cap), byLength, `${label}: ${byLength ? 'passes' : 'fails'} the length check`)
    const store = createDataStore({ dir: path.join(dir, `edge-${i}`), maxBytes: cap })
    const saved = store.save('image/png', text)
    t.equal(saved.ok, stored, `${label}: ${stored ? 'stored' : 'refused'}`)
    if (!saved.ok) t.equal(saved.reason, 'too-large', `${label}: as too large`)
  }
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

/** A distinct valid PNG per seed, all of one size. */
const pngNumber = (seed: number): Buffer => {
  const bytes = Buffer.from(PNG)
  bytes.writeUInt32BE(seed, bytes.length - 4)
  return bytes
}
const save = (store: ReturnType<typeof createDataStore>, bytes: Buffer): string => {
  const saved = store.save('image/png', bytes.toString('base64'))
  if (!saved.ok) throw new Error(`not stored: ${saved.reason}`)
  return saved.name
}

t.test('the store keeps under its bound, least recently used out first', async (t) => {
  const dir = path.join(t.testdir(), 'store')
  const evicted: string[] = []
  // Room for three images.
  const store = createDataStore({ dir, maxBytes: 1000, maxTotalBytes: PNG.length * 3, onEvict: (name) => evicted.push(name) })
  const [a, b, c] = [save(store, pngNumber(1)), save(store, pngNumber(2)), save(store, pngNumber(3))]
  t.equal(store.bytes, PNG.length * 3, 'three images counted')
  t.same(evicted, [], 'nothing removed yet')
  store.touch(path.join(fs.realpathSync(dir), a))
  const d = save(store, pngNumber(4))
  t.same(evicted, [b], 'the least recently used goes: b, since a was just served')
  t.notOk(fs.existsSync(path.join(dir, b)), 'and its file is removed')
  t.equal(save(store, pngNumber(3)), c, 'storing c again marks it used')
  save(store, pngNumber(5))
  t.same(evicted, [b, a], 'then a, the oldest use left')
  t.same(fs.readdirSync(dir).sort(), [c, d, save(store, pngNumber(5))].sort(), 'the three most recent remain')
  t.equal(store.bytes, PNG.length * 3, 'still at the bound')
  store.touch('/elsewhere/' + c)
  store.touch(path.join(fs.realpathSync(dir), 'unknown.png'))
  t.equal(store.bytes, PNG.length * 3, 'files that are not the store\'s change nothing')
})

t.test('an image larger than the whole store is not stored; 0 stores nothing', async (t) => {
  const dir = t.testdir()
  const small = createDataStore({ dir: path.join(dir, 'small'), maxBytes: 1000, maxTotalBytes: PNG.length - 1 })
  t.same(small.save('image/png', PNG.toString('base64')), { ok: false, reason: 'too-large' }, 'over the store bound')
  const none = createDataStore({ dir: path.join(dir, 'none'), maxBytes: 1000, maxTotalBytes: 0 })
  t.same(none.save('image/png', PNG.toString('base64')), { ok: false, reason: 'too-large' }, 'nothing fits in 0 bytes')
  t.same(fs.readdirSync(path.join(dir, 'none')), [], 'nothing written')
})

t.test('the store counts what is on disk at start, and trims it to a lower bound', async (t) => {
  const dir = path.join(t.testdir(), 'store')
  const first = createDataStore({ dir, maxBytes: 1000 })
  const names = [1, 2, 3].map((seed) => save(first, pngNumber(seed)))
  // Oldest first by modification time, whatever the order of the names.
  // The last two share a time, so the name decides between them.
  names.forEach((name, i) => fs.utimesSync(path.join(dir, name), 1000 + Math.min(i, 1), 1000 + Math.min(i, 1)))
  fs.writeFileSync(path.join(dir, 'notes.txt'), 'not the store\'s')
  fs.mkdirSync(path.join(dir, `${'0'.repeat(32)}.png`))
  const again = createDataStore({ dir, maxBytes: 1000 })
  t.equal(again.bytes, PNG.length * 3, 'the stored images, and nothing else, are counted after a restart')
  const evicted: string[] = []
  const lower = createDataStore({ dir, maxBytes: 1000, maxTotalBytes: PNG.length * 2, onEvict: (name) => evicted.push(name) })
  t.same(evicted, [names[0]], 'a lower bound removes the oldest at start')
  t.equal(lower.bytes, PNG.length * 2, 'and counts the rest')
  t.ok(fs.existsSync(path.join(dir, 'notes.txt')), 'files the store did not write are left alone')
})

t.test('a stored file removed by hand is written again and counted once', async (t) => {
  const dir = path.join(t.testdir(), 'store')
  const store = createDataStore({ dir, maxBytes: 1000, maxTotalBytes: PNG.length * 2 })
  const name = save(store, pngNumber(1))
  fs.rmSync(path.join(dir, name))
  t.equal(save(store, pngNumber(1)), name, 'the same name')
  t.ok(fs.existsSync(path.join(dir, name)), 'written again')
  t.equal(store.bytes, PNG.length, 'counted once')
  // Removed by hand, then evicted: nothing to unlink, still forgotten.
  fs.rmSync(path.join(dir, name))
  save(store, pngNumber(2))
  save(store, pngNumber(3))
  t.equal(store.bytes, PNG.length * 2, 'the bound holds')
})

t.test('an evicted file that is being read is read to the end', async (t) => {
  const dir = path.join(t.testdir(), 'store')
  const big = Buffer.concat([PNG, Buffer.alloc(256 * 1024, 7)])
  const store = createDataStore({ dir, maxBytes: big.length, maxTotalBytes: big.length })
  const name = save(store, big)
  const reading = fs.createReadStream(path.join(dir, name), { highWaterMark: 1024 })
  const chunks: Buffer[] = []
  await new Promise<void>((resolve) => reading.once('readable', resolve))
  const replacement = Buffer.concat([PNG, Buffer.alloc(256 * 1024, 9)])
  save(store, replacement)
  t.notOk(fs.existsSync(path.join(dir, name)), 'its name is gone')
  for await (const piece of reading) chunks.push(piece as Buffer)
  t.same(Buffer.concat(chunks), big, 'the open stream still gets every byte')
})
