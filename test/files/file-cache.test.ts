import fs from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { createFileCache } from '../../src/files/file-cache.js'

t.test('reads once, serves from memory while the file is unchanged', async (t) => {
  const dir = t.testdir({ 'a.png': 'first version' })
  const file = path.join(dir, 'a.png')
  const cache = createFileCache()
  const first = cache.get(file)
  t.equal(first?.bytes.toString(), 'first version', 'the bytes')
  const stat = fs.statSync(file)
  t.equal(first?.etag, `W/"${stat.size.toString(16)}-${stat.mtime.getTime().toString(16)}"`, 'an ETag in @fastify/send\'s format')
  t.equal(first?.lastModified, stat.mtime.toUTCString(), 'Last-Modified')
  t.equal(cache.get(file), first, 'the same entry while nothing changed')
  fs.writeFileSync(file, 'second, longer version')
  t.equal(cache.get(file)?.bytes.toString(), 'second, longer version', 'a regenerated file is read again')
  t.equal(cache.bytes, 22, 'the old bytes are no longer counted')
  fs.rmSync(file)
  t.equal(cache.get(file), undefined, 'a removed file is not served from memory')
})

t.test('bounded by file size and total size, least recently used out first', async (t) => {
  const dir = t.testdir({ 'a.png': 'a'.repeat(40), 'b.png': 'b'.repeat(40), 'c.png': 'c'.repeat(40), 'big.png': 'x'.repeat(101) })
  const cache = createFileCache({ maxFileBytes: 100, maxTotalBytes: 100 })
  const at = (name: string): string => path.join(dir, name)
  t.equal(cache.get(at('big.png')), undefined, 'a file over the per-file bound is not cached')
  t.equal(cache.bytes, 0, 'nothing kept')
  const a = cache.get(at('a.png'))
  cache.get(at('b.png'))
  t.equal(cache.get(at('a.png')), a, 'a is used again, so b is now the oldest')
  cache.get(at('c.png'))
  t.equal(cache.bytes, 80, 'two files fit')
  t.equal(cache.get(at('a.png')), a, 'a stayed')
  t.not(cache.get(at('b.png')), undefined, 'b was evicted and is read again')
})

t.test('an unreadable path is not cached', async (t) => {
  const dir = t.testdir({ folder: {} })
  t.equal(createFileCache().get(path.join(dir, 'folder')), undefined, 'a folder cannot be read as a file')
  t.equal(createFileCache().get(path.join(dir, 'missing.png')), undefined, 'a missing file')
})

t.test('a file that changes while it is read is not kept', async (t) => {
  // The window between the stat and the read cannot be hit on purpose: the file grows
  // right after it was measured, once.
  let grown = false
  const statSync = ((file: fs.PathLike, options?: fs.StatSyncOptions) => {
    const stat = fs.statSync(file, options)
    if (!grown) {
      grown = true
      fs.appendFileSync(file, ' and more')
    }
    return stat
  }) as typeof fs.statSync
  const { createFileCache: create } = await t.mockImport<typeof import('../../src/files/file-cache.js')>('../../src/files/file-cache.js', {
    'node:fs': { ...fs, statSync, default: { ...fs, statSync } }
  })
  const file = path.join(t.testdir({ 'a.png': 'being written' }), 'a.png')
  const cache = create()
  t.equal(cache.get(file), undefined, 'not served from memory')
  t.equal(cache.bytes, 0, 'nothing kept')
  t.equal(cache.get(file)?.bytes.toString(), 'being written and more', 'read again once it holds still')
})
