import fs from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { createCompactStore } from '../../src/files/compact-store.js'

const name = (n: number, format = 'webp'): string => `${n.toString(16).padStart(32, '0')}.${format}`

t.test('stores renderings and removes the least recently used past the bound', async (t) => {
  const dir = path.join(t.testdir(), 'compact')
  const store = createCompactStore({ dir, maxTotalBytes: 30 })
  t.ok(fs.statSync(dir).isDirectory(), 'the folder is created')
  t.equal(store.dir, dir, 'its path')
  t.equal(store.put(name(1), Buffer.alloc(10, 1)), path.join(dir, name(1)), 'first stored')
  t.equal(store.put(name(2, 'avif'), Buffer.alloc(10, 2)), path.join(dir, name(2, 'avif')), 'second stored')
  t.equal(store.put(name(3), Buffer.alloc(10, 3)), path.join(dir, name(3)), 'third stored')
  t.equal(store.bytes, 30, 'at the bound')
  t.equal(store.get(name(1)), path.join(dir, name(1)), 'the first is used again')
  store.put(name(4), Buffer.alloc(10, 4))
  t.equal(store.bytes, 30, 'still at the bound')
  t.notOk(fs.existsSync(path.join(dir, name(2, 'avif'))), 'the least recently used one is removed from disk')
  t.equal(store.get(name(2, 'avif')), undefined, 'and is no longer found')
  t.ok(fs.existsSync(path.join(dir, name(1))), 'the one used recently stays')
  t.equal(store.put(name(5), Buffer.alloc(31)), undefined, 'a rendering larger than the bound is not kept')
  t.equal(store.put(name(4), Buffer.alloc(5, 4)), path.join(dir, name(4)), 'a rendering stored again replaces its old size')
  t.equal(store.bytes, 25, 'counted once')
})

t.test('a rendering removed by hand is encoded again; foreign files are left alone', async (t) => {
  const dir = t.testdir({ 'notes.txt': 'not the store\'s', [name(9)]: Buffer.alloc(8) })
  const store = createCompactStore({ dir, maxTotalBytes: 100 })
  t.equal(store.bytes, 8, 'renderings found at start are counted, other files are not')
  fs.unlinkSync(path.join(dir, name(9)))
  t.equal(store.get(name(9)), undefined, 'gone from disk: not found')
  t.equal(store.bytes, 0, 'and no longer counted')
  t.equal(store.get(name(8)), undefined, 'never stored: not found')
  t.ok(fs.existsSync(path.join(dir, 'notes.txt')), 'the foreign file is untouched')
})

t.test('the bound holds across restarts, oldest renderings out first', async (t) => {
  const dir = t.testdir({ [name(1)]: Buffer.alloc(10), [name(2)]: Buffer.alloc(10), [name(3)]: Buffer.alloc(10) })
  const old = new Date(Date.now() - 60_000)
  fs.utimesSync(path.join(dir, name(2)), old, old)
  const store = createCompactStore({ dir, maxTotalBytes: 20 })
  t.equal(store.bytes, 20, 'trimmed to the bound at start')
  t.notOk(fs.existsSync(path.join(dir, name(2))), 'the oldest is removed')
  t.ok(fs.existsSync(path.join(dir, name(1))) && fs.existsSync(path.join(dir, name(3))), 'the others stay')
})

t.test('a write that fails keeps nothing and leaves no temporary file', async (t) => {
  const dir = t.testdir()
  const store = createCompactStore({ dir, maxTotalBytes: 100 })
  // A folder where the rendering should go makes the rename fail.
  fs.mkdirSync(path.join(dir, name(1)))
  fs.writeFileSync(path.join(dir, name(1), 'x'), 'x')
  t.equal(store.put(name(1), Buffer.alloc(4)), undefined, 'not stored')
  t.equal(store.bytes, 0, 'nothing counted')
  t.same(fs.readdirSync(dir), [name(1)], 'no temporary file is left')
})

t.test('a rendering removed by hand before its eviction, a folder named like one, a write that cannot start', async (t) => {
  const dir = t.testdir({ [name(7)]: { 'inside.webp': 'x' } })
  const store = createCompactStore({ dir, maxTotalBytes: 20 })
  t.equal(store.bytes, 0, 'a folder named like a rendering is not counted')
  store.put(name(1), Buffer.alloc(10))
  store.put(name(2), Buffer.alloc(10))
  fs.unlinkSync(path.join(dir, name(1)))
  t.ok(store.put(name(3), Buffer.alloc(10)), 'evicting a file already gone is no error')
  t.equal(store.bytes, 20, 'the bound holds')
  // Something in the way of the temporary file itself: the write fails before the rename.
  fs.mkdirSync(path.join(dir, `${name(4)}.${process.pid}.tmp`))
  t.equal(store.put(name(4), Buffer.alloc(4)), undefined, 'not stored')
  t.ok(fs.statSync(path.join(dir, name(7))).isDirectory(), 'the folder is left alone')
})
