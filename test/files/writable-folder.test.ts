import fs from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { ensureWritableFolder } from '../../src/files/writable-folder.js'

// What an unprivileged user meets (EACCES on a folder of another uid) is tested through
// the CLI run as nobody in cli.test.ts; tests run as root, whom access() never refuses.

t.test('a missing folder is made, parents too, private to this user', async (t) => {
  const dir = t.testdir({})
  const made = path.join(dir, 'state', 'store')
  ensureWritableFolder(made)
  t.ok(fs.statSync(made).isDirectory(), 'made')
  t.equal(fs.statSync(made).mode & 0o777, 0o700 & ~process.umask(), 'mode 0700 (less the umask)')
  ensureWritableFolder(made)
  t.pass('a folder that exists is taken as it is')
})

t.test('a path that cannot be a folder throws the system error', async (t) => {
  const dir = t.testdir({ 'plain-file': 'x' })
  t.throws(() => { ensureWritableFolder(path.join(dir, 'plain-file')) }, { code: 'EEXIST' }, 'a file where the folder would be')
  t.throws(() => { ensureWritableFolder(path.join(dir, 'plain-file', 'store')) }, { code: 'ENOTDIR' }, 'a file on the way')
})
