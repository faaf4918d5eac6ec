import fs from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { createFileResolver, type Accept, type Rejection } from '../../src/files/resolver.js'
import { buildTree } from '../fixtures/files/tree.js'

const tree = buildTree(t)
const realA = fs.realpathSync(tree.cacheA)
const realB = fs.realpathSync(tree.cacheB)
const files = createFileResolver({ cacheDirs: [tree.cacheA, tree.cacheB], homedir: tree.dir })

// The agent runs in a container: this is where it believes its cache lives.
const CONTAINER = '/root/.hermes/cache/images'

interface Hit { name: string, root: string, file: string, kind: 'image' | 'media' }
type Case = [dest: string, accept: Accept, expected: Hit | Rejection]

const inA = (name: string, file: string, kind: 'image' | 'media' = 'image'): Hit => ({ name, root: realA, file: path.join(realA, file), kind })
const inB = (name: string, file: string, kind: 'image' | 'media' = 'image'): Hit => ({ name, root: realB, file: path.join(realB, file), kind })

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
  // Inside cache B, but A holds the same name first: the link serves what the name serves.
  [path.join(tree.cacheB, 'apple.png'), 'image', inA('apple.png', 'apple.png')],
  [path.join(tree.cacheB, 'sub/deep.png'), 'image', inA('sub/deep.png', 'sub/deep.png')],
  // Media only where the caller accepts it.
  [path.join(tree.cacheA, 'sound.mp3'), 'media', inA('sound.mp3', 'sound.mp3', 'media')],
  [path.join(tree.cacheA, 'sound.mp3'), 'image', 'extension'],
  [`${CONTAINER}/voice.opus`, 'media', inA('voice.opus', 'voice.opus', 'media')],
  [`${CONTAINER}/clip.mov`, 'media', inA('clip.mov', 'clip.mov', 'media')],
  [`${CONTAINER}/apple.png`, 'media', inA('apple.png', 'apple.png')],
  [path.join(tree.cacheA, 'fake.mp3.png'), 'media', inA('fake.mp3.png', 'sound.mp3', 'media')],
  [path.join(tree.cacheA, 'fake.mp3.png'), 'image', 'extension'],

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
  [path.join(tree.cacheA, 'notes.txt'), 'media', 'extension'],
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
    ['apple.png', path.join(realA, 'apple.png')],
    ['x.png', path.join(realB, 'x.png')],
    ['sub/deep.png', path.join(realA, 'sub/deep.png')],
    ['sub/inner/deeper.webp', path.join(realA, 'sub/inner/deeper.webp')],
    ['a%20b%20%281%29.png', path.join(realA, 'a b (1).png')],
    ['sound.mp3', path.join(realA, 'sound.mp3')],
    ['alias.png', path.join(realA, 'apple.png')],
    ['UPPER.PNG', path.join(realA, 'UPPER.PNG')],
    ['upper.png', undefined],
    ['Apple.png', undefined],
    ['a%20b%20(1).png', undefined],
    ['apple%2Epng', undefined],
    ['%61pple.png', undefined],
    ['sub%2Fdeep.png', undefined],
    ['../secret.png', undefined],
    ['%2e%2e/secret.png', undefined],
    ['.hidden.png', undefined],
    ['%2Ehidden.png', undefined],
    ['.dotdir/in.png', undefined],
    ['escape.png', undefined],
    ['escape-dir/secret.png', undefined],
    ['to-dot.png', undefined],
    ['looks.png', undefined],
    ['dangling.png', undefined],
    ['notes.txt', undefined],
    ['x.png/inside-a-dir.png', path.join(realA, 'x.png/inside-a-dir.png')],
    ['sub', undefined],
    ['sub/', undefined],
    ['', undefined],
    ['apple.png%00.png', undefined],
    ['a'.repeat(5000) + '.png', undefined]
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
})

t.test('no cache dirs: nothing is deliverable', async (t) => {
  const none = createFileResolver({ cacheDirs: [] })
  t.same(none.resolveReference(`${CONTAINER}/apple.png`, 'image'), { ok: false, reason: 'outside-roots' }, 'container path')
  t.equal(none.resolveName('apple.png'), undefined, 'name')
})

t.test('~ defaults to the home of the process', async (t) => {
  const home = createFileResolver({ cacheDirs: [tree.cacheA] })
  t.same(home.resolveReference('~/.ssh/apple.png', 'image'), { ok: true, delivery: { name: 'apple.png', root: realA, realPath: path.join(realA, 'apple.png'), kind: 'image' } }, 'expanded, then matched by name')
})

t.test('a cache dir created after start is picked up', async (t) => {
  const later = path.join(tree.dir, 'later')
  const resolver = createFileResolver({ cacheDirs: [later] })
  t.equal(resolver.resolveName('new.png'), undefined, 'nothing before the dir exists')
  t.same(resolver.resolveReference(path.join(later, 'new.png'), 'image'), { ok: false, reason: 'missing' }, 'missing before the dir exists')
  t.same(resolver.resolveReference('/elsewhere/new.png', 'image'), { ok: false, reason: 'outside-roots' }, 'no namesake before the dir exists')
  fs.mkdirSync(later)
  fs.writeFileSync(path.join(later, 'new.png'), 'new')
  t.equal(resolver.resolveName('new.png')?.realPath, path.join(fs.realpathSync(later), 'new.png'), 'served once it exists')
})

t.test('a symlinked cache dir is used through its real path', async (t) => {
  const link = path.join(tree.dir, 'cache-link')
  fs.symlinkSync(tree.cacheA, link)
  const resolver = createFileResolver({ cacheDirs: [link] })
  const expected = { ok: true, delivery: { name: 'sub/deep.png', root: realA, realPath: path.join(realA, 'sub/deep.png'), kind: 'image' } }
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
