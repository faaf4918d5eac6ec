// Where log lines go: JSON unless a person is watching a terminal.
import { Writable } from 'node:stream'
import { pino } from 'pino'
import t from 'tap'
import { loadPretty, logDestination, loggerOptions } from '../src/log.js'
import { waitFor } from './fixtures/http.js'

const SECRET = 'sk-SECRET-pretty-3e9a'

function sink (): { stream: Writable, text: () => string } {
  const chunks: string[] = []
  const stream = new Writable({
    write (chunk: Buffer, _encoding, callback) {
      chunks.push(chunk.toString('utf8'))
      callback()
    }
  })
  return { stream, text: () => chunks.join('') }
}

t.test('a given stream always wins: tests read JSON back', async t => {
  const given = sink().stream
  t.equal(await logDestination(given, { isTTY: true }), given, 'the given stream, even on a terminal')
  t.equal(await logDestination(given, { isTTY: false }), given, 'and elsewhere')
})

t.test('JSON on stdout when stdout is not a terminal', async t => {
  let loaded = false
  const destination = await logDestination(undefined, { isTTY: false, load: async () => { loaded = true; return undefined } })
  t.equal(destination, undefined, 'pino\'s own stdout stream')
  t.notOk(loaded, 'pino-pretty is not even loaded')
})

t.test('stdout decides by default; pretty lines go to stdout', async t => {
  // tap reads the test's stdout through a pipe.
  t.equal(await logDestination(undefined), undefined, 'JSON when stdout is a pipe')
  const out = sink().stream
  let asked: unknown
  const destination = await logDestination(undefined, { isTTY: true, load: async () => (options) => { asked = options; return out } })
  t.equal(destination, out, 'the stream pino-pretty made')
  t.same(asked, { destination: 1, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname', singleLine: true }, 'writing to stdout (fd 1), local time, without pid and host name, one line per event')
})

t.test('JSON on a terminal when pino-pretty is not installed', async t => {
  t.equal(await logDestination(undefined, { isTTY: true, load: async () => undefined }), undefined, 'falls back to JSON')
  t.equal(await loadPretty('pino-pretty-not-installed'), undefined, 'a missing module loads as undefined')
  t.type(await loadPretty(), 'function', 'the installed optional dependency loads')
})

t.test('readable lines on a terminal, still redacted', async t => {
  const out = sink()
  const destination = await logDestination(undefined, { isTTY: true, output: out.stream })
  t.ok(destination !== undefined, 'a pretty stream')
  const log = pino(loggerOptions({ level: 'info' }), destination)
  log.info({ upstreamApiKey: SECRET, req: { headers: { authorization: `Bearer ${SECRET}` } } }, 'imagegate listening on http://127.0.0.1:8090')
  await waitFor(() => out.text().includes('\n'), 'a pretty line')
  const text = out.text()
  t.match(text, /INFO.*imagegate listening on http:\/\/127\.0\.0\.1:8090/, 'level and message on one readable line')
  t.throws(() => JSON.parse(text), 'not JSON')
  t.match(text, /\[redacted\]/, 'redacted values are marked')
  t.notOk(text.includes(SECRET), 'no secret')
})
