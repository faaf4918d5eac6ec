// A file imagegate cannot read must not get a link, and a linked file that becomes
// unreadable must answer the fixed 404 on every path (GET, HEAD, Range), never a 500
// carrying the file's headers. Tests run as root, which reads everything, so the server
// runs here as an unprivileged user (nobody, 65534) through the real CLI.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { contentOf, pathAndQuery } from '../fixtures/gate.js'
import { PNG } from '../fixtures/hermes.js'
import { send, waitFor } from '../fixtures/http.js'
import { DONE, FINISH, contentEvents } from '../fixtures/chat.js'
import { sse, startMockUpstream } from '../fixtures/mock-upstream.js'
import { parseMetrics, sampleValue } from '../fixtures/prometheus.js'
import { errorBody } from '../../src/errors.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const CLI = fileURLToPath(new URL('../../src/cli.ts', import.meta.url))
const NOBODY = 65534

const LINK = /\]\((http:\/\/127\.0\.0\.1:\d+\/images\/[^)]+)\)/g

t.test('an unprivileged server links only what it can read, and 404s what it no longer can', async (t) => {
  const dir = t.testdir({
    cache: { 'readable.png': PNG, 'later.png': PNG, 'secret.png': PNG },
    state: {}
  })
  const cache = path.join(dir, 'cache')
  const state = path.join(dir, 'state')
  // Owned by root and private: nobody may not read it.
  fs.chmodSync(path.join(cache, 'secret.png'), 0o600)
  fs.chownSync(state, NOBODY, NOBODY)
  // Every folder on the way from the repository must be searchable by nobody.
  for (let up = dir; up !== path.resolve(ROOT); up = path.dirname(up)) fs.chmodSync(up, fs.statSync(up).mode | 0o055)

  const upstream = await startMockUpstream()
  t.teardown(() => upstream.close())
  const args = ['--port', '0', '--cache-dir', cache, '--state-dir', state, '--upstream', upstream.url, '--log-level', 'debug']
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('IMAGEGATE_')))
  const child = spawn(process.execPath, [...process.execArgv, CLI, ...args], { cwd: ROOT, env, uid: NOBODY, gid: NOBODY })
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  let stdout = ''
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (text: string) => { stderr += text })
  const closed = once(child, 'close')
  const base = await new Promise<string>((resolve, reject) => {
    child.stdout.setEncoding('utf8').on('data', (text: string) => {
      stdout += text
      const listening = /"url":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(stdout)
      if (listening?.[1] !== undefined) resolve(listening[1])
    })
    closed.then(() => reject(new Error(`exited before listening: ${stderr}`)), reject)
  })
  const logs = (): Array<Record<string, unknown>> => stdout.split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as Record<string, unknown>)

  const text = `A ![r](${cache}/readable.png) B ![l](${cache}/later.png) C ![s](${cache}/secret.png)`
  upstream.handle(sse([...contentEvents([text]), FINISH, DONE]))
  const answer = contentOf((await send(base, { method: 'POST', path: '/v1/chat/completions', body: '{"stream": true}' })).text)
  const links = [...answer.matchAll(LINK)].map((match) => match[1] as string)
  t.equal(links.length, 2, 'the two readable files are linked')
  t.ok(answer.endsWith(`C ![s](${cache}/secret.png)`), 'the unreadable one stays as the model wrote it')
  const [readable, later] = links as [string, string]

  const metrics = parseMetrics((await send(base, { path: '/metrics' })).text)
  t.equal(sampleValue(metrics, 'imagegate_references_total', { outcome: 'unreadable' }), 1, 'counted as unreadable')
  t.equal(sampleValue(metrics, 'imagegate_references_total', { outcome: 'rewritten' }), 2, 'the others as rewritten')
  // The child's log reaches this process through a pipe, maybe after the answers did.
  await waitFor(() => logs().some((line) => line.msg === 'reference left alone'), 'the log line of the reference left alone')
  const leftAlone = logs().filter((line) => line.msg === 'reference left alone')
  t.same(leftAlone.map(({ reason, name, level }) => ({ reason, name, level })), [{ reason: 'unreadable', name: 'secret.png', level: 20 }], 'logged at debug with its reason and file name')

  const served = await send(base, { path: pathAndQuery(readable) })
  t.equal(served.status, 200, 'a readable file is served to nobody')
  t.same(served.body, PNG, 'byte for byte')

  // Made unreadable after its link was written.
  fs.chmodSync(path.join(cache, 'later.png'), 0o600)
  const requests: Array<[label: string, method: string, headers: Record<string, string>]> = [
    ['GET', 'GET', {}],
    ['HEAD', 'HEAD', {}],
    ['GET of a range', 'GET', { range: 'bytes=0-3' }],
    ['GET with a validator', 'GET', { 'if-none-match': '"x"' }]
  ]
  for (const [label, method, headers] of requests) {
    const res = await send(base, { method, path: pathAndQuery(later), headers })
    t.equal(res.status, 404, `${label}: 404`)
    t.equal(res.text, method === 'HEAD' ? '' : JSON.stringify(errorBody('not_found')), `${label}: the fixed body`)
    t.match(res.headers['content-type'], /^application\/json/, `${label}: JSON`)
    t.equal(res.headers.etag, undefined, `${label}: no ETag of the file`)
    t.equal(res.headers['content-range'], undefined, `${label}: no Content-Range`)
  }

  child.kill('SIGTERM')
  await closed
  t.notOk(stdout.includes(path.join(cache, 'secret.png')), 'the full path of the unreadable file is never logged')
})
