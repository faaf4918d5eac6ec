import fs from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { createBoundedFolder } from '../../src/files/bounded-folder.js'
import type { BoundedFolderOptions } from '../../src/files/bounded-folder.js'

const NAMES = /^[a-z]\.bin$/
const open = (dir: string, options: Partial<BoundedFolderOptions> = {}) =>
  createBoundedFolder({ dir, maxTotalBytes: 30, names: NAMES, fileMode: 0o640, ...options })
const onDisk = (dir: string): string[] => fs.readdirSync(dir).sort()

t.test('eviction order: least recently written or used first', async (t) => {
  const dir = t.testdir()
  const evicted: string[] = []
  const folder = open(dir, { onEvict: (name) => evicted.push(name) })
  // [step, what it does, evicted so far, files on disk after it]; each file is 10 bytes.
  const steps: Array<[string, () => void, string[], string[]]> = [
    ['a, b, c written', () => { for (const name of ['a', 'b', 'c']) folder.put(`${name}.bin`, Buffer.alloc(10)) }, [], ['a.bin', 'b.bin', 'c.bin']],
    ['d written: a, the oldest, goes', () => folder.put('d.bin', Buffer.alloc(10)), ['a.bin'], ['b.bin', 'c.bin', 'd.bin']],
    ['b got, e written: c goes', () => { folder.get('b.bin'); folder.put('e.bin', Buffer.alloc(10)) }, ['a.bin', 'c.bin'], ['b.bin', 'd.bin', 'e.bin']],
    ['d touched, f written: b goes', () => { folder.touch('d.bin'); folder.put('f.bin', Buffer.alloc(10)) }, ['a.bin', 'c.bin', 'b.bin'], ['d.bin', 'e.bin', 'f.bin']],
    ['e written again (now 5 bytes): newest, nothing goes', () => folder.put('e.bin', Buffer.alloc(5)), ['a.bin', 'c.bin', 'b.bin'], ['d.bin', 'e.bin', 'f.bin']],
    ['g of 20 bytes: d, then f, go until it fits', () => folder.put('g.bin', Buffer.alloc(20)), ['a.bin', 'c.bin', 'b.bin', 'd.bin', 'f.bin'], ['e.bin', 'g.bin']]
  ]
  for (const [step, act, gone, kept] of steps) {
    act()
    t.same(evicted, gone, `${step}: evicted ${gone.join(', ') || 'nothing'}`)
    t.same(onDisk(dir), kept, `${step}: on disk ${kept.join(', ')}`)
  }
  t.equal(folder.bytes, 25, 'e (5) and g (20) counted')
})

t.test('the size bound', async (t) => {
  const dir = t.testdir()
  const folder = open(dir)
  t.equal(folder.put('a.bin', Buffer.alloc(30)), path.join(dir, 'a.bin'), 'a file exactly the bound is kept')
  t.equal(folder.bytes, 30, 'the bound is inclusive')
  t.equal(folder.put('b.bin', Buffer.alloc(31)), undefined, 'a file larger than the bound is not kept')
  t.same(onDisk(dir), ['a.bin'], 'and not written, nothing evicted for it')
  t.equal(folder.put('c.bin', Buffer.alloc(1)), path.join(dir, 'c.bin'), 'one byte more evicts the rest')
  t.same(onDisk(dir), ['c.bin'], 'only the newest is left')
  t.equal(folder.bytes, 1, 'counted')
  const none = open(path.join(dir, 'none'), { maxTotalBytes: 0 })
  t.equal(none.put('a.bin', Buffer.alloc(0)), path.join(dir, 'none', 'a.bin'), 'an empty file fits a bound of 0')
  t.equal(none.put('b.bin', Buffer.alloc(1)), undefined, 'nothing else does')
})

t.test('get, touch and put of what is and is not held', async (t) => {
  const dir = path.join(t.testdir(), 'new', 'folder')
  const folder = open(dir)
  t.equal(folder.dir, dir, 'the absolute folder')
  t.equal(fs.statSync(dir).mode & 0o777, 0o700, 'created, readable by its owner only')
  t.equal(folder.get('a.bin'), undefined, 'never written: not found')
  folder.touch('a.bin')
  t.equal(folder.bytes, 0, 'touching an unknown name changes nothing')
  t.equal(folder.put('a.bin', Buffer.from('hello')), path.join(dir, 'a.bin'), 'written')
  t.equal(fs.readFileSync(path.join(dir, 'a.bin'), 'utf8'), 'hello', 'with its bytes')
  t.equal(fs.statSync(path.join(dir, 'a.bin')).mode & 0o777, 0o640, 'with the mode asked for')
  t.equal(folder.get('a.bin'), path.join(dir, 'a.bin'), 'found')
  fs.unlinkSync(path.join(dir, 'a.bin'))
  t.equal(folder.get('a.bin'), undefined, 'removed by hand: not found')
  t.equal(folder.bytes, 0, 'and forgotten')
  t.throws(() => folder.put('../a.bin', Buffer.alloc(1)), { name: 'TypeError', message: /file name "\.\.\/a\.bin" does not match/ }, 'a name the folder would not find again is refused')
  t.same(onDisk(dir), [], 'nothing written for it')
})

t.test('in use: a file evicted while it is read is read to the end', async (t) => {
  const dir = t.testdir()
  const big = Buffer.alloc(256 * 1024, 7)
  const folder = open(dir, { maxTotalBytes: big.length })
  const file = folder.put('a.bin', big) as string
  const reading = fs.createReadStream(file, { highWaterMark: 1024 })
  await new Promise<void>((resolve) => reading.once('readable', resolve))
  folder.put('b.bin', Buffer.alloc(big.length, 9))
  t.notOk(fs.existsSync(file), 'its name is gone')
  const chunks: Buffer[] = []
  for await (const piece of reading) chunks.push(piece as Buffer)
  t.same(Buffer.concat(chunks), big, 'the open stream still gets every byte')
})

t.test('writes: never half a file, nothing kept when they fail', async (t) => {
  const dir = t.testdir()
  const folder = open(dir)
  folder.put('a.bin', Buffer.alloc(10, 1))
  // A folder where the temporary file goes: the write fails before anything is renamed.
  const temporary = path.join(dir, `b.bin.${process.pid}.tmp`)
  fs.mkdirSync(temporary)
  t.equal(folder.put('b.bin', Buffer.alloc(4)), undefined, 'the write fails')
  fs.rmdirSync(temporary)
  // A folder where the file goes: the rename fails, and the temporary file is removed.
  fs.mkdirSync(path.join(dir, 'c.bin'))
  fs.writeFileSync(path.join(dir, 'c.bin', 'x'), 'x')
  t.equal(folder.put('c.bin', Buffer.alloc(4)), undefined, 'the rename fails')
  t.same(onDisk(dir), ['a.bin', 'c.bin'], 'no temporary file is left')
  t.equal(folder.bytes, 10, 'neither is counted')
  fs.unlinkSync(path.join(dir, 'a.bin'))
  folder.put('d.bin', Buffer.alloc(10))
  folder.put('e.bin', Buffer.alloc(10))
  t.ok(folder.put('f.bin', Buffer.alloc(10)), 'evicting a file removed by hand is no error')
  t.equal(folder.bytes, 30, 'the bound holds')
})

t.test('restart: what is on disk is counted, oldest out first, foreign files left alone', async (t) => {
  const dir = t.testdir({
    'a.bin': Buffer.alloc(10),
    'b.bin': Buffer.alloc(10),
    'c.bin': Buffer.alloc(10),
    'd.bin': Buffer.alloc(10),
    'notes.txt': 'not the folder\'s',
    'e.bin.123.tmp': Buffer.alloc(100),
    'f.bin': { 'inside.bin': 'a folder named like a file' },
    'g.bin': t.fixture('symlink', 'a.bin')
  })
  // Modification times: c oldest, then a and d (same time: by name), b newest.
  const at = (name: string, seconds: number): void => { fs.utimesSync(path.join(dir, name), seconds, seconds) }
  at('c.bin', 1000)
  at('a.bin', 2000)
  at('d.bin', 2000)
  at('b.bin', 3000)
  const same = open(dir, { maxTotalBytes: 40 })
  t.equal(same.bytes, 40, 'the four files are counted; foreign names, folders, links and temporary files are not')
  const evicted: string[] = []
  const lower = open(dir, { maxTotalBytes: 15, onEvict: (name) => evicted.push(name) })
  t.same(evicted, ['c.bin', 'a.bin', 'd.bin'], 'a lower bound removes the oldest at start, names deciding between equal times')
  t.equal(lower.bytes, 10, 'the rest is counted')
  t.same(onDisk(dir), ['b.bin', 'e.bin.123.tmp', 'f.bin', 'g.bin', 'notes.txt'], 'files it does not own are left alone')
  lower.put('h.bin', Buffer.alloc(10))
  t.same(evicted, ['c.bin', 'a.bin', 'd.bin', 'b.bin'], 'after the restart, the oldest on disk is the least recently used')
})
