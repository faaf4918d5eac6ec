// `/images/` against a traversal corpus sent as raw request lines to a whole imagegate,
// with signing on (and a valid signature for every hostile name, so the signature is not
// what stops them) and with signing off, so the path checks are the only guard.
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import t from 'tap'
import type { Test } from 'tap'
import { folderId } from '../../src/files/names.js'
import type { Gate } from '../fixtures/gate.js'
import { startProxy } from '../fixtures/proxy.js'
import type { MockUpstream } from '../fixtures/mock-upstream.js'
import { connectionCount, rawRequest } from '../fixtures/raw-socket.js'
import type { RawResponse } from '../fixtures/raw-socket.js'

// A marker repeated so that any 15 bytes of the file hold a whole `SECRET`: a leaked
// range is caught as surely as the whole file.
const MARKER = 'SECRET'
const SECRET = Buffer.from(`<<${MARKER}>>`.repeat(64))
const LOWER = Buffer.from('\x89PNG\r\n\x1a\nlowercase a.png')
const UPPER = Buffer.from('\x89PNG\r\n\x1a\nUPPERCASE A.png')
const DEEP = Buffer.from('\x89PNG\r\n\x1a\nsub/deep.png')
const IN_B = Buffer.from('\x89PNG\r\n\x1a\nb.png in cache B')

// Node's default --max-http-header-size: a longer request line never reaches imagegate.
const MAX_HEADER_SIZE = 16 * 1024

/**
 * The secret sits above the cache dirs (`top`) and next to them (`srv`), in a dotfile
 * and a dot-dir inside them, and behind symlinks that point out of them.
 */
const top = t.testdir({
  'secret.png': SECRET,
  srv: {
    'secret.png': SECRET,
    passwd: SECRET,
    cacheA: {
      'a.png': LOWER,
      'A.png': UPPER,
      sub: { 'deep.png': DEEP },
      'dir.png': {},
      '.hidden.png': SECRET,
      '.git': { 'config.png': SECRET },
      'escape.png': t.fixture('symlink', '../secret.png'),
      'up.png': t.fixture('symlink', '../../secret.png'),
      'escape-dir': t.fixture('symlink', '..'),
      'to-hidden.png': t.fixture('symlink', '.hidden.png'),
      'loop.png': t.fixture('symlink', 'loop.png'),
      'to-b.png': t.fixture('symlink', '../cacheB/b.png')
    },
    cacheB: { 'b.png': IN_B }
  }
})
const cacheA = path.join(top, 'srv', 'cacheA')
const cacheB = path.join(top, 'srv', 'cacheB')
// Absolute links, which no relative-path check would notice.
fs.symlinkSync(path.join(top, 'secret.png'), path.join(cacheA, 'absolute.png'))
fs.symlinkSync('/etc/passwd', path.join(cacheA, 'passwd.png'))
// A FIFO would block a reader forever: it must be refused before anything opens it.
execFileSync('mkfifo', [path.join(cacheA, 'fifo.png')])

/** Every way to write `..` that some decoder, router or file API has turned into `..`. */
const DOT_DOTS = [
  '..', '%2e%2e', '%2E%2E', '.%2e', '%2e.', '%252e%252e', '%25252e%25252e', '%c0%ae%c0%ae',
  '%uff0e%uff0e', '%EF%BC%8E%EF%BC%8E', '..%00', '...', '.. ', '..%20'
]
/** Every way to write a separator. */
const SEPARATORS = [
  '/', '%2f', '%2F', '%252f', '\\', '%5c', '%5C', '%255c', '//', '/./', '%c0%af', '%e0%80%af', '/%2e/', '\\/'
]
/** Where `..` should lead: the secret next to the caches, above them, and a system file. */
const CLIMBS = [
  (up: string, sep: string) => `${up}${sep}secret.png`,
  (up: string, sep: string) => `${up}${sep}${up}${sep}secret.png`,
  (up: string, sep: string) => `sub${sep}${up}${sep}${up}${sep}secret.png`,
  (up: string, sep: string) => `${up}${sep}passwd`,
  (up: string, sep: string) => `${up}${sep}${up}${sep}${up}${sep}${up}${sep}${up}${sep}etc${sep}passwd`
]

type Case = [target: string | Buffer, why: string]

const generated: Case[] = DOT_DOTS.flatMap((up) => SEPARATORS.flatMap((sep) =>
  CLIMBS.map((climb): Case => [`/images/${climb(up, sep)}`, `climb ${JSON.stringify(up)} ${JSON.stringify(sep)}`])))

const table: Case[] = [
  ['/images/secret.png', 'the name of the file next to the caches'],
  ['/images/passwd', 'a name without an image extension'],
  ['/images/.hidden.png', 'dotfile'],
  ['/images/%2ehidden.png', 'encoded dotfile'],
  ['/images/.git/config.png', 'dot-dir'],
  ['/images/%2egit/config.png', 'encoded dot-dir'],
  ['/images/escape.png', 'symlink to the secret next to the caches'],
  ['/images/up.png', 'symlink to the secret above the caches'],
  ['/images/absolute.png', 'absolute symlink out of the cache'],
  ['/images/passwd.png', 'symlink to /etc/passwd'],
  ['/images/escape-dir/secret.png', 'symlinked folder pointing out'],
  ['/images/to-hidden.png', 'symlink to a dotfile'],
  ['/images/loop.png', 'symlink loop'],
  ['/images/fifo.png', 'a FIFO named like an image'],
  ['/images/to-b.png', 'symlink from one cache folder into the other'],
  ['/images/cacheB/b.png', 'a cache folder named as a folder'],
  ['/images/srv/cacheA/a.png', 'a path from above the cache folders'],
  ['/images/dir.png', 'a folder named like an image'],
  ['/images/sub', 'a folder'],
  ['/images/sub/', 'a folder with a slash'],
  ['/images/', 'the mount with a slash'],
  ['/images', 'the mount'],
  [Buffer.from('/images/a\u0000.png', 'latin1'), 'raw NUL'],
  [Buffer.from('/images/a.png\u0000', 'latin1'), 'raw NUL after the extension'],
  ['/images/a%00.png', 'encoded NUL'],
  ['/images/a.png%00', 'encoded NUL after the extension'],
  ['/images/a.png%00.png', 'encoded NUL between extensions'],
  ['/images/a.png%2500', 'double-encoded NUL'],
  [Buffer.from('/images/a\r.png', 'latin1'), 'raw CR'],
  [Buffer.from('/images/a\t.png', 'latin1'), 'raw tab'],
  [Buffer.from('/images/a\u007f.png', 'latin1'), 'raw DEL'],
  ['/images/a%0d%0aSet-Cookie:%20x=1.png', 'header injection'],
  [Buffer.from('/images/é.png', 'utf8'), 'raw UTF-8'],
  [Buffer.from('/images/\u00ff.png', 'latin1'), 'raw byte that is not UTF-8'],
  ['/images/%ff.png', 'encoded byte that is not UTF-8'],
  ['/images/%ED%A0%80.png', 'encoded surrogate'],
  ['/images/A.PNG', 'case variant of A.png'],
  ['/images/a.PNG', 'case variant of the extension'],
  ['/images/B.png', 'case variant of a file in cache B'],
  ['/images/%41.png', 'needless escape of A'],
  ['/images/%61.png', 'needless escape of a'],
  ['/images/a%2epng', 'needless escape of the dot'],
  ['/images/a.png.', 'trailing dot'],
  ['/images/a.png%20', 'trailing space'],
  ['/images/a.png::$DATA', 'NTFS stream'],
  ['/images/a.png;.png', 'path parameter'],
  ['/images/a.png/', 'trailing slash'],
  ['/images/a.png/.', 'trailing dot segment'],
  ['/images/a.png/..', 'trailing dot-dot'],
  ['/images/sub/deep.png/../../../secret.png', 'climb from a real file'],
  ['/images/./a.png', 'leading dot segment'],
  ['/images//a.png', 'empty segment'],
  ['/images///etc/passwd', 'empty segments to an absolute path'],
  ['//images/a.png', 'empty segment before the mount'],
  ['/images/%2fetc%2fpasswd', 'encoded absolute path'],
  ['/images/..', 'bare dot-dot'],
  ['/images/%2e%2e', 'bare encoded dot-dot'],
  ['/images/~/secret.png', 'home folder'],
  ['/images/~root/.ssh/id_rsa.png', 'another home folder'],
  ['/images/C:%5cWindows%5cwin.ini', 'a Windows path'],
  ['/images/file:%2f%2f%2fetc%2fpasswd', 'a file URL'],
  ['http://x/images/../secret.png', 'absolute-form target'],
  ['http://x/images/escape.png', 'absolute-form target to a symlink'],
  ['/IMAGES/a.png', 'case variant of the mount (never a file)'],
  ['/Images/../srv/secret.png', 'case variant of the mount with a climb (never a file)'],
  ['/images/' + 'a'.repeat(10 * 1024) + '.png', '10 KB name'],
  ['/images/' + '../'.repeat(3400) + 'secret.png', '10 KB of climbing'],
  ['/images/' + 'a/'.repeat(5 * 1024) + 'a.png', '10 KB of folders'],
  ['/images/' + 'a'.repeat(100 * 1024) + '.png', '100 KB name'],
  ['/images/' + '%2e%2e/'.repeat(100 * 1024 / 7) + 'secret.png', '100 KB of climbing']
]

// Every real name starts with the id of its folder.
const A = folderId(cacheA)
const B = folderId(cacheB)
// Ids are hex digits of a hash of the folder's path, which depends on where the project is
// cloned: about one in a hundred has no letter, and then its capitals are the same id.
const LETTERED = [A, B].find((id) => /[a-f]/.test(id))

/** Names a client may fetch, and the exact bytes each one serves. */
const OWN: Array<[name: string, bytes: Buffer]> = [
  [`${A}/a.png`, LOWER],
  [`${A}/A.png`, UPPER],
  [`${A}/sub/deep.png`, DEEP],
  [`${B}/b.png`, IN_B]
]

/** The same hostile target below a real folder id, where a real name would start. */
const belowId = ([target, why]: Case): Case => [
  typeof target === 'string'
    ? target.replace('/images/', `/images/${A}/`)
    : Buffer.from(target.toString('latin1').replace('/images/', `/images/${A}/`), 'latin1'),
  `${why}, below a folder id`
]

/** Names that are real in one folder, asked for under another folder's id or none. */
const ACROSS: Case[] = [
  [`/images/${A}/b.png`, 'a file of cache B under cache A\'s id'],
  [`/images/${B}/a.png`, 'a file of cache A under cache B\'s id'],
  [`/images/${A}/../${B}/b.png`, 'a climb from one folder id into the other'],
  [`/images/${A}%2f..%2f${B}/b.png`, 'an encoded climb from one folder id into the other'],
  [`/images/${A}/sub/../a.png`, 'an old name\'s climb below a folder id'],
  ...(LETTERED === undefined ? [] : [[`/images/${LETTERED.toUpperCase()}/${LETTERED === A ? 'a' : 'b'}.png`, 'a folder id in capitals'] as Case]),
  [`/images/${A}`, 'a folder id alone'],
  [`/images/${A}/`, 'a folder id with a slash'],
  [`/images/${A}/${A}/a.png`, 'a folder id twice']
]

/**
 * Old link shape covered: `/images/<path>?sig=…`, as releases before folder ids wrote it
 * (no id). Each real one moves to its one name, found as those releases did: the first
 * folder holding it. Every hostile name in `table` and `generated` is such an old name
 * too, so the old-name lookup meets the whole corpus, validly signed.
 */
const LEGACY: Array<[old: string, name: string, bytes: Buffer]> = [
  ['a.png', `${A}/a.png`, LOWER],
  ['A.png', `${A}/A.png`, UPPER],
  ['sub/deep.png', `${A}/sub/deep.png`, DEEP],
  ['b.png', `${B}/b.png`, IN_B]
]

/** The raw name the route signs: what follows `/images/` up to the query. */
function nameIn (target: string | Buffer): string | undefined {
  const text = typeof target === 'string' ? target : target.toString('latin1')
  const at = text.indexOf('/images/')
  if (at === -1) return undefined
  const name = text.slice(at + '/images/'.length)
  const query = name.indexOf('?')
  return query === -1 ? name : name.slice(0, query)
}

/** The target with a valid signature for its own hostile name appended. */
function signed (gate: Gate, target: string | Buffer): string | Buffer {
  const name = nameIn(target)
  if (name === undefined || gate.signer === undefined) return target
  // The signer signs the name as the route sees it: the request line's bytes as latin1.
  const query = `?sig=${gate.signer.sign(name)}`
  return typeof target === 'string' ? target + query : Buffer.concat([target, Buffer.from(query, 'latin1')])
}

function assertRefused (t: Test, response: RawResponse, target: string | Buffer, label: string): void {
  t.equal(response.bytes.indexOf(MARKER), -1, `${label}: no byte of the secret`)
  t.notOk(response.bytes.includes(top), `${label}: no local path`)
  if (target.length + 64 > MAX_HEADER_SIZE) {
    // Node's HTTP parser refuses a request line past its header limit before any route
    // sees the request; the 431 is written by imagegate's client error handler.
    t.equal(response.status, 431, `${label}: refused by the HTTP parser`)
    return
  }
  t.ok(response.status === 400 || response.status === 404, `${label}: 400 or 404, got ${response.status}`)
}

/** The public URL's path every target is sent under in the last run. */
const MOUNT = '/imagegate'

/** Hostile spellings of the public URL's path itself, each before a real file's name. */
const MOUNT_TABLE: Case[] = [
  [`/imagegate/../images/${A}/a.png`, 'climb out of the mount'],
  [`/imagegate/./images/${A}/a.png`, 'dot segment after the mount'],
  [`/imagegate/%2e%2e/images/${A}/a.png`, 'encoded climb out of the mount'],
  [`/imagegate/%2e/images/${A}/a.png`, 'encoded dot segment after the mount'],
  [`/imagegate%2fimages/${A}/a.png`, 'encoded slash after the mount'],
  [`/imagegate%5cimages/${A}/a.png`, 'encoded backslash after the mount'],
  [`/imagegate\\images/${A}/a.png`, 'backslash after the mount'],
  [`/Imagegate/images/${A}/a.png`, 'case variant of the mount'],
  [`/%69magegate/images/${A}/a.png`, 'needless escape in the mount'],
  [`/imagegate/%69mages/${A}/a.png`, 'needless escape after the mount'],
  [`/imagegate;x/images/${A}/a.png`, 'path parameter on the mount'],
  [`/imagegate/imagegate/images/${A}/a.png`, 'the mount twice'],
  [`/imagegatex/images/${A}/a.png`, 'a longer name that starts like the mount'],
  [`/imagegate/images/../../images/${A}/a.png`, 'climb through the mount'],
  ['/imagegate/images/../../srv/cacheA/a.png', 'climb to the cache folder by its own path']
]

/** The target under the public URL's path: `/images/x` → `/imagegate/images/x`. */
function mounted (target: string | Buffer): string | Buffer {
  if (typeof target !== 'string') {
    const text = target.toString('latin1')
    return Buffer.from(text.replace('/images', MOUNT + '/images'), 'latin1')
  }
  return target.replace('/images', MOUNT + '/images')
}

async function setup (t: Test, noSigning: boolean, publicUrl?: string): Promise<Gate & { upstream: MockUpstream }> {
  // Whatever reaches the proxy's catch-all is recorded here; an image link never may.
  const { upstream, gate } = await startProxy(t, { options: { cacheDirs: [cacheA, cacheB], noSigning, ...(publicUrl === undefined ? {} : { publicUrl }) } })
  return Object.assign(gate, { upstream })
}

/** No request that reached the upstream carried a signature or a local path. */
function assertNothingUpstream (t: Test, upstream: MockUpstream): void {
  const leaked = upstream.requests.filter((request) => request.url.includes('sig='))
  t.same(leaked.map((request) => request.url.slice(0, 80)), [], 'no signature was forwarded upstream')
  t.notOk(upstream.requests.some((request) => request.url.includes(top)), 'no local path was forwarded upstream')
}

const label = (target: string | Buffer, why: string): string =>
  `${why} ${JSON.stringify((typeof target === 'string' ? target : target.toString('latin1')).slice(0, 70))}`

for (const noSigning of [false, true]) {
  t.test(noSigning ? 'signing off: the path checks alone refuse every hostile name' : 'signing on: hostile names with valid signatures are still refused', async (t) => {
    const gate = await setup(t, noSigning)
    // Every hand-written case both as written and below a real folder id; a quarter of the
    // generated ones below an id too, which keeps the run short.
    const corpus = [...table, ...generated, ...ACROSS, ...table.map(belowId), ...generated.filter((_, i) => i % 4 === 0).map(belowId)]
    t.ok(corpus.length > 1000, `the corpus has ${corpus.length} hostile request lines`)

    for (const [name, bytes] of OWN) {
      const own = await rawRequest(gate.url, `/images/${name}${noSigning ? '' : `?sig=${gate.signer?.sign(name) ?? ''}`}`)
      t.equal(own.status, 200, `${name}: served under its own name`)
      t.same(own.body, bytes, `${name}: exactly its own bytes`)
      if (!noSigning) t.equal((await rawRequest(gate.url, `/images/${name}`)).status, 404, `${name}: not without its signature`)
    }
    for (const [old, name, bytes] of LEGACY) {
      const sig = (signed: string): string => noSigning ? '' : `?sig=${gate.signer?.sign(signed) ?? ''}`
      const moved = await rawRequest(gate.url, `/images/${old}${sig(old)}`)
      const location = /^location: (.*)$/im.exec(moved.head)?.[1]
      t.equal(moved.status, 301, `old name ${old}: moved permanently`)
      t.equal(location, '../'.repeat(old.split('/').length - 1) + name + sig(name), `old name ${old}: to its one name`)
      t.equal(moved.bytes.indexOf(MARKER), -1, `old name ${old}: no byte of the secret`)
      const target = new URL(location ?? '', `${gate.url}/images/${old}`)
      const followed = await rawRequest(gate.url, target.pathname + target.search)
      t.same(followed.body, bytes, `old name ${old}: the redirect serves exactly its bytes`)
      if (noSigning) continue
      t.equal((await rawRequest(gate.url, `/images/${old}`)).status, 404, `old name ${old}: not without its signature`)
      t.equal((await rawRequest(gate.url, `/images/${old}${sig(name)}`)).status, 404, `old name ${old}: not with the signature of its new name`)
      t.equal((await rawRequest(gate.url, `/images/${old}${sig('secret.png')}`)).status, 404, `old name ${old}: not with another old name's signature`)
    }
    // The query is not part of the name: it cannot smuggle a path in.
    const query = noSigning ? '?' : `?sig=${gate.signer?.sign(`${A}/a.png`) ?? ''}&`
    const queried = await rawRequest(gate.url, `/images/${A}/a.png${query}x=../../secret.png`)
    t.same(queried.body, LOWER, 'a climb in the query string serves the named file only')

    for (const [target, why] of corpus) {
      const sent = noSigning ? target : signed(gate, target)
      assertRefused(t, await rawRequest(gate.url, sent), target, label(target, why))
    }

    t.equal(await settledConnections(gate), 0, 'every connection to imagegate was closed')
    t.notOk(gate.rawLogs.some((line) => line.includes(MARKER)), 'the secret never reached a log line')
    if (!noSigning) assertNothingUpstream(t, gate.upstream)
  })
}

t.test('under the public URL\'s path, the same names are served and the same hostile ones refused', async (t) => {
  const gate = await setup(t, false, `https://chat.example.org${MOUNT}`)
  for (const [name, bytes] of OWN) {
    const query = `?sig=${gate.signer?.sign(name) ?? ''}`
    const own = await rawRequest(gate.url, `${MOUNT}/images/${name}${query}`)
    t.equal(own.status, 200, `${MOUNT}/images/${name}: served`)
    t.same(own.body, bytes, `${MOUNT}/images/${name}: exactly its own bytes`)
    t.equal((await rawRequest(gate.url, `${MOUNT}/images/${name}`)).status, 404, `${MOUNT}/images/${name}: not without its signature`)
    t.equal((await rawRequest(gate.url, `/images/${name}${query}`)).status, 200, `/images/${name}: still served at the root`)
  }
  for (const [old, name, bytes] of LEGACY) {
    const target = `${MOUNT}/images/${old}?sig=${gate.signer?.sign(old) ?? ''}`
    const moved = await rawRequest(gate.url, target)
    t.equal(moved.status, 301, `${MOUNT}/images/${old}: an old name is moved`)
    const location = new URL(/^location: (.*)$/im.exec(moved.head)?.[1] ?? '', gate.url + target)
    t.equal(location.pathname, `${MOUNT}/images/${name}`, `${MOUNT}/images/${old}: to its one name, under the path`)
    t.same((await rawRequest(gate.url, location.pathname + location.search)).body, bytes, `${MOUNT}/images/${old}: which serves exactly its bytes`)
  }
  // The same hostile spellings of the mount before an old name (no folder id).
  const oldMountTable = MOUNT_TABLE.map(([target, why]): Case => [(target as string).replace(`${A}/`, ''), `${why}, before an old name`])
  const corpus: Case[] = [...MOUNT_TABLE, ...oldMountTable, ...[...table, ...generated, ...ACROSS, ...table.map(belowId)].map(([target, why]): Case => [mounted(target), why])]
  for (const [target, why] of corpus) {
    assertRefused(t, await rawRequest(gate.url, signed(gate, target)), target, label(target, why))
  }
  t.equal(await settledConnections(gate), 0, 'every connection to imagegate was closed')
  t.notOk(gate.rawLogs.some((line) => line.includes(MARKER)), 'the secret never reached a log line')
  assertNothingUpstream(t, gate.upstream)
})

t.test('ranges and conditional requests do not open a way around the checks', async (t) => {
  const gate = await setup(t, true)
  const headerSets = [['Range: bytes=0-40'], ['Range: bytes=-40'], ['If-None-Match: *'], ['Range: bytes=0-10,20-40']]
  const targets: Case[] = [...table.filter(([target]) => target.length < 1024), ...generated.filter((_, i) => i % 7 === 0), ...ACROSS, ...table.filter(([target]) => target.length < 1024).map(belowId)]
  for (const headers of headerSets) {
    for (const [target, why] of targets) {
      assertRefused(t, await rawRequest(gate.url, target, { headers }), target, `${headers[0]}: ${label(target, why)}`)
    }
  }
  // An old name only points at the one name: no range of the file comes from it.
  for (const headers of headerSets) {
    for (const [old, , bytes] of LEGACY) {
      const moved = await rawRequest(gate.url, `/images/${old}`, { headers })
      t.equal(moved.status, 301, `${headers[0]}: old name ${old} is moved`)
      t.equal(moved.body.indexOf(bytes.subarray(8, 16)), -1, `${headers[0]}: old name ${old} sends no byte of the file`)
    }
  }
  const range = await rawRequest(gate.url, `/images/${A}/A.png`, { headers: ['Range: bytes=0-3'] })
  t.equal(range.status, 206, 'a range of a real file works')
  t.same(range.body, UPPER.subarray(0, 4), 'and is cut from that file')
  t.equal(await settledConnections(gate), 0, 'every connection to imagegate was closed')
})

/** Waits for the server to see the last client close (they close right after answering). */
async function settledConnections (gate: Gate): Promise<number> {
  let count = -1
  const deadline = Date.now() + 2000
  do {
    count = await connectionCount(gate.app.server)
    if (count === 0) break
    await new Promise((resolve) => setTimeout(resolve, 10))
  } while (Date.now() < deadline)
  return count
}
