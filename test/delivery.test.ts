import fs from 'node:fs'
import path from 'node:path'
import t, { type Test } from 'tap'
import { createDelivery, fileNameOf, MAX_RESOLVED } from '../src/delivery.js'
import type { DeliveryOptions } from '../src/delivery.js'
import { createDataStore } from '../src/files/data-store.js'
import { folderId } from '../src/files/names.js'
import { createFileResolver } from '../src/files/resolver.js'
import type { FileResolver } from '../src/files/resolver.js'
import { createSigner } from '../src/files/signing.js'
import { solidPng } from './fixtures/png.js'

const SMALL = solidPng(2, 2)
// Larger than the inline limit below; its content does not matter to delivery.
const BIG = Buffer.concat([SMALL, Buffer.alloc(5000)])
const signer = createSigner('d'.repeat(32))

function setup (t: Test, overrides: Partial<DeliveryOptions> = {}) {
  const dir = t.testdir({ cache: { 'small.png': SMALL, 'big.png': BIG, 'song.mp3': 'ID3', 'icon.svg': '<svg/>', 'my chart (1).png': SMALL, sub: { 'deep.png': SMALL } }, store: {} })
  const files = createFileResolver({ cacheDirs: [path.join(dir, 'cache')], storeDir: path.join(dir, 'store'), allowSvg: true })
  const rejected: Array<{ reason: string, fileName: string }> = []
  const delivery = createDelivery({
    files,
    signer,
    publicUrl: () => 'http://gate.test',
    mode: 'link',
    inlineMaxBytes: 1000,
    store: createDataStore({ dir: path.join(dir, 'store'), maxBytes: 1_000_000 }),
    onReject: (rejection) => rejected.push(rejection),
    ...overrides
  })
  // Names of cached files start with the cache folder's id.
  const C = folderId(path.join(dir, 'cache'))
  return { dir, delivery, rejected, C }
}

t.test('links are signed absolute URLs; rejections are reported', async (t) => {
  const { dir, delivery, rejected, C } = setup(t)
  t.same(delivery.resolve(path.join(dir, 'cache/sub/deep.png'), 'image'), {
    url: `http://gate.test/images/${C}/sub/deep.png?sig=${signer.sign(`${C}/sub/deep.png`)}`, name: 'deep.png', kind: 'image'
  }, 'nested file')
  t.same(delivery.resolve(path.join(dir, 'cache/my chart (1).png'), 'image'), {
    url: `http://gate.test/images/${C}/my%20chart%20%281%29.png?sig=${signer.sign(`${C}/my%20chart%20%281%29.png`)}`, name: 'my chart (1).png', kind: 'image'
  }, 'encoded in the link, shown decoded')
  t.equal(delivery.resolve('/etc/passwd', 'image'), undefined, 'not deliverable')
  t.equal(delivery.resolve('/root/.hermes/cache/images/missing.png', 'image'), undefined, 'missing')
  t.same(rejected, [{ reason: 'extension', fileName: 'passwd' }, { reason: 'outside-roots', fileName: 'missing.png' }], 'each reason reported with the file name only')
  const perRequest: string[] = []
  t.equal(delivery.resolveFor(({ reason }) => perRequest.push(reason))(path.join(dir, 'cache/gone.png'), 'image'), undefined, 'resolveFor resolves the same way')
  t.same(perRequest, ['missing'], 'and reports to its own callback')
  t.equal(rejected.length, 2, 'not to the one given at creation')
  const unsigned = setup(t, { signer: undefined }).delivery
  t.equal(unsigned.link('a.png'), 'http://gate.test/images/a.png', 'no query without signing')
})

t.test('data-uri mode inlines small images and links the rest', async (t) => {
  const { dir, delivery, C } = setup(t, { mode: 'data-uri' })
  const small = delivery.resolve(path.join(dir, 'cache/small.png'), 'image')
  t.equal(small?.url, `data:image/png;imagegate=${C}/small.png;sig=${signer.sign(`${C}/small.png`)};base64,${SMALL.toString('base64')}`, 'inline, marked with name and signature')
  t.match(delivery.resolve(path.join(dir, 'cache/big.png'), 'image')?.url, `http://gate.test/images/${C}/big.png?sig=`, 'over inline-max-bytes: a link')
  t.match(delivery.resolve(path.join(dir, 'cache/song.mp3'), 'media')?.url, `http://gate.test/images/${C}/song.mp3?sig=`, 'media: always a link')
  const unsigned = setup(t, { mode: 'data-uri', signer: undefined }).delivery
  const plain = unsigned.resolve(path.join(dir, 'cache/small.png'), 'image')?.url ?? ''
  t.equal(plain, `data:image/png;imagegate=${C}/small.png;base64,${SMALL.toString('base64')}`, 'without signing: marked with the name only')
  t.equal(unsigned.shortenOwnInline(plain), `http://gate.test/images/${C}/small.png`, 'and shortened back to the unsigned link')
  // Served sandboxed from imagegate; inline it would lose the sandbox headers.
  t.match(delivery.resolve(path.join(dir, 'cache/icon.svg'), 'image')?.url, `http://gate.test/images/${C}/icon.svg?sig=`, 'SVG: always a link')
})

t.test('data-uri mode links a file deleted just after it was checked', async (t) => {
  const { dir, C } = setup(t)
  const small = path.join(dir, 'cache/small.png')
  const files = createFileResolver({ cacheDirs: [path.join(dir, 'cache')] })
  const deleting: FileResolver = {
    ...files,
    resolveReference (dest, accept) {
      const result = files.resolveReference(dest, accept)
      fs.rmSync(small)
      return result
    }
  }
  const delivery = createDelivery({ files: deleting, signer, publicUrl: () => 'http://gate.test', mode: 'data-uri', inlineMaxBytes: 1000, store: undefined })
  t.equal(delivery.resolve(small, 'image')?.url, `http://gate.test/images/${C}/small.png?sig=${signer.sign(`${C}/small.png`)}`, 'a link, not a crash')
})

t.test('data-uri mode links a file that grew past the limit while it was read', async (t) => {
  // The window between the size check and the read cannot be hit on purpose: the file
  // grows right after it was measured.
  const statSync = ((file: fs.PathLike, options?: fs.StatSyncOptions) => {
    const stat = fs.statSync(file, options)
    if (String(file).endsWith('small.png')) fs.appendFileSync(file, Buffer.alloc(5000))
    return stat
  }) as typeof fs.statSync
  const { createDelivery: create } = await t.mockImport<typeof import('../src/delivery.js')>('../src/delivery.js', {
    'node:fs': { ...fs, statSync, default: { ...fs, statSync } }
  })
  const { dir, C } = setup(t)
  const delivery = create({
    files: createFileResolver({ cacheDirs: [path.join(dir, 'cache')] }),
    signer,
    publicUrl: () => 'http://gate.test',
    mode: 'data-uri',
    inlineMaxBytes: 1000,
    store: undefined
  })
  t.equal(delivery.resolve(path.join(dir, 'cache/small.png'), 'image')?.url, `http://gate.test/images/${C}/small.png?sig=${signer.sign(`${C}/small.png`)}`, 'over the limit once read: a link')
})

t.test('inline images imagegate wrote are shortened to links in request bodies', async (t) => {
  const { dir, delivery, C } = setup(t, { mode: 'data-uri' })
  const inline = delivery.resolve(path.join(dir, 'cache/small.png'), 'image')?.url as string
  const link = delivery.link(`${C}/small.png`)
  const body = JSON.stringify({ messages: [{ role: 'assistant', content: `here ![small.png](${inline}) and again ![x](${inline})` }] })
  t.equal(delivery.shortenOwnInline(body), JSON.stringify({ messages: [{ role: 'assistant', content: `here ![small.png](${link}) and again ![x](${link})` }] }), 'both replaced')
  const escaped = body.replaceAll('/', '\\/')
  t.match(delivery.shortenOwnInline(escaped), `![small.png](${link})`, 'also with \\/ escapes')
  const forged = `data:image/png;imagegate=${C}/big.png;sig=${signer.sign(`${C}/small.png`)};base64,AAAA`
  t.equal(delivery.shortenOwnInline(forged), forged, 'a marker with a wrong signature is left alone')
  const unsignedMarker = `data:image/png;imagegate=${C}/big.png;base64,AAAA`
  t.equal(delivery.shortenOwnInline(unsignedMarker), unsignedMarker, 'and one without a signature')
  const gone = `data:image/png;imagegate=${C}/gone.png;sig=${signer.sign(`${C}/gone.png`)};base64,AAAA`
  t.equal(delivery.shortenOwnInline(gone), gone, 'a name that no longer resolves is left alone')
  t.equal(delivery.shortenOwnInline('{"plain": true}'), '{"plain": true}', 'bodies without markers are returned as they are')
})

t.test('inline upstream images are stored and linked', async (t) => {
  const { dir, delivery } = setup(t)
  const stored = delivery.storeDataImage?.('image/png', SMALL.toString('base64'))
  t.match(stored, { name: /^[0-9a-f]{32}\.png$/, kind: 'image' }, 'stored under a content hash')
  t.equal(stored?.url, delivery.link(`${folderId(path.join(dir, 'store'))}/${stored?.name ?? ''}`), 'served by a signed link under the store folder id')
  t.same(fs.readFileSync(path.join(dir, 'store', stored?.name ?? '')), SMALL, 'the decoded bytes on disk')
  t.equal(delivery.storeDataImage?.('image/gif', SMALL.toString('base64')), undefined, 'a type mismatch is not stored')
  t.equal(setup(t, { store: undefined }).delivery.storeDataImage, undefined, 'no store, no capture')
})

t.test('only the file name of a reference is reported, never its folders or query', async (t) => {
  const table: Array<[dest: string, name: string]> = [
    ['/home/u/.hermes/profiles/work/cache/images/a.png', 'a.png'],
    ['C:\\Users\\u\\b.png', 'b.png'],
    ['file:///x/c.png?sig=secret#top', 'c.png'],
    ['https://h/images/d.png?sig=AAAAAAAAAAAAAAAAAAAAAA', 'd.png'],
    ['e.png', 'e.png'],
    [`/x/${'f'.repeat(300)}.png`, 'f'.repeat(200)]
  ]
  for (const [dest, name] of table) t.equal(fileNameOf(dest), name, JSON.stringify(dest.slice(0, 60)))
})

t.test('a destination resolved a moment ago is reused for a few seconds', async (t) => {
  const dir = t.testdir({ cache: { 'a.png': SMALL, 'b.png': SMALL } })
  const inner = createFileResolver({ cacheDirs: [path.join(dir, 'cache')], storeDir: path.join(dir, 'store'), allowSvg: false })
  let lookups = 0
  const files: FileResolver = { ...inner, resolveReference: (dest, accept) => { lookups++; return inner.resolveReference(dest, accept) } }
  let clock = 1000
  let publicUrl = 'http://gate.test'
  const rejected: string[] = []
  const delivery = createDelivery({ files, signer, publicUrl: () => publicUrl, mode: 'link', inlineMaxBytes: 1000, store: undefined, now: () => clock, onReject: ({ reason }) => rejected.push(reason) })
  const a = path.join(dir, 'cache/a.png')
  const first = delivery.resolve(a, 'image')
  t.same(delivery.resolve(a, 'image'), first, 'the same link')
  t.equal(lookups, 1, 'resolved and signed once')
  delivery.resolve(a, 'media')
  t.equal(lookups, 2, 'as a MEDIA tag it is looked up on its own')
  clock += 5001
  t.same(delivery.resolve(a, 'image'), first, 'after the reuse window: the same link')
  t.equal(lookups, 3, 'looked up again')
  publicUrl = 'http://other.test'
  t.ok(delivery.resolve(a, 'image')?.url.startsWith('http://other.test/images/'), 'a new public URL makes new links')
  t.equal(lookups, 4, 'looked up again')
  fs.rmSync(a)
  t.ok(delivery.resolve(a, 'image'), 'a file gone a moment ago is still linked (serving the link checks the file)')
  t.equal(lookups, 4, 'from memory')
  clock += 5001
  t.equal(delivery.resolve(a, 'image'), undefined, 'once the window is over it is looked up and left alone')
  t.same(rejected, ['missing'], 'with its reason reported')
  const noReuse = createDelivery({ files, signer, publicUrl: () => publicUrl, mode: 'link', inlineMaxBytes: 1000, store: undefined, resolveTtlMs: 0 })
  const b = path.join(dir, 'cache/b.png')
  noReuse.resolve(b, 'image')
  noReuse.resolve(b, 'image')
  t.equal(lookups, 7, 'with reuse off every reference is looked up')
})

t.test('inline images are not kept, and the memory of links is bounded', async (t) => {
  const dir = t.testdir({ cache: {} })
  const count = MAX_RESOLVED + 1
  for (let i = 0; i < count; i++) fs.writeFileSync(path.join(dir, 'cache', `${i}.png`), SMALL)
  const inner = createFileResolver({ cacheDirs: [path.join(dir, 'cache')], storeDir: path.join(dir, 'store'), allowSvg: false })
  let lookups = 0
  const files: FileResolver = { ...inner, resolveReference: (dest, accept) => { lookups++; return inner.resolveReference(dest, accept) } }
  const inline = createDelivery({ files, signer, publicUrl: () => 'http://gate.test', mode: 'data-uri', inlineMaxBytes: 1000, store: undefined })
  const first = path.join(dir, 'cache/0.png')
  inline.resolve(first, 'image')
  inline.resolve(first, 'image')
  t.equal(lookups, 2, 'an inline image is read each time')
  const links = createDelivery({ files, signer, publicUrl: () => 'http://gate.test', mode: 'link', inlineMaxBytes: 1000, store: undefined })
  for (let i = 0; i < count; i++) links.resolve(path.join(dir, 'cache', `${i}.png`), 'image')
  lookups = 0
  links.resolve(path.join(dir, 'cache', `${count - 1}.png`), 'image')
  t.equal(lookups, 0, 'the newest is remembered')
  links.resolve(first, 'image')
  t.equal(lookups, 1, `past ${MAX_RESOLVED} the oldest is forgotten`)
})
