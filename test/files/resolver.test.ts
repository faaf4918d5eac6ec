import fs from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { folderId } from '../../src/files/names.js'
import { createFileResolver, DEFAULT_REDISCOVER_MS, type Rejection } from '../../src/files/resolver.js'
import type { FileKind } from '../../src/files/file-types.js'
import type { Accept } from '../../src/rewrite/ports.js'
import { buildTree } from '../fixtures/files/tree.js'

const tree = buildTree(t)
const realA = fs.realpathSync(tree.cacheA)
const realB = fs.realpathSync(tree.cacheB)
const files = createFileResolver({ cacheDirs: [tree.cacheA, tree.cacheB], homedir: tree.dir })
// Every name starts with the id of its folder.
const A = folderId(tree.cacheA)
const B = folderId(tree.cacheB)
// Ids are hex digits of a hash of the folder's path, which depends on where the project is
// cloned: about one in a hundred has no letter, and then its capitals are the same id.
const LETTERED = [A, B].find((id) => /[a-f]/.test(id))

// The agent runs in a container: this is where it believes its cache lives.
const CONTAINER = '/root/.hermes/cache/images'

interface Hit { name: string, root: string, file: string, kind: FileKind }
type Case = [dest: string, accept: Accept, expected: Hit | Rejection]

const inA = (name: string, file: string, kind: FileKind = 'image'): Hit => ({ name: `${A}/${name}`, root: realA, file: path.join(realA, file), kind })
const inB = (name: string, file: string, kind: FileKind = 'image'): Hit => ({ name: `${B}/${name}`, root: realB, file: path.join(realB, file), kind })

const cases: Case[] = [
  // Every destination form that can name a file.
  [path.join(tree.cacheA, 'apple.png'), 'image', inA('apple.png', 'apple.png')],
  [path.join(tree.cacheA, 'sub/deep.png'), 'image', inA('sub/deep.png', 'sub/deep.png')],
  [path.join(tree.cacheA, 'sub/inner/deeper.webp'), 'image', inA('sub/inner/deeper.webp', 'sub/inner/deeper.webp')],
  [tree.cacheA + '//sub/./deep.png', 'image', inA('sub/deep.png', 'sub/deep.png')],
  [`${CONTAINER}/apple.png`, 'image', inA('apple.png', 'apple.png')],
  [`${CONTAINER}/banana.jpg`, 'image', inB('banana.jpg', 'banana.jpg')],
  // cache A holds a folder called x.png, so the file in B is the first deliverable one.
  [`${CONTAINER}/x.png`, 'image', inB('x.png', 'x.png')],
  ['~/cacheA/sub/deep.png', 'image', inA('sub/deep.png', 'sub/deep.png')],
  ['~/anywhere/banana.jpg', 'image', inB('banana.jpg', 'banana.jpg')],
  [`file://${tree.cacheA}/a%20b%20(1).png`, 'image', inA('a%20b%20%281%29.png', 'a b (1).png')],
  [`file://localhost${tree.cacheA}/apple.png`, 'image', inA('apple.png', 'apple.png')],
  [`FILE:${tree.cacheA}/apple.png`, 'image', inA('apple.png', 'apple.png')],
  [`file://${tree.cacheA}/apple.png?x=1#top`, 'image', inA('apple.png', 'apple.png')],
  ['file:///C:/Users/u/banana.jpg', 'image', inB('banana.jpg', 'banana.jpg')],
  ['file://C:/Users/u/banana.jpg', 'image', inB('banana.jpg', 'banana.jpg')],
  ['C:\\Users\\u\\x.png', 'image', inB('x.png', 'x.png')],
  ['C:/x.png', 'image', inB('x.png', 'x.png')],
  ['c:\\Users\\u/mixed\\apple.png', 'image', inA('apple.png', 'apple.png')],
  [path.join(tree.cacheA, 'a b (1).png'), 'image', inA('a%20b%20%281%29.png', 'a b (1).png')],
  [path.join(tree.cacheA, 'pommé 🍎.png'), 'image', inA('pomm%C3%A9%20%F0%9F%8D%8E.png', 'pommé 🍎.png')],
  [path.join(tree.cacheA, '50%.png'), 'image', inA('50%25.png', '50%.png')],
  [path.join(tree.cacheA, 'UPPER.PNG'), 'image', inA('UPPER.PNG', 'UPPER.PNG')],
  [path.join(tree.cacheA, 'photo.avif'), 'image', inA('photo.avif', 'photo.avif')],
  // A link to another file inside the same cache dir keeps its own name.
  [path.join(tree.cacheA, 'alias.png'), 'image', inA('alias.png', 'apple.png')],
  // Inside cache B, though A holds the same relative path: B's own file, under B's id.
  [path.join(tree.cacheB, 'apple.png'), 'image', inB('apple.png', 'apple.png')],
  [path.join(tree.cacheB, 'sub/deep.png'), 'image', inB('sub/deep.png', 'sub/deep.png')],
  // Media only where the caller accepts it.
  [path.join(tree.cacheA, 'sound.mp3'), 'media', inA('sound.mp3', 'sound.mp3', 'media')],
  [path.join(tree.cacheA, 'sound.mp3'), 'image', 'extension'],
  [`${CONTAINER}/voice.opus`, 'media', inA('voice.opus', 'voice.opus', 'media')],
  [`${CONTAINER}/clip.mov`, 'media', inA('clip.mov', 'clip.mov', 'media')],
  [`${CONTAINER}/apple.png`, 'media', inA('apple.png', 'apple.png')],
  [path.join(tree.cacheA, 'fake.mp3.png'), 'media', inA('fake.mp3.png', 'sound.mp3', 'media')],
  [path.join(tree.cacheA, 'fake.mp3.png'), 'image', 'extension'],
  // Documents: links for MEDIA: tags, never markdown images.
  [path.join(tree.cacheA, 'report.pdf'), 'media', inA('report.pdf', 'report.pdf', 'document')],
  [path.join(tree.cacheA, 'report.pdf'), 'image', 'extension'],
  ['/root/.hermes/cache/documents/doc_7c0b41977a28_Q3 "final"; résumé.md', 'media',
    inA('doc_7c0b41977a28_Q3%20%22final%22%3B%20r%C3%A9sum%C3%A9.md', 'doc_7c0b41977a28_Q3 "final"; résumé.md', 'document')],
  [path.join(tree.cacheA, 'report.png'), 'media', inA('report.png', 'report.pdf', 'document')],
  [path.join(tree.cacheA, 'report.png'), 'image', 'extension'],
  [path.join(tree.cacheA, 'page.html'), 'media', 'extension'],

  // Not a path at all.
  ['x.png', 'image', 'not-a-path'],
  ['./x.png', 'image', 'not-a-path'],
  ['../../x.png', 'image', 'not-a-path'],
  ['', 'image', 'not-a-path'],
  ['~', 'image', 'not-a-path'],
  ['~root/x.png', 'image', 'not-a-path'],
  ['http://h/x.png', 'image', 'not-a-path'],
  ['https://h/x.png', 'image', 'not-a-path'],
  // Any path outside the cache dirs is matched by name only, and only a cached file is
  // ever delivered, whatever folder the model named.
  ['//h/x.png', 'image', inB('x.png', 'x.png')],
  ['/etc/x.png', 'image', inB('x.png', 'x.png')],
  ['data:image/png;base64,AAA', 'image', 'not-a-path'],
  ['file://server/share/x.png', 'image', 'not-a-path'],
  ['file:x.png', 'image', 'not-a-path'],
  ['\\\\server\\share\\x.png', 'image', 'not-a-path'],
  [' /x.png', 'image', 'not-a-path'],

  // Outside every cache dir, and no namesake in one.
  ['/etc/nothing.png', 'image', 'outside-roots'],
  ['~/.ssh/id_rsa.png', 'image', 'outside-roots'],
  ['~/home/holiday.png', 'image', 'outside-roots'],
  [path.join(tree.outside, 'secret.png'), 'image', 'outside-roots'],
  ['C:\\Users\\u\\nothing.png', 'image', 'outside-roots'],

  // Wrong type: no filesystem access needed to refuse.
  ['/etc/passwd', 'image', 'extension'],
  [path.join(tree.cacheA, 'notes.sh'), 'media', 'extension'],
  [`${CONTAINER}/page.html`, 'media', 'extension'],
  [`${CONTAINER}/drawing.svg`, 'image', 'extension'],
  [`${CONTAINER}/noextension`, 'image', 'extension'],
  [`${CONTAINER}/trailing.`, 'image', 'extension'],
  // A link whose target is not a type we serve by its own name.
  [path.join(tree.cacheA, 'looks.png'), 'image', 'extension'],

  // Inside a cache dir, so this file or nothing: no fallback to a namesake.
  [path.join(tree.cacheA, 'banana.jpg'), 'image', 'missing'],
  [path.join(tree.cacheA, 'dangling.png'), 'image', 'missing'],
  [path.join(tree.cacheA, 'sub/deep.png/more.png'), 'image', 'missing'],
  [path.join(tree.cacheA, 'a'.repeat(300) + '.png'), 'image', 'missing'],
  [path.join(tree.cacheA, 'x.png'), 'image', 'not-a-file'],
  [path.join(tree.cacheA, 'escape.png'), 'image', 'symlink-escape'],
  [path.join(tree.cacheA, 'escape-dir/secret.png'), 'image', 'symlink-escape'],

  // Hostile spellings.
  [`${CONTAINER}/../../../etc/x.png`, 'image', 'hostile'],
  [tree.cacheA + '/../secret.png', 'image', 'hostile'],
  [`file://${tree.cacheA}/%2e%2e/secret.png`, 'image', 'hostile'],
  [`file://${tree.cacheA}/%E0%A4%A.png`, 'image', 'hostile'],
  [`file://${tree.cacheA}/apple.png%00.txt`, 'image', 'hostile'],
  ['C:\\Users\\..\\x.png', 'image', 'hostile'],
  ['C:\\Users\\u\\', 'image', 'hostile'],
  [path.join(tree.cacheA, 'apple.png') + '\u0000.txt', 'image', 'hostile'],
  [path.join(tree.cacheA, 'app\nle.png'), 'image', 'hostile'],
  [path.join(tree.cacheA, 'app\u001ble.png'), 'image', 'hostile'],
  [path.join(tree.cacheA, 'app\u0085le.png'), 'image', 'hostile'],
  [path.join(tree.cacheA, 'app\ud800le.png'), 'image', 'hostile'],
  [path.join(tree.cacheA, 'sub\\..\\apple.png'), 'image', 'hostile'],
  [tree.cacheA + '/apple.png/', 'image', 'hostile'],
  [tree.cacheA + '/.', 'image', 'hostile'],
  [tree.cacheA + '/..', 'image', 'hostile'],
  [path.join(tree.cacheA, '.hidden.png'), 'image', 'hostile'],
  [`${CONTAINER}/.hidden.png`, 'image', 'hostile'],
  [path.join(tree.cacheA, '.dotdir/in.png'), 'image', 'hostile'],
  // A link inside the root must not reach a dotfile either.
  [path.join(tree.cacheA, 'to-dot.png'), 'image', 'hostile']
]

t.test('resolveReference', async (t) => {
  for (const [dest, accept, expected] of cases) {
    const got = files.resolveReference(dest, accept)
    const label = `${JSON.stringify(dest)} (${accept})`
    if (typeof expected === 'string') {
      t.same(got, { ok: false, reason: expected }, `${label} is rejected as ${expected}`)
    } else {
      t.same(got, { ok: true, delivery: { name: expected.name, root: expected.root, realPath: expected.file, kind: expected.kind } }, `${label} is delivered as ${expected.name}`)
    }
  }
})

t.test('every delivered name resolves back to the same file', async (t) => {
  for (const [dest, accept, expected] of cases) {
    if (typeof expected === 'string') continue
    const got = files.resolveReference(dest, accept)
    if (!got.ok) continue
    t.same(files.resolveName(got.delivery.name), got.delivery, `${got.delivery.name} from ${JSON.stringify(dest)} round-trips`)
  }
})

t.test('resolveName', async (t) => {
  const names: Array<[raw: string, file: string | undefined]> = [
    [`${A}/apple.png`, path.join(realA, 'apple.png')],
    [`${B}/x.png`, path.join(realB, 'x.png')],
    [`${A}/sub/deep.png`, path.join(realA, 'sub/deep.png')],
    [`${A}/sub/inner/deeper.webp`, path.join(realA, 'sub/inner/deeper.webp')],
    [`${A}/a%20b%20%281%29.png`, path.join(realA, 'a b (1).png')],
    [`${A}/sound.mp3`, path.join(realA, 'sound.mp3')],
    [`${A}/alias.png`, path.join(realA, 'apple.png')],
    [`${A}/UPPER.PNG`, path.join(realA, 'UPPER.PNG')],
    [`${A}/upper.png`, undefined],
    [`${A}/Apple.png`, undefined],
    [`${A}/a%20b%20(1).png`, undefined],
    [`${A}/apple%2Epng`, undefined],
    [`${A}/%61pple.png`, undefined],
    [`${A}/sub%2Fdeep.png`, undefined],
    [`${A}/../secret.png`, undefined],
    [`${A}/%2e%2e/secret.png`, undefined],
    [`${A}/.hidden.png`, undefined],
    [`${A}/%2Ehidden.png`, undefined],
    [`${A}/.dotdir/in.png`, undefined],
    [`${A}/escape.png`, undefined],
    [`${A}/escape-dir/secret.png`, undefined],
    [`${A}/to-dot.png`, undefined],
    [`${A}/looks.png`, undefined],
    [`${A}/dangling.png`, undefined],
    [`${A}/notes.sh`, undefined],
    [`${A}/page.html`, undefined],
    [`${A}/x.png/inside-a-dir.png`, path.join(realA, 'x.png/inside-a-dir.png')],
    [`${A}/sub`, undefined],
    [`${A}/sub/`, undefined],
    ['', undefined],
    [`${A}/apple.png%00.png`, undefined],
    [`${A}/${'a'.repeat(5000)}.png`, undefined],

    // A name is looked up under its own folder only.
    [`${B}/apple.png`, path.join(realB, 'apple.png')],
    [`${B}/sub/deep.png`, path.join(realB, 'sub/deep.png')],
    [`${A}/banana.jpg`, undefined],
    [`${B}/sound.mp3`, undefined],
    // No id, an unknown id, or an id alone.
    ['apple.png', undefined],
    ['banana.jpg', undefined],
    ['0123456789/apple.png', undefined],
    ...(LETTERED === undefined ? [] : [[`${LETTERED.toUpperCase()}/apple.png`, undefined] as [string, undefined]]),
    [A, undefined],
    [`${A}/`, undefined],
    [`${A}/${B}/x.png`, undefined]
  ]
  for (const [raw, file] of names) {
    t.equal(files.resolveName(raw)?.realPath, file, `${JSON.stringify(raw.slice(0, 60))} -> ${file ?? 'nothing'}`)
  }
})

t.test('options are checked when the resolver is created', async (t) => {
  t.throws(() => createFileResolver({ cacheDirs: ['relative/dir'] }), new TypeError('cacheDirs[0] must be an absolute path, got "relative/dir"'), 'relative cache dir')
  t.throws(() => createFileResolver({ cacheDirs: [tree.cacheA], homedir: '~' }), new TypeError('homedir must be an absolute path, got "~"'), 'relative homedir')
  t.throws(() => createFileResolver({ cacheDirs: [tree.cacheA, '/'] }), new TypeError('cacheDirs[1] must not be the filesystem root, got "/"'), 'the whole disk')
  t.throws(() => createFileResolver({ cacheDirs: ['/tmp/..'] }), new TypeError('cacheDirs[0] must not be the filesystem root, got "/tmp/.."'), 'the whole disk, spelled another way')
  t.throws(() => createFileResolver({ cacheDirs: 'nope' as unknown as string[] }), new TypeError('cacheDirs must be an array of absolute paths'), 'not an array')
  t.same(createFileResolver({ cacheDirs: [tree.cacheA + '/', tree.cacheB] }).roots, [tree.cacheA, tree.cacheB], 'roots are normalized and keep their order')
  t.same(createFileResolver({ cacheDirs: [tree.cacheA, tree.cacheB, tree.cacheA + '/'] }).roots, [tree.cacheA, tree.cacheB], 'a folder listed twice is one root')
})

t.test('no cache dirs: nothing is deliverable', async (t) => {
  const none = createFileResolver({ cacheDirs: [] })
  t.same(none.resolveReference(`${CONTAINER}/apple.png`, 'image'), { ok: false, reason: 'outside-roots' }, 'container path')
  t.equal(none.resolveName('apple.png'), undefined, 'name')
})

t.test('~ defaults to the home of the process', async (t) => {
  const home = createFileResolver({ cacheDirs: [tree.cacheA] })
  t.same(home.resolveReference('~/.ssh/apple.png', 'image'), { ok: true, delivery: { name: `${A}/apple.png`, root: realA, realPath: path.join(realA, 'apple.png'), kind: 'image' } }, 'expanded, then matched by name')
})

t.test('a cache dir created after start is picked up', async (t) => {
  const later = path.join(tree.dir, 'later')
  const resolver = createFileResolver({ cacheDirs: [later] })
  t.equal(resolver.resolveName(`${folderId(later)}/new.png`), undefined, 'nothing before the dir exists')
  t.same(resolver.resolveReference(path.join(later, 'new.png'), 'image'), { ok: false, reason: 'missing' }, 'missing before the dir exists')
  t.same(resolver.resolveReference('/elsewhere/new.png', 'image'), { ok: false, reason: 'outside-roots' }, 'no namesake before the dir exists')
  fs.mkdirSync(later)
  fs.writeFileSync(path.join(later, 'new.png'), 'new')
  t.equal(resolver.resolveName(`${folderId(later)}/new.png`)?.realPath, path.join(fs.realpathSync(later), 'new.png'), 'served once it exists')
})

t.test('a symlinked cache dir is used through its real path', async (t) => {
  const link = path.join(tree.dir, 'cache-link')
  fs.symlinkSync(tree.cacheA, link)
  const resolver = createFileResolver({ cacheDirs: [link] })
  // The id comes from the configured path, which stays the same when the link is moved.
  const expected = { ok: true, delivery: { name: `${folderId(link)}/sub/deep.png`, root: realA, realPath: path.join(realA, 'sub/deep.png'), kind: 'image' } }
  t.same(resolver.resolveReference(path.join(link, 'sub/deep.png'), 'image'), expected, 'by the configured path')
  t.same(resolver.resolveReference(path.join(realA, 'sub/deep.png'), 'image'), expected, 'by the real path')
})

t.test('a file that is gone between the link check and the stat is missing', async (t) => {
  // The window between realpathSync and statSync cannot be hit on purpose, so statSync
  // is made to fail for one file.
  const enoent = Object.assign(new Error('ENOENT: gone'), { code: 'ENOENT' })
  const statSync = ((file: fs.PathLike, options?: fs.StatSyncOptions) => {
    if (String(file).endsWith('gone.png')) throw enoent
    return fs.statSync(file, options)
  }) as typeof fs.statSync
  const { createFileResolver: create } = await t.mockImport<typeof import('../../src/files/resolver.js')>('../../src/files/resolver.js', {
    'node:fs': { ...fs, statSync, default: { ...fs, statSync } }
  })
  const racy = path.join(tree.dir, 'racy')
  fs.mkdirSync(racy)
  fs.writeFileSync(path.join(racy, 'gone.png'), 'gone')
  const resolver = create({ cacheDirs: [racy] })
  t.same(resolver.resolveReference(path.join(racy, 'gone.png'), 'image'), { ok: false, reason: 'missing' }, 'missing, not a crash')
})

t.test('a file imagegate may not read is unreadable, not delivered', async (t) => {
  // Tests run as root, which reads everything: the refusals are simulated here, and
  // test/routes/images-unreadable.test.ts shows them for real with an unprivileged server.
  const denied = (code: string): Error => Object.assign(new Error(`${code}: denied`), { code })
  const accessSync = ((file: fs.PathLike, mode?: number) => {
    if (String(file).endsWith('locked.png')) throw denied('EACCES')
    fs.accessSync(file, mode)
  }) as typeof fs.accessSync
  const realpathNative = ((file: fs.PathLike) => {
    if (String(file).includes('/closed/')) throw denied('EACCES')
    return fs.realpathSync.native(file)
  }) as typeof fs.realpathSync.native
  const realpathSync = Object.assign(fs.realpathSync.bind(fs), { native: realpathNative }) as typeof fs.realpathSync
  const mocked = { ...fs, accessSync, realpathSync }
  const { createFileResolver: create } = await t.mockImport<typeof import('../../src/files/resolver.js')>('../../src/files/resolver.js', {
    'node:fs': { ...mocked, default: mocked }
  })
  const dir = path.join(tree.dir, 'locked')
  fs.mkdirSync(path.join(dir, 'closed'), { recursive: true })
  fs.writeFileSync(path.join(dir, 'locked.png'), 'locked')
  fs.writeFileSync(path.join(dir, 'closed/in.png'), 'in a folder imagegate may not search')
  fs.writeFileSync(path.join(dir, 'open.png'), 'open')
  const resolver = create({ cacheDirs: [dir] })
  const id = folderId(dir)
  t.same(resolver.resolveReference(path.join(dir, 'locked.png'), 'image'), { ok: false, reason: 'unreadable' }, 'a file it may not read')
  t.same(resolver.resolveReference(path.join(dir, 'closed/in.png'), 'image'), { ok: false, reason: 'unreadable' }, 'a file in a folder it may not search')
  t.same(resolver.resolveReference(`${CONTAINER}/locked.png`, 'image'), { ok: false, reason: 'unreadable' }, 'matched by name, the reason is kept')
  t.equal(resolver.resolveName(`${id}/locked.png`), undefined, 'its name serves nothing')
  t.equal(resolver.resolveName(`${id}/open.png`)?.realPath, path.join(fs.realpathSync(dir), 'open.png'), 'a readable neighbour is served')
})

t.test('two folders holding the same name give two names, each serving its own file', async (t) => {
  const dir = t.testdir({
    cache: { images: { 'dup.png': 'first' } },
    profiles: { work: { cache: { images: { 'dup.png': 'second' } } } }
  })
  const first = path.join(dir, 'cache/images')
  const second = path.join(dir, 'profiles/work/cache/images')
  const resolver = createFileResolver({ cacheDirs: [first, second], homedir: dir })
  const one = resolver.resolveReference(path.join(first, 'dup.png'), 'image')
  const two = resolver.resolveReference(path.join(second, 'dup.png'), 'image')
  t.ok(one.ok && two.ok, 'both delivered')
  if (!one.ok || !two.ok) return
  t.equal(one.delivery.name, `${folderId(first)}/dup.png`, 'the first under its folder id')
  t.equal(two.delivery.name, `${folderId(second)}/dup.png`, 'the second under its own')
  t.not(one.delivery.name, two.delivery.name, 'two names')
  t.equal(fs.readFileSync(resolver.resolveName(two.delivery.name)?.realPath as string, 'utf8'), 'second', 'the second name serves the second file')
  t.equal(fs.readFileSync(resolver.resolveName(one.delivery.name)?.realPath as string, 'utf8'), 'first', 'the first name the first')
  // An agent in a container: its path is not ours, so the name decides, in the folder
  // whose path ends like the agent's, else in folder order.
  const read = (result: ReturnType<typeof resolver.resolveReference>): string => result.ok ? fs.readFileSync(result.delivery.realPath, 'utf8') : result.reason
  t.equal(read(resolver.resolveReference('/root/.hermes/profiles/work/cache/images/dup.png', 'image')), 'second', 'a profile\'s path picks that profile\'s folder, not the first one holding the name')
  t.equal(read(resolver.resolveReference('/root/.hermes/cache/images/dup.png', 'image')), 'first', 'the home\'s own path picks the home\'s folder')
  t.equal(read(resolver.resolveReference('/root/.hermes/profiles/other/cache/images/dup.png', 'image')), 'first', 'a profile not mounted: equal tails, the folder order decides')
  const reversed = createFileResolver({ cacheDirs: [second, first] }).resolveReference('/elsewhere/dup.png', 'image')
  t.equal(reversed.ok && reversed.delivery.name, `${folderId(second)}/dup.png`, 'a path that ends like no folder follows the folder order')
  t.equal(read(createFileResolver({ cacheDirs: [second, first] }).resolveReference('C:\\Users\\u\\dup.png', 'image')), 'second', 'a Windows path is matched by name in folder order')
  const respelled = createFileResolver({ cacheDirs: [first + '/./'] }).resolveReference(path.join(first, 'dup.png'), 'image')
  t.equal(respelled.ok && respelled.delivery.name, `${folderId(first)}/dup.png`, 'the id comes from the normalized path: a trailing slash changes nothing')
  t.match(folderId(first), /^[0-9a-f]{10}$/, 'ten hex digits')
})

t.test('the store is a folder like the others, looked up last', async (t) => {
  const dir = t.testdir({ cache: { 'a.png': 'cached' }, store: { 'a.png': 'stored', 'b.png': 'stored' } })
  const cache = path.join(dir, 'cache')
  const store = path.join(dir, 'store')
  const resolver = createFileResolver({ cacheDirs: [cache], storeDir: store })
  t.same(resolver.roots, [cache, store], 'cache dirs, then the store')
  t.equal(resolver.nameIn(store, 'b.png'), `${folderId(store)}/b.png`, 'a stored file is named under the store id')
  t.equal(resolver.resolveName(resolver.nameIn(store, 'a.png'))?.realPath, path.join(fs.realpathSync(store), 'a.png'), 'and served from the store')
  const byName = resolver.resolveReference('/elsewhere/a.png', 'image')
  t.equal(byName.ok && byName.delivery.name, `${folderId(cache)}/a.png`, 'by name, the cache dir comes first')
  t.throws(() => createFileResolver({ cacheDirs: [], storeDir: 'store' }), new TypeError('storeDir must be an absolute path, got "store"'), 'the store path is checked too')
})

t.test('with discovery, a folder created after start is found when a reference misses', async (t) => {
  const dir = t.testdir({ cache: { images: { 'old.png': 'old' } } })
  const first = path.join(dir, 'cache/images')
  const later = path.join(dir, 'profiles/new/cache/images')
  let clock = 1_000_000
  let looks = 0
  const found: string[] = []
  const resolver = createFileResolver({
    cacheDirs: [first],
    discover: () => {
      looks++
      return [first, ...fs.existsSync(later) ? [later] : []]
    },
    onFolderFound: (folder) => found.push(folder),
    now: () => clock
  })
  t.same(resolver.resolveReference(path.join(first, 'old.png'), 'image').ok, true, 'a hit')
  t.equal(looks, 0, 'a hit looks for nothing')
  t.same(resolver.resolveReference(path.join(later, 'new.png'), 'image'), { ok: false, reason: 'outside-roots' }, 'before the folder exists')
  t.equal(looks, 1, 'the first miss looks once')
  fs.mkdirSync(later, { recursive: true })
  fs.writeFileSync(path.join(later, 'new.png'), 'new')
  t.same(resolver.resolveReference(path.join(later, 'new.png'), 'image'), { ok: false, reason: 'outside-roots' }, 'within the interval: not yet')
  t.equal(looks, 1, 'misses in a row do not look again')
  clock += DEFAULT_REDISCOVER_MS
  const hit = resolver.resolveReference(path.join(later, 'new.png'), 'image')
  t.same(hit, { ok: true, delivery: { name: `${folderId(later)}/new.png`, root: fs.realpathSync(later), realPath: path.join(fs.realpathSync(later), 'new.png'), kind: 'image' } }, 'found after the interval')
  t.equal(looks, 2, 'looked once more')
  t.same(found, [later], 'the new folder was reported, the known one not')
  t.same(resolver.roots, [first, later], 'and added after the known folders')
  t.equal(resolver.resolveName(`${folderId(later)}/new.png`)?.realPath, path.join(fs.realpathSync(later), 'new.png'), 'its name serves it')
  clock += DEFAULT_REDISCOVER_MS
  t.same(resolver.resolveReference(path.join(first, 'gone.png'), 'image'), { ok: false, reason: 'missing' }, 'a miss that finds nothing new')
  t.equal(looks, 3, 'looked, found nothing new')
  t.same(found, [later], 'and reported nothing')
})

t.test('the interval between looks can be set', async (t) => {
  let looks = 0
  const resolver = createFileResolver({ cacheDirs: [tree.cacheA], discover: () => { looks++; return [] }, rediscoverMs: 0 })
  resolver.resolveReference('/elsewhere/none.png', 'image')
  resolver.resolveReference('/elsewhere/none.png', 'image')
  t.equal(looks, 2, 'every miss looks with an interval of 0')
})

t.test('without discovery, a miss looks for nothing', async (t) => {
  const resolver = createFileResolver({ cacheDirs: [tree.cacheA] })
  t.same(resolver.resolveReference('/elsewhere/none.png', 'image'), { ok: false, reason: 'outside-roots' }, 'a miss')
  t.same(resolver.roots, [tree.cacheA], 'the folders stay as given')
})

t.test('nested folders, or one folder under two paths: each file still has one name', async (t) => {
  const dir = t.testdir({ outer: { 'top.png': 'top', images: { 'in.png': 'inner' }, store: { 'kept.png': 'stored' } } })
  const outer = path.join(dir, 'outer')
  const inner = path.join(outer, 'images')
  const store = path.join(outer, 'store')
  fs.symlinkSync(outer, path.join(dir, 'again'))
  const again = path.join(dir, 'again')
  const resolver = createFileResolver({ cacheDirs: [outer, inner, again], storeDir: store })
  const realOuter = fs.realpathSync(outer)
  const nameOf = (dest: string): string | false => {
    const result = resolver.resolveReference(dest, 'image')
    return result.ok && result.delivery.name
  }
  t.equal(nameOf(path.join(inner, 'in.png')), `${folderId(inner)}/in.png`, 'a file of the inner folder is named there')
  t.equal(nameOf(path.join(again, 'images/in.png')), `${folderId(inner)}/in.png`, 'also when written through another path')
  t.equal(nameOf(path.join(store, 'kept.png')), `${folderId(store)}/kept.png`, 'a stored file is named in the store, though a cache holds it too')
  t.equal(nameOf(path.join(again, 'top.png')), `${folderId(outer)}/top.png`, 'one folder under two paths: the first listed names it')
  t.equal(resolver.resolveName(`${folderId(inner)}/in.png`)?.realPath, path.join(realOuter, 'images/in.png'), 'the one name serves it')
  t.equal(resolver.resolveName(`${folderId(outer)}/images/in.png`), undefined, 'its spelling through the enclosing folder does not')
  t.equal(resolver.resolveName(`${folderId(outer)}/store/kept.png`), undefined, 'nor a stored file\'s through a cache')
  t.equal(resolver.resolveName(`${folderId(again)}/top.png`), undefined, 'nor through the second path of the same folder')
  t.equal(resolver.resolveName(`${folderId(outer)}/top.png`)?.realPath, path.join(realOuter, 'top.png'), 'while the first path serves it')
})

// Old link shape covered: `/images/<path>?sig=…`, the name without a folder id that
// releases before folder ids wrote, e.g. `apple.png` or `sub/deep.png`.
t.test('resolveLegacyName: an old name finds its file as before, under its one current name', async (t) => {
  const names: Array<[raw: string, expected: Hit | undefined, why: string]> = [
    ['apple.png', inA('apple.png', 'apple.png'), 'the first folder holding the name wins'],
    ['sub/deep.png', inA('sub/deep.png', 'sub/deep.png'), 'a path in a subfolder, shadowing B\'s'],
    ['sub/inner/deeper.webp', inA('sub/inner/deeper.webp', 'sub/inner/deeper.webp'), 'two folders deep'],
    ['banana.jpg', inB('banana.jpg', 'banana.jpg'), 'only in the second folder'],
    // cache A holds a folder called x.png: not deliverable, so B's file, as before.
    ['x.png', inB('x.png', 'x.png'), 'a folder named like an image is passed over'],
    ['a%20b%20%281%29.png', inA('a%20b%20%281%29.png', 'a b (1).png'), 'an encoded name'],
    ['alias.png', inA('alias.png', 'apple.png'), 'a symlink inside the folder keeps its own name'],
    ['sound.mp3', inA('sound.mp3', 'sound.mp3', 'media'), 'a media file'],
    ['UPPER.PNG', inA('UPPER.PNG', 'UPPER.PNG'), 'case kept'],
    ['upper.png', undefined, 'case-sensitive'],
    ['gone.png', undefined, 'in no folder'],
    ['a%20b%20(1).png', undefined, 'a spelling encodeName does not produce'],
    ['%61pple.png', undefined, 'a needless escape'],
    ['sub%2Fdeep.png', undefined, 'an encoded slash'],
    ['../secret.png', undefined, 'a climb'],
    ['%2e%2e/secret.png', undefined, 'an encoded climb'],
    ['sub/../apple.png', undefined, 'a climb inside'],
    ['.hidden.png', undefined, 'a dotfile'],
    ['.dotdir/in.png', undefined, 'a dot-folder'],
    ['escape.png', undefined, 'a symlink out of the folder'],
    ['escape-dir/secret.png', undefined, 'a symlinked folder out of the folder'],
    ['to-dot.png', undefined, 'a symlink to a dotfile'],
    ['looks.png', undefined, 'a symlink to a text file'],
    ['dangling.png', undefined, 'a dangling symlink'],
    ['notes.txt', undefined, 'not an image'],
    ['sub', undefined, 'a folder'],
    ['sub/', undefined, 'a folder with a slash'],
    ['', undefined, 'empty'],
    ['apple.png%00.png', undefined, 'an encoded NUL'],
    [`${'a'.repeat(5000)}.png`, undefined, 'over-long'],
    // A current name is not an old one: no cache folder holds a folder named like an id.
    [`${A}/apple.png`, undefined, 'a current name']
  ]
  for (const [raw, expected, why] of names) {
    const got = files.resolveLegacyName(raw)
    const label = `${why}: ${JSON.stringify(raw.slice(0, 40))}`
    if (expected === undefined) {
      t.equal(got, undefined, `${label} -> nothing`)
      continue
    }
    t.same(got, { name: expected.name, root: expected.root, realPath: expected.file, kind: expected.kind }, `${label} -> ${expected.name}`)
    // The one name the old one points at serves the same file.
    t.same(files.resolveName(expected.name), got, `${label}: its current name serves it`)
  }
})

t.test('resolveLegacyName: the folder order decides, the store last, nested files named in the deepest folder', async (t) => {
  const dir = t.testdir({
    first: { 'dup.png': 'first' },
    second: { 'dup.png': 'second', 'only.png': 'second only' },
    store: { 'dup.png': 'stored', 'kept.png': 'stored' },
    outer: { images: { 'in.png': 'inner' } }
  })
  const at = (name: string): string => path.join(dir, name)
  const resolver = createFileResolver({ cacheDirs: [at('first'), at('second'), at('outer'), at('outer/images')], storeDir: at('store') })
  const nameOf = (raw: string): string | undefined => resolver.resolveLegacyName(raw)?.name
  t.equal(nameOf('dup.png'), `${folderId(at('first'))}/dup.png`, 'the first folder holding the name')
  t.equal(nameOf('only.png'), `${folderId(at('second'))}/only.png`, 'else the next')
  t.equal(nameOf('kept.png'), `${folderId(at('store'))}/kept.png`, 'the store after every cache folder')
  t.equal(nameOf('images/in.png'), `${folderId(at('outer/images'))}/in.png`, 'found through the enclosing folder, named in the inner one')
  fs.unlinkSync(path.join(at('first'), 'dup.png'))
  t.equal(nameOf('dup.png'), `${folderId(at('second'))}/dup.png`, 'once the first loses it, the next folder holding it')
  const reversed = createFileResolver({ cacheDirs: [at('second'), at('first')] })
  t.equal(reversed.resolveLegacyName('only.png')?.name, `${folderId(at('second'))}/only.png`, 'the order is the configured one')
})
