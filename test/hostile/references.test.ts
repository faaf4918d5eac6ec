// Hostile destinations written by the model, streamed through a whole imagegate: none of
// them is deliverable, so the answer must come out byte for byte, while a real cached
// image written next to them is still rewritten.
import path from 'node:path'
import t from 'tap'
import { DEFAULT_DATA_IMAGE_MAX_BYTES, DEFAULT_INLINE_MAX_BYTES } from '../../src/config/options.js'
import { createDelivery } from '../../src/delivery.js'
import { createDataStore } from '../../src/files/data-store.js'
import { folderId } from '../../src/files/names.js'
import { createFileResolver } from '../../src/files/resolver.js'
import { createSigner } from '../../src/files/signing.js'
import { createRewriteSession } from '../../src/rewrite/session.js'
import { createChatCompletionsHandler } from '../../src/sse/chat-completions.js'
import { createEventStream } from '../../src/sse/event-stream.js'
import { contentOf, dataLines } from '../fixtures/gate.js'
import type { Gate } from '../fixtures/gate.js'
import { CONTAINER_DIR, IMAGE_NAME, IMAGE_PATH, PNG } from '../fixtures/hermes.js'
import { createRewriter } from '../../src/rewrite/rewriter.js'
import { postJson } from '../fixtures/http.js'
import { CHAT, DONE, FINISH, ROLE, contentEvents } from '../fixtures/chat.js'
import { sse } from '../fixtures/mock-upstream.js'
import { startProxy } from '../fixtures/proxy.js'
import type { MockUpstream } from '../fixtures/mock-upstream.js'

const SECRET = Buffer.from('TOPSECRET-imagegate-hostile-reference')

const dir = t.testdir({
  'secret.png': SECRET,
  home: { '.ssh': { 'id_rsa.png': SECRET, id_rsa: SECRET }, 'pic.png': SECRET },
  cache: { [IMAGE_NAME]: PNG },
  store: {}
})
const cache = path.join(dir, 'cache')
const home = path.join(dir, 'home')
const store = path.join(dir, 'store')
const stem = IMAGE_NAME.slice(0, -'.png'.length)

/** Destinations that name no deliverable file, each with why it is hostile. */
const HOSTILE: Array<[dest: string, why: string]> = [
  ['/etc/passwd', 'a system file'],
  ['/etc/shadow', 'another system file'],
  ['/etc/passwd.png', 'a system path with an image extension'],
  [`${dir}/secret.png`, 'the real path of a file next to the cache'],
  [`${cache}/../secret.png`, 'a climb out of the real cache dir'],
  [`${CONTAINER_DIR}/../${IMAGE_NAME}`, 'a climb that lands on a cached name'],
  [`${CONTAINER_DIR}/./../../${IMAGE_NAME}`, 'a climb with a dot segment'],
  [`${CONTAINER_DIR}/../../../../etc/passwd.png`, 'a climb to a system file'],
  ['~/.ssh/id_rsa.png', 'a key in the home folder, named like an image'],
  ['~/.ssh/id_rsa', 'a key in the home folder'],
  ['~/pic.png', 'an image in the home folder, which is no cache dir'],
  ['~/../secret.png', 'a climb out of the home folder'],
  ['~root/.ssh/id_rsa.png', 'another user\'s home folder'],
  ['../../x.png', 'a relative climb'],
  ['../secret.png', 'a relative path to the secret'],
  [`./${IMAGE_NAME}`, 'a relative path to a cached name'],
  [IMAGE_NAME, 'a bare cached name'],
  ['file:///etc/shadow', 'a file URL to a system file'],
  ['file:///etc/passwd.png', 'a file URL with an image extension'],
  [`file://${cache}/../secret.png`, 'a file URL climbing out of the cache'],
  [`file:///%2e%2e${CONTAINER_DIR}/%2e%2e/${IMAGE_NAME}`, 'a file URL with encoded climbs to a cached name'],
  [`file://evil${IMAGE_PATH}`, 'a file URL on another host'],
  [`file:${CONTAINER_DIR}/%00${IMAGE_NAME}`, 'a file URL with an encoded NUL'],
  [`http://evil${IMAGE_PATH}`, 'a URL with the cache path embedded'],
  ['http://evil/root/.hermes/cache/images/x.png', 'a URL with a cache path'],
  [`https://h/x.png?p=${IMAGE_PATH}`, 'a URL with the path in its query'],
  [`https://h/${IMAGE_NAME}`, 'a URL ending in a cached name'],
  [`data:image/png;base64,iVBORw0KGgo=${IMAGE_PATH}`, 'a data URI with a path after it'],
  [`C:\\..\\..\\${IMAGE_NAME}`, 'a Windows climb to a cached name'],
  [`\\\\server\\share\\${IMAGE_NAME}`, 'a UNC path'],
  [`${CONTAINER_DIR}/${'a'.repeat(10 * 1024)}.png`, 'a 10 KB name'],
  [`/${'a/'.repeat(5 * 1024)}${IMAGE_NAME}`, 'a 10 KB path ending in a cached name'],
  [`${CONTAINER_DIR}/x\u0000.png`, 'NUL inside the name'],
  [`${IMAGE_PATH}\u0000`, 'NUL after a cached name'],
  [`${CONTAINER_DIR}/\u001b[31m${IMAGE_NAME}`, 'a terminal escape before a cached name'],
  [`${CONTAINER_DIR}/\u0085${IMAGE_NAME}`, 'a C1 control before a cached name'],
  [`${IMAGE_PATH}\u0007`, 'a bell after a cached name'],
  [`${CONTAINER_DIR}/x\u202e.png`, 'RTL override inside a name'],
  [`${CONTAINER_DIR}/${stem}\u202egnp.`, 'RTL override that shows a cached name reversed'],
  [`${CONTAINER_DIR}/x\u200b.png`, 'zero-width space inside a name'],
  [`${CONTAINER_DIR}/\u200b${IMAGE_NAME}`, 'zero-width space before a cached name'],
  [`${IMAGE_PATH}\u200b`, 'zero-width space after a cached name'],
  [`\u200b${IMAGE_PATH}`, 'zero-width space before the path'],
  [`\u202e${IMAGE_PATH}`, 'RTL override before the path'],
  [`${CONTAINER_DIR}/\ufeff${IMAGE_NAME}`, 'BOM before a cached name'],
  [`${CONTAINER_DIR}/${IMAGE_NAME.replace('o', '\u043e')}`, 'a cached name with a Cyrillic homoglyph'],
  [`${CONTAINER_DIR}/${stem}.p\u0301ng`, 'a combining accent in the extension'],
  [`${CONTAINER_DIR}/\ud800${IMAGE_NAME}`, 'a lone surrogate before a cached name']
]

/** Every reference form around one destination, one per line. */
function forms (dest: string): string {
  return [
    `Look ![h](${dest}) here`,
    `![h](<${dest}> "t")`,
    `![a [nested] alt](${dest})`,
    `MEDIA:${dest}`,
    `MEDIA: "${dest}" then`,
    `MEDIA:\`${dest}\``
  ].join('\n') + '\n'
}

const REAL = `\u200b![ok](${IMAGE_PATH})\u200f and MEDIA:${IMAGE_PATH}\n`
const realRewritten = (link: string): string => `\u200b![ok](${link})\u200f and ![${IMAGE_NAME}](${link})\n`

/**
 * imagegate's whole rewriting path without the HTTP around it, built as the server builds
 * it: the real file checks (cache folder, home folder), delivery, one rewrite session per
 * answer, and the chat event transform fed the upstream's bytes.
 */
function createPipeline (): { stream: (pieces: string[]) => string, link: string, logs: Array<[Record<string, unknown>, string]> } {
  const files = createFileResolver({ cacheDirs: [cache], storeDir: store, homedir: home })
  const signer = createSigner('k'.repeat(32))
  const dataStore = createDataStore({ dir: store, maxBytes: DEFAULT_DATA_IMAGE_MAX_BYTES })
  const delivery = createDelivery({ files, signer, publicUrl: () => 'http://gate.test', mode: 'link', inlineMaxBytes: DEFAULT_INLINE_MAX_BYTES, store: dataStore })
  const logs: Array<[Record<string, unknown>, string]> = []
  const log = { debug: (fields: Record<string, unknown>, message: string) => { logs.push([fields, message]) } }
  const name = `${folderId(cache)}/${IMAGE_NAME}`
  return {
    link: `http://gate.test/images/${name}?sig=${signer.sign(name)}`,
    logs,
    stream (pieces) {
      const session = createRewriteSession({
        resolveFor: delivery.resolveFor,
        storeDataImage: delivery.storeDataImage,
        maxDataChars: Math.ceil(DEFAULT_DATA_IMAGE_MAX_BYTES / 3) * 4,
        log
      })
      const events = createEventStream(createChatCompletionsHandler(session.newRewriter))
      const upstream = Buffer.from([ROLE, ...contentEvents(pieces), FINISH, DONE].join(''), 'utf8')
      return Buffer.concat([events.feed(upstream), events.end()]).toString('utf8')
    }
  }
}

/** Streams `pieces` as content deltas through a whole imagegate; returns the client's whole response text. */
async function stream (upstream: MockUpstream, gate: Gate, pieces: string[]): Promise<string> {
  const body = [ROLE, ...contentEvents(pieces), FINISH, DONE]
  upstream.handle(sse([body.join('')]))
  const res = await postJson(gate.url, '/v1/chat/completions', CHAT)
  if (res.status !== 200) throw new Error(`status ${res.status}: ${res.text.slice(0, 200)}`)
  return res.text
}

// Every destination in every stream shape: at the level of the rewriting path, where
// thousands of one-character events cost no HTTP.
t.test('hostile destinations come out byte for byte; a real image beside them is rewritten', async (t) => {
  const pipeline = createPipeline()
  for (const [dest, why] of HOSTILE) {
    const label = `${why} ${JSON.stringify(dest.slice(0, 60))}`
    const text = forms(dest)

    const whole = [ROLE, ...contentEvents([text]), FINISH, DONE].join('')
    t.equal(pipeline.stream([text]), whole, `${label}, whole: every byte of the stream is unchanged`)

    const perCharacter = pipeline.stream([...text])
    t.equal(contentOf(perCharacter), text, `${label}, one character per delta: the text is unchanged`)
    t.equal(dataLines(perCharacter).at(-1), '[DONE]', `${label}, one character per delta: the stream ends cleanly`)

    const mixed = text + REAL
    const expected = text + realRewritten(pipeline.link)
    t.equal(contentOf(pipeline.stream([mixed])), expected, `${label}, whole, next to a real image: only the image is rewritten`)
    t.equal(contentOf(pipeline.stream([...mixed])), expected, `${label}, one character per delta, next to a real image: only the image is rewritten`)
  }
  const rewritten = pipeline.logs.filter(([, message]) => message === 'reference rewritten')
  t.equal(rewritten.length, HOSTILE.length * 4, 'only the real image was ever rewritten, twice per mixed stream')
  t.ok(rewritten.every(([fields]) => fields.name === IMAGE_NAME), 'and always as the cached image')
  t.notOk(pipeline.logs.some((line) => JSON.stringify(line).includes('TOPSECRET')), 'no secret reached a log line')
})

/** A few of them through a whole imagegate: the server wires the same path. */
const END_TO_END = new Set(['a climb out of the real cache dir', 'a key in the home folder, named like an image', 'a file URL with encoded climbs to a cached name'])

t.test('through a whole imagegate, hostile destinations come out byte for byte; a real image beside them is rewritten', async (t) => {
  const { upstream, gate } = await startProxy(t, { options: { cacheDirs: [cache] }, settings: { homedir: home } })
  const chosen = HOSTILE.filter(([, why]) => END_TO_END.has(why))
  t.equal(chosen.length, END_TO_END.size, 'every chosen destination is in the list')
  for (const [dest, why] of chosen) {
    const label = `${why} ${JSON.stringify(dest.slice(0, 60))}`
    const text = forms(dest)

    const whole = [ROLE, ...contentEvents([text]), FINISH, DONE].join('')
    t.equal(await stream(upstream, gate, [text]), whole, `${label}, whole: every byte of the stream is unchanged`)

    const perCharacter = await stream(upstream, gate, [...text])
    t.equal(contentOf(perCharacter), text, `${label}, one character per delta: the text is unchanged`)
    t.equal(dataLines(perCharacter).at(-1), '[DONE]', `${label}, one character per delta: the stream ends cleanly`)

    const mixed = text + REAL
    const expected = text + realRewritten(gate.link(IMAGE_NAME))
    t.equal(contentOf(await stream(upstream, gate, [mixed])), expected, `${label}, whole, next to a real image: only the image is rewritten`)
    t.equal(contentOf(await stream(upstream, gate, [...mixed])), expected, `${label}, one character per delta, next to a real image: only the image is rewritten`)
  }
  const rewritten = gate.logs.filter((line) => line.msg === 'reference rewritten')
  t.equal(rewritten.length, chosen.length * 4, 'only the real image was ever rewritten, twice per mixed stream')
  t.ok(rewritten.every((line) => line.name === IMAGE_NAME), 'and always as the cached image')
  t.notOk(gate.rawLogs.some((line) => line.includes('TOPSECRET')), 'no secret reached a log line')
})

// A scan that restarts at every opener is quadratic: 1 MB of `![` once took 8–13 s. Absolute
// times move with the machine's load and with coverage instrumentation (5–10× on Node 22 and
// 24), so the check is on growth: four times the text must cost about four times as long,
// where a quadratic scan costs sixteen times. The best of three runs trims scheduling noise.
t.test('text made of reference openers costs time linear in its length', async (t) => {
  const size = 64 * 1024
  const resolve = (): undefined => undefined
  const time = (text: string): number => {
    let best = Infinity
    for (let run = 0; run < 3; run++) {
      const started = performance.now()
      const rewriter = createRewriter({ resolve })
      rewriter.push(text)
      rewriter.end()
      best = Math.min(best, performance.now() - started)
    }
    return best
  }
  for (const opener of ['![', '![[', 'MEDIA:', '![a](']) {
    const small = time(opener.repeat(size / opener.length))
    const large = time(opener.repeat((4 * size) / opener.length))
    const growth = large / Math.max(small, 1)
    t.ok(growth < 9, `${JSON.stringify(opener)}: ${size / 1024} KiB took ${small.toFixed(0)} ms, ${4 * size / 1024} KiB ${large.toFixed(0)} ms (×${growth.toFixed(1)}; linear is ×4, quadratic ×16)`)
  }
})
